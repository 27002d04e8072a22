import { randomBytes } from 'node:crypto';
import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { ECSClient } from '@aws-sdk/client-ecs';
import { EKSClient } from '@aws-sdk/client-eks';
import { ElastiCacheClient } from '@aws-sdk/client-elasticache';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { KMSClient } from '@aws-sdk/client-kms';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import type { Io } from './io';
import { loadDeployment, type StackOutputs } from './stack';

export interface ContextOptions {
  readonly io: Io;
  readonly stackName: string;
  readonly region?: string;
  readonly json: boolean;
  readonly yes: boolean;
  readonly now?: () => Date;
  readonly randomBytes?: (size: number) => Buffer;
  /** Test seams: clients built elsewhere (moto endpoints, mocks). */
  readonly clients?: Partial<AwsClients>;
  /** How long to sleep between polls of a long wait. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Every AWS client a command may use, each made on first use for the deployment's region. */
export interface AwsClients {
  cloudFormation: CloudFormationClient;
  secrets: SecretsManagerClient;
  kms: KMSClient;
  ecs: ECSClient;
  eks: EKSClient;
  elastiCache: ElastiCacheClient;
  lambda: LambdaClient;
  scaling: ApplicationAutoScalingClient;
  elb: ElasticLoadBalancingV2Client;
  /** CloudFront is global; its API lives in us-east-1. */
  cloudFront: CloudFrontClient;
  waf: WAFV2Client;
  rds: RDSClient;
  sns: SNSClient;
  cloudWatch: CloudWatchClient;
}

/** What every command gets: the deployment's outputs, AWS clients for its region, and the user's terminal. */
export class Context {
  readonly io: Io;
  readonly now: () => Date;
  readonly randomBytes: (size: number) => Buffer;
  readonly sleep: (ms: number) => Promise<void>;
  private outputs: Promise<StackOutputs> | undefined;
  private readonly made = new Map<string, unknown>();

  constructor(private readonly options: ContextOptions) {
    this.io = options.io;
    this.now = options.now ?? (() => new Date());
    this.randomBytes = options.randomBytes ?? ((size) => randomBytes(size));
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  stack(): Promise<StackOutputs> {
    this.outputs ??= loadDeployment(this.cloudFormation(), this.options.stackName);
    return this.outputs;
  }

  private client<T>(name: keyof AwsClients, make: () => T): T {
    const given = this.options.clients?.[name] as T | undefined;
    if (given !== undefined) return given;
    if (!this.made.has(name)) this.made.set(name, make());
    return this.made.get(name) as T;
  }

  private get config() {
    return { region: this.options.region };
  }

  cloudFormation = () => this.client('cloudFormation', () => new CloudFormationClient(this.config));
  secrets = () => this.client('secrets', () => new SecretsManagerClient(this.config));
  kms = () => this.client('kms', () => new KMSClient(this.config));
  ecs = () => this.client('ecs', () => new ECSClient(this.config));
  eks = () => this.client('eks', () => new EKSClient(this.config));
  elastiCache = () => this.client('elastiCache', () => new ElastiCacheClient(this.config));
  lambda = () => this.client('lambda', () => new LambdaClient(this.config));
  scaling = () => this.client('scaling', () => new ApplicationAutoScalingClient(this.config));
  elb = () => this.client('elb', () => new ElasticLoadBalancingV2Client(this.config));
  cloudFront = () => this.client('cloudFront', () => new CloudFrontClient({ region: 'us-east-1' }));
  waf = () => this.client('waf', () => new WAFV2Client(this.config));
  rds = () => this.client('rds', () => new RDSClient(this.config));
  sns = () => this.client('sns', () => new SNSClient(this.config));
  cloudWatch = () => this.client('cloudWatch', () => new CloudWatchClient(this.config));

  /** The result: JSON with `--json`, text otherwise. */
  print(value: unknown, text: string): void {
    this.io.out(this.options.json ? JSON.stringify(value, null, 2) : text);
  }

  /** Progress on long waits, on stderr so stdout stays parseable. */
  progress(message: string): void {
    this.io.err(message);
  }

  async confirm(question: string): Promise<boolean> {
    return this.options.yes || this.io.confirm(question);
  }

  destroy(): void {
    for (const client of this.made.values()) (client as { destroy(): void }).destroy();
  }
}
