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
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { recordAwsCall } from './errors';
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

/** Each client's IAM service prefix, so that an error can name the action that failed (`kms:Decrypt`). */
const IAM_PREFIX: Record<string, string> = {
  CloudFormationClient: 'cloudformation',
  SecretsManagerClient: 'secretsmanager',
  KMSClient: 'kms',
  ECSClient: 'ecs',
  EKSClient: 'eks',
  ElastiCacheClient: 'elasticache',
  LambdaClient: 'lambda',
  ApplicationAutoScalingClient: 'application-autoscaling',
  ElasticLoadBalancingV2Client: 'elasticloadbalancing',
  CloudFrontClient: 'cloudfront',
  WAFV2Client: 'wafv2',
  RDSClient: 'rds',
  SNSClient: 'sns',
  CloudWatchClient: 'cloudwatch',
  CloudWatchLogsClient: 'logs',
};
/** Where an API operation's name is not its IAM action's. */
const IAM_ACTION: Record<string, string> = { 'lambda:Invoke': 'lambda:InvokeFunction' };

/** The IAM action of an SDK call, from the client's and the command's names. */
export function iamAction(clientName: string | undefined, commandName: string | undefined): string | undefined {
  const prefix = clientName === undefined ? undefined : IAM_PREFIX[clientName];
  if (prefix === undefined || commandName === undefined) return undefined;
  const action = `${prefix}:${commandName.replace(/Command$/, '')}`;
  return IAM_ACTION[action] ?? action;
}

/** The middleware stacks annotateErrors has added to: a client given by a test is used across runs. */
const ANNOTATED = new WeakSet<object>();

interface Annotatable {
  middlewareStack: {
    add(
      middleware: (next: (args: unknown) => Promise<unknown>, context: Record<string, unknown>) => unknown,
      options: { step: 'build'; name: string; override: boolean },
    ): void;
  };
}

/**
 * Records on every error of `client` which call failed and the endpoint it went to (scheme, host and
 * port only), so that the message can name them: errors.ts reads it back. Idempotent.
 */
export function annotateErrors<T>(client: T): T {
  const stack = (client as Partial<Annotatable>)?.middlewareStack;
  if (stack === undefined || typeof stack.add !== 'function' || ANNOTATED.has(stack)) return client;
  ANNOTATED.add(stack);
  stack.add(
    (next, context) => async (args: unknown) => {
      try {
        return await next(args);
      } catch (error) {
        const request = (args as { request?: { protocol?: string; hostname?: string; port?: number } }).request;
        recordAwsCall(error, {
          operation: iamAction(context.clientName as string, context.commandName as string),
          endpoint:
            request?.hostname === undefined
              ? undefined
              : `${request.protocol ?? 'https:'}//${request.hostname}${request.port ? `:${request.port}` : ''}`,
        });
        throw error;
      }
    },
    { step: 'build', name: 'difyAwsRecordCall', override: true },
  );
  return client;
}

/**
 * The connection to an AWS endpoint is bounded, so that a black-holed network ends in a message naming
 * the endpoint, not a hang. A request, once connected, is not: a Lambda invocation can run for minutes.
 */
const CONNECTION_TIMEOUT_MS = 10_000;

/** A long wait in progress: see {@link Context.wait}. */
export interface Wait {
  /** The time since the wait started, such as `2 min 05 s`. */
  elapsed(): string;
  /** Prints `<what>: <state> (<elapsed> elapsed)` on stderr. */
  report(state: string): void;
}

/** `42 s`, `2 min 05 s`, `1 h 02 min`: elapsed time for a person. */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
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
    this.outputs ??= loadDeployment(this.cloudFormation(), this.options.stackName, () => this.region());
    return this.outputs;
  }

  /** The region in use: --region, or what the SDK resolves (AWS_REGION, the profile); undefined if none. */
  async region(): Promise<string | undefined> {
    if (this.options.region !== undefined) return this.options.region;
    try {
      const region = (this.cloudFormation() as unknown as { config?: { region?: () => Promise<string> } }).config
        ?.region;
      return typeof region === 'function' ? await region() : undefined;
    } catch {
      return undefined;
    }
  }

  private client<T>(name: string, make: () => T): T {
    const given = this.options.clients?.[name as keyof AwsClients] as T | undefined;
    if (given !== undefined) return annotateErrors(given);
    if (!this.made.has(name)) this.made.set(name, annotateErrors(make()));
    return this.made.get(name) as T;
  }

  private get config() {
    return { region: this.options.region, requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS } };
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
  cloudFront = () => this.client('cloudFront', () => new CloudFrontClient({ ...this.config, region: 'us-east-1' }));
  waf = () => this.client('waf', () => new WAFV2Client(this.config));
  rds = () => this.client('rds', () => new RDSClient(this.config));
  sns = () => this.client('sns', () => new SNSClient(this.config));
  cloudWatch = () => this.client('cloudWatch', () => new CloudWatchClient(this.config));
  /** CloudWatch Logs in `region` (the deployment's by default; the CloudFront web ACL logs in us-east-1). */
  logs = (region?: string) =>
    this.client(
      `logs:${region ?? ''}`,
      () => new CloudWatchLogsClient({ ...this.config, region: region ?? this.options.region }),
    );

  /** The result: JSON with `--json`, text otherwise. */
  print(value: unknown, text: string): void {
    this.io.out(this.options.json ? JSON.stringify(value, null, 2) : text);
  }

  /** Progress on long waits, on stderr so stdout stays parseable (and `--json` output is only the result). */
  progress(message: string): void {
    this.io.err(message);
  }

  /**
   * A long wait: each `report` prints what it is waiting for and the time since it started, on stderr.
   * The clock is the context's, so tests see the elapsed time they simulate.
   */
  wait(what: string): Wait {
    const started = this.now().getTime();
    const elapsed = () => formatElapsed(this.now().getTime() - started);
    return {
      elapsed,
      report: (state) => this.progress(`${what}: ${state} (${elapsed()} elapsed)`),
    };
  }

  async confirm(question: string): Promise<boolean> {
    return this.options.yes || this.io.confirm(question);
  }

  destroy(): void {
    for (const client of this.made.values()) (client as { destroy(): void }).destroy();
  }
}
