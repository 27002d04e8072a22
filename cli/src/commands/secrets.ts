import { DescribeServicesCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { DescribeUsersCommand, ModifyUserCommand } from '@aws-sdk/client-elasticache';
import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  UpdateSecretCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import type { Command } from '../command';
import type { Context } from '../context';
import { awsError, CliError } from '../errors';
import { table } from '../io';
import { cliRotated, type SecretEntry } from '../../../contracts/secrets';
import { WORKLOADS, type WorkloadId } from '../../../contracts/kubernetes';
import { OUTPUTS, type ServiceId, serviceNameOutput } from '../../../contracts/stack-outputs';
import { askCluster, platformOf } from '../cluster';
import type { StackOutputs } from '../stack';

/**
 * The secrets `secrets rotate` knows, from the stack's secret catalogue (contracts/secrets.ts): where
 * the stack outputs each one and which services read it at start, so exactly those redeploy. A test
 * holds the catalogue to the execution roles of the synthesized template.
 */
const ROTATABLE: Record<string, SecretEntry & { method: 'value' | 'cache-user' | 'database-role' }> =
  Object.fromEntries(cliRotated().map(({ name, entry, method }) => [name, { ...entry, method }]));

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** 64 alphanumeric characters (about 380 bits), unbiased: bytes past the last whole multiple are redrawn. */
export function newSecretValue(randomBytes: (n: number) => Buffer, length = 64): string {
  let value = '';
  while (value.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && value.length < length) value += ALPHANUMERIC[byte % 62];
    }
  }
  return value;
}

export async function secrets(
  ctx: Context,
  action: string | undefined,
  args: readonly string[],
  options: Record<string, string | boolean | undefined>,
) {
  if (action === 'rotate') return rotate(ctx, args[0], options);
  if (action === 'migrate-kms') return migrateKms(ctx, options);
  throw new CliError(`secrets: expected rotate NAME or migrate-kms --to KEY${action ? `, got '${action}'` : ''}`);
}

async function rotate(ctx: Context, name: string | undefined, options: Record<string, string | boolean | undefined>) {
  const spec = name === undefined ? undefined : ROTATABLE[name];
  if (spec === undefined) {
    throw new CliError(
      `secrets rotate: expected one of ${Object.keys(ROTATABLE).join(', ')}${name ? `, got '${name}'` : ''}`,
    );
  }
  if (name === 'secret-key' && options['force-secret-key'] !== true) {
    throw new CliError(
      'refusing to rotate SECRET_KEY without --force-secret-key: it signs every console token and web-app passport, so anonymous visitors of a shared web app get a new identity (unless an embedding page passes their user id) and no longer see their earlier conversations, tokens fail between old and new tasks until the redeploy ends, and the system OAuth client parameters (flask setup-system-tool-oauth-client, setup-system-trigger-oauth-client) become unreadable and must be set again. Stored model provider and plugin credentials are not affected: Dify encrypts them with each workspace’s RSA key, kept in the storage bucket.',
    );
  }
  const stack = await ctx.stack();
  const secretArn = stack.get(spec.output);
  const consumers = consumersOf(stack, spec.consumers, await platformOf(ctx));
  if (
    !(await ctx.confirm(
      `Rotate ${spec.what} and redeploy ${spec.consumers.length} services (${spec.consumers.join(', ')})?`,
    ))
  ) {
    throw new CliError('cancelled', 3);
  }
  const value = newSecretValue(ctx.randomBytes);
  if (spec.method === 'database-role') {
    return rotateDatabasePassword(ctx, spec, secretArn, value, consumers, options);
  }
  if (spec.method === 'cache-user') {
    return rotateCacheUser(ctx, spec, stack.get(spec.cacheUserIdOutput!), secretArn, value, consumers, options);
  }
  let version: string | undefined;
  try {
    version = (await ctx.secrets().send(new PutSecretValueCommand({ SecretId: secretArn, SecretString: value })))
      .VersionId;
  } catch (error) {
    throw awsError(`storing the new value of ${spec.what}`, error);
  }
  ctx.progress(`stored a new version of ${spec.what}; redeploying ${spec.consumers.join(', ')}…`);
  await redeploy(ctx, consumers, options);
  ctx.print(
    { secret: name, versionId: version, redeployed: spec.consumers, healthy: true },
    `rotated ${spec.what} (version ${version}); ${spec.consumers.join(', ')} redeployed, stable and healthy`,
  );
}

/**
 * A database role's password, changed from inside the VPC: the CLI stores the new value as the
 * secret's AWSPENDING version, invokes the stack's bootstrap function (which connects over 5432 with
 * TLS verified and sets the role's password to that pending value as a SCRAM verifier), and only then
 * promotes the pending version to AWSCURRENT and redeploys the readers. The database and the current
 * secret therefore never disagree: a failure before the promotion leaves both as they were.
 * Connections already open stay open; new ones use the new password once redeployed.
 */
async function rotateDatabasePassword(
  ctx: Context,
  spec: { what: string; consumers: readonly string[] },
  secretArn: string,
  password: string,
  consumers: Consumers,
  options: Record<string, string | boolean | undefined>,
) {
  const stack = await ctx.stack();
  const functionName = stack.get(OUTPUTS.databaseBootstrapFunctionName);
  const masterSecretArn = stack.get(OUTPUTS.databaseMasterSecretArn);
  let current: Record<string, unknown>;
  let currentVersion: string | undefined;
  try {
    const read = await ctx
      .secrets()
      .send(new GetSecretValueCommand({ SecretId: secretArn, VersionStage: 'AWSCURRENT' }));
    current = JSON.parse(read.SecretString ?? '');
    currentVersion = read.VersionId;
  } catch (error) {
    throw awsError(`reading ${spec.what}`, error);
  }
  const username = current.username;
  if (typeof username !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(username)) {
    throw new CliError(
      `the secret of ${spec.what} has an unexpected shape: expected a JSON object with a lower-case username`,
    );
  }
  let pending: string | undefined;
  try {
    pending = (
      await ctx.secrets().send(
        new PutSecretValueCommand({
          SecretId: secretArn,
          SecretString: JSON.stringify({ ...current, password }),
          VersionStages: ['AWSPENDING'],
        }),
      )
    ).VersionId;
  } catch (error) {
    throw awsError(`storing the new value of ${spec.what} as AWSPENDING (nothing else was changed)`, error);
  }
  let answer;
  try {
    answer = await ctx.lambda().send(
      new InvokeCommand({
        FunctionName: functionName,
        Payload: Buffer.from(
          JSON.stringify({ Action: 'SetRolePassword', MasterSecretArn: masterSecretArn, RoleSecretArn: secretArn }),
        ),
      }),
    );
  } catch (error) {
    throw awsError(
      `invoking ${functionName} to change ${username}'s password (the database and the current secret are unchanged)`,
      error,
    );
  }
  if (answer.FunctionError !== undefined) {
    // The function's error names a step and a code, never a value (lambda/db-bootstrap).
    let message = answer.FunctionError;
    try {
      message = String(JSON.parse(Buffer.from(answer.Payload ?? []).toString('utf8')).errorMessage ?? message);
    } catch {
      // keep the bare error type
    }
    throw new CliError(
      `changing ${username}'s password failed in ${functionName}: ${message}. The database and the current secret are unchanged.`,
    );
  }
  try {
    await ctx.secrets().send(
      new UpdateSecretVersionStageCommand({
        SecretId: secretArn,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: pending,
        RemoveFromVersionId: currentVersion,
      }),
    );
  } catch (error) {
    throw awsError(
      `promoting the new value of ${spec.what} to AWSCURRENT after the database accepted it: run the command again`,
      error,
    );
  }
  ctx.progress(`changed ${spec.what}; redeploying ${spec.consumers.join(', ')}…`);
  await redeploy(ctx, consumers, options);
  ctx.print(
    { secret: spec.what, versionId: pending, redeployed: spec.consumers, healthy: true },
    `rotated ${spec.what} (version ${pending}); ${spec.consumers.join(', ')} redeployed, stable and healthy`,
  );
}

/**
 * A component's ElastiCache user password. The user holds two passwords during the change: the new
 * one is added beside the old, the secret gets the new value, exactly the user's consumers
 * redeploy, and only then is the old password removed, so no client is refused at any point.
 */
async function rotateCacheUser(
  ctx: Context,
  spec: { what: string; consumers: readonly string[] },
  userId: string,
  secretArn: string,
  password: string,
  consumers: Consumers,
  options: Record<string, string | boolean | undefined>,
) {
  let current: Record<string, unknown>;
  try {
    current = JSON.parse(
      (await ctx.secrets().send(new GetSecretValueCommand({ SecretId: secretArn, VersionStage: 'AWSCURRENT' })))
        .SecretString ?? '',
    );
  } catch (error) {
    throw awsError(`reading ${spec.what}`, error);
  }
  if (typeof current.username !== 'string' || typeof current.password !== 'string') {
    throw new CliError(
      `the secret of ${spec.what} has an unexpected shape: expected a JSON object with username and password`,
    );
  }
  await modifyUserPasswords(ctx, userId, [current.password, password], 'adding the new password beside the old one');
  let version: string | undefined;
  try {
    version = (
      await ctx
        .secrets()
        .send(
          new PutSecretValueCommand({ SecretId: secretArn, SecretString: JSON.stringify({ ...current, password }) }),
        )
    ).VersionId;
  } catch (error) {
    throw awsError(
      `storing ${spec.what} (the user accepts both passwords; run the command again to finish with a fresh one)`,
      error,
    );
  }
  ctx.progress(`stored a new version of ${spec.what}; redeploying ${spec.consumers.join(', ')}…`);
  await redeploy(ctx, consumers, options);
  await modifyUserPasswords(ctx, userId, [password], 'removing the old password');
  ctx.print(
    { secret: spec.what, versionId: version, redeployed: spec.consumers, healthy: true },
    `rotated ${spec.what} (version ${version}); ${spec.consumers.join(', ')} redeployed, the old password removed`,
  );
}

async function modifyUserPasswords(ctx: Context, userId: string, passwords: string[], step: string): Promise<void> {
  try {
    await ctx
      .elastiCache()
      .send(new ModifyUserCommand({ UserId: userId, AuthenticationMode: { Type: 'password', Passwords: passwords } }));
  } catch (error) {
    throw awsError(`ElastiCache user ${userId}: ${step}`, error);
  }
  for (let i = 0; i < 180; i++) {
    const described = await ctx.elastiCache().send(new DescribeUsersCommand({ UserId: userId }));
    const status = described.Users?.[0]?.Status;
    if (status === 'active') return;
    ctx.progress(`waiting for ElastiCache user ${userId} (${step}): ${status}`);
    await ctx.sleep(10_000);
  }
  throw new CliError(`ElastiCache user ${userId} did not become active within 30 minutes (${step})`);
}

/** Forces a new deployment of each service and waits until every one is stable and at its desired count. */
/** Where a secret's consumers run: ECS services by name, and on EKS, Deployments. */
export interface Consumers {
  readonly cluster: string;
  readonly ecs: readonly string[];
  readonly eks: readonly WorkloadId[];
}

/**
 * The consumers as the deployment runs them. On EKS, Dify's services are Deployments (the cluster
 * responder restarts them) and the LLM gateway an ECS service; on ECS, every one is a service.
 */
export function consumersOf(stack: StackOutputs, ids: readonly ServiceId[], platform: 'ecs' | 'eks'): Consumers {
  const onEks = (id: ServiceId): id is WorkloadId => platform === 'eks' && id in WORKLOADS;
  const ecs = ids.filter((id) => !onEks(id)).map((id) => stack.get(serviceNameOutput(id)));
  return {
    cluster: ecs.length === 0 ? '' : stack.get(OUTPUTS.clusterName),
    ecs,
    eks: ids.filter(onEks),
  };
}

/**
 * Restarts exactly the consumers and waits until every one runs new tasks or pods only, all healthy:
 * ECS services by a forced new deployment, EKS Deployments by a rollout restart through the cluster
 * responder. Polls every 15 s, for `--timeout` seconds at most (1800 by default).
 */
export async function redeploy(
  ctx: Context,
  consumers: Consumers,
  options: Record<string, string | boolean | undefined>,
) {
  const { cluster, ecs: services, eks } = consumers;
  for (const service of services) {
    try {
      await ctx.ecs().send(new UpdateServiceCommand({ cluster, service, forceNewDeployment: true }));
    } catch (error) {
      throw awsError(`redeploying ${service}`, error);
    }
  }
  if (eks.length > 0) await askCluster(ctx, { action: 'restart', workloads: [...eks], at: ctx.now().toISOString() });
  const timeoutS = options.timeout === undefined ? 1800 : Number(options.timeout);
  const polls = Math.max(1, Math.ceil(timeoutS / 15));
  for (let i = 0; i < polls; i++) {
    const waiting: string[] = [];
    if (services.length > 0) {
      const described = await ctx.ecs().send(new DescribeServicesCommand({ cluster, services: [...services] }));
      const pending = (described.services ?? []).filter((s) => {
        const deployments = s.deployments ?? [];
        const done = deployments.length <= 1 && (deployments[0]?.rolloutState ?? 'COMPLETED') === 'COMPLETED';
        return !done || s.runningCount !== s.desiredCount;
      });
      waiting.push(...pending.map((s) => `${s.serviceName} (${s.runningCount}/${s.desiredCount})`));
      if ((described.services ?? []).length !== services.length) waiting.push('services ECS did not describe');
    }
    if (eks.length > 0) {
      const { rows } = await askCluster(ctx, { action: 'rollout', workloads: [...eks] });
      waiting.push(
        ...rows
          .filter((r) => !r.done)
          .map((r) => `${r.workload} (${r.updated} new, ${r.available}/${r.desired} available)`),
      );
    }
    if (waiting.length === 0) return;
    ctx.progress(`waiting for ${waiting.join(', ')}`);
    await ctx.sleep(15_000);
  }
  throw new CliError(
    `the services were not stable within ${timeoutS} s; check them in the ${eks.length > 0 ? 'ECS console or with kubectl rollout status' : 'ECS console'}. The new secret value is stored.`,
  );
}

interface Move {
  name: string;
  arn: string;
  from?: string;
  value?: string;
  status: string;
}

async function migrateKms(ctx: Context, options: Record<string, string | boolean | undefined>) {
  const to = options.to;
  if (typeof to !== 'string' || to === '')
    throw new CliError('--to: expected the id, ARN or alias of the KMS key to move the secrets to');
  const stack = await ctx.stack();
  let target: string;
  try {
    const key = await ctx.kms().send(new DescribeKeyCommand({ KeyId: to }));
    if (key.KeyMetadata?.Enabled !== true) throw new CliError(`--to: KMS key ${to} is not enabled`);
    target = key.KeyMetadata.Arn!;
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw awsError(`--to: reading KMS key ${to}`, error);
  }
  const moves: Move[] = Object.entries(stack.secretArns()).map(([name, arn]) => ({ name, arn, status: 'pending' }));
  // 1. Prove every secret can be read before anything changes.
  for (const move of moves) {
    try {
      const described = await ctx.secrets().send(new DescribeSecretCommand({ SecretId: move.arn }));
      const value = await ctx
        .secrets()
        .send(new GetSecretValueCommand({ SecretId: move.arn, VersionStage: 'AWSCURRENT' }));
      move.from = described.KmsKeyId;
      move.value = value.SecretString;
      move.status = 'readable';
    } catch (error) {
      throw awsError(`reading ${move.name} before the move (nothing was changed)`, error);
    }
  }
  const rows = () =>
    moves.map((m) => ({ secret: m.name, from: m.from ?? 'aws/secretsmanager', to: target, status: m.status }));
  if (options['dry-run'] === true) {
    for (const m of moves) m.status = m.from === target ? 'already there' : 'would move';
    return ctx.print(rows(), table(rows()));
  }
  if (
    !(await ctx.confirm(
      `Move ${moves.length} secrets to ${target}? The rotation functions and ECS must be allowed to use it.`,
    ))
  ) {
    throw new CliError('cancelled', 3);
  }
  const changed: Move[] = [];
  try {
    // 2. Change each secret: a new version of the same value, encrypted under the new key.
    for (const move of moves) {
      if (move.from === target) {
        move.status = 'already there';
        continue;
      }
      ctx.progress(`moving ${move.name}…`);
      await ctx
        .secrets()
        .send(new UpdateSecretCommand({ SecretId: move.arn, KmsKeyId: target, SecretString: move.value }));
      changed.push(move);
      move.status = 'changed';
    }
    // 3. Read each one back: the same value, under the new key.
    for (const move of changed) {
      const described = await ctx.secrets().send(new DescribeSecretCommand({ SecretId: move.arn }));
      const value = await ctx
        .secrets()
        .send(new GetSecretValueCommand({ SecretId: move.arn, VersionStage: 'AWSCURRENT' }));
      if (value.SecretString !== move.value || (described.KmsKeyId !== target && described.KmsKeyId !== to)) {
        throw new CliError(`${move.name} did not read back as written`);
      }
      move.status = 'moved';
    }
  } catch (error) {
    // 4. Roll back what changed, newest first, to its old key and value.
    for (const move of [...changed].reverse()) {
      try {
        await ctx.secrets().send(
          new UpdateSecretCommand({
            SecretId: move.arn,
            KmsKeyId: move.from ?? 'alias/aws/secretsmanager',
            SecretString: move.value,
          }),
        );
        move.status = 'rolled back';
      } catch {
        move.status = 'ROLLBACK FAILED';
      }
    }
    for (const m of moves) if (m.status === 'readable') m.status = 'unchanged';
    ctx.print({ moved: false, secrets: rows() }, table(rows()));
    const cause = error instanceof CliError ? error.message : awsError('moving a secret', error).message;
    throw new CliError(`migrate-kms failed (${cause}); every changed secret was rolled back`);
  }
  ctx.print({ moved: true, secrets: rows() }, table(rows()));
}

export const SECRETS_COMMAND: Command = {
  name: 'secrets',
  usage: `  secrets rotate NAME          sandbox-key, plugin-daemon-key, plugin-inner-key, cache-dify-password,
                               cache-plugin-daemon-password, cache-gateway-password,
                               app-db-password, plugin-db-password
                               (secret-key is refused without --force-secret-key); redeploys its readers
  secrets migrate-kms --to KEY [--dry-run]
                               move every secret of the stack to another KMS key, rolling back on failure`,
  run: (ctx, { action, rest, options }) => secrets(ctx, action, rest, options),
};
