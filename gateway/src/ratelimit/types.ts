/** A client's limits, from its record. */
export interface Limits {
  readonly requestsPerMinute: number;
  readonly tokensPerMinute: number;
}

/** What an admitted request holds until it settles: the tokens reserved for it, in its window. */
export interface Ticket {
  readonly clientId: string;
  readonly window: number;
  readonly reserved: number;
}

export type Admission =
  | { readonly allowed: true; readonly ticket: Ticket }
  | { readonly allowed: false; readonly reason: 'requests' | 'tokens'; readonly retryAfterSeconds: number };

export interface RateLimiter {
  /**
   * Counts one request against the client's minute window and reserves `reserveTokens` for it (its
   * prompt estimate and `max_tokens`, at most the limit; 1 when not given). Refuses when one more request would pass
   * requestsPerMinute, or when the reservation does not fit in what is left of tokensPerMinute.
   * Never throws, never hangs: on any Redis problem it answers from the local limiter.
   */
  admit(clientId: string, limits: Limits, reserveTokens?: number): Promise<Admission>;
  /**
   * Settles an admitted request: what it really used (prompt and completion, or an estimate of what
   * was relayed) replaces its reservation in its window. Call exactly once per admission. Never throws.
   */
  settle(ticket: Ticket, usedTokens: number): Promise<void>;
  /** True while answering from the local fallback. */
  readonly degraded: boolean;
  /** Returns what this replica leased and did not use, then closes the Redis connection; later calls answer locally. */
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
   * emit a metric and a log line. Never called for the limiter's own close.
   */
  readonly onDegradedChange?: (degraded: boolean) => void;
}
