import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import { Construct, type IDependable } from 'constructs';
import type { TaskSizing } from '../../config/sizing';
import type { DifyServiceRow } from '../dify/catalog';
import { healthCommand } from '../dify/health-checks';
import type { Edge } from '../edge';
import { encryptedLogGroup, type LogSettings } from '../log-group';
import type { Network } from '../network';
import { Migration } from './ecs-migration';
import { addRowTarget } from './edge-target';
import { type ContainerSpec, DifyService, DifyTask, type DifyTaskProps } from './ecs-task';
import type { DifyRuntime, RunningService, RunSpec } from './runtime';
import { logGroupOutput, OUTPUTS, type OutputName, serviceNameOutput } from '../../../contracts/stack-outputs';
import { output } from '../outputs';
import { FAILED_TASK_PATTERNS } from '../../../contracts/ecs-task-events';
import { watchLogSignals } from '../log-signal-alarms';
import type { Observability } from '../observability';

/** The private DNS namespace the services register in: `api.dify.internal`, `sandbox.dify.internal`… */
export const SERVICE_NAMESPACE = 'dify.internal';

export interface EcsRuntimeProps {
  readonly network: Network;
  readonly logs: LogSettings;
  /**
   * ECS Exec for incidents: sessions are encrypted with this key and logged to an encrypted log group.
   * @default - no ECS Exec: no container can be entered
   */
  readonly execKey?: kms.IKey;
  /** Where task failures and each service's CPU and memory alarms notify. */
  readonly alarms: Observability;
}

/** Above this average CPU or memory (% of the task's reservation) for 15 minutes, a service alarms. */
export const SERVICE_UTILIZATION_ALARM_PERCENT = 85;

/**
 * The ECS side of the platform: one Fargate cluster with Container Insights, and a private DNS
 * namespace in which every service registers an A record per task.
 *
 * Cloud Map DNS rather than Service Connect: the one-off migration task, which is not a service,
 * must reach the SSRF proxy by name too, and the LLM gateway must see its callers' own addresses
 * (Service Connect's proxy would replace them with its own) to enforce per-client source networks.
 */
export class EcsRuntime extends Construct implements DifyRuntime {
  public readonly serviceDomain = SERVICE_NAMESPACE;
  /** The ECS task credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI). */
  public readonly credentialsAddress = '169.254.170.2';

  /** `<name>.dify.internal`: the A records Cloud Map keeps for each task. */
  public hostOf(row: DifyServiceRow): string {
    return `${row.name}.${this.serviceDomain}`;
  }
  public readonly cluster: ecs.Cluster;
  public readonly namespace: servicediscovery.PrivateDnsNamespace;
  public readonly execEnabled: boolean;
  /** Each long-running service by its row id, for whoever restarts them (the secret rotation). */
  public readonly services = new Map<string, ecs.FargateService>();
  /** Where ECS Exec sessions are recorded, when Exec is on. */
  public readonly execLogGroup?: logs.LogGroup;

  private readonly network: Network;
  private readonly logs: LogSettings;
  private readonly alarms: Observability;
  /** The task behind each running service, and its scaling target once it scales. */
  private readonly tasks = new Map<RunningService, DifyTask>();
  private readonly scaling = new Map<RunningService, ecs.ScalableTaskCount>();

  constructor(scope: Construct, id: string, props: EcsRuntimeProps) {
    super(scope, id);
    this.network = props.network;
    this.logs = props.logs;
    this.alarms = props.alarms;
    this.execEnabled = props.execKey !== undefined;
    this.execLogGroup =
      props.execKey === undefined
        ? undefined
        : encryptedLogGroup(this, 'ExecLogGroup', props.logs, { suffix: 'ecs-exec' });
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.network.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENHANCED,
      enableFargateCapacityProviders: true,
      executeCommandConfiguration:
        props.execKey === undefined
          ? undefined
          : {
              kmsKey: props.execKey,
              logging: ecs.ExecuteCommandLogging.OVERRIDE,
              logConfiguration: {
                cloudWatchLogGroup: this.execLogGroup,
                cloudWatchEncryptionEnabled: true,
              },
            },
    });
    output(this, OUTPUTS.clusterName, this.cluster.clusterName);
    this.namespace = new servicediscovery.PrivateDnsNamespace(this, 'Namespace', {
      name: SERVICE_NAMESPACE,
      vpc: props.network.vpc,
      description: 'Dify services, one A record per healthy task',
    });
    this.watchTaskFailures();
  }

  /**
   * One EventBridge rule per kind of task failure in this cluster (contracts/ecs-task-events.ts): each
   * failed task is a message on the alarm topic naming it, and the rules' match counts feed one alarm.
   */
  private watchTaskFailures(): void {
    const field = (path: string) => events.EventField.fromPath(path);
    const message = events.RuleTargetInput.fromText(
      `[containers.task-failed] ECS task stopped in ${field('$.detail.clusterArn')}: ${field('$.detail.group')}, ` +
        `stop code ${field('$.detail.stopCode')}, reason "${field('$.detail.stoppedReason')}", first container exit ` +
        `code ${field('$.detail.containers[0].exitCode')} (${field('$.detail.containers[0].reason')}), task ${field('$.detail.taskArn')}. ` +
        "Check first the task's log stream and `aws ecs describe-tasks`; a reason starting OutOfMemoryError means the task needs more memory.",
    );
    const matched = Object.entries(FAILED_TASK_PATTERNS).map(([kind, detail]) => {
      const rule = new events.Rule(this, `Task${kind}Rule`, {
        description: `Dify: an ECS task of this cluster stopped (${kind})`,
        eventPattern: {
          source: ['aws.ecs'],
          detailType: ['ECS Task State Change'],
          detail: { clusterArn: [this.cluster.clusterArn], ...detail },
        },
        targets: [new targets.SnsTopic(this.alarms.topic, { message })],
      });
      return new cloudwatch.Metric({
        namespace: 'AWS/Events',
        metricName: 'TriggeredRules',
        dimensionsMap: { RuleName: rule.ruleName },
        statistic: 'Sum',
        period: Duration.minutes(5),
      });
    });
    this.alarms.watch(this, 'TaskFailuresAlarm', {
      signal: 'containers.task-failed',
      title: 'ECS: failed tasks',
      metric: new cloudwatch.MathExpression({
        expression: matched.map((_, i) => `FILL(m${i}, 0)`).join(' + '),
        usingMetrics: Object.fromEntries(matched.map((metric, i) => [`m${i}`, metric])),
        label: 'failed tasks',
        period: Duration.minutes(5),
      }),
      threshold: 1,
      periods: 1,
      description:
        "An ECS task crashed (non-zero exit or out of memory), failed to start or was stopped for failing its health checks. Each such task is also a message on this topic naming it. Check first the stopped task's reason (`aws ecs describe-tasks`) and its log stream.",
    });
  }

  /** CPU and memory alarms on a Fargate service of this cluster, as a % of its task's reservation. */
  public watchService(scope: Construct, name: string, service: ecs.FargateService): void {
    for (const [resource, metric] of [
      ['cpu', service.metricCpuUtilization({ period: Duration.minutes(5) })],
      ['memory', service.metricMemoryUtilization({ period: Duration.minutes(5) })],
    ] as const) {
      this.alarms.watch(scope, `${resource === 'cpu' ? 'Cpu' : 'Memory'}Alarm`, {
        signal: `containers.${resource}`,
        title: `${name}: ${resource} %`,
        metric,
        threshold: SERVICE_UTILIZATION_ALARM_PERCENT,
        periods: 3,
        description: `${name}'s average ${resource} has been at or above ${SERVICE_UTILIZATION_ALARM_PERCENT}% of its reservation for 15 minutes: a load spike, a runaway job, or someone using it for something else. Check first the service's request rate and its log, then whether it is at its maximum task count.`,
      });
    }
  }

  /** A Fargate service per long-running row (a task definition only for a one-off row). */
  public run(scope: Construct, row: DifyServiceRow, spec: RunSpec): RunningService {
    const container: ContainerSpec = {
      image: ecs.ContainerImage.fromDockerImageAsset(spec.image),
      port: row.port,
      ...spec.start,
      environment: spec.environment,
      secrets: spec.secrets,
      healthCheck: {
        command: ['CMD', ...healthCommand(row.health, row.port)],
        startPeriod: Duration.seconds(row.startPeriodSeconds),
      },
      hardening: row.hardening,
    };
    const common: DifyTaskProps = {
      runtime: this,
      network: this.network,
      logs: this.logs,
      name: row.name,
      description: row.description,
      sizing: spec.sizing,
      container,
      ephemeralStorageGiB: row.ephemeralStorageGiB,
    };
    const task =
      row.deployment === 'one-off'
        ? new DifyTask(scope, row.id, common)
        : new DifyService(scope, row.id, {
            ...common,
            discoverable: row.discoverable,
            deployment: row.deployment,
            spot: row.interruptible === true && spec.interruptible,
          });
    output(task, logGroupOutput(row.id), task.logGroup.logGroupName);
    watchLogSignals(task, this.alarms, row.id, task.logGroup);
    if (task instanceof DifyService) {
      this.watchService(task, row.name, task.service);
      output(task, serviceNameOutput(row.id), task.service.serviceName);
      this.services.set(row.id, task.service);
    } else {
      // For one-off operator tasks (dify-aws revoke-sessions runs the migration's: the api image with Valkey access).
      output(task, `${row.id}Family` as OutputName, task.taskDefinition.family);
      output(task, `${row.id}SecurityGroupId` as OutputName, task.securityGroup.securityGroupId);
    }
    const running: RunningService = { row, connections: task.connections, grantPrincipal: task.grantPrincipal };
    this.tasks.set(running, task);
    if (row.scales && task instanceof DifyService) {
      const target = task.service.autoScaleTaskCount({
        minCapacity: spec.sizing.minTasks,
        maxCapacity: spec.sizing.maxTasks,
      });
      target.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 60 });
      this.scaling.set(running, target);
    }
    return running;
  }

  /** The task definition (and service) behind a running service: for ECS-specific wiring and outputs. */
  public taskOf(service: RunningService): DifyTask {
    const task = this.tasks.get(service);
    if (task === undefined) throw new Error(`${service.row.service} was not rendered by this runtime`);
    return task;
  }

  public serviceOf(service: RunningService): DifyService {
    const task = this.taskOf(service);
    if (!(task instanceof DifyService)) throw new Error(`${service.row.service} is a one-off task, not a service`);
    return task;
  }

  public route(edge: Edge, service: RunningService, _sizing: TaskSizing): void {
    const { row } = service;
    const { group } = addRowTarget(edge, row, [this.serviceOf(service).service]);
    const scaling = this.scaling.get(service);
    if (scaling !== undefined && row.edge?.requestsPerTarget !== undefined) {
      scaling.scaleOnRequestCount('Requests', { requestsPerTarget: row.edge.requestsPerTarget, targetGroup: group });
    }
  }

  public runAtDeploy(
    scope: Construct,
    id: string,
    task: RunningService,
    after: ReadonlyArray<IDependable | RunningService>,
  ): IDependable {
    const migration = new Migration(scope, id, {
      cluster: this.cluster,
      network: this.network,
      logs: this.logs,
      task: this.taskOf(task),
    });
    migration.resource.node.addDependency(...after.map((dependency) => this.dependable(dependency)));
    return migration;
  }

  public startAfter(service: RunningService, ...dependencies: Array<IDependable | RunningService>): void {
    this.serviceOf(service).service.node.addDependency(
      ...dependencies.map((dependency) => this.dependable(dependency)),
    );
  }

  public seal(scope: Construct): void {
    for (const task of this.tasks.values()) {
      if (task.node.scopes.includes(scope)) task.acknowledgeRolePolicies();
    }
  }

  /** A running service stands for its ECS service: what a dependant must wait for. */
  private dependable(dependency: IDependable | RunningService): IDependable {
    const task = this.tasks.get(dependency as RunningService);
    if (task === undefined) return dependency as IDependable;
    return task instanceof DifyService ? task.service : task;
  }
}
