/** One JSON object per line on stdout: CloudWatch Logs keeps each as one event. */
export type Writer = (line: string) => void;

export const stdoutWriter: Writer = (line) => {
  process.stdout.write(`${line}\n`);
};

/** Structured log lines and CloudWatch embedded-metric-format lines. Never given a key or prompt text. */
export class Telemetry {
  constructor(
    private readonly write: Writer,
    private readonly now: () => number,
  ) {}

  log(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
    this.write(JSON.stringify({ time: new Date(this.now()).toISOString(), level, event, ...fields }));
  }

  audit(fields: Record<string, unknown>): void {
    this.write(JSON.stringify({ time: new Date(this.now()).toISOString(), ...fields }));
  }

  /** One EMF line: CloudWatch turns `metrics` into metrics in namespace DifyLlmGateway. */
  metric(metrics: Record<string, { value: number; unit: string }>, dimensions: Record<string, string> = {}): void {
    const names = Object.keys(metrics);
    this.write(
      JSON.stringify({
        _aws: {
          Timestamp: this.now(),
          CloudWatchMetrics: [
            {
              Namespace: 'DifyLlmGateway',
              Dimensions: [Object.keys(dimensions)],
              Metrics: names.map((name) => ({ Name: name, Unit: metrics[name].unit })),
            },
          ],
        },
        ...dimensions,
        ...Object.fromEntries(names.map((name) => [name, metrics[name].value])),
      }),
    );
  }
}
