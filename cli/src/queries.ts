import { SIGN_IN_PATHS } from '../../contracts/log-signals';

/**
 * The CloudWatch Logs Insights queries of `dify-aws investigate`, one per section of its report, each
 * with the pure function that turns the rows CloudWatch returns into the rows printed.
 *
 * Every query selects named identifier fields only: none displays `@message`. Two read `@message`
 * through `parse` (the SSRF proxy's plain-text squid lines, and the blocking detector's name in a
 * gateway audit line) and keep only the captured identifier. The shaping functions then read only
 * the fields their query names, so an unexpected field in a row is never printed.
 */

/** Where a section's lines are: the gateway's log group, Dify api's, the SSRF proxy's, or the web ACL's. */
export type LogSource = 'gateway' | 'api' | 'ssrfProxy' | 'waf';

/** One result row of Logs Insights: field name to value, `@ptr` left out. */
export type ResultRow = Readonly<Record<string, string>>;

/** A printed cell: an identifier read from the logs, or a count the command computed. */
export type Cell = string | number;

/** What a section's shaping function makes of its rows. */
export interface Shaped {
  readonly rows: Array<Record<string, Cell>>;
  /** The sum of the count column. */
  readonly total: number;
  /** Rows without a whole-number count, or outside the section's definition: not printed, only counted. */
  readonly unreadable: number;
}

/** One section of the report. */
export interface Section {
  readonly id: string;
  readonly title: string;
  readonly source: LogSource;
  /** The Logs Insights query, run as written. */
  readonly query: string;
  /** The column that holds each row's count. */
  readonly countColumn: string;
  shape(rows: readonly ResultRow[]): Shaped;
}

/** The most rows a query returns (its `limit`): the largest groups first. */
export const RESULT_LIMIT = 200;

/** What a missing field is printed as. */
export const NONE = '(none)';

/** The command's own words in a cell, beside values read from the logs. */
const LABEL = {
  noClientKey: '(no client identified)',
  cappedRedact: '(a redact detector over its match cap)',
  wrongPassword: 'console sign-in: wrong password',
  lockedOut: 'console sign-in: locked out',
  keyRejected: 'service API: key rejected',
} as const;

/**
 * Cells the secret check lets through as they are: the command's own words. Every other string cell
 * was read from the logs and is checked (redact.ts).
 */
export const LABELS: ReadonlySet<string> = new Set([NONE, ...Object.values(LABEL)]);

/** The path whose 401 (wrong password) and 429 (locked after repeated failures) Dify logs per attempt. */
export const PASSWORD_SIGN_IN_PATH = '/console/api/login';

const lines = (...commands: string[]) => commands.join('\n| ');

/**
 * Rows keyed by `key` (undefined: the row is not one the section counts), counts read from `count`
 * and summed where two rows have the same key.
 */
function aggregate(
  rows: readonly ResultRow[],
  count: string,
  key: (row: ResultRow) => Record<string, string> | undefined,
): Shaped {
  const merged = new Map<string, Record<string, Cell>>();
  let unreadable = 0;
  let total = 0;
  for (const row of rows) {
    const value = row[count];
    const fields = key(row);
    if (value === undefined || !/^\d{1,15}$/.test(value) || fields === undefined) {
      unreadable += 1;
      continue;
    }
    const n = Number(value);
    total += n;
    const id = JSON.stringify(Object.values(fields));
    const existing = merged.get(id);
    if (existing === undefined) merged.set(id, { ...fields, [count]: n });
    else existing[count] = (existing[count] as number) + n;
  }
  // Largest first; ties in the order of their values, as CloudWatch leaves the order of ties open.
  const text = (row: Record<string, Cell>) => JSON.stringify(Object.entries(row).filter(([name]) => name !== count));
  const sorted = [...merged.values()].sort(
    (a, b) => (b[count] as number) - (a[count] as number) || (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0),
  );
  return { rows: sorted, total, unreadable };
}

const field = (row: ResultRow, name: string) => (row[name] === undefined || row[name] === '' ? NONE : row[name]);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A request path with its id segments (UUIDs, long hex or digit runs) written `{id}`, so requests to
 * one endpoint count together and no id is printed.
 */
export function normalizePath(path: string): string {
  return path
    .split('/')
    .map((segment) =>
      UUID.test(segment) || /^[0-9a-f]{16,}$/i.test(segment) || /^\d+$/.test(segment) ? '{id}' : segment,
    )
    .join('/');
}

/** Requests per client and source address, from the gateway's request audit lines. */
const REQUESTS: Section = {
  id: 'requests',
  title: 'LLM gateway requests per client and source address',
  source: 'gateway',
  countColumn: 'requests',
  query: lines(
    'filter type = "request"',
    'stats count(*) as requests by clientId, sourceIp',
    'sort requests desc',
    `limit ${RESULT_LIMIT}`,
  ),
  // A request without a client id was refused before its key was accepted (none, unknown, or a bad route).
  shape: (rows) =>
    aggregate(rows, 'requests', (row) => ({
      client: row.clientId ? row.clientId : LABEL.noClientKey,
      sourceIp: field(row, 'sourceIp'),
    })),
};

/**
 * Failed sign-ins and service-API key failures, from Dify api's request log (LOG_OUTPUT_FORMAT=json,
 * ENABLE_REQUEST_LOGGING=true): `message` is `<method> <path> <status> <duration ms> <trace id>`.
 * Dify's lines carry no source address; the web ACL's section has it.
 */
const FAILED_SIGN_INS: Section = {
  id: 'failed-sign-ins',
  title: 'Dify failed console sign-ins and service API key failures',
  source: 'api',
  countColumn: 'failures',
  query: lines(
    String.raw`filter message like /^POST \/console\/api\/login (401|429) / or message like /^[A-Z]+ \/v1\/\S* 401 /`,
    String.raw`parse message /^(?<method>[A-Z]+) (?<path>\/\S*) (?<status>\d{3}) /`,
    'stats count(*) as failures by method, path, status',
    'sort failures desc',
    `limit ${RESULT_LIMIT}`,
  ),
  shape: (rows) =>
    aggregate(rows, 'failures', (row) => {
      const { method, path, status } = row;
      if (method === 'POST' && path === PASSWORD_SIGN_IN_PATH && (status === '401' || status === '429')) {
        return {
          kind: status === '401' ? LABEL.wrongPassword : LABEL.lockedOut,
          path,
          status,
        };
      }
      if (path?.startsWith('/v1/') && status === '401') {
        return { kind: LABEL.keyRejected, path: normalizePath(path), status };
      }
      return undefined;
    }),
};

/**
 * Console sign-in requests per source address, from the web ACL's log. The web ACL sees requests, not
 * their answers: these are attempts (the failures are in the section above), with what the ACL did.
 */
const SIGN_IN_ATTEMPTS: Section = {
  id: 'sign-in-attempts',
  title: 'console sign-in attempts per source address (web ACL log; outcomes are in Dify failed sign-ins)',
  source: 'waf',
  countColumn: 'attempts',
  query: lines(
    `filter httpRequest.httpMethod = "POST" and httpRequest.uri in [${SIGN_IN_PATHS.map((p) => `"${p}"`).join(', ')}]`,
    'stats count(*) as attempts by httpRequest.clientIp, httpRequest.country, action, terminatingRuleId',
    'sort attempts desc',
    `limit ${RESULT_LIMIT}`,
  ),
  shape: (rows) =>
    aggregate(rows, 'attempts', (row) => ({
      sourceIp: field(row, 'httpRequest.clientIp'),
      country: field(row, 'httpRequest.country'),
      action: field(row, 'action'),
      rule: field(row, 'terminatingRuleId'),
    })),
};

/**
 * Requests the gateway's guardrails refused (errorClass guardrail_blocked, gateway/src/admission.ts).
 * The blocking detector is the first decision whose action is block; the audit line writes each
 * decision as `{"detector":…,"action":…,"count":…}` in decision order, so the first such text names it.
 * A redact detector past its match cap blocks too, with no block decision.
 */
const GUARDRAIL_BLOCKS: Section = {
  id: 'guardrail-blocks',
  title: 'LLM gateway guardrail blocks',
  source: 'gateway',
  countColumn: 'blocks',
  query: lines(
    'filter type = "request" and errorClass = "guardrail_blocked"',
    'parse @message /"detector":"(?<detector>[a-z0-9_:-]{1,64})","action":"block"/',
    'stats count(*) as blocks by clientId, sourceIp, detector',
    'sort blocks desc',
    `limit ${RESULT_LIMIT}`,
  ),
  shape: (rows) =>
    aggregate(rows, 'blocks', (row) => ({
      client: field(row, 'clientId'),
      sourceIp: field(row, 'sourceIp'),
      detector: row.detector ? row.detector : LABEL.cappedRedact,
    })),
};

/**
 * Egress the SSRF proxy refused, from squid's native access log (lib/constructs/dify/squid-config.ts
 * logs to stdout in squid's default format): `time elapsed client code/status bytes method URL user
 * hierarchy type`. Only the destination's host and port are kept: a URL's path and query may carry a
 * token, and its user part a password.
 */
const DENIED_EGRESS: Section = {
  id: 'denied-egress',
  title: 'egress the SSRF proxy denied',
  source: 'ssrfProxy',
  countColumn: 'denials',
  query: lines(
    String.raw`filter @message like /TCP_DENIED\//`,
    String.raw`parse @message /^\d+\.\d+\s+\d+ (?<client>\S+) TCP_DENIED\/(?<status>\d{3}) \d+ (?<method>[A-Z]+) (?:[a-z][a-z0-9+.-]*:\/\/)?(?:[^\/\s@]*@)?(?<destination>[^\/\s?#@]+)/`,
    'stats count(*) as denials by client, destination, method',
    'sort denials desc',
    `limit ${RESULT_LIMIT}`,
  ),
  shape: (rows) =>
    aggregate(rows, 'denials', (row) => ({
      client: field(row, 'client'),
      destination: field(row, 'destination'),
      method: field(row, 'method'),
    })),
};

/** Provider keys the gateway used, by id (never the key), from its attempt audit lines (gateway/src/attempt.ts). */
const PROVIDER_KEYS: Section = {
  id: 'provider-keys',
  title: 'provider keys used by the LLM gateway (key ids, one count per attempt)',
  source: 'gateway',
  countColumn: 'attempts',
  query: lines(
    'filter type = "attempt"',
    'stats count(*) as attempts by provider, keyId, outcome',
    'sort attempts desc',
    `limit ${RESULT_LIMIT}`,
  ),
  shape: (rows) =>
    aggregate(rows, 'attempts', (row) => ({
      provider: field(row, 'provider'),
      keyId: field(row, 'keyId'),
      outcome: field(row, 'outcome'),
    })),
};

/** The report's sections, in the order they run and print. */
export const SECTIONS: readonly Section[] = [
  REQUESTS,
  FAILED_SIGN_INS,
  SIGN_IN_ATTEMPTS,
  GUARDRAIL_BLOCKS,
  DENIED_EGRESS,
  PROVIDER_KEYS,
];
