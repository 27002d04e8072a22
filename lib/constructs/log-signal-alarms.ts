import { Duration } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { LOG_SIGNALS, logSignalPattern, type LogSignal, type LogSource } from '../../contracts/log-signals';
import { deploymentName } from './deployment-name';
import type { Observability } from './observability';

/**
 * A metric filter and an alarm for each log signal (contracts/log-signals.ts) read from `source`'s log
 * group. The metric counts matching lines under the deployment's own namespace (`Dify/<name>`). On
 * EKS, where every container's lines share one group, `eksContainer` names the source's container.
 */
export function watchLogSignals(
  scope: Construct,
  alarms: Observability,
  source: LogSource | string,
  logGroup: logs.ILogGroup,
  eksContainer?: string,
): void {
  for (const [name, signal] of Object.entries(LOG_SIGNALS) as Array<[string, LogSignal]>) {
    if (signal.source !== source) continue;
    const id = `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
    const filter = new logs.MetricFilter(scope, `${id}Filter`, {
      logGroup,
      filterPattern: logs.FilterPattern.literal(logSignalPattern(signal, eksContainer)),
      metricNamespace: `Dify/${deploymentName(scope)}`,
      metricName: id,
      metricValue: '1',
      defaultValue: 0,
    });
    alarms.watch(scope, `${id}Alarm`, {
      signal: signal.signal,
      title: signal.title,
      metric: filter.metric({ statistic: 'Sum', period: Duration.minutes(5) }),
      threshold: signal.threshold,
      periods: 1,
      description: signal.description,
    });
  }
}
