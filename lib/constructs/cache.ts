import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { CacheSizing } from '../config/sizing';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { rotatedOnSchedule } from './app-secrets';
import { encryptedLogGroup, type LogSettings } from './log-group';
import type { Network } from './network';
import { OUTPUTS, type OutputName } from '../../contracts/stack-outputs';
import { output } from './outputs';
import { deploymentName } from './deployment-name';
import { Observability } from './observability';

export interface CacheProps {
  readonly network: Network;
  readonly sizing: CacheSizing;
  /** Encrypts the cache at rest. */
  readonly dataKey: kms.IKey;
  /** Encrypts the AUTH token secret. */
  readonly secretsKey: kms.IKey;
  readonly logs: LogSettings;
  /** Where the cache's alarms notify. */
  readonly alarms: Observability;
}

/** Redis-compatible port; Dify, Celery and the plugin daemon all assume it. */
export const CACHE_PORT = 6379;

/** The components that talk to Valkey, each as its own ElastiCache RBAC user. */
export type CacheUserName = 'dify' | 'pluginDaemon' | 'gateway';

/**
 * Each user's user name and access string: the key patterns and commands it may use, as narrow as
 * the pinned releases' key formats allow (test/cache-acl.test.ts runs them on a real redis-server).
 *
 * - `dify` (api, worker, beat, migration): Dify 1.13.3 has no key prefix (its keys are
 *   `refresh_token:…`, `generate_task_…`, Celery's `_kombu.*` and queue lists, ...) and it uses
 *   SCAN, EVAL/EVALSHA, MULTI and pub/sub, so every key, but no dangerous command (FLUSHALL, KEYS,
 *   CONFIG, DEBUG, MONITOR, CLIENT KILL, ...).
 * - `pluginDaemon`: dify-plugin-daemon 0.5.3 prefixes every key with `plugin_daemon:`
 *   (pkg/utils/cache/redis.go serialKey) and publishes on `cluster-new-node-channel`; it uses no
 *   scripts. It cannot read Dify's sessions, Celery queues or cached provider credentials.
 * - `gateway`: our LLM gateway's rate-limit windows under `gw:rl:`, through its two Lua scripts
 *   (EVALSHA, falling back to EVAL) and the three commands they run, plus PING and INFO (ioredis's
 *   ready check, which tells a live server from a stalled one). Nothing else at all.
 */
export const CACHE_USERS: Record<CacheUserName, { readonly userName: string; readonly accessString: string }> = {
  dify: { userName: 'dify', accessString: 'on ~* &* +@all -@dangerous' },
  pluginDaemon: {
    userName: 'dify-plugin-daemon',
    accessString: 'on ~plugin_daemon:* resetchannels &cluster-new-node-channel +@all -@dangerous -@scripting',
  },
  gateway: {
    userName: 'llm-gateway',
    accessString: 'on ~gw:rl:* resetchannels -@all +ping +info +evalsha +eval +hmget +hincrby +pexpire',
  },
};

/**
 * A Valkey replication group for Dify's cache, locks, pub/sub and Celery broker, in the isolated subnets.
 *
 * Cluster mode is off, because Celery's Redis transport needs a single keyspace. Data is encrypted at
 * rest with the data key, TLS is required in transit, and each component authenticates as its own
 * RBAC user (`CACHE_USERS`), whose password CloudFormation generates into Secrets Manager and hands
 * to ElastiCache as a dynamic reference, so no password appears in the template.
 */
export class Cache extends Construct implements ec2.IConnectable {
  public readonly replicationGroup: elasticache.CfnReplicationGroup;
  public readonly connections: ec2.Connections;
  /** Each component's ElastiCache user and the secret with its user name and password. */
  public readonly users: Readonly<Record<CacheUserName, CacheUser>>;
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

    const prefix = deploymentName(this).toLowerCase();
    // ElastiCache requires a user named `default` in every group; ours is switched off and may do
    // nothing, so a client without a user name is refused.
    const defaultUser = new elasticache.CfnUser(this, 'DefaultUser', {
      engine: 'valkey',
      userId: `${prefix}-default-off`,
      userName: 'default',
      accessString: 'off -@all',
      authenticationMode: { Type: 'no-password-required' },
    });
    const users = {} as Record<CacheUserName, CacheUser>;
    for (const [name, spec] of Object.entries(CACHE_USERS) as Array<[CacheUserName, (typeof CACHE_USERS)['dify']]>) {
      const secret = new secretsmanager.Secret(this, `${pascal(name)}UserSecret`, {
        description: `Dify ElastiCache user ${spec.userName} (username and password)`,
        encryptionKey: props.secretsKey,
        // ElastiCache takes 16 to 128 printable characters without @, " or /; alphanumerics also keep
        // the password safe inside the rediss:// broker URL.
        generateSecretString: {
          secretStringTemplate: JSON.stringify({ username: spec.userName }),
          generateStringKey: 'password',
          passwordLength: 64,
          excludePunctuation: true,
          includeSpace: false,
        },
        removalPolicy: RemovalPolicy.DESTROY,
      });
      acknowledge(
        secret.node.defaultChild!,
        ...rotatedOnSchedule(
          'The ElastiCache user accepts the old and the new password while exactly its consumers restart, then only the new one, so no client is refused.',
        ),
      );
      const user = new elasticache.CfnUser(this, `${pascal(name)}User`, {
        engine: 'valkey',
        userId: `${prefix}-${spec.userName}`,
        userName: spec.userName,
        accessString: spec.accessString,
        authenticationMode: {
          Type: 'password',
          Passwords: [secret.secretValueFromJson('password').unsafeUnwrap()],
        },
      });
      users[name] = { secret, user, userName: spec.userName };
    }
    this.users = users;
    const userGroup = new elasticache.CfnUserGroup(this, 'UserGroup', {
      engine: 'valkey',
      userGroupId: `${prefix}-users`,
      userIds: [defaultUser.ref, ...Object.values(users).map((u) => u.user.ref)],
    });

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
      // RBAC: one user per component instead of one AUTH token shared by all.
      userGroupIds: [userGroup.ref],
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

    // ElastiCache publishes engine metrics per node (CacheClusterId `<group>-001`, `-002`, ...),
    // not per replication group, so each node gets its own alarms.
    for (const node of this.nodeIds) {
      const cacheId = { CacheClusterId: node.id };
      props.alarms.watch(this, `CacheCpu${node.index}`, {
        signal: 'data.valkey-cpu',
        title: `Valkey node ${node.index} engine CPU %`,
        metric: Observability.metric('AWS/ElastiCache', 'EngineCPUUtilization', cacheId),
        threshold: 80,
        description: `Valkey node ${node.index} engine CPU at or above 80% for 15 minutes. Check first: the worker queue length and the gateway's request rate.`,
      });
      props.alarms.watch(this, `CacheMemory${node.index}`, {
        signal: 'data.valkey-memory',
        title: `Valkey node ${node.index} memory %`,
        metric: Observability.metric('AWS/ElastiCache', 'DatabaseMemoryUsagePercentage', cacheId),
        threshold: 85,
        description: `Valkey node ${node.index} memory at or above 85% for 15 minutes: Celery tasks may be evicted. Check first: the Celery queue backlog (worker logs), then the node size.`,
      });
      props.alarms.watch(this, `CacheEvictions${node.index}`, {
        signal: 'data.valkey-evictions',
        title: `Valkey node ${node.index} evictions`,
        metric: Observability.metric('AWS/ElastiCache', 'Evictions', cacheId).with({ statistic: 'Sum' }),
        threshold: 1,
        periods: 1,
        description: `Valkey node ${node.index} evicted keys for lack of memory: queued Celery tasks, locks or sessions were lost. Check first: which keys grow (the Celery backlog in the worker logs), then the node size.`,
      });
      if (node.index > 1) {
        props.alarms.watch(this, `CacheReplicationLag${node.index}`, {
          signal: 'data.valkey-replication-lag',
          title: `Valkey node ${node.index} replication lag (s)`,
          metric: Observability.metric('AWS/ElastiCache', 'ReplicationLag', cacheId).with({ statistic: 'Maximum' }),
          threshold: 30,
          description: `Valkey replica ${node.index} is 30 seconds or more behind the primary for 15 minutes: a failover now would lose those writes. Check first: the primary's engine CPU and network, then the node size.`,
        });
      }
    }
    output(this, OUTPUTS.cacheReplicationGroupId, this.replicationGroup.ref);
    // One ElastiCache user per component: the secret (user name and password) and the user id.
    const userOutputs: Record<CacheUserName, { secret: OutputName; id: OutputName }> = {
      dify: { secret: OUTPUTS.cacheDifyUserSecretArn, id: OUTPUTS.cacheDifyUserId },
      pluginDaemon: { secret: OUTPUTS.cachePluginDaemonUserSecretArn, id: OUTPUTS.cachePluginDaemonUserId },
      gateway: { secret: OUTPUTS.cacheGatewayUserSecretArn, id: OUTPUTS.cacheGatewayUserId },
    };
    for (const [name, names] of Object.entries(userOutputs) as Array<[CacheUserName, (typeof userOutputs)['dify']]>) {
      output(this, names.secret, this.users[name].secret.secretArn);
      output(this, names.id, this.users[name].user.ref);
    }

    acknowledge(this.replicationGroup, {
      id: 'AwsSolutions-AEC5',
      reason:
        'Port 6379 is kept because Dify, Celery and the plugin daemon assume it; a non-default port is obscurity, not a control. The group sits in isolated subnets, its security group admits only the app security groups, and each client needs TLS and its own RBAC user’s password.',
    });
    acknowledge(this.replicationGroup, {
      id: 'AwsSolutions-AEC6',
      reason:
        'Clients authenticate as ElastiCache RBAC users (a user group with one user per component, each with its own generated password and a narrow access string, the default user switched off), which is stronger than the single AUTH token this rule looks for; ElastiCache does not allow an AUTH token together with a user group.',
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

/** One component's ElastiCache user. */
export interface CacheUser {
  /** JSON `{ username, password }`. */
  readonly secret: secretsmanager.Secret;
  readonly user: elasticache.CfnUser;
  readonly userName: string;
}

const pascal = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);
