import { SERVICE_ROWS } from '../../lib/constructs/dify/catalog';
import { INCIDENTS } from '../../lib/constructs/observability';
import { build, VARIANTS } from '../helpers/synth';
import { resources } from '../helpers/template';

/**
 * What a security team watches (issue 15's list), as the signal each alarm names at the start of its
 * description. Every signal must have at least one alarm in every variant of a platform, across all
 * of the deployment's stacks (the us-east-1 one too), or this fails naming what is missing.
 */
const WATCHED: Record<string, readonly string[]> = {
  'authentication failures': [
    'auth.console-sign-in-failures',
    'auth.console-sign-in-burst-by-source',
    'auth.service-api-failures',
    'gateway.client-key-failures',
    'gateway.client-key-failures-by-source',
  ],
  edge: ['edge.waf-blocked', 'edge.waf-rate-limited', 'edge.alb-5xx', 'edge.unhealthy-targets'],
  egress: ['egress.squid-denied', 'egress.nat-bytes-out'],
  containers: ['containers.task-failed', 'containers.cpu', 'containers.memory'],
  'data tier': [
    'data.aurora-cpu',
    'data.aurora-acu',
    'data.aurora-connections',
    'data.aurora-free-storage',
    'data.valkey-cpu',
    'data.valkey-memory',
    'data.valkey-evictions',
  ],
  gateway: [
    'gateway.key-disabled',
    'gateway.cooldown-storm',
    'gateway.no-usable-key',
    'gateway.guardrail-blocks',
    'gateway.rate-limit-degraded',
  ],
};
const REPLICAS = ['data.aurora-replica-lag', 'data.valkey-replication-lag'];
const EKS_ONLY = [
  'eks.secret-access',
  'eks.pod-exec',
  'eks.refused-requests',
  'eks.policy-change',
  'eks.pod-security-violation',
  'eks.pod-restarts',
  'eks.pods-failed',
];
/** Every long-running service, by the name its alarms give it. */
const SERVICES = [...SERVICE_ROWS.filter((row) => row.deployment !== 'one-off').map((row) => row.name), 'llm-gateway'];

type Alarm = Record<string, any> & { readonly global: boolean };
/** A description as text; a token inside it (`Fn::Join` of a resource's name) reads as `<token>`. */
const flatten = (value: unknown): string =>
  typeof value === 'string'
    ? value
    : Array.isArray((value as any)?.['Fn::Join'])
      ? ((value as any)['Fn::Join'][1] as unknown[])
          .map((part) => (typeof part === 'string' ? part : '<token>'))
          .join('')
      : '<token>';
const signalOf = (alarm: Alarm) => /^\[([a-z0-9.-]+)\] /.exec(flatten(alarm.AlarmDescription))?.[1];
/** Every alarm of every stack; `global`: in a us-east-1 stack, which notifies a topic of its own. */
function alarmsOf(variant: Record<string, string>): Alarm[] {
  const built = build(variant);
  return Object.entries(built.templates).flatMap(([stack, template]) =>
    ['AWS::CloudWatch::Alarm', 'AWS::CloudWatch::CompositeAlarm'].flatMap((type) =>
      resources(template, type).map(([, a]) => ({
        ...(a.Properties as Record<string, any>),
        global: [built.stacks.global, built.stacks.globalAlarms].some((us) => us?.stackName === stack),
      })),
    ),
  );
}
const text = (value: unknown) => JSON.stringify(value);

// Both platforms, both front doors and both profiles, in four synths.
describe.each([
  ['ECS, CloudFront, prod', VARIANTS.prod, false, true],
  ['ECS, ALB, dev', VARIANTS['alb-zone'], false, false],
  ['EKS, CloudFront, prod', VARIANTS['eks-prod'], true, true],
  ['EKS, ALB, dev', VARIANTS['eks-alb'], true, false],
])('%s', (_name, variant, eks, prod) => {
  const alarms = alarmsOf(variant);
  const signals = new Set(alarms.map(signalOf));

  it.each(Object.entries(WATCHED))('has an alarm on every %s signal', (_group, wanted) => {
    expect(wanted.filter((signal) => !signals.has(signal))).toEqual([]);
  });

  it(`${prod ? 'watches' : 'has no'} replication lag`, () => {
    expect(REPLICAS.filter((signal) => signals.has(signal))).toEqual(prod ? REPLICAS : []);
  });

  it(`${variant.edge === 'alb' ? 'has no CloudFront to watch' : 'watches CloudFront’s 5xx, in us-east-1'}`, () => {
    const cloudFront = alarms.filter((alarm) => signalOf(alarm) === 'edge.cloudfront-5xx');
    expect(cloudFront.map((alarm) => alarm.global)).toEqual(variant.edge === 'alb' ? [] : [true]);
  });

  it(`${eks ? 'watches' : 'has no'} the Kubernetes audit signals`, () => {
    expect(EKS_ONLY.filter((signal) => signals.has(signal))).toEqual(eks ? EKS_ONLY : []);
  });

  it('watches the CPU and memory of every long-running service, each by name', () => {
    for (const resource of ['cpu', 'memory']) {
      const watched = alarms.filter((alarm) => signalOf(alarm) === `containers.${resource}`).map(text);
      const missing = SERVICES.filter((service) => !watched.some((alarm) => alarm.includes(`${service}'s average`)));
      expect([resource, missing]).toEqual([resource, []]);
    }
  });

  it('names a signal and what to check first in every alarm, and only signals this test knows', () => {
    const known = new Set([
      ...Object.values(WATCHED).flat(),
      ...REPLICAS,
      ...EKS_ONLY,
      'edge.cloudfront-5xx',
      ...Object.keys(INCIDENTS),
    ]);
    for (const alarm of alarms) {
      expect(known.has(signalOf(alarm) ?? '')).toBe(true);
      expect(text(alarm.AlarmDescription)).toMatch(/Check first|Read the audit log|check first/);
    }
  });

  it('pages once per incident: member alarms notify through their composite only', () => {
    const composites = alarms.filter((alarm) => alarm.AlarmRule !== undefined);
    expect(composites.map(signalOf).sort()).toEqual(Object.keys(INCIDENTS).sort());
    const memberOf = (alarm: Alarm) =>
      Object.entries(INCIDENTS).find(([, { members }]) =>
        (members as readonly string[]).includes(signalOf(alarm)!),
      )?.[0];
    for (const alarm of alarms.filter((a) => a.AlarmRule === undefined)) {
      // The us-east-1 stack's alarms (CloudFront's web ACL) cannot join a composite of another region.
      const incident = alarm.global ? undefined : memberOf(alarm);
      if (incident === undefined) {
        expect(alarm.AlarmActions).toHaveLength(1);
        expect(alarm.OKActions).toHaveLength(1);
      } else {
        expect(alarm.AlarmActions).toBeUndefined();
      }
    }
    for (const composite of composites) {
      const members = alarms.filter(
        (a) => a.AlarmRule === undefined && !a.global && memberOf(a) === signalOf(composite),
      );
      expect(members.length).toBeGreaterThan(0);
      expect(composite.AlarmActions).toHaveLength(1);
      expect(text(composite.AlarmRule).match(/ALARM\(/g)?.length).toBe(members.length);
    }
  });
});
