import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { OUTPUTS } from '../../contracts/stack-outputs';
import { output } from './outputs';

export interface ObservabilityProps {
  /** Encrypts the alarm topic (the logs key, which admits CloudWatch alarms of this account). */
  readonly key: kms.IKey;
  /**
   * Address subscribed to the alarm topic.
   * @default - no subscription: alarms publish to the topic and nobody is told (synth warns)
   */
  readonly alarmEmail?: string;
}

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

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
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
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
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
