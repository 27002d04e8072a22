import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Config } from './schema';

/** Availability zones per profile: two keep dev cheap, three let prod lose a zone and keep a quorum. */
export const AZ_COUNT = { dev: 2, prod: 3 } as const;

/** What a profile decides for the network. */
export interface NetworkSizing {
  /** Availability zones: 2 in dev, 3 in prod. */
  readonly azCount: number;
  /**
   * NAT gateways: one in dev (cost), one per zone in prod (a zone outage keeps egress); none with
   * egress=none, where the private subnets have no route out of the VPC at all.
   */
  readonly natGateways: number;
  /**
   * Interface endpoints for AWS APIs, so that secrets and images never cross the NAT; always with
   * egress=none, where they are the only way to KMS and Bedrock.
   */
  readonly interfaceEndpoints: boolean;
  readonly logRetention: RetentionDays;
  /**
   * Bytes a NAT gateway may send out in an hour before it alarms: Dify's own egress (LLM calls,
   * plugin and package downloads) stays well under it, an exfiltration through the NAT does not.
   */
  readonly natBytesOutPerHourAlarm: number;
}

/** What a profile decides for Aurora PostgreSQL. */
export interface DatabaseSizing {
  /** Serverless v2 minimum ACU; 0 lets an idle dev database pause. */
  readonly minCapacity: number;
  readonly maxCapacity: number;
  /** Readers in other zones; a reader is the failover target. */
  readonly readers: number;
  readonly backupRetention: Duration;
  readonly deletionProtection: boolean;
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: RetentionDays;
}

/** What a profile decides for ElastiCache (Valkey). */
export interface CacheSizing {
  readonly nodeType: string;
  /** Nodes in the replication group: 1 primary, plus replicas in prod for Multi-AZ failover. */
  readonly nodes: number;
  readonly multiAz: boolean;
  readonly snapshotRetentionDays: number;
  readonly logRetention: RetentionDays;
}

/** What a profile decides for S3 storage. */
export interface StorageSizing {
  readonly removalPolicy: RemovalPolicy;
  readonly noncurrentVersionExpiration: Duration;
  readonly accessLogExpiration: Duration;
}

/** What a profile decides for keys, secrets and logs that are not tied to one component. */
export interface RetentionSizing {
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: RetentionDays;
}

/** What a profile decides for the front door. */
export interface EdgeSizing {
  readonly deletionProtection: boolean;
}

/** CPU, memory and task counts of one Dify service. */
export interface TaskSizing {
  /** Fargate CPU units (1024 = 1 vCPU). */
  readonly cpu: number;
  readonly memoryMiB: number;
  /** Tasks while idle; also the desired count at deploy. */
  readonly minTasks: number;
  /** Upper bound for autoscaling; equal to minTasks where the service does not scale. */
  readonly maxTasks: number;
}

/** What a profile decides for Dify's services. */
export interface ServicesSizing {
  readonly api: TaskSizing;
  readonly worker: TaskSizing;
  readonly beat: TaskSizing;
  readonly web: TaskSizing;
  readonly sandbox: TaskSizing;
  readonly pluginDaemon: TaskSizing;
  readonly ssrfProxy: TaskSizing;
  readonly migration: TaskSizing;
  /** The LLM gateway (gateway/): small, I/O-bound, scaled on CPU. */
  readonly gateway: TaskSizing;
  /** Run the worker on Fargate Spot (dev only; the schema refuses it in prod). */
  readonly spotWorker: boolean;
}

export interface Sizing {
  readonly services: ServicesSizing;
  readonly edge: EdgeSizing;
  readonly network: NetworkSizing;
  readonly database: DatabaseSizing;
  readonly cache: CacheSizing;
  readonly storage: StorageSizing;
  readonly retention: RetentionSizing;
}

/** Turns a profile (and the few keys that refine it) into the sizing of every component. */
export function sizingFor(
  config: Pick<Config, 'profile' | 'vpcInterfaceEndpoints' | 'databaseMaxCapacity'> & {
    fargateSpotWorker?: boolean;
    egress?: Config['egress'];
  },
): Sizing {
  const prod = config.profile === 'prod';
  const closed = config.egress === 'none';
  // HIPAA asks for six years of audit records; a year in CloudWatch plus the retained buckets covers
  // investigations in prod, while dev keeps a month to stay cheap.
  const logRetention = prod ? RetentionDays.ONE_YEAR : RetentionDays.ONE_MONTH;
  const task = (cpu: number, memoryMiB: number, minTasks: number, maxTasks = minTasks): TaskSizing => ({
    cpu,
    memoryMiB,
    minTasks,
    maxTasks,
  });
  return {
    services: {
      // The api needs about 4 GiB once plugins are installed; 2 GiB crash-loops (pitfall 10).
      api: prod ? task(1024, 4096, 2, 10) : task(512, 4096, 1, 2),
      worker: prod ? task(1024, 4096, 2, 10) : task(512, 2048, 1, 2),
      // Exactly one scheduler, always: two would fire every schedule twice (pitfall 9).
      beat: task(256, 1024, 1),
      web: prod ? task(512, 1024, 2, 6) : task(256, 1024, 1, 2),
      sandbox: prod ? task(1024, 2048, 2, 2) : task(512, 1024, 1),
      pluginDaemon: prod ? task(1024, 4096, 2, 2) : task(512, 2048, 1),
      ssrfProxy: prod ? task(512, 1024, 2, 2) : task(256, 512, 1),
      migration: task(1024, 2048, 1),
      gateway: prod ? task(512, 1024, 2, 6) : task(256, 512, 1, 2),
      spotWorker: !prod && (config.fargateSpotWorker ?? false),
    },
    edge: { deletionProtection: prod },
    network: {
      azCount: AZ_COUNT[config.profile],
      natGateways: closed ? 0 : prod ? AZ_COUNT.prod : 1,
      interfaceEndpoints: closed || (config.vpcInterfaceEndpoints ?? prod),
      logRetention,
      natBytesOutPerHourAlarm: (prod ? 20 : 5) * 1024 ** 3,
    },
    database: {
      minCapacity: prod ? 1 : 0,
      maxCapacity: config.databaseMaxCapacity ?? (prod ? 16 : 4),
      readers: prod ? 1 : 0,
      backupRetention: Duration.days(prod ? 35 : 7),
      deletionProtection: prod,
      removalPolicy: prod ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
      logRetention,
    },
    cache: {
      nodeType: prod ? 'cache.r7g.large' : 'cache.t4g.micro',
      nodes: prod ? 2 : 1,
      multiAz: prod,
      snapshotRetentionDays: prod ? 15 : 1,
      logRetention,
    },
    storage: {
      removalPolicy: prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      noncurrentVersionExpiration: Duration.days(prod ? 90 : 30),
      accessLogExpiration: Duration.days(prod ? 365 : 30),
    },
    retention: {
      removalPolicy: prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      logRetention,
    },
  };
}
