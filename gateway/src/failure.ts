/**
 * What an upstream outcome means for the key that produced it. Pure functions: the proxy decides
 * what to do, the pool what state the key is in.
 */
export type Outcome =
  | 'success'
  /** 401/403: the key is revoked or expired; disabled until the secret changes or a probe passes. */
  | 'auth'
  /** 429: the key cools down until the provider says it may be used again. */
  | 'rate_limited'
  /** 5xx: retried on another key. */
  | 'server'
  /** Connection refused or reset, DNS: retried on another key. */
  | 'network'
  /** No first byte in time: retried on another key. */
  | 'timeout'
  /** 400, 404, 413, 422 and other 4xx: the request's fault; passed through, never held against the key. */
  | 'client';

export function classifyStatus(status: number): Outcome {
  if (status >= 200 && status < 400) return 'success';
  if (status === 401 || status === 403) return 'auth';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server';
  return 'client';
}

/** Outcomes after which the same request is tried on another key. */
export function retryable(outcome: Outcome): boolean {
  return (
    outcome === 'auth' ||
    outcome === 'rate_limited' ||
    outcome === 'server' ||
    outcome === 'network' ||
    outcome === 'timeout'
  );
}

/** `6m0s`, `1s`, `20ms`, `1h2m3.5s` (OpenAI's reset headers) in milliseconds; undefined if not that form. */
export function parseDuration(text: string): number | undefined {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text.trim()) return undefined;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  return Math.round(parts.reduce((sum, [, value, u]) => sum + Number(value) * unit[u], 0));
}

type Headers = Record<string, string | string[] | undefined>;
const header = (headers: Headers, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * When a rate-limited key may be used again: `Retry-After` (seconds or an HTTP date), else the
 * latest of OpenAI's `x-ratelimit-reset-*` durations and Anthropic's `anthropic-ratelimit-*-reset`
 * timestamps, else `now + fallbackMs`. Bounded to an hour, so a bad header cannot bench a key forever.
 */
export function cooldownUntil(headers: Headers, now: number, fallbackMs: number): number {
  const cap = now + 3_600_000;
  const retryAfter = header(headers, 'retry-after');
  if (retryAfter !== undefined) {
    if (/^\d+(\.\d+)?$/.test(retryAfter.trim())) return Math.min(cap, now + Number(retryAfter) * 1000);
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.min(cap, Math.max(now, date));
  }
  const candidates: number[] = [];
  for (const name of ['x-ratelimit-reset-requests', 'x-ratelimit-reset-tokens']) {
    const value = header(headers, name);
    const ms = value === undefined ? undefined : parseDuration(value);
    if (ms !== undefined) candidates.push(now + ms);
  }
  for (const name of Object.keys(headers)) {
    if (!/^anthropic-ratelimit-.*-reset$/.test(name)) continue;
    const date = Date.parse(header(headers, name) ?? '');
    if (!Number.isNaN(date)) candidates.push(date);
  }
  if (candidates.length > 0) return Math.min(cap, Math.max(now, ...candidates));
  return now + fallbackMs;
}
