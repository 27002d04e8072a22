import { Duration } from 'aws-cdk-lib';
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

/**
 * The alarm topic. Each component creates its own alarms through `alarm()`, so every alarm notifies
 * the same encrypted, TLS-only topic.
 */
export class Observability extends Construct {
  public readonly topic: sns.Topic;

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

  /** An alarm of `scope`'s that notifies the topic both when it fires and when it clears. */
  public alarm(
    scope: Construct,
    id: string,
    metric: cloudwatch.IMetric,
    options: { threshold: number; description: string; periods?: number },
  ): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(scope, id, {
      metric,
      threshold: options.threshold,
      evaluationPeriods: options.periods ?? 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: options.description,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
    return alarm;
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
