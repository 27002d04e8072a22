import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { DatabaseSizing } from '../config/sizing';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { rotatedOnSchedule } from './app-secrets';
import { DatabaseBootstrap } from './database-bootstrap';
import { encryptedLogGroup, type LogSettings } from './log-group';
import type { Network } from './network';
import { OUTPUTS } from '../../contracts/stack-outputs';
import { output } from './outputs';
import { Observability } from './observability';

export interface DatabaseProps {
  readonly network: Network;
  readonly sizing: DatabaseSizing;
  /** Encrypts storage and Performance Insights. */
  readonly dataKey: kms.IKey;
  /** Encrypts the master and role secrets. */
  readonly secretsKey: kms.IKey;
  readonly logs: LogSettings;
  /**
   * Fixed cluster identifier, so that the PostgreSQL log group can exist (encrypted, with retention)
   * before RDS would create it unencrypted.
   */
  readonly clusterIdentifier: string;
  /** Where the database's alarms notify. */
  readonly alarms: Observability;
}

/** PostgreSQL's port; Dify and the plugin daemon assume it. */
export const DATABASE_PORT = 5432;

/** Characters left out of generated database passwords: they break libpq and SQLAlchemy URLs. */
export const PASSWORD_EXCLUDED_CHARACTERS = ` "'@/\\%:?#[]{}<>^\`|~&+=,;`;

/**
 * The Aurora writer's free local storage at or below which it alarms. Serverless v2's local storage
 * scales with capacity; 1 GiB is left even at the minimum ACU in normal use (not yet measured on a
 * live cluster at 0.5 ACU).
 */
export const LOCAL_STORAGE_ALARM_BYTES = 1024 ** 3;

/** Engine for every variant: PostgreSQL 16, whose 16.3+ minor versions let Serverless v2 pause at 0 ACU. */
export const ENGINE = rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_9 });

/**
 * Aurora PostgreSQL Serverless v2 with pgvector, in the isolated subnets.
 *
 * - Storage and Performance Insights are encrypted with the data key; TLS is forced
 *   (`rds.force_ssl=1`) and passwords are stored as SCRAM verifiers.
 * - The master credentials are generated into Secrets Manager and rotate every 30 days. Dify never
 *   uses them: a deploy-time bootstrap creates one login role per purpose (`dify` for the api,
 *   worker and beat; `dify_plugin` for the plugin daemon), each with its own generated secret and
 *   its own database.
 * - Nothing reaches port 5432 until a consumer is allowed through `connections`.
 */
export class Database extends Construct implements ec2.IConnectable {
  public readonly cluster: rds.DatabaseCluster;
  public readonly connections: ec2.Connections;
  /** Secret of the `dify` role (api, worker, beat), with host, port and dbname. */
  public readonly appSecret: rds.DatabaseSecret;
  /** Secret of the `dify_plugin` role (plugin daemon), with host, port and dbname. */
  public readonly pluginSecret: rds.DatabaseSecret;
  /** Database names Dify's components use. */
  public static readonly APP_DATABASE = 'dify';
  /** The deploy-time bootstrap; its function also changes role passwords for the CLI. */
  public readonly bootstrap: DatabaseBootstrap;
  public static readonly PLUGIN_DATABASE = 'dify_plugin';

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const { sizing, network } = props;

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: network.vpc,
      description: 'Aurora PostgreSQL: 5432 from the app security groups only',
      allowAllOutbound: false,
    });
    const parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine: ENGINE,
      description: 'Dify: TLS only, SCRAM passwords',
      parameters: {
        'rds.force_ssl': '1',
        password_encryption: 'scram-sha-256',
        // Connection logging gives the audit trail HIPAA and NIST AU-2 ask for. Statement logging
        // stays at its default (none): a DDL log would record role passwords.
        log_connections: '1',
        log_disconnections: '1',
      },
    });
    const postgresLogGroup = encryptedLogGroup(
      this,
      'PostgresLogGroup',
      { ...props.logs, retention: sizing.logRetention },
      {
        exact: `/aws/rds/cluster/${props.clusterIdentifier}/postgresql`,
      },
    );

    const instanceProps: rds.ServerlessV2ClusterInstanceProps = {
      autoMinorVersionUpgrade: true,
      publiclyAccessible: false,
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: props.dataKey,
      performanceInsightRetention: rds.PerformanceInsightRetention.DEFAULT,
    };
    this.cluster = new rds.DatabaseCluster(this, 'Resource', {
      engine: ENGINE,
      clusterIdentifier: props.clusterIdentifier,
      credentials: rds.Credentials.fromGeneratedSecret('dify_admin', {
        encryptionKey: props.secretsKey,
        excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
      }),
      writer: rds.ClusterInstance.serverlessV2('Writer', instanceProps),
      readers: Array.from({ length: sizing.readers }, (_, index) =>
        // A reader that scales with the writer can take over without a cold start.
        rds.ClusterInstance.serverlessV2(`Reader${index + 1}`, { ...instanceProps, scaleWithWriter: true }),
      ),
      serverlessV2MinCapacity: sizing.minCapacity,
      serverlessV2MaxCapacity: sizing.maxCapacity,
      vpc: network.vpc,
      vpcSubnets: network.isolatedSubnets,
      securityGroups: [securityGroup],
      storageEncrypted: true,
      storageEncryptionKey: props.dataKey,
      parameterGroup,
      iamAuthentication: true,
      // No Data API: with it, anyone holding rds-data:ExecuteStatement and the master secret could
      // run SQL as master from anywhere. Everything of ours that runs SQL connects over 5432 from
      // inside the VPC (the bootstrap function, which the CLI also invokes to change passwords).
      enableDataApi: false,
      cloudwatchLogsExports: ['postgresql'],
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: props.dataKey,
      performanceInsightRetention: rds.PerformanceInsightRetention.DEFAULT,
      backup: { retention: sizing.backupRetention, preferredWindow: '17:00-18:00' },
      preferredMaintenanceWindow: 'sun:18:30-sun:19:30',
      port: DATABASE_PORT,
      // Enhanced monitoring: OS-level metrics every minute (NIST AU-12, CA-7).
      monitoringInterval: Duration.seconds(60),
      deletionProtection: sizing.deletionProtection,
      removalPolicy: sizing.removalPolicy,
      copyTagsToSnapshot: true,
    });
    this.cluster.node.addDependency(postgresLogGroup);
    // The cluster's own `connections` carries the port as a token; a literal port keeps every
    // ingress rule readable in `cdk diff` and checkable by cdk-nag.
    this.connections = new ec2.Connections({
      securityGroups: [securityGroup],
      defaultPort: ec2.Port.tcp(DATABASE_PORT),
    });

    const master = this.cluster.secret!;
    const rotationSecurityGroup = new ec2.SecurityGroup(this, 'RotationSecurityGroup', {
      vpc: network.vpc,
      description: 'Master secret rotation: PostgreSQL to the cluster, HTTPS to the Secrets Manager endpoint',
      allowAllOutbound: false,
    });
    this.connections.allowDefaultPortFrom(rotationSecurityGroup, 'Master secret rotation');
    network.allowEndpoints(rotationSecurityGroup, 'Master secret rotation', ['SecretsManager']);
    master.addRotationSchedule('Rotation', {
      automaticallyAfter: Duration.days(30),
      // Rotating at creation would race the bootstrap, which authenticates with this secret while
      // the rotation may hold it half-changed; the first rotation comes 30 days in.
      rotateImmediatelyOnUpdate: false,
      hostedRotation: secretsmanager.HostedRotation.postgreSqlSingleUser({
        vpc: network.vpc,
        vpcSubnets: network.privateSubnets,
        securityGroups: [rotationSecurityGroup],
        excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
      }),
    });

    this.appSecret = this.roleSecret('AppUserSecret', 'dify', Database.APP_DATABASE, props.secretsKey);
    this.pluginSecret = this.roleSecret('PluginUserSecret', 'dify_plugin', Database.PLUGIN_DATABASE, props.secretsKey);

    this.bootstrap = new DatabaseBootstrap(this, 'Bootstrap', {
      cluster: this.cluster,
      database: this,
      masterSecret: master,
      roles: [
        { secret: this.appSecret, database: Database.APP_DATABASE },
        { secret: this.pluginSecret, database: Database.PLUGIN_DATABASE },
      ],
      extensions: [{ database: Database.APP_DATABASE, name: 'vector' }],
      network,
      logs: props.logs,
    });

    this.acknowledgeFindings(sizing);
    const clusterId = { DBClusterIdentifier: this.cluster.clusterIdentifier };
    props.alarms.watch(this, 'DatabaseCpu', {
      signal: 'data.aurora-cpu',
      title: 'Aurora CPU %',
      metric: Observability.metric('AWS/RDS', 'CPUUtilization', clusterId),
      threshold: 80,
      description:
        'Aurora CPU at or above 80% for 15 minutes. Check first: Performance Insights top SQL, then the api and worker load.',
    });
    props.alarms.watch(this, 'DatabaseCapacity', {
      signal: 'data.aurora-acu',
      title: 'Aurora ACU % of maximum',
      metric: Observability.metric('AWS/RDS', 'ACUUtilization', clusterId),
      threshold: 90,
      description:
        'Aurora Serverless v2 at or above 90% of its maximum ACU for 15 minutes. Check first: what the load is (Performance Insights), then raise the maximum (sizing profile).',
    });
    // Aurora PostgreSQL sets max_connections to LEAST(DBInstanceClassMemory / 9531392, 5000), and
    // Serverless v2 derives the memory from the maximum capacity, 2 GiB per ACU.
    const maxConnections = Math.min(5000, Math.floor((sizing.maxCapacity * 2 * 1024 ** 3) / 9_531_392));
    props.alarms.watch(this, 'DatabaseConnections', {
      signal: 'data.aurora-connections',
      title: 'Aurora connections',
      metric: Observability.metric('AWS/RDS', 'DatabaseConnections', clusterId).with({ statistic: 'Maximum' }),
      threshold: Math.floor(maxConnections * 0.8),
      description: `Aurora connections at or above 80% of max_connections (${maxConnections} at ${sizing.maxCapacity} ACU) for 15 minutes: new connections will soon be refused. Check first: which service holds them (pg_stat_activity by usename and application_name), then the api and worker task counts.`,
    });
    props.alarms.watch(this, 'DatabaseLocalStorage', {
      signal: 'data.aurora-free-storage',
      title: 'Aurora writer free local storage (bytes)',
      // The cluster volume grows by itself; the instance's local storage (temporary tables, sorts,
      // index builds such as pgvector's) does not, and a full one fails the query that needed it.
      metric: Observability.metric('AWS/RDS', 'FreeLocalStorage', { ...clusterId, Role: 'WRITER' }).with({
        statistic: 'Minimum',
      }),
      threshold: LOCAL_STORAGE_ALARM_BYTES,
      below: true,
      description: `The Aurora writer's free local storage was at or below ${LOCAL_STORAGE_ALARM_BYTES / 1024 ** 3} GiB for 15 minutes: large sorts, temporary tables or index builds (pgvector) fill it, and the query that needs more fails. Check first: the running queries' temp usage (pg_stat_activity, temp_files in pg_stat_database), then raise the minimum ACU (local storage scales with capacity).`,
    });
    if (sizing.readers > 0) {
      props.alarms.watch(this, 'DatabaseReplicaLag', {
        signal: 'data.aurora-replica-lag',
        title: 'Aurora replica lag (ms)',
        metric: Observability.metric('AWS/RDS', 'AuroraReplicaLagMaximum', clusterId).with({ statistic: 'Maximum' }),
        threshold: 5000,
        description:
          'The reader is five seconds or more behind the writer for 15 minutes: a failover now would start on stale data. Check first: the writer’s write load (Performance Insights) and the reader’s capacity.',
      });
    }
    output(this, OUTPUTS.databaseClusterArn, this.cluster.clusterArn);
    output(this, OUTPUTS.databaseMasterSecretArn, this.cluster.secret!.secretArn);
    output(this, OUTPUTS.databaseAppSecretArn, this.appSecret.secretArn);
    output(this, OUTPUTS.databasePluginSecretArn, this.pluginSecret.secretArn);
    // The CLI changes role passwords through it, from inside the VPC (the Data API is off).
    output(this, OUTPUTS.databaseBootstrapFunctionName, this.bootstrap.function.functionName);
  }

  private roleSecret(id: string, username: string, dbname: string, key: kms.IKey): rds.DatabaseSecret {
    const secret = new rds.DatabaseSecret(this, id, {
      username,
      dbname,
      encryptionKey: key,
      excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
    });
    // Adds host, port and engine, so the secret alone describes the connection.
    secret.attach(this.cluster);
    acknowledge(
      secret.node.defaultChild!,
      ...rotatedOnSchedule(
        `Alternating logins (${username} and ${username}_clone, which acts as ${username}): each rotation sets the password of the login no running task uses, then restarts the consumers, so no task holds a password the database refuses.`,
      ),
    );
    return secret;
  }

  private acknowledgeFindings(sizing: DatabaseSizing): void {
    const cluster = this.cluster.node.defaultChild!;
    acknowledge(this.cluster.node.findChild('MonitoringRole').node.defaultChild!, {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]',
      reason:
        'The AWS-maintained service-role policy for RDS enhanced monitoring; it allows writing OS metrics to the RDSOSMetrics log group only, and only the RDS monitoring service can assume this role.',
    });
    const backups = `Aurora's own continuous backups give point-in-time recovery for ${sizing.backupRetention.toDays()} days, encrypted with the data key; the instances hold no data of their own, so an AWS Backup plan would duplicate the cluster backups. Add the cluster to an organization backup plan for cross-account copies.`;
    for (const instance of this.cluster.node.children.filter(
      (c) => c.node.id === 'Writer' || c.node.id.startsWith('Reader'),
    )) {
      acknowledge(instance.node.defaultChild!, ...nistAndHipaa('RDSInBackupPlan', backups));
    }
    acknowledge(cluster, {
      id: 'AwsSolutions-RDS11',
      reason:
        'Port 5432 is kept because Dify and the plugin daemon assume it in places; a non-default port is obscurity, not a control. The cluster sits in isolated subnets and its security group admits only the app security groups.',
    });
    if (!sizing.deletionProtection) {
      const reason =
        'Profile dev only: deletion protection is off so that `cdk destroy` removes the dev database. Profile prod turns it on and snapshots on removal.';
      acknowledge(
        cluster,
        { id: 'AwsSolutions-RDS10', reason },
        ...nistAndHipaa('RDSInstanceDeletionProtectionEnabled', reason),
      );
    }
  }
}
