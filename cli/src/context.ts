import { randomBytes } from 'node:crypto';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { ECSClient } from '@aws-sdk/client-ecs';
import { ElastiCacheClient } from '@aws-sdk/client-elasticache';
import { KMSClient } from '@aws-sdk/client-kms';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Io } from './io';
import { loadStack, type StackOutputs } from './stack';

export interface ContextOptions {
  readonly io: Io;
  readonly stackName: string;
  readonly region?: string;
  readonly json: boolean;
  readonly yes: boolean;
  readonly now?: () => Date;
  readonly randomBytes?: (size: number) => Buffer;
  /** Test seams: clients built elsewhere (moto endpoints, mocks). */
  readonly clients?: Partial<{
    cloudFormation: CloudFormationClient;
    secrets: SecretsManagerClient;
    kms: KMSClient;
    ecs: ECSClient;
    elastiCache: ElastiCacheClient;
    lambda: LambdaClient;
  }>;
  /** How long to sleep between polls of a long wait. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** What every command gets: the stack's outputs, AWS clients for its region, and the user's terminal. */
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
    this.outputs ??= loadStack(this.cloudFormation(), this.options.stackName);
    return this.outputs;
  }

  private client<T>(name: keyof NonNullable<ContextOptions['clients']>, make: () => T): T {
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
  elastiCache = () => this.client('elastiCache', () => new ElastiCacheClient(this.config));
  lambda = () => this.client('lambda', () => new LambdaClient(this.config));

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
