import { Duration } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import { Construct } from 'constructs';
import { encryptedLogGroup, type LogSettings } from '../log-group';
import type { Network } from '../network';

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
}

/**
 * The ECS side of the platform: one Fargate cluster with Container Insights, and a private DNS
 * namespace in which every service registers an A record per task.
 *
 * Cloud Map DNS rather than Service Connect: the one-off migration task, which is not a service,
 * must reach the SSRF proxy by name too, and the LLM gateway must see its callers' own addresses
 * (Service Connect's proxy would replace them with its own) to enforce per-client source networks.
 */
export class EcsRuntime extends Construct {
  public readonly cluster: ecs.Cluster;
  public readonly namespace: servicediscovery.PrivateDnsNamespace;
  public readonly execEnabled: boolean;
  /** Where ECS Exec sessions are recorded, when Exec is on. */
  public readonly execLogGroup?: logs.LogGroup;

  constructor(scope: Construct, id: string, props: EcsRuntimeProps) {
    super(scope, id);
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
    this.namespace = new servicediscovery.PrivateDnsNamespace(this, 'Namespace', {
      name: SERVICE_NAMESPACE,
      vpc: props.network.vpc,
      description: 'Dify services, one A record per healthy task',
    });
  }

  /** How long a task's DNS record may be cached: short, so a replaced task stops receiving calls quickly. */
  public static readonly DNS_TTL = Duration.seconds(10);
}
