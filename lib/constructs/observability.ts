import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { OUTPUTS } from '../../contracts/stack-outputs';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { output } from './outputs';

export interface ObservabilityProps {
  /** Encrypts the alarm topic (the logs key, which admits CloudWatch alarms of this account). */
  readonly key: kms.IKey;
  /**
   * Address subscribed to the alarm topic.
   * @default - no subscription: alarms publish to the topic and nobody is told (synth warns)
   */
  readonly alarmEmail?: string;
  /**
   * Group alarms into incidents' composite alarms (`renderIncidents`). Off for a region's own topic
   * (us-east-1, CloudFront's): a composite alarm cannot name alarms of another region.
   * @default true
   */
  readonly incidents?: boolean;
}

/**
 * Incidents whose one cause fires several alarms. Their member alarms do not notify by themselves: a
 * composite alarm per incident does, once, when any member fires, naming the members to read first.
 */
export const INCIDENTS = {
  'incident.service-down': {
    title: 'A Dify service is failing',
    members: ['edge.alb-5xx', 'edge.unhealthy-targets', 'containers.task-failed'],
    description:
      'A Dify service answers 5xx, fails its health checks or its tasks are stopping. Check first which member alarm is in ALARM, then the failed task messages on this topic and the service log.',
  },
  'incident.credential-attack': {
    title: 'Credentials are being tried',
    members: [
      'auth.console-sign-in-failures',
      'auth.console-sign-in-burst-by-source',
      'auth.service-api-failures',
      'gateway.client-key-failures',
      'gateway.client-key-failures-by-source',
    ],
    description:
      'Passwords, app API keys or gateway client keys are being refused in bulk: credential stuffing, or a leaked key being tried. Check first which member alarm is in ALARM and the source addresses (`dify-aws investigate`), then block them (allowedIpv4Cidrs) or revoke the key.',
  },
  'incident.llm-providers-failing': {
    title: 'LLM providers are failing',
    members: ['gateway.cooldown-storm', 'gateway.no-usable-key'],
    description:
      'The gateway is cooling down keys in bulk or has no usable key left: a provider outage, a rate-limit storm or revoked keys. Check first the provider status pages and `dify-aws keys list`.',
  },
  'incident.database-saturated': {
    title: 'Aurora is saturated',
    members: ['data.aurora-cpu', 'data.aurora-acu', 'data.aurora-connections'],
    description:
      'Aurora is at its CPU, capacity or connection limit. Check first Performance Insights top SQL and pg_stat_activity by application_name.',
  },
  'incident.cache-saturated': {
    title: 'Valkey is saturated',
    members: ['data.valkey-cpu', 'data.valkey-memory', 'data.valkey-evictions'],
    description:
      'Valkey is at its CPU or memory limit or evicting keys (Celery jobs and sessions can be lost). Check first which member alarm fired and the biggest keys, then the cache node size.',
  },
} as const satisfies Record<string, { title: string; members: readonly string[]; description: string }>;

const INCIDENT_OF = new Map<string, keyof typeof INCIDENTS>(
  (Object.entries(INCIDENTS) as Array<[keyof typeof INCIDENTS, { members: readonly string[] }]>).flatMap(
    ([incident, { members }]) => members.map((member) => [member, incident] as [string, keyof typeof INCIDENTS]),
  ),
);

/** A construct's path below its stack: the same whichever stack holds it. */
const withinStack = (construct: Construct) => construct.node.path.split('/').slice(1).join('/');

/** One signal a security or operations team watches, and the alarm on it. */
export interface Watch {
  /** The signal's id (`gateway.key-disabled`), written at the start of the alarm's description. */
  readonly signal: string;
  /** The dashboard widget's title. */
  readonly title: string;
  readonly metric: cloudwatch.IMetric;
  /**
   * Fires at or above this for `periods` periods; `baseline`: above CloudWatch's anomaly-detection
   * band (three standard deviations) of the metric's own history.
   */
  readonly threshold: number | 'baseline';
  /** Fires at or below the threshold instead (a resource running out). @default false */
  readonly below?: boolean;
  /** @default 3 */
  readonly periods?: number;
  /** What it means, and what to check first. */
  readonly description: string;
}

/**
 * The alarm topic, every alarm, and a dashboard per stack built from the same definitions. Each
 * component declares what it watches through `watch()`, so every alarm notifies the same encrypted,
 * TLS-only topic and appears on its stack's dashboard; `renderDashboards()` runs once the app is built.
 */
export class Observability extends Construct {
  public readonly topic: sns.Topic;
  private readonly watched = new Map<Stack, Array<{ watch: Watch; alarm: cloudwatch.Alarm }>>();
  private readonly incidents = new Map<keyof typeof INCIDENTS, cloudwatch.Alarm[]>();
  private readonly groupsIncidents: boolean;
  /** Each incident's composite alarm, once rendered. */
  public readonly composites = new Map<string, cloudwatch.CompositeAlarm>();

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    this.groupsIncidents = props.incidents ?? true;
    this.topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'Dify alarms',
      masterKey: props.key,
      enforceSSL: true,
    });
    if (props.alarmEmail !== undefined) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }
    output(this, OUTPUTS.alarmTopicArn, this.topic.topicArn);
  }

  /** An alarm of `scope`'s on a signal, notifying the topic when it fires and when it clears. */
  public watch(scope: Construct, id: string, watch: Watch): cloudwatch.Alarm {
    const common = {
      metric: watch.metric,
      evaluationPeriods: watch.periods ?? 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `[${watch.signal}] ${watch.description}`,
    };
    const alarm =
      watch.threshold === 'baseline'
        ? new cloudwatch.AnomalyDetectionAlarm(scope, id, {
            ...common,
            stdDevs: 3,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_UPPER_THRESHOLD,
          })
        : new cloudwatch.Alarm(scope, id, {
            ...common,
            threshold: watch.threshold,
            comparisonOperator:
              watch.below === true
                ? cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD
                : cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          });
    const incident = this.groupsIncidents ? INCIDENT_OF.get(watch.signal) : undefined;
    if (incident === undefined) {
      alarm.addAlarmAction(new actions.SnsAction(this.topic));
      alarm.addOkAction(new actions.SnsAction(this.topic));
    } else {
      this.incidents.set(incident, [...(this.incidents.get(incident) ?? []), alarm]);
      acknowledge(
        alarm.node.defaultChild!,
        ...nistAndHipaa(
          'CloudWatchAlarmAction',
          `A member of the ${incident} composite alarm, which notifies the encrypted alarm topic when this alarm or any other member fires, so that one incident pages once; this alarm stays on the dashboard and in the composite's rule.`,
        ),
      );
    }
    const stack = Stack.of(scope);
    const list = this.watched.get(stack) ?? [];
    list.push({ watch, alarm });
    this.watched.set(stack, list);
    return alarm;
  }

  /** Every watched signal, by stack. */
  public get signals(): ReadonlyMap<Stack, ReadonlyArray<{ watch: Watch; alarm: cloudwatch.Alarm }>> {
    return this.watched;
  }

  /**
   * Each incident's composite alarm, in `home`: a stack deployed after every stack holding a member
   * (the deployment's last), as a composite alarm's rule names its members.
   */
  public renderIncidents(home: Stack): void {
    for (const [incident, members] of this.incidents) {
      const { title, description } = INCIDENTS[incident];
      const composite = new cloudwatch.CompositeAlarm(
        home,
        `Incident${incident.replace('incident.', '').replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase())}`,
        {
          alarmDescription: `[${incident}] ${title}: ${description}`,
          // In construct order below the stack, so one stack and the split stacks render the same rule.
          alarmRule: cloudwatch.AlarmRule.anyOf(
            ...[...members]
              .sort((a, b) => withinStack(a).localeCompare(withinStack(b)))
              .map((member) => cloudwatch.AlarmRule.fromAlarm(member, cloudwatch.AlarmState.ALARM)),
          ),
        },
      );
      composite.addAlarmAction(new actions.SnsAction(this.topic));
      composite.addOkAction(new actions.SnsAction(this.topic));
      this.composites.set(incident, composite);
    }
  }

  /** One dashboard per stack with watched signals: each signal's alarm, three to a row, in the order declared. */
  public renderDashboards(): void {
    for (const [stack, entries] of this.watched) {
      const widgets = entries.map(
        ({ watch, alarm }) => new cloudwatch.AlarmWidget({ title: watch.title, alarm, width: 8, height: 6 }),
      );
      const rows: cloudwatch.IWidget[][] = [];
      for (let i = 0; i < widgets.length; i += 3) rows.push(widgets.slice(i, i + 3));
      // Named for its stack: logical ids stay distinct across the deployment's stacks.
      new cloudwatch.Dashboard(stack, `${stack.node.id.replace(/[^A-Za-z0-9]/g, '')}SignalsDashboard`, {
        dashboardName: `${stack.stackName}-signals`,
        widgets: rows,
      });
    }
  }

  /** A five-minute average of an AWS metric with dimensions. */
  public static metric(
    namespace: string,
    metricName: string,
    dimensionsMap: Record<string, string>,
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace,
      metricName,
      dimensionsMap,
      statistic: 'Average',
      period: Duration.minutes(5),
    });
  }
}
