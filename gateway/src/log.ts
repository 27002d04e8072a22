/** One JSON object per line on stdout: CloudWatch Logs keeps each as one event. */
export type Writer = (line: string) => void;

/**
 * Lines are collected and written to stdout once per event-loop turn: stdout is a pipe on ECS, and
 * a synchronous write per line would cost more than the request itself under load. The buffer is
 * flushed before the process exits, so no line is lost on a shutdown.
 */
export function bufferedStdout(): { write: Writer; flush: () => void } {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = `${pending.join('\n')}\n`;
    pending = [];
    process.stdout.write(text);
  };
  process.on('exit', flush);
  return {
    write: (line) => {
      pending.push(line);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** The longest string a log field keeps; the rest is cut and counted. */
export const MAX_FIELD_CHARS = 256;
/** The most items a list field keeps. */
const MAX_ITEMS = 32;

/**
 * Every field bounded in length, however long what a client sent (a model name, a path): one line
 * stays far below CloudWatch Logs' 256 KiB event limit, whatever the request.
 */
function bounded(fields: Record<string, unknown>, depth = 0): Record<string, unknown> {
  // The usual line is within bounds already: written as it is, with nothing copied.
  if (withinBounds(fields, depth)) return fields;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key.slice(0, 64)] = boundedValue(value, depth);
  return out;
}

function withinBounds(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return value.length <= MAX_FIELD_CHARS;
  if (typeof value !== 'object' || value === null) return true;
  if (depth >= 3) return false;
  if (Array.isArray(value)) return value.length <= MAX_ITEMS && value.every((item) => withinBounds(item, depth + 1));
  for (const key in value) {
    if (key.length > 64 || !withinBounds((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

function boundedValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') {
    return value.length <= MAX_FIELD_CHARS ? value : `${value.slice(0, MAX_FIELD_CHARS)}…(${value.length} chars)`;
  }
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= 3) return '…';
  if (Array.isArray(value)) return value.slice(0, MAX_ITEMS).map((item) => boundedValue(item, depth + 1));
  return bounded(value as Record<string, unknown>, depth + 1);
}

/** Per-interval aggregates, written as one embedded-metric-format line per interval. */
interface Aggregate {
  readonly dimensions: Record<string, string>;
  readonly counts: Record<string, number>;
  readonly values: Record<string, number[]>;
}

/** CloudWatch takes at most 100 values per metric in one EMF line: a full list is written at once. */
const MAX_VALUES = 100;

/**
 * Structured log lines, audit lines and CloudWatch metrics in the embedded metric format (namespace
 * DifyLlmGateway). Metrics are aggregated and written every `metricIntervalMs` (or on `flushMetrics`,
 * or when a metric has 100 values), one line per set of dimensions, instead of one line per request.
 * Never given a key or prompt text.
 */
export class Telemetry {
  private readonly aggregates = new Map<string, Aggregate>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: Writer,
    private readonly now: () => number,
    private readonly metricIntervalMs = 0,
  ) {}

  log(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
    this.write(JSON.stringify({ time: new Date(this.now()).toISOString(), level, event, ...bounded(fields) }));
  }

  audit(fields: Record<string, unknown>): void {
    this.write(JSON.stringify({ time: new Date(this.now()).toISOString(), ...bounded(fields) }));
  }

  /** Counts (`Count` unit) and observations (`Milliseconds`) under a set of dimensions. */
  metric(
    metrics: Record<string, { value: number; unit: 'Count' | 'Milliseconds' }>,
    dimensions: Record<string, string> = {},
  ): void {
    const key = JSON.stringify(dimensions);
    let aggregate = this.aggregates.get(key);
    if (aggregate === undefined) {
      aggregate = { dimensions, counts: {}, values: {} };
      this.aggregates.set(key, aggregate);
    }
    let full = false;
    for (const [name, { value, unit }] of Object.entries(metrics)) {
      if (unit === 'Count') aggregate.counts[name] = (aggregate.counts[name] ?? 0) + value;
      else full = (aggregate.values[name] ??= []).push(value) >= MAX_VALUES || full;
    }
    if (this.metricIntervalMs === 0 || full) this.flushMetrics();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flushMetrics(), this.metricIntervalMs);
      this.timer.unref();
    }
  }

  flushMetrics(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const { dimensions, counts, values } of this.aggregates.values()) {
      const names = [...Object.keys(counts), ...Object.keys(values)];
      const fields: Record<string, unknown> = { ...dimensions, ...counts };
      for (const [name, list] of Object.entries(values)) fields[name] = list;
      this.write(
        JSON.stringify({
          _aws: {
            Timestamp: this.now(),
            CloudWatchMetrics: [
              {
                Namespace: 'DifyLlmGateway',
                Dimensions: [Object.keys(dimensions)],
                Metrics: names.map((name) => ({ Name: name, Unit: name in counts ? 'Count' : 'Milliseconds' })),
              },
            ],
          },
          ...fields,
        }),
      );
    }
    this.aggregates.clear();
  }
}

/**
 * What the gateway writes when a provider key changes health: a log line (never the key) and the
 * KeyStateChanges and Cooldowns metrics the stack's alarms watch (contracts/gateway-signals.ts).
 */
export function reportKeyState(
  telemetry: Telemetry,
  change: { provider: string; keyId: string; health: 'healthy' | 'cooling' | 'disabled'; reason: string },
): void {
  telemetry.log(change.health === 'healthy' ? 'info' : 'warn', 'key_state_changed', change);
  telemetry.metric(
    {
      KeyStateChanges: { value: 1, unit: 'Count' },
      ...(change.health === 'cooling' ? { Cooldowns: { value: 1, unit: 'Count' } } : {}),
    },
    { Provider: change.provider, State: change.health },
  );
}

/** The RateLimitDegraded gauge (1 while limits are counted per replica), written every minute and on each change. */
export function reportRateLimitDegraded(telemetry: Telemetry, degraded: boolean): void {
  telemetry.metric({ RateLimitDegraded: { value: degraded ? 1 : 0, unit: 'Count' } });
}
