import { createHash } from 'node:crypto';
import Redis from 'ioredis';
import type { RateLimiterOptions } from './types';

/**
 * Leases quota from a client's window, a hash with fields `r` (requests leased by every replica) and
 * `t` (tokens leased, plus what requests used beyond their reservation). A replica asks when its own
 * lease cannot admit the next request: for at least `ARGV[3]` requests (0 or 1) and `ARGV[4]` tokens.
 * Refuses with 1 when the requests are gone, with 2 when the tokens asked for do not fit; otherwise
 * grants what was asked, or more: a 1/`ARGV[5]` share of what is left, at most `ARGV[6]` requests, so
 * replicas admit most requests without a round trip while the limit holds across all of them (a lease
 * shrinks to one request as the window fills, so the last requests of a window are exact). Returns
 * {verdict, requests granted, tokens granted}.
 */
const LEASE = `
local counts = redis.call('HMGET', KEYS[1], 'r', 't')
local r = tonumber(counts[1] or '0')
local t = tonumber(counts[2] or '0')
local requestLimit = tonumber(ARGV[1])
local tokenLimit = tonumber(ARGV[2])
local needRequests = tonumber(ARGV[3])
local needTokens = tonumber(ARGV[4])
local share = tonumber(ARGV[5])
if needRequests > 0 and r >= requestLimit then return {1, 0, 0} end
if t + needTokens > tokenLimit then return {2, 0, 0} end
local grantRequests = math.min(requestLimit - r, math.max(needRequests, math.floor((requestLimit - r) / share)), tonumber(ARGV[6]))
local grantTokens = math.min(tokenLimit - t, math.max(needTokens, math.floor((tokenLimit - t) / share)))
if grantRequests > 0 then redis.call('HINCRBY', KEYS[1], 'r', grantRequests) end
if grantTokens > 0 then redis.call('HINCRBY', KEYS[1], 't', grantTokens) end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {0, grantRequests, grantTokens}
`;

/**
 * Adds to a window's counts (negative numbers give back): tokens a request used beyond its
 * reservation and the lease, or what a replica leased and did not use when it stops.
 */
const ADJUST = `
if tonumber(ARGV[1]) ~= 0 then redis.call('HINCRBY', KEYS[1], 'r', ARGV[1]) end
if tonumber(ARGV[2]) ~= 0 then redis.call('HINCRBY', KEYS[1], 't', ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
`;

/** The client connection with the two scripts defined on it (run by EVALSHA, loaded again after a restart). */
export type LimiterRedis = Redis & {
  rateLimitLease(
    key: string,
    requestLimit: number,
    tokenLimit: number,
    needRequests: number,
    needTokens: number,
    share: number,
    maxRequests: number,
    ttlMs: number,
  ): Promise<[number, number, number]>;
  rateLimitAdjust(key: string, requests: number, tokens: number, ttlMs: number): Promise<number>;
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
  redis.defineCommand('rateLimitLease', { numberOfKeys: 1, lua: LEASE });
  redis.defineCommand('rateLimitAdjust', { numberOfKeys: 1, lua: ADJUST });
  return redis as LimiterRedis;
}
