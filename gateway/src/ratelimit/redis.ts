import { createHash } from 'node:crypto';
import Redis from 'ioredis';
import type { RateLimiterOptions } from './types';

/**
 * One atomic admission against a client's window, a hash with fields `r` (requests admitted) and `t`
 * (tokens recorded). Refuses with 2 when the tokens reached the limit, with 1 when one more request
 * would pass the request limit; otherwise counts the request and returns 0. A refused request is not
 * counted, so `r` is exactly what every replica admitted together. The window expires after two
 * windows' time, long after it stops being current.
 */
const ADMIT = `
local counts = redis.call('HMGET', KEYS[1], 'r', 't')
local requests = tonumber(counts[1] or '0')
local tokens = tonumber(counts[2] or '0')
if tokens >= tonumber(ARGV[2]) then return 2 end
if requests >= tonumber(ARGV[1]) then return 1 end
redis.call('HINCRBY', KEYS[1], 'r', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
`;

/** Adds a finished request's tokens to a client's window. */
const RECORD_TOKENS = `
redis.call('HINCRBY', KEYS[1], 't', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
`;

/** The client connection with the two scripts defined on it (run by EVALSHA, loaded again after a restart). */
export type LimiterRedis = Redis & {
  rateLimitAdmit(key: string, requests: number, tokens: number, ttlMs: number): Promise<number>;
  rateLimitRecordTokens(key: string, tokens: number, ttlMs: number): Promise<number>;
};

const RECORD_ID = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * The key of a client's window: `<prefix>{<client>}:<minute number>`. A client id in the form of the
 * records' ids goes in as it is, which keeps keys readable; anything else goes in as `h-` and 32 hex
 * characters of its SHA-256, which no record id can equal (34 characters), so a caller's id can never
 * add key syntax. The braces are a hash tag: a client's keys stay in one slot under cluster mode.
 */
export function windowKey(prefix: string, clientId: string, window: number): string {
  const client = RECORD_ID.test(clientId)
    ? clientId
    : `h-${createHash('sha256').update(clientId).digest('hex').slice(0, 32)}`;
  return `${prefix}{${client}}:${window}`;
}

/** Bounded backoff between reconnection attempts: 100 ms doubling to 2 s, and never giving up. */
export const reconnectDelay = (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 16), 2000);

/**
 * A connection that fails fast: no offline queue (a command while disconnected fails at once instead
 * of waiting), no retries of a command, a short command timeout, and endless bounded reconnection.
 */
export function connect(options: NonNullable<RateLimiterOptions['redis']>, commandTimeoutMs: number): LimiterRedis {
  const redis = new Redis({
    host: options.host,
    port: options.port,
    username: options.username,
    password: options.password,
    tls: options.tls ? {} : undefined,
    // No connection name: CLIENT is outside the gateway's ElastiCache user, which may run its two
    // scripts on its own keys, PING, and INFO for ioredis's ready check (lib/constructs/cache.ts).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 1000,
    retryStrategy: reconnectDelay,
    // After a Multi-AZ failover the old primary answers READONLY: reconnect to what the endpoint names now.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
    disableClientInfo: true,
  });
  redis.defineCommand('rateLimitAdmit', { numberOfKeys: 1, lua: ADMIT });
  redis.defineCommand('rateLimitRecordTokens', { numberOfKeys: 1, lua: RECORD_TOKENS });
  return redis as LimiterRedis;
}
