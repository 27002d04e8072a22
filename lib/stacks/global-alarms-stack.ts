import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import type { Construct } from 'constructs';
import type { Observability } from '../constructs/observability';

export interface GlobalAlarmsStackProps extends StackProps {
  /** The distribution the main stack created; read through a cross-region reference. */
  readonly distribution: cloudfront.IDistribution;
  /** The us-east-1 alarm topic (the Global stack's). */
  readonly alarms: Observability;
}

/** At or above this share of CloudFront's answers being 5xx for 15 minutes, it alarms. */
export const CLOUDFRONT_5XX_PERCENT = 5;

/**
 * CloudFront's own alarms, in us-east-1 where CloudFront publishes its metrics. A stack of its own,
 * deployed after the main stack: the alarm names the distribution, which the main stack creates after
 * the Global stack's web ACL and certificate, so neither the Global nor the main stack can hold it.
 */
export class GlobalAlarmsStack extends Stack {
  constructor(scope: Construct, id: string, props: GlobalAlarmsStackProps) {
    super(scope, id, props);
    props.alarms.watch(this, 'CloudFront5xxAlarm', {
      signal: 'edge.cloudfront-5xx',
      title: 'CloudFront: 5xx, % of requests',
      metric: new cloudwatch.Metric({
        namespace: 'AWS/CloudFront',
        metricName: '5xxErrorRate',
        dimensionsMap: { DistributionId: props.distribution.distributionId, Region: 'Global' },
        statistic: 'Average',
        period: Duration.minutes(5),
      }),
      threshold: CLOUDFRONT_5XX_PERCENT,
      periods: 3,
      description: `At least ${CLOUDFRONT_5XX_PERCENT}% of CloudFront's answers were 5xx for 15 minutes: the origin (the load balancer) is failing or unreachable from CloudFront. Check first the main region's edge.alb-5xx and edge.unhealthy-targets alarms, then CloudFront's origin errors (the distribution's monitoring page).`,
    });
  }
}
