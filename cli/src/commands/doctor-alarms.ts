import {
  type CompositeAlarm,
  DescribeAlarmsCommand,
  type Dimension,
  ListDashboardsCommand,
  ListMetricsCommand,
  type MetricAlarm,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import { DescribeStacksCommand, ListStackResourcesCommand } from '@aws-sdk/client-cloudformation';
import type { Context } from '../context';
import { deploymentStacks, OUTPUTS } from '../../../contracts/stack-outputs';

type Status = 'PASS' | 'WARN' | 'FAIL';
type Add = (check: string, target: string, status: Status, detail: string) => void;

/**
 * Namespaces whose metrics exist whenever the resource does: AWS's own, Container Insights, and the
 * deployment's metric filters (which write 0 while nothing matches). An alarm on one of these whose
 * metric has no data point in CloudWatch's two weeks watches a dimension nobody writes. The gateway's
 * event metrics, WAF rule counts and EventBridge rule counts appear only when their event happens.
 */
const ALWAYS_PUBLISHED = [/^AWS\/(RDS|ElastiCache|ApplicationELB|ECS|NATGateway)$/, /^ContainerInsights$/, /^Dify\//];
/** Time for a new deployment's metrics to arrive before their absence means anything. */
const SETTLE_MS = 3_600_000;
const BATCH = 100;

const signalOf = (description: string | undefined) => /^\[([a-z0-9.-]+)\]/.exec(description ?? '')?.[1] ?? '-';

/**
 * The alarm checks of `doctor`: every alarm and dashboard the deployment's stacks created exists;
 * each alarm notifies the alarm topic, itself or through its incident's composite alarm; none has sat
 * in INSUFFICIENT_DATA since it was created; and each alarm on an always-published metric finds that
 * metric in CloudWatch. Reads the stacks' resources, so it follows whatever this release deploys.
 */
export async function alarmChecks(ctx: Context, add: Add): Promise<void> {
  const stack = await ctx.stack();
  const topic = stack.get(OUTPUTS.alarmTopicArn);
  const alarmNames: string[] = [];
  const dashboards: string[] = [];
  let deployedAt = 0;
  for (const name of deploymentStacks(stack.stackName)) {
    let described;
    try {
      described = (await ctx.cloudFormation().send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0];
    } catch {
      continue; // one-stack deployments have no Foundation, Data or Runtime stack
    }
    deployedAt = Math.max(deployedAt, (described?.LastUpdatedTime ?? described?.CreationTime ?? new Date(0)).getTime());
    let next: string | undefined;
    do {
      const page = await ctx.cloudFormation().send(new ListStackResourcesCommand({ StackName: name, NextToken: next }));
      next = page.NextToken;
      for (const resource of page.StackResourceSummaries ?? []) {
        if (resource.PhysicalResourceId === undefined) continue;
        if (
          resource.ResourceType === 'AWS::CloudWatch::Alarm' ||
          resource.ResourceType === 'AWS::CloudWatch::CompositeAlarm'
        )
          alarmNames.push(resource.PhysicalResourceId);
        if (resource.ResourceType === 'AWS::CloudWatch::Dashboard') dashboards.push(resource.PhysicalResourceId);
      }
    } while (next !== undefined);
  }
  if (alarmNames.length === 0) {
    add('alarms', 'deployment', 'FAIL', 'its stacks declare no alarm: is this a dify-aws deployment of this release?');
    return;
  }

  const metricAlarms: MetricAlarm[] = [];
  const composites: CompositeAlarm[] = [];
  for (let i = 0; i < alarmNames.length; i += BATCH) {
    const found = await ctx.cloudWatch().send(
      new DescribeAlarmsCommand({
        AlarmNames: alarmNames.slice(i, i + BATCH),
        AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
        MaxRecords: BATCH,
      }),
    );
    metricAlarms.push(...(found.MetricAlarms ?? []));
    composites.push(...(found.CompositeAlarms ?? []));
  }
  const present = new Set([...metricAlarms, ...composites].map((alarm) => alarm.AlarmName));
  const missing = alarmNames.filter((name) => !present.has(name));
  add(
    'alarms',
    'exist',
    missing.length === 0 ? 'PASS' : 'FAIL',
    missing.length === 0
      ? `${alarmNames.length} alarm(s), ${composites.length} of them incident composites`
      : `${missing.length} alarm(s) the stacks created are gone from CloudWatch: ${missing.join(', ')}; redeploy to recreate them`,
  );

  const inComposite = (alarm: MetricAlarm) =>
    composites.some(
      (composite) => alarm.AlarmArn !== undefined && (composite.AlarmRule ?? '').includes(alarm.AlarmArn),
    );
  const silent = [
    ...metricAlarms.filter((alarm) => !(alarm.AlarmActions ?? []).includes(topic) && !inComposite(alarm)),
    ...composites.filter((alarm) => !(alarm.AlarmActions ?? []).includes(topic)),
  ];
  add(
    'alarms',
    'notify',
    silent.length === 0 ? 'PASS' : 'FAIL',
    silent.length === 0
      ? 'each notifies the alarm topic, itself or through its incident'
      : `notify nobody: ${silent.map((alarm) => `${alarm.AlarmName} [${signalOf(alarm.AlarmDescription)}]`).join(', ')}`,
  );

  const now = ctx.now().getTime();
  const stuck = metricAlarms.filter(
    (alarm) =>
      alarm.StateValue === 'INSUFFICIENT_DATA' && now - (alarm.StateUpdatedTimestamp?.getTime() ?? now) > SETTLE_MS,
  );
  add(
    'alarms',
    'insufficient data',
    stuck.length === 0 ? 'PASS' : 'FAIL',
    stuck.length === 0
      ? 'no alarm stuck in INSUFFICIENT_DATA'
      : `in INSUFFICIENT_DATA for over an hour, so their metric never arrived: ${stuck.map((alarm) => `${alarm.AlarmName} [${signalOf(alarm.AlarmDescription)}]`).join(', ')}`,
  );

  if (now - deployedAt < SETTLE_MS) {
    add(
      'alarms',
      'metrics arrive',
      'WARN',
      'deployed less than an hour ago: run doctor again later to check that each watched metric arrives',
    );
  } else {
    const unwritten: string[] = [];
    for (const alarm of metricAlarms) {
      const watched: Array<{ Namespace?: string; MetricName?: string; Dimensions?: Dimension[] }> =
        alarm.MetricName !== undefined
          ? [alarm]
          : (alarm.Metrics ?? []).flatMap((m: MetricDataQuery) => (m.MetricStat?.Metric ? [m.MetricStat.Metric] : []));
      for (const metric of watched) {
        if (!ALWAYS_PUBLISHED.some((pattern) => pattern.test(metric.Namespace ?? ''))) continue;
        const listed = await ctx.cloudWatch().send(
          new ListMetricsCommand({
            Namespace: metric.Namespace,
            MetricName: metric.MetricName,
            Dimensions: (metric.Dimensions ?? []).map(({ Name, Value }) => ({ Name, Value })),
          }),
        );
        if ((listed.Metrics ?? []).length === 0) {
          unwritten.push(
            `${alarm.AlarmName} [${signalOf(alarm.AlarmDescription)}] watches ${metric.Namespace} ${metric.MetricName}`,
          );
        }
      }
    }
    add(
      'alarms',
      'metrics arrive',
      unwritten.length === 0 ? 'PASS' : 'FAIL',
      unwritten.length === 0
        ? 'every metric that should always exist has data'
        : `no data in two weeks, so these alarms can never fire: ${unwritten.join('; ')}`,
    );
  }

  const listed = new Set<string>();
  for (const name of dashboards) {
    const found = await ctx.cloudWatch().send(new ListDashboardsCommand({ DashboardNamePrefix: name }));
    for (const entry of found.DashboardEntries ?? [])
      if (entry.DashboardName !== undefined) listed.add(entry.DashboardName);
  }
  const gone = dashboards.filter((name) => !listed.has(name));
  add(
    'alarms',
    'dashboards',
    dashboards.length > 0 && gone.length === 0 ? 'PASS' : 'FAIL',
    dashboards.length === 0
      ? 'the stacks declare no dashboard'
      : gone.length === 0
        ? dashboards.join(', ')
        : `missing: ${gone.join(', ')}; redeploy to recreate them`,
  );
}
