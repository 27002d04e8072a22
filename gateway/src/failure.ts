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
  /** Connection refused or reset, DNS, a body cut short: retried on another key (before the first byte). */
  | 'network'
  /** No first byte in time: retried on another key. */
  | 'timeout'
  /** 400, 404, 413, 422 and other 4xx: the request's fault; passed through, never held against the key. */
  | 'client';

/**
 * What an upstream outcome means: a status code the provider answered with, or the error an attempt
 * failed with before any answer (undici's error codes: timeouts, refused or reset connections).
 */
export function classifyUpstream(result: number | unknown): Outcome {
  if (typeof result === 'number') {
    if (result >= 200 && result < 300) return 'success';
    if (result === 401 || result === 403) return 'auth';
    if (result === 429) return 'rate_limited';
    if (result >= 400 && result < 500) return 'client';
    // 5xx, and 1xx/3xx that a JSON API never answers with (a redirecting base URL is a provider-side
    // misconfiguration): another key or a later attempt may fare better.
    return 'server';
  }
  const code = (result as { code?: unknown } | null)?.code;
  const name = (result as { name?: unknown } | null)?.name;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) return 'timeout';
  if (typeof name === 'string' && /Timeout/i.test(name)) return 'timeout';
  return 'network';
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'ABORT_ERR',
]);

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

/** How long a rate-limited key rests when the provider's answer says nothing about when to come back. */
export const DEFAULT_COOLDOWN_MS = 60_000;

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
