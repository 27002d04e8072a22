/**
 * The LLM gateway's own signals as CloudWatch sees them: the metrics it writes in CloudWatch's
 * embedded metric format (gateway/src/log.ts, namespace DifyLlmGateway) that its alarms watch. The
 * stack's alarms are built from this (lib/constructs/llm-gateway.ts), and the gateway's tests check
 * that it really writes each one, with exactly these dimensions, when the thing watched happens
 * (gateway/test/signals.test.ts): an alarm on a metric nobody writes would stay OK forever.
 */
import { PROVIDERS } from './gateway-documents';

export const GATEWAY_NAMESPACE = 'DifyLlmGateway';

export interface GatewayMetric {
  readonly metricName: string;
  /** The metric's dimensions, exactly as the gateway writes them (name -> value). */
  readonly dimensions: Readonly<Record<string, string>>;
}

export interface GatewaySignal {
  /** The signal's id, written at the start of its alarm's description. */
  readonly signal: string;
  readonly title: string;
  /** Summed when more than one (one per provider, say). */
  readonly metrics: readonly GatewayMetric[];
  readonly statistic: 'Sum' | 'Maximum';
  /** Fires at or above this over five minutes; `baseline`: above CloudWatch's learned band instead. */
  readonly threshold: number | 'baseline';
  /** What it means, and what to check first. */
  readonly description: string;
}

const errors = (errorClass: string): GatewayMetric => ({
  metricName: 'Errors',
  dimensions: { ErrorClass: errorClass },
});
const perProvider = (metricName: string, state: string): GatewayMetric[] =>
  PROVIDERS.map((provider) => ({ metricName, dimensions: { Provider: provider, State: state } }));

export const GATEWAY_SIGNALS = {
  clientKeyFailures: {
    signal: 'gateway.client-key-failures',
    title: 'Gateway: refused client keys',
    metrics: [errors('invalid_client_key'), errors('missing_client_key')],
    statistic: 'Sum',
    threshold: 20,
    description:
      'Twenty or more requests with a wrong, revoked or missing client key in five minutes: a leaked or guessed key, or a caller left on an old key. Check first: dify-aws investigate (refused keys by source address), then dify-aws clients revoke or rotate.',
  },
  keyDisabled: {
    signal: 'gateway.key-disabled',
    title: 'Gateway: provider keys disabled',
    metrics: perProvider('KeyStateChanges', 'disabled'),
    statistic: 'Sum',
    threshold: 1,
    description:
      'A provider refused a key from the pool (revoked, out of quota or credit) and the gateway took it out of rotation. Check first: dify-aws keys list, the provider console, then dify-aws keys remove and add a new key.',
  },
  cooldownStorm: {
    signal: 'gateway.cooldown-storm',
    title: 'Gateway: keys put in cooldown (429)',
    metrics: perProvider('Cooldowns', 'cooling'),
    statistic: 'Sum',
    threshold: 20,
    description:
      'Twenty or more rate-limit cooldowns of provider keys in five minutes: traffic above the pool’s provider limits, or a client looping. Check first: requests per client (dify-aws investigate), then the provider limits, and add keys or lower the client limits.',
  },
  noUsableKey: {
    signal: 'gateway.no-usable-key',
    title: 'Gateway: requests with no usable key',
    metrics: [errors('upstream_unavailable')],
    statistic: 'Sum',
    threshold: 1,
    description:
      'Requests failed because every key of a provider is refused or switched off: model calls fail for everyone. Check first: dify-aws keys list, then add a working key (dify-aws keys add).',
  },
  guardrailBlocks: {
    signal: 'gateway.guardrail-blocks',
    title: 'Gateway: requests blocked by guardrails',
    metrics: [errors('guardrail_blocked')],
    statistic: 'Sum',
    threshold: 'baseline',
    description:
      'More requests blocked by the guardrails than this deployment usually sees: someone pasting secrets or personal data, or probing the detectors. Check first: dify-aws investigate (guardrail blocks by client and detector).',
  },
  rateLimitDegraded: {
    signal: 'gateway.rate-limit-degraded',
    title: 'Gateway: rate limits counted locally (Valkey unreachable)',
    metrics: [{ metricName: 'RateLimitDegraded', dimensions: {} }],
    statistic: 'Maximum',
    threshold: 1,
    description:
      'The gateway cannot reach Valkey and counts each client’s limits per replica, so a client may get up to one limit per replica. Check first: the Valkey alarms and the gateway’s log (rate_limit_local_fallback).',
  },
} as const satisfies Record<string, GatewaySignal>;

/**
 * The Contributor Insights rule that counts refused client keys by source address over the
 * gateway's audit lines (`{"type":"request","sourceIp":…,"errorClass":"invalid_client_key"}`): the
 * metrics carry no address, the audit lines do.
 */
export function refusedKeysBySourceRule(logGroupName: string) {
  return {
    Schema: { Name: 'CloudWatchLogRule', Version: 1 },
    LogGroupNames: [logGroupName],
    LogFormat: 'JSON',
    Contribution: {
      Keys: ['$.sourceIp'],
      Filters: [
        { Match: '$.type', In: ['request'] },
        { Match: '$.errorClass', In: ['invalid_client_key', 'missing_client_key'] },
      ],
    },
    AggregateOn: 'Count',
  };
}
