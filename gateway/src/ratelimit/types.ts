/** A client's limits, from its record. */
export interface Limits {
  readonly requestsPerMinute: number;
  readonly tokensPerMinute: number;
}

export type Admission =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: 'requests' | 'tokens'; readonly retryAfterSeconds: number };

export interface RateLimiter {
  /**
   * Counts one request against the client's minute window; refuses when the request count would exceed
   * requestsPerMinute or the tokens already recorded in the window reach tokensPerMinute. Never throws,
   * never hangs: on any Redis problem it answers from the local limiter.
   */
  admit(clientId: string, limits: Limits): Promise<Admission>;
  /** Adds tokens used by a finished request to the client's window (prompt + completion). Never throws. */
  recordTokens(clientId: string, tokens: number): Promise<void>;
  /** True while answering from the local fallback. */
  readonly degraded: boolean;
  /** Closes the Redis connection; later calls answer from the local limiter. */
  close(): Promise<void>;
}

export interface RateLimiterOptions {
  /** Absent: local limits only (a single replica, or tests). */
  readonly redis?: {
    host: string;
    port: number;
    /** TLS to Redis (ElastiCache with in-transit encryption). @default false */
    tls?: boolean;
    /** The ACL user (ElastiCache RBAC). @default the default user */
    username?: string;
    /** The user's password, or the AUTH token. @default no AUTH */
    password?: string;
    /** Prefix of every key. @default 'gw:rl:' */
    keyPrefix?: string;
    /** How long one Redis command may take before the local limiter answers instead. @default 100 */
    commandTimeoutMs?: number;
  };
  /** Injected clock (ms since epoch); default Date.now. */
  readonly now?: () => number;
  /**
   * Called when the limiter switches to or from the local fallback (true = degraded), so the server can
   * emit a metric and a log line.
   */
  readonly onDegradedChange?: (degraded: boolean) => void;
}
