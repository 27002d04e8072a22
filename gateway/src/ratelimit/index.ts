import Redis from 'ioredis';

export interface Limits {
  readonly requestsPerMinute: number;
  readonly tokensPerMinute: number;
}

export type Admission =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: 'requests' | 'tokens'; readonly retryAfterSeconds: number };

export interface RateLimiter {
  /** Counts one request in the client's current minute; refuses past either limit. Never throws. */
  admit(clientId: string, limits: Limits): Promise<Admission>;
  /** Adds a finished request's tokens to the client's current minute. Never throws. */
  recordTokens(clientId: string, tokens: number): Promise<void>;
  /** True while answering from this replica's own counters because Redis is unreachable. */
  readonly degraded: boolean;
  close(): Promise<void>;
}

export interface RateLimiterOptions {
  /** Absent: this replica's own counters only. */
  readonly redis?: {
    host: string;
    port: number;
    tls?: boolean;
    password?: string;
    keyPrefix?: string;
    commandTimeoutMs?: number;
  };
  readonly now?: () => number;
  readonly onDegradedChange?: (degraded: boolean) => void;
}

const WINDOW_MS = 60_000;

/**
 * One atomic admission: refuse if the window's tokens already reached the limit, else count the
 * request and refuse if that passes the request limit. Windows expire after two minutes.
 */
const ADMIT = `
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
if tokens >= tonumber(ARGV[2]) then return 2 end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if n > tonumber(ARGV[1]) then return 1 end
return 0
`;

/** This replica's counters: the same fixed windows, used alone or while Redis is unreachable. */
class LocalWindows {
  private readonly counts = new Map<string, { window: number; requests: number; tokens: number }>();

  entry(clientId: string, window: number) {
    let entry = this.counts.get(clientId);
    if (entry === undefined || entry.window !== window) {
      entry = { window, requests: 0, tokens: 0 };
      this.counts.set(clientId, entry);
    }
    return entry;
  }
}

/**
 * Per-client requests and tokens per minute, in fixed one-minute windows shared by every replica
 * through Redis (ElastiCache Valkey, TLS and AUTH in AWS). When Redis cannot answer, each replica
 * applies the same limits on its own counters (so N replicas admit up to N times the limit during an
 * outage), reports that through `onDegradedChange`, and goes back to Redis when it answers again.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const local = new LocalWindows();
  const prefix = options.redis?.keyPrefix ?? 'gw:rl:';
  let degraded = false;
  const setDegraded = (value: boolean) => {
    if (degraded === value) return;
    degraded = value;
    options.onDegradedChange?.(value);
  };
  const redis =
    options.redis === undefined
      ? undefined
      : new Redis({
          host: options.redis.host,
          port: options.redis.port,
          password: options.redis.password,
          tls: options.redis.tls ? {} : undefined,
          // Fail fast instead of queueing: a queued admission would hold the request.
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          commandTimeout: options.redis.commandTimeoutMs ?? 100,
          connectTimeout: 1000,
          retryStrategy: (times) => Math.min(times * 200, 2000),
          lazyConnect: false,
        });
  // A connection error while connected or reconnecting; late errors from an attempt that has
  // since been superseded by a ready connection must not flip the state back.
  redis?.on('error', () => {
    if (redis.status !== 'ready') setDegraded(true);
  });
  redis?.on('close', () => setDegraded(true));
  redis?.defineCommand('gatewayAdmit', { numberOfKeys: 2, lua: ADMIT });

  const windowOf = () => Math.floor(now() / WINDOW_MS);
  const retryAfter = () => Math.max(1, Math.ceil(((windowOf() + 1) * WINDOW_MS - now()) / 1000));
  const keys = (clientId: string, window: number) => [
    `${prefix}${clientId}:${window}:r`,
    `${prefix}${clientId}:${window}:t`,
  ];

  const localAdmit = (clientId: string, limits: Limits): Admission => {
    const entry = local.entry(clientId, windowOf());
    if (entry.tokens >= limits.tokensPerMinute)
      return { allowed: false, reason: 'tokens', retryAfterSeconds: retryAfter() };
    if (entry.requests >= limits.requestsPerMinute) {
      return { allowed: false, reason: 'requests', retryAfterSeconds: retryAfter() };
    }
    entry.requests += 1;
    return { allowed: true };
  };

  return {
    get degraded() {
      return degraded;
    },
    async admit(clientId, limits) {
      if (redis !== undefined && redis.status === 'ready') {
        try {
          const window = windowOf();
          const result = await (
            redis as unknown as { gatewayAdmit: (...args: Array<string | number>) => Promise<number> }
          ).gatewayAdmit(...keys(clientId, window), limits.requestsPerMinute, limits.tokensPerMinute, WINDOW_MS * 2);
          setDegraded(false);
          if (result === 0) return { allowed: true };
          return { allowed: false, reason: result === 2 ? 'tokens' : 'requests', retryAfterSeconds: retryAfter() };
        } catch {
          setDegraded(true);
        }
      } else if (redis !== undefined) {
        setDegraded(true);
      }
      return localAdmit(clientId, limits);
    },
    async recordTokens(clientId, tokens) {
      if (!(tokens > 0)) return;
      const window = windowOf();
      local.entry(clientId, window).tokens += tokens;
      if (redis === undefined || redis.status !== 'ready') return;
      try {
        const [, key] = keys(clientId, window);
        await redis
          .multi()
          .incrby(key, Math.round(tokens))
          .pexpire(key, WINDOW_MS * 2)
          .exec();
      } catch {
        setDegraded(true);
      }
    },
    async close() {
      if (redis !== undefined) {
        redis.disconnect();
      }
    },
  };
}
