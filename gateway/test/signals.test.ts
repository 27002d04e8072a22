import {
  GATEWAY_NAMESPACE,
  GATEWAY_SIGNALS,
  type GatewayMetric,
  type GatewaySignal,
  refusedKeysBySourceRule,
} from '../../contracts/gateway-signals';
import { PROVIDERS } from '../../contracts/gateway-documents';
import { reportRateLimitDegraded, Telemetry } from '../src/log';
import { type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { type Harness, poolOf, startGateway } from './helpers/harness';

/**
 * Each signal the stack alarms on (contracts/gateway-signals.ts) against what the gateway really
 * writes when the thing watched happens: the embedded-metric line must declare the alarm's
 * namespace, metric name and exactly its dimensions, with the same values. An alarm on a metric the
 * gateway never writes, or writes with one dimension more, would stay OK through an incident.
 */
const KEY = 'sk-signals-test-key-0000000000000000';

/** Every (metric, dimensions) pair the lines declare, as `Name|{"dim":"value"}`. */
function declared(lines: readonly string[]): Set<string> {
  const found = new Set<string>();
  for (const line of lines) {
    const parsed = JSON.parse(line) as Record<string, any>;
    for (const directive of parsed._aws?.CloudWatchMetrics ?? []) {
      if (directive.Namespace !== GATEWAY_NAMESPACE) continue;
      for (const dimensionSet of directive.Dimensions as string[][]) {
        const dimensions = Object.fromEntries(dimensionSet.sort().map((name) => [name, parsed[name]]));
        for (const metric of directive.Metrics as Array<{ Name: string }>) {
          if (typeof parsed[metric.Name] === 'number') found.add(`${metric.Name}|${JSON.stringify(dimensions)}`);
        }
      }
    }
  }
  return found;
}
const keyOf = (metric: GatewayMetric) =>
  `${metric.metricName}|${JSON.stringify(Object.fromEntries(Object.entries(metric.dimensions).sort()))}`;

describe('the gateway writes every metric its alarms watch', () => {
  let provider: FakeProvider;
  let gateway: Harness | undefined;
  beforeAll(async () => {
    provider = await startFakeProvider();
  });
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });
  afterAll(async () => {
    await provider?.close();
  });

  const start = async () => {
    gateway = await startGateway({ pool: poolOf(provider.url, [{ id: 'k1', key: KEY }]) });
    return gateway;
  };
  const chat = (g: Harness, content: string, key: string | null = g.keys.dify) =>
    fetch(`${g.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }) },
      body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content }] }),
    });
  /** The signal's metric for the provider the scenario used (openai), or its only metric. */
  const metricOf = (metrics: readonly GatewayMetric[]) =>
    metrics.find((m) => m.dimensions.Provider === undefined || m.dimensions.Provider === 'openai')!;

  it('refused client keys: a wrong key and a missing key', async () => {
    const g = await start();
    expect((await chat(g, 'hello', `${g.keys.dify.slice(0, -1)}A`)).status).toBe(401);
    expect((await chat(g, 'hello', null)).status).toBe(401);
    const written = declared(g.lines);
    for (const metric of GATEWAY_SIGNALS.clientKeyFailures.metrics) expect(written).toContain(keyOf(metric));
  });

  it('a provider key disabled, and then no usable key left', async () => {
    provider.behave(KEY, '401');
    const g = await start();
    expect((await chat(g, 'hello')).status).toBe(503);
    const written = declared(g.lines);
    expect(written).toContain(keyOf(metricOf(GATEWAY_SIGNALS.keyDisabled.metrics)));
    expect(written).toContain(keyOf(metricOf(GATEWAY_SIGNALS.noUsableKey.metrics)));
  });

  it('a provider key put in cooldown by a 429', async () => {
    provider.behave(KEY, { status: 429, retryAfter: '30' });
    const g = await start();
    expect((await chat(g, 'hello')).status).toBe(429);
    expect(declared(g.lines)).toContain(keyOf(metricOf(GATEWAY_SIGNALS.cooldownStorm.metrics)));
  });

  it('a request blocked by a guardrail', async () => {
    provider.behave(KEY, 'ok');
    const g = await start();
    expect((await chat(g, 'my card is 4111 1111 1111 1111')).status).toBe(400);
    expect(declared(g.lines)).toContain(keyOf(metricOf(GATEWAY_SIGNALS.guardrailBlocks.metrics)));
  });

  it('rate limits counted locally', () => {
    const lines: string[] = [];
    reportRateLimitDegraded(
      new Telemetry(
        (line) => lines.push(line),
        () => 0,
      ),
      true,
    );
    expect(declared(lines)).toContain(keyOf(metricOf(GATEWAY_SIGNALS.rateLimitDegraded.metrics)));
  });

  it('counts refused keys by source address from the audit lines, and nothing else', async () => {
    provider.behave(KEY, 'ok');
    const g = await start();
    expect((await chat(g, 'hello', `${g.keys.dify.slice(0, -1)}A`)).status).toBe(401);
    expect((await chat(g, 'hello', null)).status).toBe(401);
    expect((await chat(g, 'hello')).status).toBe(200);
    const rule = refusedKeysBySourceRule('/dify/llm-gateway');
    // Contributor Insights: an event counts when every filter holds (`In`: the value at `Match` is one
    // of those listed), under the values at `Keys`.
    const at = (event: Record<string, unknown>, path: string) =>
      path
        .slice(2)
        .split('.')
        .reduce<unknown>(
          (v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined),
          event,
        );
    const contributors = g.lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((event) => rule.Contribution.Filters.every((f) => f.In.includes(at(event, f.Match) as string)))
      .map((event) => rule.Contribution.Keys.map((k) => at(event, k)).join(','));
    expect(contributors).toHaveLength(2);
    expect(new Set(contributors)).toEqual(new Set([expect.stringMatching(/^(::ffff:)?127\.0\.0\.1$/)]));
  });

  it('watches every provider where a metric is per provider', () => {
    for (const signal of Object.values(GATEWAY_SIGNALS) as GatewaySignal[]) {
      const providers = signal.metrics.flatMap((m) => (m.dimensions.Provider ? [m.dimensions.Provider] : []));
      if (providers.length > 0) expect(providers.sort()).toEqual([...PROVIDERS].sort());
    }
  });
});
