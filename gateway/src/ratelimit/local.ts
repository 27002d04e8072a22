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

  /** The same rule as the Redis script: one more request must fit, and so must the reservation. */
  admit(clientId: string, window: number, limits: Limits, reserve: number): Verdict {
    const entry = this.entry(clientId, window);
    if (entry.requests >= limits.requestsPerMinute) return 'requests';
    if (entry.tokens + reserve > limits.tokensPerMinute) return 'tokens';
    entry.requests += 1;
    entry.tokens += reserve;
    return 'ok';
  }

  /** Counts a request that Redis admitted. */
  mirror(clientId: string, window: number, reserve: number): void {
    const entry = this.entry(clientId, window);
    entry.requests += 1;
    entry.tokens += reserve;
  }

  /** Adds tokens (a negative number refunds) to a window, if it is still the current one. */
  adjust(clientId: string, window: number, tokens: number): void {
    if (window !== this.window) return;
    const entry = this.entry(clientId, window);
    entry.tokens = Math.max(0, entry.tokens + tokens);
  }
}
