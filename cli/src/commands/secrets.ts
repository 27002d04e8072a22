import { DescribeServicesCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  RotateSecretCommand,
  UpdateSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import type { Command, OptionSpec } from '../command';
import type { Context } from '../context';
import { awsError, cancelled, CliError } from '../errors';
import { table } from '../io';
import { oneOf, wholeNumber } from '../spec';
import { currentVersionOf, newSecretValue, ROTATION_STEPS, type RotationStep } from '../../../contracts/rotation';
import { cliRotated, type SecretEntry } from '../../../contracts/secrets';
import { WORKLOADS, type WorkloadId } from '../../../contracts/kubernetes';
import { OUTPUTS, type ServiceId, serviceNameOutput } from '../../../contracts/stack-outputs';
import { askCluster, platformOf } from '../cluster';
import type { StackOutputs } from '../stack';
import { pepperRotationBlockersOf } from './clients';

/**
 * The secrets `secrets rotate` knows, from the stack's secret catalogue (contracts/secrets.ts): where
 * the stack outputs each one and which services read it at start. A test holds the catalogue to the
 * execution roles of the synthesized template.
 */
const ROTATABLE: Record<string, SecretEntry> = Object.fromEntries(cliRotated().map(({ name, entry }) => [name, entry]));

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
  // Checked before any AWS call (SECRETS_COMMAND below).
  const timeoutS = options.timeout === undefined ? 1800 : Number(options.timeout);
  if (spec.rotation.by === 'schedule') return rotateScheduled(ctx, name!, spec, timeoutS);
  if (options['force-secret-key'] !== true) {
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
    throw cancelled();
  }
  const value = newSecretValue(ctx.randomBytes);
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
 * The version of a rotation that has not completed: staged AWSPENDING, either not yet current or
 * current but without its finish step done (the rotation function clears AWSPENDING last, after the
 * readers restarted).
 */
export function interruptedRotation(
  stages: Record<string, string[]>,
): { version: string; current: boolean } | undefined {
  const found = Object.entries(stages).find(([, s]) => s.includes('AWSPENDING'));
  return found === undefined ? undefined : { version: found[0], current: found[1].includes('AWSCURRENT') };
}

/**
 * A scheduled secret, rotated now by the same function and the same four steps as the schedule:
 * Secrets Manager starts the rotation (RotateSecret) and the CLI follows it until the new version is
 * current and the consumers the function restarted are stable. If an earlier rotation stopped after
 * staging its value, the CLI completes that one instead, step by step through the function with the
 * staged version's token, since Secrets Manager starts no new rotation while one is pending. Each
 * failure says which value is live and how to finish.
 */
async function rotateScheduled(ctx: Context, name: string, spec: SecretEntry, timeoutS: number) {
  const stack = await ctx.stack();
  const secretArn = stack.get(spec.output);
  const functionName = stack.get(OUTPUTS.secretRotationFunctionName);
  const consumers = consumersOf(stack, spec.consumers, await platformOf(ctx));
  const describe = async () => {
    try {
      return await ctx.secrets().send(new DescribeSecretCommand({ SecretId: secretArn }));
    } catch (error) {
      throw awsError(`reading ${spec.what}`, error);
    }
  };
  const described = await describe();
  if (described.RotationEnabled !== true) {
    throw new CliError(
      `rotation is not enabled on ${spec.what}: deploy the stack, which gives it its schedule and function (${functionName})`,
    );
  }
  const resume = interruptedRotation(described.VersionIdsToStages ?? {});
  if (resume === undefined && spec.rotation.by === 'schedule' && spec.rotation.kind === 'client-key-pepper') {
    // The function refuses this too; saying so here names the clients before anything starts.
    const current = currentVersionOf(described.VersionIdsToStages ?? {});
    const blockers = current === undefined ? [] : await pepperRotationBlockersOf(ctx, stack, current);
    if (blockers.length > 0) {
      throw new CliError(
        `not rotating ${spec.what}: client ${blockers.join(', ')} has not signed in since the pepper last changed, so after this rotation it could not sign in. Have each make one request through the gateway, or issue it a new key (dify-aws clients rotate --id ID), or revoke it (dify-aws clients revoke --id ID); then run this again. Nothing was changed`,
      );
    }
  }
  const restarts =
    spec.consumers.length > 0
      ? `restarts ${spec.consumers.length} services (${spec.consumers.join(', ')})`
      : `restarts nothing (${(spec.readers ?? []).join(', ')} reads the new value itself)`;
  if (
    !(await ctx.confirm(
      resume === undefined
        ? `Rotate ${spec.what} now? Its rotation ${restarts}.`
        : `Finish the interrupted rotation of ${spec.what} (pending version ${resume.version})? It ${restarts}.`,
    ))
  ) {
    throw cancelled();
  }
  const wait = ctx.wait(`rotating ${spec.what}`);
  let version: string;
  if (resume !== undefined) {
    version = resume.version;
    for (const step of ROTATION_STEPS) {
      wait.report(`${step} for version ${version}`);
      await invokeStep(ctx, functionName, { SecretId: secretArn, ClientRequestToken: version, Step: step }, spec.what);
    }
  } else {
    try {
      version = (await ctx.secrets().send(new RotateSecretCommand({ SecretId: secretArn, RotateImmediately: true })))
        .VersionId!;
    } catch (error) {
      throw awsError(`starting the rotation of ${spec.what} (nothing was changed)`, error);
    }
    for (let poll = 0; ; poll++) {
      const stages = (await describe()).VersionIdsToStages ?? {};
      const mine = stages[version] ?? [];
      // Done when current and no longer pending: the function clears AWSPENDING after the restarts.
      if (mine.includes('AWSCURRENT') && !mine.includes('AWSPENDING')) break;
      if (poll * 10 >= timeoutS) {
        const live = mine.includes('AWSCURRENT')
          ? `The new value (version ${version}) is live, but the rotation's finish step has not completed, so its readers may not all have restarted`
          : `The live value is still the previous version (AWSCURRENT)${mine.includes('AWSPENDING') ? `; the new one is staged as AWSPENDING (version ${version})` : ''}`;
        throw new CliError(
          `the rotation of ${spec.what} did not finish within ${timeoutS} s. ${live}. Run \`dify-aws secrets rotate ${name}\` again to finish it; the log of ${functionName} names the failing step`,
        );
      }
      wait.report(`version ${version} is ${(stages[version] ?? ['not staged yet']).join(', ')}`);
      await ctx.sleep(10_000);
    }
  }
  if (spec.consumers.length > 0) {
    ctx.progress(`version ${version} of ${spec.what} is current; waiting for ${spec.consumers.join(', ')}…`);
    await waitStable(ctx, consumers, timeoutS);
  }
  ctx.print(
    { secret: name, versionId: version, resumed: resume !== undefined, restarted: spec.consumers, healthy: true },
    `rotated ${spec.what} (version ${version}${resume !== undefined ? ', an interrupted rotation finished' : ''}); ${
      spec.consumers.length > 0
        ? `${spec.consumers.join(', ')} restarted, stable and healthy`
        : `nothing restarted: ${(spec.readers ?? []).join(', ')} reads the new value within its poll interval`
    }`,
  );
}

/** One rotation step through the stack's rotation function; a failure names the step and what is live. */
async function invokeStep(
  ctx: Context,
  functionName: string,
  event: { SecretId: string; ClientRequestToken: string; Step: RotationStep },
  what: string,
) {
  let answer;
  try {
    answer = await ctx
      .lambda()
      .send(new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(event)) }));
  } catch (error) {
    throw awsError(`invoking ${functionName} for ${event.Step}`, error);
  }
  if (answer.FunctionError !== undefined) {
    let message = answer.FunctionError;
    try {
      message = String(JSON.parse(Buffer.from(answer.Payload ?? []).toString('utf8')).errorMessage ?? message);
    } catch {
      // keep the bare error type
    }
    const live =
      event.Step === 'finishSecret'
        ? 'The new value may already be current; run the command again to finish restarting its consumers'
        : `The live value is still the previous version (AWSCURRENT), and the new one stays staged as AWSPENDING (version ${event.ClientRequestToken}); run the command again to finish`;
    throw new CliError(`rotating ${what} failed at ${event.Step}: ${message}. ${live}`);
  }
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
  await waitStable(ctx, consumers, options.timeout === undefined ? 1800 : Number(options.timeout));
}

/** Waits until every consumer runs new tasks or pods only, all healthy, polling every 15 s for `timeoutS`. */
export async function waitStable(ctx: Context, consumers: Consumers, timeoutS: number) {
  const { cluster, ecs: services, eks } = consumers;
  const polls = Math.max(1, Math.ceil(timeoutS / 15));
  const wait = ctx.wait('waiting until the services run new, healthy tasks or pods only');
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
    wait.report(waiting.join(', '));
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
    throw cancelled();
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

const TIMEOUT: OptionSpec = {
  name: 'timeout',
  value: 'S',
  description: 'how long to wait for the rotation and the restarted services, in seconds, 1 to 86400 (default 1800)',
  check: wholeNumber('timeout', 1, 86_400, ' of seconds'),
};

export const SECRETS_COMMAND: Command = {
  name: 'secrets',
  summary: "the deployment's secrets: rotate one now, or move them all to another KMS key",
  actions: [
    {
      name: 'rotate',
      summary: "run a secret's scheduled rotation now and wait for the services it restarted",
      description: `NAME is one of ${Object.keys(ROTATABLE).join(', ')}. The rotation runs the same function and four steps as the schedule; the command follows it until the new version is current and the services it restarted are stable, showing progress with the elapsed time on stderr. An interrupted rotation is finished instead of starting another. secret-key is refused without --force-secret-key, which says what a new SECRET_KEY costs.`,
      operand: {
        name: 'NAME',
        description: 'the secret, as listed above',
        required: true,
        check: oneOf('secrets rotate NAME', Object.keys(ROTATABLE)),
      },
      options: [
        TIMEOUT,
        {
          name: 'force-secret-key',
          description: "rotate Dify's SECRET_KEY, knowing what it costs (see the refusal's message)",
        },
      ],
      examples: ['dify-aws secrets rotate sandbox-key', 'dify-aws secrets rotate app-db-password --yes --timeout 3600'],
    },
    {
      name: 'migrate-kms',
      summary: 'move every secret of the stack to another KMS key, rolling back on failure',
      description:
        'Proves every secret readable, moves each to the new key, reads each back, and rolls back what it changed on any failure; --dry-run lists what would move and changes nothing.',
      options: [
        {
          name: 'to',
          value: 'KEY',
          description: 'the id, ARN or alias of the KMS key to move the secrets to',
          required: true,
        },
        { name: 'dry-run', description: 'list what would move, change nothing' },
      ],
      examples: ['dify-aws secrets migrate-kms --to alias/dify-secrets --dry-run'],
    },
  ],
  run: (ctx, { action, rest, options }) => secrets(ctx, action, rest, options),
};
