import type { ProviderName } from '../../contracts/gateway-documents';
import { GatewayError } from './errors';

/**
 * What an upstream outcome means for the key that produced it. Pure functions: the proxy decides
 * what to do, the pool what state the key is in.
 */
export type Outcome =
  | 'success'
  /**
   * The provider says the key itself is bad (revoked, invalid, deactivated, out of credit or quota):
   * disabled for every client until its value changes or a probe passes.
   */
  | 'auth'
  /** 429: the key cools down until the provider says it may be used again. */
  | 'rate_limited'
  /** 5xx: retried on another key. */
  | 'server'
  /** Connection refused or reset, DNS, a body cut short: retried on another key (before the first byte). */
  | 'network'
  /** No first byte in time: retried on another key. */
  | 'timeout'
  /**
   * 400, 403, 404, 413, 422 and other 4xx that do not say the key is bad: the request's own refusal
   * (a model this key may not use, a region, a content policy, a bad parameter). Passed through to
   * the client, never held against the key: one client's request cannot bench the pool.
   */
  | 'client';

/**
 * What an upstream outcome means by its status alone, or the error an attempt failed with before any
 * answer (undici's error codes: timeouts, refused or reset connections). A 401 means the key; a 403
 * alone does not (classifyAnswer reads the body).
 */
export function classifyUpstream(result: number | unknown): Outcome {
  if (typeof result === 'number') {
    if (result >= 200 && result < 300) return 'success';
    if (result === 401) return 'auth';
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

/**
 * OpenAI error codes (and Azure's) that mean the key cannot be used by anyone: invalid, deactivated,
 * without an organization, out of quota or credit, past a spend limit, billing inactive. Matched on
 * `error.code` first and `error.type` second, never on words in a message.
 */
const KEY_BAD_CODES = new Set([
  'invalid_api_key',
  'account_deactivated',
  'no_organization',
  'insufficient_quota',
  'credit_balance_exhausted',
  'organization_spend_limit_exceeded',
  'project_spend_limit_exceeded',
  'organization_usage_limit_exceeded',
  'billing_not_active',
  'billing_hard_limit_reached',
  // Azure OpenAI: key authentication is switched off on the resource.
  'AuthenticationTypeDisabled',
]);

/** Anthropic's 400 messages that mean the organization's key cannot be used (anchored prefixes). */
const ANTHROPIC_KEY_BAD_MESSAGES = [
  /^Your credit balance is too low/,
  /^This organization has been disabled/,
  /^You have reached your specified (workspace )?API usage limits/,
];

/** An outcome and, for a key-level one, why: a fixed phrase, never provider text. */
export interface Classified {
  readonly outcome: Outcome;
  readonly reason?: string;
}

/**
 * What a provider's answer means for the key that got it, from its status and its error body (read
 * up to a bound): only answers that say the key itself is bad disable it. Covers OpenAI's and Azure's
 * `{"error":{"code","type"}}` and Anthropic's `{"type":"error","error":{"type","message"}}`.
 */
export function classifyAnswer(provider: ProviderName, status: number, body: string): Classified {
  const base = classifyUpstream(status);
  if (base === 'success' || base === 'server') return { outcome: base };
  let error: { code?: unknown; type?: unknown; message?: unknown; details?: { error_code?: unknown } } = {};
  try {
    const parsed = JSON.parse(body) as { error?: typeof error };
    if (typeof parsed?.error === 'object' && parsed.error !== null) error = parsed.error;
  } catch {
    // not JSON: the status decides
  }
  const code = typeof error.code === 'string' ? error.code : undefined;
  const type = typeof error.type === 'string' ? error.type : undefined;
  const message = typeof error.message === 'string' ? error.message : '';
  if (
    (code !== undefined && KEY_BAD_CODES.has(code)) ||
    type === 'insufficient_quota' ||
    type === 'billing_not_active'
  ) {
    return { outcome: 'auth', reason: `the provider refused the key (${status} ${code ?? type})` };
  }
  if (provider === 'anthropic') {
    // Sent only when the request carried an Origin header, which the gateway never forwards.
    if (status === 401 && /^CORS requests are not allowed/.test(message)) return { outcome: 'client' };
    if (status === 402 || type === 'billing_error')
      return { outcome: 'auth', reason: 'billing problem at the provider (402)' };
    if (status === 429 && error.details?.error_code === 'enforced_spend_limit_reached') {
      return { outcome: 'auth', reason: 'the monthly spend limit is reached (429)' };
    }
    if (status === 400 && ANTHROPIC_KEY_BAD_MESSAGES.some((pattern) => pattern.test(message))) {
      return { outcome: 'auth', reason: 'the organization cannot use the API (credit, limit or disabled)' };
    }
  }
  if (base === 'auth') return { outcome: 'auth', reason: `the provider refused the key (${status})` };
  return { outcome: base };
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

/**
 * No attempt produced an answer to relay: the error that says why, as the provider's condition, and
 * when to retry. `nextAvailable` is when the provider's first cooling key may be used again.
 */
export function exhausted(
  provider: ProviderName,
  lastOutcome: Outcome | undefined,
  tried: number,
  nextAvailable: number | undefined,
  now: number,
): GatewayError {
  if (lastOutcome === 'rate_limited' || (lastOutcome === undefined && nextAvailable !== undefined)) {
    const seconds = Math.max(1, Math.ceil(((nextAvailable ?? now + 1000) - now) / 1000));
    return new GatewayError(
      429,
      'upstream_rate_limited',
      `every ${provider} key is rate-limited by the provider; retry after ${seconds} s`,
      { provider, retry_after_seconds: seconds },
      { 'retry-after': String(seconds) },
    );
  }
  if (lastOutcome === undefined || lastOutcome === 'auth') {
    return new GatewayError(
      503,
      'upstream_unavailable',
      lastOutcome === 'auth'
        ? `${provider} refused every key tried; an operator must replace the keys`
        : `no usable ${provider} key: every key is refused by the provider or switched off, or none is configured`,
      { provider },
    );
  }
  if (lastOutcome === 'timeout') {
    return new GatewayError(504, 'upstream_timeout', `${provider} did not start answering in time on ${tried} key(s)`, {
      provider,
    });
  }
  return new GatewayError(
    502,
    'upstream_error',
    `${provider} failed on ${tried} key(s) (${lastOutcome === 'server' ? 'server errors' : 'connection errors'})`,
    { provider },
  );
}
