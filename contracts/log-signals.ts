/**
 * Signals read from Dify's own log lines and the SSRF proxy's access log, as CloudWatch metric
 * filters. Each pattern is a CloudWatch regular expression (`%...%`: no spaces or parentheses, so `.`
 * stands for the single space between fields) matched against the raw log event, and is tested on
 * lines in the real format of its source (test/contracts/log-signals.test.ts; squid's own lines in
 * test/constructs/dify/squid-config.test.ts).
 *
 * Dify 1.13.3 writes no line of its own when a sign-in fails (api/controllers/console/auth/login.py
 * raises AuthenticationFailedError, 401, or after repeated failures EmailPasswordLoginLimitError,
 * 429, and logs nothing). Its request logging does (api/extensions/ext_request_logging.py, on with
 * ENABLE_REQUEST_LOGGING=true): one INFO line per request, `<method> <path> <status> <ms> <trace id>`,
 * which with LOG_OUTPUT_FORMAT=json is the `message` of a JSON line. The path carries no query string,
 * and the line no header, body or source address.
 */

/**
 * The metric filter pattern for a signal: on ECS, each container writes to a log group of its own,
 * and the regular expression reads the raw line; on EKS, Container Insights' Fluent Bit ships every
 * container's lines to one group as JSON records, the line in `log`, so the pattern names the container.
 */
export function logSignalPattern(signal: LogSignal, eksContainer?: string): string {
  return eksContainer === undefined
    ? `%${signal.regex}%`
    : `{ ($.kubernetes.container_name = "${eksContainer}") && ($.log = %${signal.regex}%) }`;
}

/** The Dify service whose log group a signal reads (a row id of lib/constructs/dify/catalog.ts). */
export type LogSource = 'Api' | 'SsrfProxy';

export interface LogSignal {
  readonly signal: string;
  readonly title: string;
  readonly source: LogSource;
  /**
   * A CloudWatch regular expression (without its `%` signs) that the line written by the service
   * matches: the whole log event on ECS; the `log` field of the Fluent Bit record on EKS.
   */
  readonly regex: string;
  /** Fires at or above this many matching lines in five minutes. */
  readonly threshold: number;
  /** What it means, and what to check first. */
  readonly description: string;
}

/**
 * Dify 1.13.3's console sign-in endpoints (api/controllers/console/auth/login.py): password sign-in,
 * and the e-mailed code's check. Both are POST, and Dify's own lock-out is per e-mail address only.
 * The web ACL's sign-in rate limit and `dify-aws investigate` watch the same two paths.
 */
export const SIGN_IN_PATHS = ['/console/api/login', '/console/api/email-code-login/validity'] as const;

/** The environment that makes the api write the lines these signals read. */
export const DIFY_REQUEST_LOGGING = { ENABLE_REQUEST_LOGGING: 'true', LOG_OUTPUT_FORMAT: 'json' } as const;

export const LOG_SIGNALS = {
  consoleSignInFailures: {
    signal: 'auth.console-sign-in-failures',
    title: 'Dify console: failed sign-ins',
    source: 'Api',
    // 401: wrong password; 429: the address is locked after repeated failures.
    regex: 'POST./console/api/login.401.|POST./console/api/login.429.',
    threshold: 10,
    description:
      'Ten or more failed Dify console sign-ins (wrong password, or an e-mail address locked after repeated failures) in five minutes. Check first the WAF log for the addresses posting to /console/api/login, and the auth.console-sign-in-burst-by-source alarm; Dify locks each e-mail address, WAF each address over the sign-in limit.',
  },
  serviceApiAuthFailures: {
    signal: 'auth.service-api-failures',
    title: 'Dify service API: refused API keys',
    source: 'Api',
    regex: '[A-Z]+./v1/[A-Za-z0-9/_-]*.401.',
    threshold: 20,
    description:
      'Twenty or more Dify service API requests (/v1/...) refused for a missing or wrong app API key in five minutes: a leaked or guessed key being tried, or a client whose key was rotated. Check first the WAF log for the addresses calling /v1/, then the apps whose keys were recently revoked.',
  },
  deniedEgress: {
    signal: 'egress.squid-denied',
    title: 'SSRF proxy: refused destinations',
    source: 'SsrfProxy',
    // Squid's native access log: `<time> <ms> <client> TCP_DENIED/403 <bytes> <method> <url> ...`.
    regex: 'TCP_DENIED/',
    threshold: 5,
    description:
      'The SSRF proxy refused five or more requests in five minutes: to the metadata service, a private or VPC address, or a port other than 80 and 443. Someone may be probing internal ranges through a workflow, a tool or a plugin. Check first the destinations and client addresses in the proxy log (TCP_DENIED lines), then which app or plugin made them.',
  },
} as const satisfies Record<string, LogSignal>;
