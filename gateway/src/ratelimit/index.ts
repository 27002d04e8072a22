import { LocalWindows, type Verdict } from './local';
import { connect, type LimiterRedis, windowKey } from './redis';
import type { Admission, Limits, RateLimiter, RateLimiterOptions, Ticket } from './types';

export type { Admission, Limits, RateLimiter, RateLimiterOptions, Ticket } from './types';
export { windowKey } from './redis';

/** The window length: limits are per minute, in fixed windows numbered floor(now / 60 s). */
export const WINDOW_MS = 60_000;
/** A window's key outlives the window by one more, then Redis drops it. */
const KEY_TTL_MS = 2 * WINDOW_MS;
/** After a Redis command fails, admissions stay local this long (real time) before Redis is tried again. */
const RETRY_REDIS_AFTER_MS = 1000;
/** A lease is at most this share of what is left in the window (redis.ts LEASE). */
const LEASE_SHARE = 16;
/** ... and at most this many requests. */
const MAX_LEASE_REQUESTS = 100;

class Deadline extends Error {}

/** The promise, or a rejection once `ms` pass: a backstop to ioredis's own command timeout. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Deadline()), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** What this replica holds of a client's window: leased from Redis, not yet used. */
interface Lease {
  readonly window: number;
  requests: number;
  tokens: number;
  /** The largest token grant of this window: the most tokens a lease keeps from refunds. */
  cap: number;
  /** Redis refused more requests in this window: they never come back, so do not ask again. */
  requestsGone: boolean;
  /** A lease request in flight, which concurrent admissions wait for instead of asking too. */
  pending?: Promise<Verdict>;
}

/** A limit as the script and the local counters read it: a whole number, at least 0. */
const whole = (n: number) => (Number.isFinite(n) ? Math.max(0, Math.floor(n)) : Number.MAX_SAFE_INTEGER);

/**
 * Per-client requests and tokens per minute, shared by every replica through Redis (ElastiCache Valkey
 * with TLS and its own ACL user in AWS).
 *
 * Windows are fixed minutes of the injected clock, one Redis hash per client and minute. A replica
 * leases quota from it (one Lua script, so concurrent replicas never lease past the limit) and admits
 * from its lease without a round trip; as the window fills, leases shrink to single requests, so the
 * limit holds exactly across replicas. Each request reserves its tokens at admission (its prompt
 * estimate and `max_tokens`) and settles with what it used: a refund stays in this replica's lease
 * (an excess goes back to Redis), a shortfall comes out of it or is added to Redis. A fixed window
 * lets a client spend its limit at the end of one minute and again at the start of the next;
 * replicas' clocks are assumed to agree within NTP's margin. What a replica leased and did not use is
 * lost when the window ends, and returned when the replica stops.
 *
 * When Redis cannot answer (down, unreachable, wrong password, slower than `commandTimeoutMs`), each
 * replica applies the same limits to its own counters, so N replicas admit up to N times a limit during
 * an outage. The limiter reports the switch through `onDegradedChange` and `degraded`, keeps
 * reconnecting with a bounded backoff, and goes back to Redis by itself once it answers.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const local = new LocalWindows();
  const leases = new Map<string, Lease>();
  const prefix = options.redis?.keyPrefix ?? 'gw:rl:';
  const timeoutMs = options.redis?.commandTimeoutMs ?? 100;
  let degraded = false;
  let closed = false;
  /** Set when close() begins: what happens to the connection from then on is not an outage. */
  let closing = false;
  /** Real time (not the injected clock) before which admissions do not try Redis. */
  let redisPausedUntil = 0;

  const setDegraded = (value: boolean) => {
    if (closing || degraded === value) return;
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
  // An error while (re)connecting, such as a refused connection or a wrong password. Errors of an
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

  const answer = (verdict: Exclude<Verdict, 'ok'>, at: number, window: number): Admission => ({
    allowed: false,
    reason: verdict,
    retryAfterSeconds: Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - at) / 1000)),
  });

  const leaseOf = (clientId: string, window: number): Lease => {
    let lease = leases.get(clientId);
    if (lease === undefined || lease.window !== window) {
      // A new minute: what was left of the last one is gone with it. Only current windows are kept.
      if (lease !== undefined && lease.window < window) {
        for (const [id, other] of leases) if (other.window < window) leases.delete(id);
      }
      lease = { window, requests: 0, tokens: 0, cap: 0, requestsGone: false };
      leases.set(clientId, lease);
    }
    return lease;
  };

  /** Asks Redis for more of a window; one request per client at a time. */
  const extend = (shared: LimiterRedis, clientId: string, lease: Lease, limits: Limits, reserve: number) => {
    const needRequests = lease.requests >= 1 ? 0 : 1;
    const needTokens = Math.max(0, reserve - lease.tokens);
    lease.pending = within(
      shared.rateLimitLease(
        windowKey(prefix, clientId, lease.window),
        limits.requestsPerMinute,
        limits.tokensPerMinute,
        needRequests,
        needTokens,
        LEASE_SHARE,
        MAX_LEASE_REQUESTS,
        KEY_TTL_MS,
      ),
      timeoutMs * 2 + 50,
    )
      .then(([verdict, requests, tokens]): Verdict => {
        lease.requests += requests;
        lease.tokens += tokens;
        lease.cap = Math.max(lease.cap, tokens);
        if (verdict === 1) lease.requestsGone = true;
        return verdict === 0 ? 'ok' : verdict === 1 ? 'requests' : 'tokens';
      })
      .finally(() => {
        lease.pending = undefined;
      });
    return lease.pending;
  };

  /** Admits from this replica's lease, leasing more when it runs short. */
  const admitShared = async (
    shared: LimiterRedis,
    clientId: string,
    limits: Limits,
    reserve: number,
    window: number,
  ): Promise<Verdict> => {
    // Bounded: each round either admits, is refused, or waits for a lease that grants at least one request.
    for (let round = 0; round < 64; round++) {
      const lease = leaseOf(clientId, window);
      if (lease.requests >= 1 && lease.tokens >= reserve) {
        lease.requests -= 1;
        lease.tokens -= reserve;
        return 'ok';
      }
      if (lease.pending !== undefined) {
        await lease.pending.catch(() => undefined);
        continue;
      }
      if (lease.requests < 1 && lease.requestsGone) return 'requests';
      const verdict = await extend(shared, clientId, lease, limits, reserve);
      if (verdict !== 'ok') return verdict;
      if (shared.status === 'ready') setDegraded(false);
    }
    throw new Deadline();
  };

  /** Adds tokens to a window in Redis (a shortfall beyond the lease, or leftovers given back). */
  const adjust = async (clientId: string, window: number, requests: number, tokens: number) => {
    const shared = await available();
    if (shared === undefined) return;
    try {
      await within(
        shared.rateLimitAdjust(windowKey(prefix, clientId, window), requests, tokens, KEY_TTL_MS),
        timeoutMs * 2 + 50,
      );
    } catch (error) {
      failed(error);
    }
  };

  return {
    get degraded() {
      return degraded;
    },

    async admit(clientId, limits, reserveTokens = 1) {
      const at = now();
      const window = Math.floor(at / WINDOW_MS);
      const bounded: Limits = {
        requestsPerMinute: whole(limits.requestsPerMinute),
        tokensPerMinute: whole(limits.tokensPerMinute),
      };
      // A reservation larger than the whole limit could never be admitted: it takes the whole window instead.
      const reserve = Math.min(whole(reserveTokens), bounded.tokensPerMinute);
      const ticket: Ticket = { clientId, window, reserved: reserve };
      try {
        const shared = await available();
        if (shared !== undefined) {
          try {
            const verdict = await admitShared(shared, clientId, bounded, reserve, window);
            if (verdict !== 'ok') return answer(verdict, at, window);
            local.mirror(clientId, window, reserve);
            return { allowed: true, ticket };
          } catch (error) {
            failed(error);
          }
        }
      } catch {
        // Nothing above is expected to throw; whatever does, the local limiter answers.
      }
      const verdict = local.admit(clientId, window, bounded, reserve);
      return verdict === 'ok' ? { allowed: true, ticket } : answer(verdict, at, window);
    },

    async settle(ticket, usedTokens) {
      const used = Number.isFinite(usedTokens) ? Math.max(0, Math.round(usedTokens)) : 0;
      const delta = used - ticket.reserved;
      if (delta === 0) return;
      local.adjust(ticket.clientId, ticket.window, delta);
      const lease = leases.get(ticket.clientId);
      // A past window no longer limits anything.
      if (lease === undefined || lease.window !== ticket.window) return;
      if (delta < 0) {
        lease.tokens -= delta;
        // A lease that hoards refunds gives the excess back, for the other replicas: once it holds
        // twice its largest grant, so that returns are one round trip per grant's worth of refunds.
        const keep = Math.max(lease.cap, ticket.reserved);
        const excess = lease.tokens > 2 * keep ? lease.tokens - keep : 0;
        if (excess > 0 && redis !== undefined) {
          lease.tokens -= excess;
          await adjust(ticket.clientId, ticket.window, 0, -excess);
        }
        return;
      }
      const taken = Math.min(delta, lease.tokens);
      lease.tokens -= taken;
      if (delta > taken && redis !== undefined) await adjust(ticket.clientId, ticket.window, 0, delta - taken);
    },

    async close() {
      if (closing) return;
      closing = true;
      const window = Math.floor(now() / WINDOW_MS);
      // Give back what this replica leased and did not use, so a rolling deploy does not lose quota.
      await Promise.all(
        [...leases]
          .filter(([, lease]) => lease.window === window && (lease.requests > 0 || lease.tokens > 0))
          .map(([clientId, lease]) => adjust(clientId, window, -lease.requests, -lease.tokens)),
      );
      leases.clear();
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
