import { ArnFormat, Aws, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import { Construct } from 'constructs';
import type { TaskSizing } from '../../config/sizing';
import type { ContainerHardening, LinuxCapability } from '../dify/catalog';
import { allowSecretsDecrypt } from '../secret-access';
import type { SecretSource } from './runtime';
import { acknowledge, acknowledgeGrantedResource, nistAndHipaa } from '../../nag/acknowledge';
import { encryptedLogGroup, type LogSettings } from '../log-group';
import { ECR_PULL, type Network } from '../network';
import { deploymentName } from '../deployment-name';

/** The container runtime's default capability set on Fargate; anything not kept is dropped. */
export const DEFAULT_CAPABILITIES: readonly LinuxCapability[] = [
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'NET_RAW',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
];

/** ECS names capabilities as the kernel does, without `CAP_`; so does the catalogue. */
const ecsCapability = (name: LinuxCapability) => ecs.Capability[name];

export interface ContainerSpec {
  readonly image: ecs.ContainerImage;
  /** The port the container serves on. @default - none: the container serves nothing */
  readonly port?: number;
  /** @default - the image's entrypoint */
  readonly entryPoint?: string[];
  /** @default - the image's command */
  readonly command?: string[];
  /** Non-secret settings only; the tests refuse a secret-marked name here. */
  readonly environment: Record<string, string>;
  /** Injected by ECS from Secrets Manager at start; never in the task definition's text. */
  readonly secrets: Record<string, SecretSource>;
  readonly healthCheck: { readonly command: string[]; readonly startPeriod: Duration };
  readonly hardening: ContainerHardening;
}

/** What a task needs of the ECS platform it runs on (ecs-runtime.ts provides it). */
export interface TaskPlatform {
  readonly cluster: ecs.ICluster;
  /** The private DNS namespace discoverable services register in. */
  readonly namespace: servicediscovery.INamespace;
  readonly execEnabled: boolean;
  /** Where ECS Exec sessions are recorded, when Exec is on. */
  readonly execLogGroup?: logs.ILogGroup;
}

/** GuardDuty's repository of its Fargate agent, in each region's own AWS account (GuardDuty's guide). */
export const GUARDDUTY_AGENT_REPOSITORY = 'aws-guardduty-agent-fargate';

/** How long a task's DNS record may be cached: short, so a replaced task stops receiving calls quickly. */
export const DNS_TTL = Duration.seconds(10);

export interface DifyTaskProps {
  readonly runtime: TaskPlatform;
  readonly network: Network;
  readonly logs: LogSettings;
  /** Short kebab-case name: the container, the log group suffix, the task family and the DNS name. */
  readonly name: string;
  /** What the task is, for its security group's description. */
  readonly description: string;
  readonly sizing: TaskSizing;
  readonly container: ContainerSpec;
  /** @default 20 - Fargate's default ephemeral storage */
  readonly ephemeralStorageGiB?: number;
}

/** A role only ECS tasks of this account may assume, and only on behalf of this account's ECS. */
function taskPrincipal(): iam.IPrincipal {
  return new iam.ServicePrincipal('ecs-tasks.amazonaws.com').withConditions({
    StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
    ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:ecs:${Aws.REGION}:${Aws.ACCOUNT_ID}:*` },
  });
}

/**
 * One Fargate task definition with one hardened container: its own task role, execution role, log
 * group (KMS, retention) and security group with no egress until a rule names a destination. The
 * only egress it starts with is what Fargate needs on its behalf (endpoints and S3's prefix list).
 */
export class DifyTask extends Construct implements ec2.IConnectable, iam.IGrantable {
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly container: ecs.ContainerDefinition;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly connections: ec2.Connections;
  public readonly logGroup: logs.LogGroup;
  public readonly taskRole: iam.Role;
  public readonly grantPrincipal: iam.IPrincipal;
  public readonly port?: number;
  /** Whether the root filesystem is read-only in this deployment (ECS Exec turns it off). */
  public readonly readonlyRootFilesystem: boolean;
  private readonly runtime: TaskPlatform;
  /** GuardDuty's agent repository, when its agent runs in this task (`guardDuty`). */
  private readonly guardDutyAgent?: string;

  constructor(scope: Construct, id: string, props: DifyTaskProps) {
    super(scope, id);
    const { container: spec, runtime } = props;
    const hardening = spec.hardening;
    if (hardening.user === undefined && hardening.runsAsRootBecause === undefined) {
      throw new Error(`${props.name}: runs as the image's user, which may be root; say why in runsAsRootBecause`);
    }
    if (!hardening.readonlyRootFilesystem && hardening.writableRootBecause === undefined) {
      throw new Error(`${props.name}: a writable root filesystem needs writableRootBecause`);
    }
    this.port = spec.port;
    this.runtime = runtime;
    this.readonlyRootFilesystem = hardening.readonlyRootFilesystem && !runtime.execEnabled;

    this.logGroup = encryptedLogGroup(this, 'LogGroup', props.logs, { suffix: `ecs/${props.name}` });
    this.taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: taskPrincipal(),
      description: `Dify ${props.name}: what the application itself may call`,
    });
    this.grantPrincipal = this.taskRole;
    const executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: taskPrincipal(),
      description: `Dify ${props.name}: image pull, log delivery and this task's secrets only`,
    });
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      family: `${deploymentName(this)}-${props.name}`,
      cpu: props.sizing.cpu,
      memoryLimitMiB: props.sizing.memoryMiB,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.ARM64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      ephemeralStorageGiB: props.ephemeralStorageGiB,
      taskRole: this.taskRole,
      executionRole,
    });

    const linuxParameters = new ecs.LinuxParameters(this, 'LinuxParameters', { initProcessEnabled: true });
    const kept = new Set(hardening.keepCapabilities.map((k) => k.capability));
    if (kept.size === 0) linuxParameters.dropCapabilities(ecs.Capability.ALL);
    else linuxParameters.dropCapabilities(...DEFAULT_CAPABILITIES.filter((c) => !kept.has(c)).map(ecsCapability));

    this.container = this.taskDefinition.addContainer(props.name, {
      containerName: props.name,
      image: spec.image,
      entryPoint: spec.entryPoint,
      command: spec.command,
      environment: spec.environment,
      secrets: Object.fromEntries(
        Object.entries(spec.secrets).map(([name, source]) => [
          name,
          ecs.Secret.fromSecretsManager(source.secret, source.field),
        ]),
      ),
      user: hardening.user,
      readonlyRootFilesystem: this.readonlyRootFilesystem,
      privileged: false,
      linuxParameters,
      memoryLimitMiB: props.sizing.memoryMiB,
      essential: true,
      portMappings: spec.port === undefined ? [] : [{ containerPort: spec.port, name: props.name }],
      healthCheck: {
        command: spec.healthCheck.command,
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: spec.healthCheck.startPeriod,
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: props.name }),
      stopTimeout: Duration.seconds(30),
    });
    // ECS reads the injected secrets with the execution role, through Secrets Manager.
    allowSecretsDecrypt(
      executionRole,
      Object.values(spec.secrets).map((source) => source.secret),
    );
    for (const writable of hardening.writablePaths) {
      const volume = writable.path.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');
      this.taskDefinition.addVolume({ name: volume });
      this.container.addMountPoints({ sourceVolume: volume, containerPath: writable.path, readOnly: false });
    }

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.network.vpc,
      description: props.description,
      allowAllOutbound: false,
    });
    this.connections = new ec2.Connections({
      securityGroups: [this.securityGroup],
      defaultPort: spec.port === undefined ? undefined : ec2.Port.tcp(spec.port),
    });
    props.network.allowAwsServices(this, `Dify ${props.name}`);
    if (props.network.runtimeMonitoring) {
      props.network.allowRuntimeMonitoringAgent(this, `Dify ${props.name}`);
      // GuardDuty adds its agent as a sidecar that ECS pulls with this role, from GuardDuty's own
      // repository of the region (in an AWS account that differs by region).
      this.guardDutyAgent = `arn:${Aws.PARTITION}:ecr:${Aws.REGION}:*:repository/${GUARDDUTY_AGENT_REPOSITORY}`;
      executionRole.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: [...ECR_PULL], resources: [this.guardDutyAgent] }),
      );
    }
    acknowledge(this.taskDefinition.node.defaultChild!, {
      id: 'AwsSolutions-ECS2',
      reason:
        'The environment holds non-secret settings only (host names, ports, URLs, flags); every secret is injected by ECS from Secrets Manager through `secrets`, and a test fails if a secret-marked variable appears in the environment.',
    });
  }

  /**
   * Acknowledges what every task's roles share: the inline default policies CDK writes, and the
   * execution role's `ecr:GetAuthorizationToken`, which has no resource-level permission. Call it once
   * every grant has been made.
   */
  public acknowledgeRolePolicies(): void {
    const inline =
      'The default policy CDK writes inline in this one task role or execution role: it cannot be attached to any other principal, changes only with this stack, and each statement names the resources of this one service (its secrets, log group, image repository, bucket).';
    for (const role of [this.taskRole, this.taskDefinition.obtainExecutionRole()]) {
      const policy = role.node.tryFindChild('DefaultPolicy')?.node.defaultChild;
      if (policy !== undefined) acknowledge(policy, ...nistAndHipaa('IAMNoInlinePolicy', inline));
    }
    const taskPolicy = this.taskRole.node.tryFindChild('DefaultPolicy')?.node.defaultChild;
    if (this.runtime.execLogGroup !== undefined && taskPolicy !== undefined) {
      acknowledge(taskPolicy, {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'ECS Exec (enableExec=true, for incidents): the ssmmessages channel actions and logs:DescribeLogGroups support no resource-level permission; sessions are KMS-encrypted and recorded in the exec log group, and ecs:ExecuteCommand stays with the operators IAM grants it to.',
      });
      acknowledgeGrantedResource(
        taskPolicy,
        Stack.of(this).formatArn({
          service: 'logs',
          resource: 'log-group',
          resourceName: `${this.runtime.execLogGroup.logGroupName}:*`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
        'ECS Exec writes one log stream per session, named at run time, into the one exec log group of this cluster (encrypted with the logs key).',
      );
    }
    const execution = this.taskDefinition.obtainExecutionRole().node.tryFindChild('DefaultPolicy')?.node.defaultChild;
    if (execution !== undefined) {
      acknowledge(execution, {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'ecr:GetAuthorizationToken supports no resource-level permission (it returns a registry login token); the image pull itself is limited to the asset repository, and the execution role can be assumed only by ECS tasks of this account.',
      });
      if (this.guardDutyAgent !== undefined) {
        acknowledgeGrantedResource(
          execution,
          this.guardDutyAgent,
          "GuardDuty's Fargate agent (guardDuty=true), which ECS pulls with this role: GuardDuty publishes it in a repository of that one name in an AWS account of its own per region, so the account is a wildcard; pull actions only, of that repository name, in this region.",
        );
      }
    }
  }
}

export interface DifyServiceProps extends DifyTaskProps {
  /** Register `<name>.dify.internal`. @default false - not reachable by name */
  readonly discoverable?: boolean;
  /**
   * `rolling`: start new tasks before stopping old ones, so the service keeps serving.
   * `singleton`: never two at once (Celery beat): stop the old task, then start the new one.
   */
  readonly deployment: 'rolling' | 'singleton';
  /** Run on Fargate Spot. @default false - on-demand Fargate */
  readonly spot?: boolean;
}

/** A long-running Dify service: a `DifyTask` run by ECS, with rollback on a failed deployment. */
export class DifyService extends DifyTask {
  public readonly service: ecs.FargateService;

  constructor(scope: Construct, id: string, props: DifyServiceProps) {
    super(scope, id, props);
    const singleton = props.deployment === 'singleton';
    this.service = new ecs.FargateService(this, 'Service', {
      cluster: props.runtime.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: props.sizing.minTasks,
      minHealthyPercent: singleton ? 0 : 100,
      maxHealthyPercent: singleton ? 100 : 200,
      circuitBreaker: { enable: true, rollback: true },
      securityGroups: [this.securityGroup],
      vpcSubnets: props.network.privateSubnets,
      assignPublicIp: false,
      enableExecuteCommand: props.runtime.execEnabled,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
      capacityProviderStrategies: props.spot === true ? [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }] : undefined,
      cloudMapOptions:
        props.discoverable === true
          ? {
              cloudMapNamespace: props.runtime.namespace,
              name: props.name,
              dnsRecordType: servicediscovery.DnsRecordType.A,
              dnsTtl: DNS_TTL,
            }
          : undefined,
    });
  }
}
