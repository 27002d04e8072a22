import type { Limits } from './types';

/** Why an admission was refused, or 'ok'. */
export type Verdict = 'ok' | 'requests' | 'tokens';

/**
 * This replica's own counters for the current minute window, per client. They answer alone when no
 * Redis is configured or while it is unreachable, and they mirror what this replica admitted through
 * Redis, so that falling back mid-window starts from this replica's own share instead of from zero.
 * Only the current window is kept: the map holds the clients seen in one minute, no more.
 */
export class LocalWindows {
  private window = Number.NaN;
  private readonly counts = new Map<string, { requests: number; tokens: number }>();

  private entry(clientId: string, window: number) {
    if (window !== this.window) {
      this.counts.clear();
      this.window = window;
    }
    let entry = this.counts.get(clientId);
    if (entry === undefined) {
      entry = { requests: 0, tokens: 0 };
      this.counts.set(clientId, entry);
    }
    return entry;
  }

  /** The same rule as the Redis script: refused once the tokens reach the limit, or the requests would pass it. */
  admit(clientId: string, window: number, limits: Limits): Verdict {
    const entry = this.entry(clientId, window);
    if (entry.tokens >= limits.tokensPerMinute) return 'tokens';
    if (entry.requests >= limits.requestsPerMinute) return 'requests';
    entry.requests += 1;
    return 'ok';
  }

  /** Counts a request that Redis admitted. */
  mirror(clientId: string, window: number): void {
    this.entry(clientId, window).requests += 1;
  }

  addTokens(clientId: string, window: number, tokens: number): void {
    this.entry(clientId, window).tokens += tokens;
  }
}
