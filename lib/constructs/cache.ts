import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { CacheSizing } from '../config/sizing';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { noAutomaticRotation } from './app-secrets';
import { encryptedLogGroup, type LogSettings } from './log-group';
import type { Network } from './network';

export interface CacheProps {
  readonly network: Network;
  readonly sizing: CacheSizing;
  /** Encrypts the cache at rest. */
  readonly dataKey: kms.IKey;
  /** Encrypts the AUTH token secret. */
  readonly secretsKey: kms.IKey;
  readonly logs: LogSettings;
}

/** Redis-compatible port; Dify, Celery and the plugin daemon all assume it. */
export const CACHE_PORT = 6379;

/**
 * A Valkey replication group for Dify's cache, locks, pub/sub and Celery broker, in the isolated subnets.
 *
 * Cluster mode is off, because Celery's Redis transport needs a single keyspace. Data is encrypted at
 * rest with the data key, TLS is required in transit, and clients authenticate with an AUTH token
 * that CloudFormation generates into Secrets Manager and hands to ElastiCache as a dynamic reference,
 * so the token never appears in the template.
 */
export class Cache extends Construct implements ec2.IConnectable {
  public readonly replicationGroup: elasticache.CfnReplicationGroup;
  public readonly connections: ec2.Connections;
  /** The AUTH token (a plain string secret). */
  public readonly authToken: secretsmanager.Secret;
  private readonly nodes: number;

  constructor(scope: Construct, id: string, props: CacheProps) {
    super(scope, id);
    const { sizing, network } = props;
    this.nodes = sizing.nodes;
    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: network.vpc,
      description: 'ElastiCache Valkey: 6379 from the app security groups only',
      allowAllOutbound: false,
    });
    this.connections = new ec2.Connections({ securityGroups: [securityGroup], defaultPort: ec2.Port.tcp(CACHE_PORT) });

    const subnetGroup = new elasticache.CfnSubnetGroup(this, 'SubnetGroup', {
      description: 'Dify cache: isolated subnets',
      subnetIds: network.vpc.selectSubnets(network.isolatedSubnets).subnetIds,
    });

    this.authToken = new secretsmanager.Secret(this, 'AuthToken', {
      description: 'Dify ElastiCache AUTH token',
      encryptionKey: props.secretsKey,
      // ElastiCache accepts 16 to 128 printable characters without @, " or /; alphanumerics also keep
      // the token safe inside the rediss:// broker URL.
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(
      this.authToken.node.defaultChild!,
      ...noAutomaticRotation(
        'A Secrets Manager rotation cannot change an ElastiCache AUTH token without dropping clients; the operator rotates it with ElastiCache’s two-token ROTATE then SET strategy and redeploys its consumers in between, so nothing drops (README: Rotating secrets).',
      ),
    );

    const slowLog = encryptedLogGroup(
      this,
      'SlowLogGroup',
      { ...props.logs, retention: sizing.logRetention },
      { suffix: 'cache/slow-log' },
    );
    const engineLog = encryptedLogGroup(
      this,
      'EngineLogGroup',
      { ...props.logs, retention: sizing.logRetention },
      { suffix: 'cache/engine-log' },
    );

    this.replicationGroup = new elasticache.CfnReplicationGroup(this, 'Resource', {
      replicationGroupDescription: 'Dify cache, locks and Celery broker',
      engine: 'valkey',
      engineVersion: '8.0',
      cacheNodeType: sizing.nodeType,
      numCacheClusters: sizing.nodes,
      automaticFailoverEnabled: sizing.multiAz,
      multiAzEnabled: sizing.multiAz,
      port: CACHE_PORT,
      cacheSubnetGroupName: subnetGroup.ref,
      securityGroupIds: [securityGroup.securityGroupId],
      atRestEncryptionEnabled: true,
      kmsKeyId: props.dataKey.keyArn,
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      authToken: this.authToken.secretValue.unsafeUnwrap(),
      autoMinorVersionUpgrade: true,
      snapshotRetentionLimit: sizing.snapshotRetentionDays,
      snapshotWindow: '16:00-17:00',
      preferredMaintenanceWindow: 'sun:19:30-sun:20:30',
      logDeliveryConfigurations: [
        { logType: 'slow-log', logGroup: slowLog.logGroupName },
        { logType: 'engine-log', logGroup: engineLog.logGroupName },
      ].map(({ logType, logGroup }) => ({
        logType,
        logFormat: 'json',
        destinationType: 'cloudwatch-logs',
        destinationDetails: { cloudWatchLogsDetails: { logGroup } },
      })),
    });

    acknowledge(this.replicationGroup, {
      id: 'AwsSolutions-AEC5',
      reason:
        'Port 6379 is kept because Dify, Celery and the plugin daemon assume it; a non-default port is obscurity, not a control. The group sits in isolated subnets, its security group admits only the app security groups, and clients need TLS and the AUTH token.',
    });
    if (!sizing.multiAz) {
      const reason =
        'Profile dev only: a single cache node keeps dev cheap; losing it drops sessions and queued tasks but no durable data. Profile prod runs a replica in a second zone with automatic failover.';
      acknowledge(
        this.replicationGroup,
        { id: 'AwsSolutions-AEC4', reason },
        { id: 'NIST.800.53.R5-ElastiCacheRedisClusterMultiAZ', reason },
      );
    }
    if (sizing.snapshotRetentionDays < 15) {
      const reason =
        'Profile dev only: the cache holds sessions, locks and queued tasks that Dify recreates, and one day of snapshots is enough to debug; durable data lives in Aurora and S3. Profile prod keeps 15 days.';
      acknowledge(this.replicationGroup, ...nistAndHipaa('ElastiCacheRedisClusterAutomaticBackup', reason));
    }
  }

  /** The member nodes' cache cluster ids, which ElastiCache names `<group>-001`, `-002`, ... */
  public get nodeIds(): Array<{ index: number; id: string }> {
    return Array.from({ length: this.nodes }, (_, i) => ({
      index: i + 1,
      id: `${this.replicationGroup.ref}-${String(i + 1).padStart(3, '0')}`,
    }));
  }

  /** Host of the primary endpoint. */
  public get host(): string {
    return this.replicationGroup.attrPrimaryEndPointAddress;
  }
}
