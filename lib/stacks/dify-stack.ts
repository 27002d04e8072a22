import { Annotations, CfnOutput, Fn, Stack, type StackProps } from 'aws-cdk-lib';
import * as route53 from 'aws-cdk-lib/aws-route53';
import type { Construct } from 'constructs';
import { type Sizing, sizingFor } from '../config/sizing';
import type { Config } from '../config/schema';
import { configWarnings } from '../config/warnings';
import { AppSecrets } from '../constructs/app-secrets';
import { Cache } from '../constructs/cache';
import type { CloudFrontOptions } from '../constructs/cloudfront-front';
import { Edge, type EdgeDomain } from '../constructs/edge';
import { Database } from '../constructs/database';
import { DifyServices } from '../constructs/dify/dify-services';
import { Keys } from '../constructs/keys';
import { LlmGateway } from '../constructs/llm-gateway';
import type { LogSettings } from '../constructs/log-group';
import { Network } from '../constructs/network';
import { Observability } from '../constructs/observability';
import { Storage } from '../constructs/storage';
import { acknowledgeCdkProviders } from '../nag/cdk-providers';
import { logGroupOutput, OUTPUTS, type ServiceId, serviceNameOutput } from '../../contracts/stack-outputs';

export interface DifyStackProps extends StackProps {
  readonly config: Config;
  /**
   * The us-east-1 web ACL and certificate, and CloudFront's settings.
   * @default - none: only valid with `edge=alb` or `edge=internal`
   */
  readonly cloudFront?: CloudFrontOptions;
}

/**
 * The main stack. It only composes the components, in the order of the architecture: keys, network,
 * secrets, data tier, front door, Dify's services, observability.
 */
export class DifyStack extends Stack {
  public readonly sizing: Sizing;
  public readonly keys: Keys;
  public readonly network: Network;
  public readonly secrets: AppSecrets;
  public readonly database: Database;
  public readonly cache: Cache;
  public readonly storage: Storage;
  public readonly observability: Observability;
  public readonly edge: Edge;
  public readonly dify: DifyServices;
  public readonly gateway: LlmGateway;
  private readonly zones: string[];

  constructor(scope: Construct, id: string, props: DifyStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.sizing = sizingFor(config);
    // The region's first zones, resolved by CloudFormation at deploy time: never a context lookup, so
    // synth needs no credentials even with a concrete account and region, and never a hard-coded
    // zone name that does not exist in another account's mapping.
    this.zones = Array.from({ length: this.sizing.network.azCount }, (_, index) => Fn.select(index, Fn.getAzs()));

    const logGroupPrefix = `/dify/${this.stackName}/`;
    const clusterIdentifier = `${this.stackName.toLowerCase()}-aurora`;
    this.keys = new Keys(this, 'Keys', {
      logGroupPrefix,
      extraLogGroupPrefixes: [`/aws/rds/cluster/${clusterIdentifier}/`, `aws-waf-logs-${this.stackName}.`],
      removalPolicy: this.sizing.retention.removalPolicy,
    });
    const logs: LogSettings = {
      prefix: logGroupPrefix,
      key: this.keys.logs,
      retention: this.sizing.retention.logRetention,
      removalPolicy: this.sizing.retention.removalPolicy,
    };

    this.network = new Network(this, 'Network', {
      cidr: config.vpcCidr,
      sizing: this.sizing.network,
      logs,
      bedrock: config.bedrockModels.length > 0,
      exec: config.enableExec,
    });
    this.secrets = new AppSecrets(this, 'AppSecrets', {
      key: this.keys.secrets,
      removalPolicy: this.sizing.retention.removalPolicy,
    });
    this.database = new Database(this, 'Database', {
      network: this.network,
      sizing: this.sizing.database,
      dataKey: this.keys.data,
      secretsKey: this.keys.secrets,
      logs,
      clusterIdentifier,
    });
    this.cache = new Cache(this, 'Cache', {
      network: this.network,
      sizing: this.sizing.cache,
      dataKey: this.keys.data,
      secretsKey: this.keys.secrets,
      logs,
    });
    this.storage = new Storage(this, 'Storage', {
      sizing: this.sizing.storage,
      dataKey: this.keys.data,
      cloudFrontLogs: config.edge === 'cloudfront',
    });
    // Through the S3 gateway endpoint, only the stack's own bucket (and the platform's needs).
    this.network.restrictS3Endpoint([this.storage.bucket, this.storage.pluginBucket]);
    this.edge = new Edge(this, 'Edge', {
      mode: config.edge,
      network: this.network,
      logBucket: this.storage.logBucket,
      domain: this.domain(config),
      rules: {
        allowedIpv4Cidrs: config.allowedIpv4Cidrs,
        allowedIpv6Cidrs: config.allowedIpv6Cidrs,
        rateLimit: config.wafRateLimit,
        anonymousIpList: config.wafAnonymousIpList,
      },
      deletionProtection: this.sizing.edge.deletionProtection,
      logs,
      cloudFront: props.cloudFront,
    });
    this.dify = new DifyServices(this, 'Dify', {
      network: this.network,
      logs,
      database: this.database,
      cache: this.cache,
      storage: this.storage,
      secrets: this.secrets,
      edge: this.edge,
      sizing: this.sizing.services,
      versions: { dify: config.difyVersion, pluginDaemon: config.pluginDaemonVersion, sandbox: config.sandboxVersion },
      vpcCidr: config.vpcCidr,
      uploadFileSizeLimitMb: config.uploadFileSizeLimitMb,
      pipMirrorUrl: config.pipMirrorUrl,
      bedrockModels: config.bedrockModels,
      execKey: config.enableExec ? this.keys.logs : undefined,
    });
    this.gateway = new LlmGateway(this, 'LlmGateway', {
      runtime: this.dify.runtime,
      network: this.network,
      logs,
      cache: this.cache,
      secretsKey: this.keys.secrets,
      sizing: this.sizing.services.gateway,
      clients: [this.dify.api, this.dify.worker, this.dify.pluginDaemon],
      removalPolicy: this.sizing.retention.removalPolicy,
      providerPrivateCidrs: config.gatewayProviderPrivateCidrs,
    });
    this.observability = new Observability(this, 'Observability', {
      key: this.keys.logs,
      alarmEmail: config.alarmEmail,
    });
    this.addDataTierAlarms();

    this.addOutputs();
    for (const warning of configWarnings(config)) {
      Annotations.of(this).addWarningV2(warning.id, warning.message);
    }
    acknowledgeCdkProviders(this);
  }

  private domain(config: Config): EdgeDomain | undefined {
    if (config.domainName === undefined) return undefined;
    const zone =
      config.hostedZoneId !== undefined && config.hostedZoneName !== undefined
        ? route53.HostedZone.fromHostedZoneAttributes(this, 'HostedZone', {
            hostedZoneId: config.hostedZoneId,
            zoneName: config.hostedZoneName,
          })
        : undefined;
    return { name: config.domainName, zone, certificateArn: config.certificateArn };
  }

  public override get availabilityZones(): string[] {
    return this.zones;
  }

  private addDataTierAlarms(): void {
    const clusterId = { DBClusterIdentifier: this.database.cluster.clusterIdentifier };
    this.observability.alarm('DatabaseCpu', Observability.metric('AWS/RDS', 'CPUUtilization', clusterId), {
      threshold: 80,
      description: 'Aurora CPU at or above 80% for 15 minutes',
    });
    this.observability.alarm('DatabaseCapacity', Observability.metric('AWS/RDS', 'ACUUtilization', clusterId), {
      threshold: 90,
      description: 'Aurora Serverless v2 at or above 90% of its maximum ACU for 15 minutes: raise the maximum',
    });
    // ElastiCache publishes engine metrics per node (CacheClusterId `<group>-001`, `-002`, ...),
    // not per replication group, so each node gets its own alarms.
    for (const node of this.cache.nodeIds) {
      const cacheId = { CacheClusterId: node.id };
      this.observability.alarm(
        `CacheCpu${node.index}`,
        Observability.metric('AWS/ElastiCache', 'EngineCPUUtilization', cacheId),
        {
          threshold: 80,
          description: `Valkey node ${node.index} engine CPU at or above 80% for 15 minutes`,
        },
      );
      this.observability.alarm(
        `CacheMemory${node.index}`,
        Observability.metric('AWS/ElastiCache', 'DatabaseMemoryUsagePercentage', cacheId),
        {
          threshold: 85,
          description: `Valkey node ${node.index} memory at or above 85% for 15 minutes: Celery tasks may be evicted`,
        },
      );
    }
  }

  /** ARNs and names the operator tooling reads; never a secret value. */
  private addOutputs(): void {
    const outputs: Record<string, string> = {
      [OUTPUTS.difyUrl]: this.edge.url,
      [OUTPUTS.loadBalancerArn]: this.edge.loadBalancer.loadBalancerArn,
      ...(this.edge.cloudFront ? { [OUTPUTS.distributionId]: this.edge.cloudFront.distribution.distributionId } : {}),
      [OUTPUTS.vpcId]: this.network.vpc.vpcId,
      [OUTPUTS.storageBucketName]: this.storage.bucket.bucketName,
      [OUTPUTS.pluginBucketName]: this.storage.pluginBucket.bucketName,
      [OUTPUTS.logBucketName]: this.storage.logBucket.bucketName,
      [OUTPUTS.alarmTopicArn]: this.observability.topic.topicArn,
      [OUTPUTS.databaseClusterArn]: this.database.cluster.clusterArn,
      [OUTPUTS.databaseMasterSecretArn]: this.database.cluster.secret!.secretArn,
      [OUTPUTS.databaseAppSecretArn]: this.database.appSecret.secretArn,
      [OUTPUTS.databasePluginSecretArn]: this.database.pluginSecret.secretArn,
      // The CLI changes role passwords through it, from inside the VPC (the Data API is off).
      [OUTPUTS.databaseBootstrapFunctionName]: this.database.bootstrap.function.functionName,
      [OUTPUTS.cacheReplicationGroupId]: this.cache.replicationGroup.ref,
      // One ElastiCache user per component: the secret (user name and password) and the user id.
      [OUTPUTS.cacheDifyUserSecretArn]: this.cache.users.dify.secret.secretArn,
      [OUTPUTS.cachePluginDaemonUserSecretArn]: this.cache.users.pluginDaemon.secret.secretArn,
      [OUTPUTS.cacheGatewayUserSecretArn]: this.cache.users.gateway.secret.secretArn,
      [OUTPUTS.cacheDifyUserId]: this.cache.users.dify.user.ref,
      [OUTPUTS.cachePluginDaemonUserId]: this.cache.users.pluginDaemon.user.ref,
      [OUTPUTS.cacheGatewayUserId]: this.cache.users.gateway.user.ref,
      [OUTPUTS.difySecretKeySecretArn]: this.secrets.secretKey.secretArn,
      [OUTPUTS.sandboxApiKeySecretArn]: this.secrets.sandboxApiKey.secretArn,
      [OUTPUTS.pluginDaemonKeySecretArn]: this.secrets.pluginDaemonKey.secretArn,
      [OUTPUTS.pluginInnerApiKeySecretArn]: this.secrets.pluginInnerApiKey.secretArn,
      // Read it (aws secretsmanager get-secret-value) to open /install; it is never printed here.
      [OUTPUTS.initPasswordSecretArn]: this.secrets.initPassword.secretArn,
      [OUTPUTS.dataKeyArn]: this.keys.data.keyArn,
      [OUTPUTS.secretsKeyArn]: this.keys.secrets.keyArn,
      [OUTPUTS.logsKeyArn]: this.keys.logs.keyArn,
      [OUTPUTS.clusterName]: this.dify.runtime.cluster.clusterName,
      // For one-off operator tasks (dify-aws revoke-sessions): the api image with Valkey access.
      [OUTPUTS.migrationTaskFamily]: this.dify.migrationTask.taskDefinition.family,
      [OUTPUTS.migrationTaskSecurityGroupId]: this.dify.migrationTask.securityGroup.securityGroupId,
      [OUTPUTS.privateSubnetIds]: Fn.join(',', this.network.vpc.selectSubnets(this.network.privateSubnets).subnetIds),
      [OUTPUTS.profile]: this.sizing.edge.deletionProtection ? 'prod' : 'dev',
      [OUTPUTS.gatewayUrl]: this.gateway.url,
      [OUTPUTS.gatewayServiceName]: this.gateway.service.service.serviceName,
      [OUTPUTS.gatewayLogGroupName]: this.gateway.service.logGroup.logGroupName,
      [OUTPUTS.gatewayProviderKeysSecretArn]: this.gateway.providerKeys.secretArn,
      [OUTPUTS.gatewayClientsSecretArn]: this.gateway.clients.secretArn,
      [OUTPUTS.gatewayPepperSecretArn]: this.gateway.pepper.secretArn,
      ...Object.fromEntries(
        [
          this.dify.api,
          this.dify.worker,
          this.dify.beat,
          this.dify.web,
          this.dify.sandbox,
          this.dify.pluginDaemon,
          this.dify.ssrfProxy,
        ].map((task) => [serviceNameOutput(task.node.id as ServiceId), task.service.serviceName]),
      ),
      ...Object.fromEntries(Object.entries(this.dify.logGroups).map(([id, name]) => [logGroupOutput(id), name])),
    };
    for (const [id, value] of Object.entries(outputs)) new CfnOutput(this, id, { value });
  }
}
