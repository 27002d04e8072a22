import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge, acknowledgeGrantedResource, nistAndHipaa } from '../../nag/acknowledge';
import type { DifyServiceRow } from '../dify/catalog';
import { encryptedLogGroup, type LogSettings } from '../log-group';
import { watchLogSignals } from '../log-signal-alarms';
import type { Observability } from '../observability';
import { SERVICE_UTILIZATION_ALARM_PERCENT } from './ecs-runtime';
import { namespaceOf } from './kubernetes/placement';

/** Where the CloudWatch Observability add-on runs, and the service account both its agents use. */
export const INSIGHTS_NAMESPACE = 'amazon-cloudwatch';
const AGENT_SERVICE_ACCOUNT = 'cloudwatch-agent';
/** The groups the add-on writes: metrics (EMF), and the containers', nodes' and kubelet's logs. */
const LOG_GROUPS = ['performance', 'application', 'dataplane', 'host'] as const;

export interface EksInsightsProps {
  readonly cluster: eks.Cluster;
  readonly clusterName: string;
  readonly logs: LogSettings;
  readonly alarms: Observability;
  /** The VPC's IPv4 range: the API server calls the add-on's admission webhook from there. */
  readonly vpcCidr: string;
}

/**
 * Container Insights on the cluster (the Amazon CloudWatch Observability add-on): every container's
 * stdout and stderr shipped by Fluent Bit, and per-pod CPU, memory, restarts and failures as metrics,
 * which is what the EKS variant's container and log-signal alarms read. The add-on would create its
 * log groups unencrypted and kept forever; they are created here first, with the logs key and the
 * deployment's retention, and its role may only write to them.
 */
export class EksInsights extends Construct {
  /** Every container's lines, one JSON record each (`log`, `kubernetes.container_name`, ...). */
  public readonly applicationLogs: logs.LogGroup;
  private readonly props: EksInsightsProps;

  constructor(scope: Construct, id: string, props: EksInsightsProps) {
    super(scope, id);
    this.props = props;
    const prefix = `/aws/containerinsights/${props.clusterName}/`;
    const groups = Object.fromEntries(
      LOG_GROUPS.map((name) => [
        name,
        encryptedLogGroup(this, `${name.charAt(0).toUpperCase()}${name.slice(1)}Logs`, props.logs, {
          exact: `${prefix}${name}`,
        }),
      ]),
    ) as Record<(typeof LOG_GROUPS)[number], logs.LogGroup>;
    this.applicationLogs = groups.application;

    const role = new iam.Role(this, 'AgentRole', {
      assumedBy: new iam.SessionTagsPrincipal(new iam.ServicePrincipal('pods.eks.amazonaws.com')),
      description: `EKS ${props.clusterName}: the CloudWatch agent and Fluent Bit (Container Insights)`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        // CreateLogGroup only answers that the group exists: they are all created above.
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
        resources: Object.values(groups).flatMap((group) => [group.logGroupArn]),
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['ec2:DescribeTags', 'ec2:DescribeVolumes', 'ec2:DescribeInstances', 'logs:DescribeLogGroups'],
        resources: ['*'],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': ['ContainerInsights', 'CWAgent'] } },
      }),
    );
    const policy = role.node.findChild('DefaultPolicy').node.defaultChild!;
    acknowledge(
      policy,
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'Only the EC2 and log-group Describe calls (instance and volume metadata for the metrics), which have no resource-level permissions, and PutMetricData, which has none either and is held to the ContainerInsights and CWAgent namespaces.',
      },
      ...nistAndHipaa(
        'IAMNoInlinePolicy',
        'A policy inline in the add-on agent role cannot be attached anywhere else and changes only with this stack; its log writes reach the four Container Insights groups of this cluster only.',
      ),
    );
    for (const [name, group] of Object.entries(groups)) {
      acknowledgeGrantedResource(
        policy,
        group.logGroupArn,
        `Log streams of the one Container Insights group ${prefix}${name} (the ARN's :* names its streams), which is encrypted with the logs key.`,
      );
    }
    new eks.CfnPodIdentityAssociation(this, 'AgentPodIdentity', {
      clusterName: props.clusterName,
      namespace: INSIGHTS_NAMESPACE,
      serviceAccount: AGENT_SERVICE_ACCOUNT,
      roleArn: role.roleArn,
    });
    const addon = new eks.Addon(this, 'Addon', {
      cluster: props.cluster,
      addonName: 'amazon-cloudwatch-observability',
      configurationValues: {
        containerLogs: { enabled: true },
        agent: { config: { logs: { metrics_collected: { kubernetes: { enhanced_container_insights: true } } } } },
      },
    });
    addon.node.addDependency(...Object.values(groups));
    // Dify's node class denies by default: the add-on's pods, on every node, reach CloudWatch (443),
    // the kubelets (10250) and DNS, and the API server reaches its admission webhook.
    const networkPolicy = new eks.KubernetesManifest(this, 'NetworkPolicy', {
      cluster: props.cluster,
      manifest: [
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'container-insights', namespace: INSIGHTS_NAMESPACE },
          spec: {
            podSelector: {},
            policyTypes: ['Ingress', 'Egress'],
            ingress: [{ from: [{ ipBlock: { cidr: props.vpcCidr } }] }],
            egress: [
              { ports: [{ protocol: 'TCP', port: 443 }] },
              { to: [{ ipBlock: { cidr: props.vpcCidr } }], ports: [{ protocol: 'TCP', port: 10250 }] },
              {
                ports: [
                  { protocol: 'UDP', port: 53 },
                  { protocol: 'TCP', port: 53 },
                ],
              },
            ],
          },
        },
      ],
    });
    networkPolicy.node.addDependency(addon);
  }

  /**
   * The alarms on a Dify service's pods: CPU and memory against the pods' limits, and, for the
   * services whose lines carry a log signal, the signal's filter on the shared application group.
   */
  public watchService(scope: Construct, row: DifyServiceRow): void {
    const { alarms, clusterName } = this.props;
    const dimensionsMap = { ClusterName: clusterName, Namespace: namespaceOf(row.service), PodName: row.name };
    for (const [resource, metricName] of [
      ['cpu', 'pod_cpu_utilization_over_pod_limit'],
      ['memory', 'pod_memory_utilization_over_pod_limit'],
    ] as const) {
      alarms.watch(scope, `${resource === 'cpu' ? 'Cpu' : 'Memory'}Alarm`, {
        signal: `containers.${resource}`,
        title: `${row.name}: ${resource} % of limit`,
        metric: new cloudwatch.Metric({
          namespace: 'ContainerInsights',
          metricName,
          dimensionsMap,
          statistic: 'Average',
          period: Duration.minutes(5),
        }),
        threshold: SERVICE_UTILIZATION_ALARM_PERCENT,
        periods: 3,
        description: `${row.name}'s average ${resource} has been at or above ${SERVICE_UTILIZATION_ALARM_PERCENT}% of its pods' limit for 15 minutes: a load spike, a runaway job, or someone using it for something else. Check first the service's request rate and its log (kubectl logs -n ${dimensionsMap.Namespace} deploy/${row.name}), then whether it is at its maximum replica count.`,
      });
    }
    watchLogSignals(scope, alarms, row.id, this.applicationLogs, row.name);
  }

  /** Restarting, crash-looping, OOM-killed and failed pods in Dify's namespaces. */
  public watchNamespaces(namespaces: readonly string[]): void {
    const { alarms, clusterName } = this.props;
    const sum = (metricName: string, id = 'm') => {
      const metrics = namespaces.map(
        (namespace) =>
          new cloudwatch.Metric({
            namespace: 'ContainerInsights',
            metricName,
            dimensionsMap: { ClusterName: clusterName, Namespace: namespace },
            statistic: 'Maximum',
            period: Duration.minutes(5),
          }),
      );
      return new cloudwatch.MathExpression({
        expression: metrics.map((_, i) => `FILL(${id}${i}, 0)`).join(' + '),
        usingMetrics: Object.fromEntries(metrics.map((metric, i) => [`${id}${i}`, metric])),
        label: metricName,
        period: Duration.minutes(5),
      });
    };
    const where = `namespaces ${namespaces.join(', ')} of cluster ${clusterName}`;
    alarms.watch(this, 'CrashLoopAlarm', {
      signal: 'eks.pod-restarts',
      title: 'EKS: crash-looping and OOM-killed containers',
      metric: new cloudwatch.MathExpression({
        expression: 'crash + oom',
        usingMetrics: {
          crash: sum('pod_container_status_waiting_reason_crash_loop_back_off', 'c'),
          oom: sum('pod_container_status_terminated_reason_oom_killed', 'o'),
        },
        label: 'restarting containers',
        period: Duration.minutes(5),
      }),
      threshold: 1,
      periods: 2,
      description: `A container in the ${where} is crash-looping or was killed for running out of memory, for 10 minutes. Check first kubectl get pods -A | grep -v Running, then kubectl describe pod and kubectl logs --previous.`,
    });
    alarms.watch(this, 'FailedPodsAlarm', {
      signal: 'eks.pods-failed',
      title: 'EKS: failed pods',
      metric: sum('pod_status_failed'),
      threshold: 1,
      periods: 1,
      description: `A pod in the ${where} failed (a container exited non-zero and will not restart, or it was evicted). Check first kubectl get pods -A --field-selector=status.phase=Failed and kubectl describe pod.`,
    });
  }
}
