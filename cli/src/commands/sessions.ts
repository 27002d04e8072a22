import { DescribeTasksCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import type { Command } from '../command';
import type { Context } from '../context';
import { askCluster, platformOf } from '../cluster';
import { awsError, cancelled, CliError } from '../errors';
import { wholeNumber } from '../spec';
import { REFRESH_TOKEN_PREFIXES } from '../../../contracts/dify-sessions';
import { OUTPUTS } from '../../../contracts/stack-outputs';

/**
 * What ends every Dify console session without touching SECRET_KEY: Dify keeps each console refresh
 * token in Redis (`refresh_token:<token>` and `account_refresh_token:<account>`, api/services/
 * account_service.py); with them gone no session can be renewed, and each access token (a JWT signed
 * with SECRET_KEY, kept nowhere) lapses at its expiry, ACCESS_TOKEN_EXPIRE_MINUTES (60 by default).
 * Ending those at once, and web-app passports, needs a new SECRET_KEY (`secrets rotate secret-key
 * --force-secret-key`), which also gives anonymous web-app visitors new identities and makes the system
 * OAuth client parameters unreadable; stored provider credentials are not affected.
 */
export const REVOKE_SCRIPT = [
  'set -eu',
  'python - <<PY',
  'import os, redis',
  "r = redis.Redis(host=os.environ['REDIS_HOST'], port=int(os.environ['REDIS_PORT']), db=int(os.environ.get('REDIS_DB', '0')),",
  "                username=os.environ['REDIS_USERNAME'], password=os.environ['REDIS_PASSWORD'],",
  "                ssl=True, ssl_cert_reqs='required')",
  'deleted = 0',
  `for prefix in (${REFRESH_TOKEN_PREFIXES.map((p) => `'${p}'`).join(', ')}):`,
  "    for key in r.scan_iter(match=prefix + '*', count=1000):",
  '        deleted += r.delete(key)',
  "print('revoke-sessions: deleted %d refresh token keys' % deleted)",
  'PY',
].join('\n');

/** Runs REVOKE_SCRIPT in a one-off task of the api image inside the VPC (Valkey is not reachable from outside). */
export async function revokeSessions(
  ctx: Context,
  options: Record<string, string | boolean | undefined>,
): Promise<void> {
  const stack = await ctx.stack();
  const eks = (await platformOf(ctx)) === 'eks';
  const cluster = eks ? '' : stack.get(OUTPUTS.clusterName);
  if (
    !(await ctx.confirm(
      'Delete every Dify console refresh token? Everyone must sign in again within the access-token lifetime.',
    ))
  ) {
    throw cancelled();
  }
  if (eks) {
    // On EKS the cluster responder, in the VPC, signs in to Valkey as Dify's own user and deletes them.
    const { deleted } = await askCluster(ctx, { action: 'revoke-sessions' });
    return ctx.print(
      { revoked: true, deleted },
      `deleted ${deleted} console refresh token keys. Access tokens already issued lapse within ACCESS_TOKEN_EXPIRE_MINUTES (60 by default).`,
    );
  }
  let taskArn: string | undefined;
  try {
    const started = await ctx.ecs().send(
      new RunTaskCommand({
        cluster,
        taskDefinition: stack.get(OUTPUTS.migrationTaskFamily),
        launchType: 'FARGATE',
        count: 1,
        startedBy: 'dify-aws revoke-sessions',
        networkConfiguration: {
          awsvpcConfiguration: {
            subnets: stack.get(OUTPUTS.privateSubnetIds).split(','),
            securityGroups: [stack.get(OUTPUTS.migrationTaskSecurityGroupId)],
            assignPublicIp: 'DISABLED',
          },
        },
        overrides: { containerOverrides: [{ name: 'migration', command: [REVOKE_SCRIPT] }] },
      }),
    );
    taskArn = started.tasks?.[0]?.taskArn;
    if (taskArn === undefined)
      throw new CliError(`ECS did not start the task: ${started.failures?.[0]?.reason ?? 'no reason given'}`);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw awsError('starting the revoke task', error);
  }
  // Checked before any AWS call (REVOKE_SESSIONS below).
  const timeoutS = options.timeout === undefined ? 900 : Number(options.timeout);
  const wait = ctx.wait(`waiting for the revoke task ${taskArn}`);
  for (let i = 0; i < Math.ceil(timeoutS / 10); i++) {
    let task;
    try {
      task = (await ctx.ecs().send(new DescribeTasksCommand({ cluster, tasks: [taskArn] }))).tasks?.[0];
    } catch (error) {
      throw awsError(`reading the state of the revoke task ${taskArn}`, error);
    }
    if (task?.lastStatus === 'STOPPED') {
      const exit = task.containers?.find((c) => c.name === 'migration')?.exitCode;
      if (exit !== 0)
        throw new CliError(
          `the revoke task ${taskArn} exited with ${exit ?? 'no exit code'} (${task.stoppedReason ?? 'no reason'}); see MigrationTaskLogGroupName`,
        );
      return ctx.print(
        { revoked: true, taskArn },
        `every console refresh token is deleted (task ${taskArn}; the count is in its log). Access tokens already issued lapse within ACCESS_TOKEN_EXPIRE_MINUTES (60 by default).`,
      );
    }
    wait.report(task?.lastStatus ?? 'unknown');
    await ctx.sleep(10_000);
  }
  throw new CliError(`the revoke task ${taskArn} did not finish within ${timeoutS} s`);
}

export const REVOKE_SESSIONS: Command = {
  name: 'revoke-sessions',
  summary: 'delete every Dify console refresh token, from inside the VPC',
  form: {
    summary: 'delete every Dify console refresh token (asks first)',
    description:
      'Runs from inside the VPC: a one-off task of the api image on ECS (the command waits for it, showing its state and the elapsed time on stderr), the cluster responder on EKS. No session can be renewed after it, and access tokens already issued lapse within ACCESS_TOKEN_EXPIRE_MINUTES (60 by default).',
    options: [
      {
        name: 'timeout',
        value: 'S',
        description: 'how long to wait for the task on ECS, in seconds, 1 to 86400 (default 900)',
        check: wholeNumber('timeout', 1, 86_400, ' of seconds'),
      },
    ],
    examples: ['dify-aws revoke-sessions', 'dify-aws revoke-sessions --yes --json'],
  },
  run: (ctx, { options }) => revokeSessions(ctx, options),
};
