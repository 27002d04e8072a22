import { LocalWindows, type Verdict } from './local';
import { connect, type LimiterRedis, windowKey } from './redis';
import type { Admission, Limits, RateLimiter, RateLimiterOptions } from './types';

export type { Admission, Limits, RateLimiter, RateLimiterOptions } from './types';
export { windowKey } from './redis';

/** The window length: limits are per minute, in fixed windows numbered floor(now / 60 s). */
export const WINDOW_MS = 60_000;
/** A window's key outlives the window by one more, then Redis drops it. */
const KEY_TTL_MS = 2 * WINDOW_MS;
/** After a Redis command fails, admissions stay local this long (real time) before Redis is tried again. */
const RETRY_REDIS_AFTER_MS = 1000;

class Deadline extends Error {}

/** The promise, or a rejection once `ms` pass: a backstop to ioredis's own command timeout. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Deadline()), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A limit as the script and the local counters read it: a whole number, at least 0. */
const whole = (n: number) => (Number.isFinite(n) ? Math.max(0, Math.floor(n)) : Number.MAX_SAFE_INTEGER);

/**
 * Per-client requests and tokens per minute, shared by every replica through Redis (ElastiCache Valkey
 * with TLS and an AUTH token in AWS).
 *
 * Windows are fixed minutes of the injected clock, one Redis hash per client and minute holding the
 * admitted requests and the recorded tokens, updated by one Lua script per admission, so concurrent
 * replicas never admit past the limit. A fixed window lets a client spend its limit at the end of one
 * minute and again at the start of the next. Replicas' clocks are assumed to agree within NTP's margin.
 *
 * When Redis cannot answer (down, unreachable, wrong AUTH token, slower than `commandTimeoutMs`), each
 * replica applies the same limits to its own counters, so N replicas admit up to N times a limit during
 * an outage; tokens recorded then are not added to Redis later. The limiter reports the switch through
 * `onDegradedChange` and `degraded`, keeps reconnecting with a bounded backoff, and goes back to Redis
 * by itself once it answers.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const local = new LocalWindows();
  const prefix = options.redis?.keyPrefix ?? 'gw:rl:';
  const timeoutMs = options.redis?.commandTimeoutMs ?? 100;
  let degraded = false;
  let closed = false;
  /** Real time (not the injected clock) before which admissions do not try Redis. */
  let redisPausedUntil = 0;

  const setDegraded = (value: boolean) => {
    if (closed || degraded === value) return;
    degraded = value;
    try {
      options.onDegradedChange?.(value);
    } catch {
      // A failing listener must not turn into a failed admission.
    }
  };

  const redis: LimiterRedis | undefined = options.redis === undefined ? undefined : connect(options.redis, timeoutMs);
  /** Settles at the first connection or the first failure, so the first admissions wait for it (bounded). */
  const firstContact = new Promise<void>((resolve) => {
    if (redis === undefined) return resolve();
    redis.once('ready', () => resolve());
    redis.once('error', () => resolve());
    redis.once('close', () => resolve());
  });
  let contacted = redis === undefined;
  void firstContact.then(() => (contacted = true));

  redis?.on('ready', () => {
    redisPausedUntil = 0;
    setDegraded(false);
  });
  // An error while (re)connecting, such as a refused connection or a wrong AUTH token. Errors of an
  // older attempt that arrive once a newer one is ready leave the state alone.
  redis?.on('error', () => {
    if (redis.status !== 'ready') setDegraded(true);
  });
  redis?.on('close', () => setDegraded(true));

  /** Redis, if it can be asked now. */
  const available = async (): Promise<LimiterRedis | undefined> => {
    if (redis === undefined || closed) return undefined;
    if (!contacted) await within(firstContact, timeoutMs).catch(() => undefined);
    if (redis.status !== 'ready' || Date.now() < redisPausedUntil) {
      setDegraded(true);
      return undefined;
    }
    return redis;
  };

  const failed = (error: unknown) => {
    redisPausedUntil = Date.now() + RETRY_REDIS_AFTER_MS;
    setDegraded(true);
    // A connection that stopped answering is replaced rather than trusted again.
    const timedOut = error instanceof Deadline || (error instanceof Error && error.message === 'Command timed out');
    if (timedOut && redis !== undefined && !closed) redis.disconnect(true);
  };

  const answer = (verdict: Verdict, at: number, window: number): Admission =>
    verdict === 'ok'
      ? { allowed: true }
      : {
          allowed: false,
          reason: verdict,
          retryAfterSeconds: Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - at) / 1000)),
        };

  return {
    get degraded() {
      return degraded;
    },

    async admit(clientId, limits) {
      const at = now();
      const window = Math.floor(at / WINDOW_MS);
      const bounded: Limits = {
        requestsPerMinute: whole(limits.requestsPerMinute),
        tokensPerMinute: whole(limits.tokensPerMinute),
      };
      try {
        const shared = await available();
        if (shared !== undefined) {
          try {
            const result = await within(
              shared.rateLimitAdmit(
                windowKey(prefix, clientId, window),
                bounded.requestsPerMinute,
                bounded.tokensPerMinute,
                KEY_TTL_MS,
              ),
              timeoutMs * 2 + 50,
            );
            if (shared.status === 'ready') setDegraded(false);
            const verdict: Verdict = result === 0 ? 'ok' : result === 2 ? 'tokens' : 'requests';
            if (verdict === 'ok') local.mirror(clientId, window);
            return answer(verdict, at, window);
          } catch (error) {
            failed(error);
          }
        }
      } catch {
        // Nothing above is expected to throw; whatever does, the local limiter answers.
      }
      return answer(local.admit(clientId, window, bounded), at, window);
    },

    async recordTokens(clientId, tokens) {
      if (!Number.isFinite(tokens) || tokens < 1) return;
      const amount = Math.round(tokens);
      const window = Math.floor(now() / WINDOW_MS);
      local.addTokens(clientId, window, amount);
      try {
        const shared = await available();
        if (shared === undefined) return;
        await within(
          shared.rateLimitRecordTokens(windowKey(prefix, clientId, window), amount, KEY_TTL_MS),
          timeoutMs * 2 + 50,
        );
      } catch (error) {
        failed(error);
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      if (redis === undefined || redis.status === 'end') return;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(done, 1000);
        redis.once('end', done);
        // Between reconnection attempts there is no socket left to close, and so no 'end' to wait for.
        const betweenAttempts = redis.status === 'reconnecting';
        redis.disconnect();
        if (betweenAttempts) done();
      });
    },
  };
}
