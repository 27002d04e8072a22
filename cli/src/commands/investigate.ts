import {
  CloudWatchLogsClient,
  GetQueryResultsCommand,
  StartQueryCommand,
  StopQueryCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import type { Command, Options } from '../command';
import type { Context } from '../context';
import { CliError, describeAwsError, UsageError } from '../errors';
import { table } from '../io';
import { type Cell, LABELS, type LogSource, type ResultRow, type Section, RESULT_LIMIT, SECTIONS } from '../queries';
import { withholdSecrets } from '../redact';
import type { StackOutputs } from '../stack';
import { logGroupOutput, OUTPUTS } from '../../../contracts/stack-outputs';
import { shown, wholeNumber } from '../spec';

/** The window the queries cover. */
export interface Window {
  readonly start: Date;
  readonly end: Date;
}

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** An ISO 8601 time with its zone: a time without one would be read in this machine's zone. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** `--since 1h`, or `--start ISO [--end ISO]` (the end defaults to now). Checked before any AWS call. */
export function parseWindow(options: Options, now: Date): Window {
  const text = (name: string) => {
    const value = options[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new UsageError(`--${name}: expected a value`);
    return value;
  };
  const since = text('since');
  const start = text('start');
  const end = text('end');
  if (since !== undefined && (start !== undefined || end !== undefined)) {
    throw new UsageError('--since and --start/--end: give one or the other');
  }
  if (end !== undefined && start === undefined) throw new UsageError('--end needs --start');
  if (start === undefined) {
    const duration = /^([1-9]\d{0,5})([mhd])$/.exec(since ?? '1h');
    if (duration === null) {
      throw new UsageError(
        `--since '${shown(since!)}': expected a whole number and a unit, m (minutes), h (hours) or d (days), such as 30m, 1h or 2d`,
      );
    }
    const ms = Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS];
    return { start: new Date(now.getTime() - ms), end: now };
  }
  const time = (name: string, value: string) => {
    const parsed = ISO_TIME.test(value) ? new Date(value) : undefined;
    // Date rolls 2026-02-30 over to March; a day the month does not have is refused instead.
    const [year, month, day] = value.slice(0, 10).split('-').map(Number);
    const realDay = new Date(Date.UTC(year, month - 1, day)).getUTCDate() === day && month >= 1 && month <= 12;
    if (parsed === undefined || Number.isNaN(parsed.getTime()) || !realDay) {
      throw new UsageError(
        `--${name} '${shown(value)}': expected an ISO 8601 time with its zone, such as 2026-12-02T09:30:00Z or 2026-12-02T18:30:00+09:00`,
      );
    }
    return parsed;
  };
  const window = { start: time('start', start), end: end === undefined ? now : time('end', end) };
  if (window.start.getTime() >= window.end.getTime()) {
    throw new UsageError(
      `--start ${window.start.toISOString()} is not before ${end === undefined ? 'now' : '--end'} ${window.end.toISOString()}: expected a window that starts before it ends`,
    );
  }
  return window;
}

/** Where a query runs: its log groups and their region. */
interface Target {
  readonly logGroups: string[];
  /** Only when it differs from the deployment's: the CloudFront web ACL logs in us-east-1. */
  readonly region?: string;
}

/**
 * The log groups of a section's source, from the deployment's outputs, or why there are none. The web
 * ACL's log group has no output: lib/constructs/web-acl.ts names it `aws-waf-logs-<name>.<scope>`, where
 * the name is the deployment's for the load balancer's regional ACL and its us-east-1 stack's
 * (`<deployment>-Global`) for CloudFront's.
 */
export function targetOf(stack: StackOutputs, source: LogSource): Target | string {
  if (source === 'waf') {
    return stack.has(OUTPUTS.distributionId)
      ? { logGroups: [`aws-waf-logs-${stack.stackName}-Global.cloudfront`], region: 'us-east-1' }
      : { logGroups: [`aws-waf-logs-${stack.stackName}.regional`] };
  }
  const output = {
    gateway: OUTPUTS.gatewayLogGroupName,
    api: logGroupOutput('Api'),
    ssrfProxy: logGroupOutput('SsrfProxy'),
  }[source];
  if (stack.has(output)) return { logGroups: [stack.get(output)] };
  const eks = stack.has(OUTPUTS.platform) && stack.get(OUTPUTS.platform) === 'eks';
  return `deployment ${stack.stackName} has no output ${output}${eks ? ": on EKS, Dify's services do not log to a log group of the stack" : ''}`;
}

/** How a query ended. */
export type QueryResult =
  | { readonly status: 'complete'; readonly rows: ResultRow[] }
  | { readonly status: 'failed' | 'timed out'; readonly reason: string };

/** What the bounded poll of GetQueryResults may take. */
export interface PollBounds {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly maxPolls: number;
}

/**
 * An SDK error by its class only (its message can quote the request): what it means for a Logs
 * Insights query, else the shared translation (errors.ts), else its name.
 */
function describeError(error: unknown): string {
  const name = (error as { name?: string })?.name ?? 'Error';
  const known: Record<string, string> = {
    ResourceNotFoundException: 'the log group does not exist',
    LimitExceededException: 'too many Logs Insights queries are running in this account; try again shortly',
    MalformedQueryException: 'CloudWatch refused the query as malformed',
    InvalidParameterException: 'CloudWatch refused a parameter of the query',
  };
  return known[name] !== undefined ? `${known[name]} (${name})` : (describeAwsError(error)?.text ?? name);
}

/**
 * Runs one Logs Insights query and polls its results, at most `maxPolls` times and for `timeoutMs`;
 * a query still running then is stopped (it would go on costing) and reported as timed out.
 */
export async function runQuery(
  ctx: Context,
  logs: CloudWatchLogsClient,
  request: { logGroups: string[]; query: string; window: Window },
  bounds: PollBounds,
  progress: (message: string) => void,
): Promise<QueryResult> {
  const started = ctx.now().getTime();
  const elapsed = () => ctx.now().getTime() - started;
  let queryId: string | undefined;
  try {
    queryId = (
      await logs.send(
        new StartQueryCommand({
          logGroupNames: request.logGroups,
          // Whole seconds: the window is widened to them, never narrowed.
          startTime: Math.floor(request.window.start.getTime() / 1000),
          endTime: Math.ceil(request.window.end.getTime() / 1000),
          queryString: request.query,
        }),
      )
    ).queryId;
  } catch (error) {
    return { status: 'failed', reason: `could not start the query: ${describeError(error)}` };
  }
  if (queryId === undefined) return { status: 'failed', reason: 'CloudWatch returned no query id' };
  for (let poll = 1; poll <= bounds.maxPolls; poll++) {
    let response;
    try {
      response = await logs.send(new GetQueryResultsCommand({ queryId }));
    } catch (error) {
      return { status: 'failed', reason: `could not read the results: ${describeError(error)}` };
    }
    const status = response.status;
    if (status === 'Complete') {
      const rows = (response.results ?? []).map((fields) =>
        Object.fromEntries(
          fields.flatMap((f) => (f.field === undefined || f.field === '@ptr' ? [] : [[f.field, f.value ?? '']])),
        ),
      );
      return { status: 'complete', rows };
    }
    if (status === 'Failed' || status === 'Cancelled' || status === 'Timeout' || status === 'Unknown') {
      return { status: 'failed', reason: `CloudWatch reports the query ${status}` };
    }
    if (elapsed() >= bounds.timeoutMs || poll === bounds.maxPolls) break;
    if (poll % 5 === 0) progress(`still ${status?.toLowerCase() ?? 'running'} after ${seconds(elapsed())}`);
    await ctx.sleep(bounds.intervalMs);
  }
  await logs.send(new StopQueryCommand({ queryId })).catch(() => undefined);
  return {
    status: 'timed out',
    reason: `no result within ${seconds(elapsed())} (${bounds.maxPolls} polls at most, --timeout ${Math.round(bounds.timeoutMs / 1000)} s); the query was stopped: narrow the window or raise --timeout`,
  };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** One section as reported: its rows (every string checked by withholdSecrets), or why it has none. */
export interface SectionReport {
  readonly id: string;
  readonly title: string;
  readonly logGroups: string[];
  readonly region?: string;
  readonly status: 'complete' | 'failed' | 'timed out' | 'skipped';
  readonly reason?: string;
  readonly elapsedMs: number;
  readonly total?: number;
  readonly rows: Array<Record<string, Cell>>;
  /** The query returned RESULT_LIMIT rows: smaller groups may be left out. */
  readonly truncated: boolean;
  /** Values not printed because they looked like a secret or free text. */
  readonly withheld: number;
  /** Rows CloudWatch returned that the section could not read. */
  readonly unreadable: number;
}

/**
 * Incident response, the last step: what the logs say was affected in a window. Runs one Logs
 * Insights query per section over the deployment's log groups, one after the other, and prints each
 * section's rows; a query that fails or times out is reported in its section and the rest still run.
 */
export async function investigate(ctx: Context, options: Options): Promise<void> {
  const window = parseWindow(options, ctx.now());
  // Checked before any AWS call (INVESTIGATE below).
  const timeoutS = options.timeout === undefined ? 120 : Number(options.timeout);
  const intervalMs = 1000;
  const bounds: PollBounds = { timeoutMs: timeoutS * 1000, intervalMs, maxPolls: timeoutS + 1 };
  const stack = await ctx.stack();
  const region = typeof options.region === 'string' ? options.region : undefined;
  const logsIn = (where: string | undefined) => ctx.logs(where);
  ctx.progress(
    `investigating ${stack.stackName} from ${window.start.toISOString()} to ${window.end.toISOString()}: ${SECTIONS.length} queries`,
  );
  const reports: SectionReport[] = [];
  for (const [index, section] of SECTIONS.entries()) {
    const step = `[${index + 1}/${SECTIONS.length}] ${section.id}`;
    reports.push(await runSection(ctx, section, stack, window, bounds, logsIn, region, step));
  }
  const incomplete = reports.filter((r) => r.status === 'failed' || r.status === 'timed out');
  const document = {
    stack: stack.stackName,
    window: { start: window.start.toISOString(), end: window.end.toISOString() },
    complete: incomplete.length === 0,
    sections: reports,
  };
  ctx.print(document, render(document.window, reports));
  if (incomplete.length > 0) {
    throw new CliError(
      `investigate: ${incomplete.length} of ${reports.length} queries did not complete (${incomplete.map((r) => r.id).join(', ')}); their sections say why`,
      4,
    );
  }
}

async function runSection(
  ctx: Context,
  section: Section,
  stack: StackOutputs,
  window: Window,
  bounds: PollBounds,
  logsIn: (region: string | undefined) => CloudWatchLogsClient,
  region: string | undefined,
  step: string,
): Promise<SectionReport> {
  const empty = { rows: [], truncated: false, withheld: 0, unreadable: 0 };
  const target = targetOf(stack, section.source);
  if (typeof target === 'string') {
    ctx.progress(`${step}: skipped, ${target}`);
    return {
      id: section.id,
      title: section.title,
      logGroups: [],
      status: 'skipped',
      reason: target,
      elapsedMs: 0,
      ...empty,
    };
  }
  const where = target.region ?? region;
  ctx.progress(`${step}: querying ${target.logGroups.join(', ')}${target.region ? ` in ${target.region}` : ''}`);
  const started = ctx.now().getTime();
  const result = await runQuery(
    ctx,
    logsIn(where),
    { logGroups: target.logGroups, query: section.query, window },
    bounds,
    (message) => ctx.progress(`${step}: ${message}`),
  );
  const elapsedMs = ctx.now().getTime() - started;
  const common = {
    id: section.id,
    title: section.title,
    logGroups: target.logGroups,
    region: target.region,
    elapsedMs,
  };
  if (result.status !== 'complete') {
    ctx.progress(`${step}: ${result.status} after ${seconds(elapsedMs)}`);
    return { ...common, status: result.status, reason: result.reason, ...empty };
  }
  const shaped = section.shape(result.rows);
  const { rows, withheld } = withholdSecrets(shaped.rows, LABELS);
  ctx.progress(`${step}: complete in ${seconds(elapsedMs)}, ${result.rows.length} row(s)`);
  return {
    ...common,
    status: 'complete',
    total: shaped.total,
    rows,
    truncated: result.rows.length >= RESULT_LIMIT,
    withheld,
    unreadable: shaped.unreadable,
  };
}

/** The report for a terminal: a heading and a table per section. */
function render(window: { start: string; end: string }, reports: readonly SectionReport[]): string {
  const blocks = reports.map((r) => {
    const heading = `== ${r.title} ==\n${r.logGroups.length > 0 ? `log group ${r.logGroups.join(', ')}${r.region ? ` (${r.region})` : ''}\n` : ''}`;
    if (r.status !== 'complete') return `${heading}${r.status}: ${r.reason}`;
    const notes = [
      `total ${r.total}`,
      ...(r.truncated ? [`only the ${RESULT_LIMIT} largest groups: narrow the window to see the rest`] : []),
      ...(r.withheld > 0 ? [`${r.withheld} value(s) withheld: they looked like a secret or free text`] : []),
      ...(r.unreadable > 0 ? [`${r.unreadable} result row(s) not in the expected shape, left out`] : []),
    ];
    return `${heading}${table(r.rows)}\n${notes.join('; ')}`;
  });
  return [`window ${window.start} to ${window.end}`, ...blocks].join('\n\n');
}

export const INVESTIGATE: Command = {
  name: 'investigate',
  summary: 'incident response, last step: what the logs say was affected in a window',
  form: {
    summary: "Logs Insights queries over the deployment's log groups for a window; exits 4 if one did not finish",
    description:
      "Reports gateway requests per client and address, failed sign-ins (Dify) and sign-in attempts per address (web ACL), guardrail blocks, egress the SSRF proxy denied, and the provider key ids used. Prints identifiers and counts only, never a message, prompt or key. Each query's progress and elapsed time go to stderr.",
    options: [
      {
        name: 'since',
        value: 'DURATION',
        description: 'the window up to now: a whole number and m, h or d (default 1h)',
      },
      {
        name: 'start',
        value: 'ISO',
        description: "the window's start, an ISO 8601 time with its zone (instead of --since)",
      },
      { name: 'end', value: 'ISO', description: "the window's end, with --start (default now)" },
      {
        name: 'timeout',
        value: 'S',
        description: 'how long each query may run, in seconds, 1 to 3600 (default 120)',
        check: wholeNumber('timeout', 1, 3600, ' of seconds'),
      },
    ],
    check: ({ options }, now) => void parseWindow(options, now),
    examples: [
      'dify-aws investigate --since 30m --json > incident.json',
      'dify-aws investigate --start 2026-12-02T09:00:00Z --end 2026-12-02T11:00:00Z',
    ],
  },
  run: (ctx, { options }) => investigate(ctx, options),
};
