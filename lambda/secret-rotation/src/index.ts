import { randomBytes } from 'node:crypto';
import { ECSClient } from '@aws-sdk/client-ecs';
import { DescribeUsersCommand, ElastiCacheClient, ModifyUserCommand } from '@aws-sdk/client-elasticache';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import Redis from 'ioredis';
import { RotationConfig, type RotationTarget, targetsOf } from '../../../contracts/rotation';
import { type CacheUsers, type Ports, type RotationEvent, RotationError, rotationStep } from './rotation';

/**
 * The stack's rotation function: Secrets Manager invokes it for each of the four steps of a
 * scheduled rotation, and `dify-aws secrets rotate NAME` starts the same rotation on demand. Which
 * secrets it rotates comes from the `ROTATION` environment variable; how, and who reads each one, from
 * the secret catalogue (contracts/rotation.ts, contracts/secrets.ts).
 */

/** Waits for an ElastiCache user to be `active` before and after changing its passwords. */
export function elastiCacheUsers(
  client: ElastiCacheClient,
  sleep: (ms: number) => Promise<void>,
  polls = 60,
  pollMs = 5000,
): CacheUsers {
  const active = async (userId: string) => {
    for (let i = 0; i < polls; i++) {
      const status = (await client.send(new DescribeUsersCommand({ UserId: userId }))).Users?.[0]?.Status;
      if (status === 'active') return;
      await sleep(pollMs);
    }
    throw new RotationError(`ElastiCache user ${userId} did not become active within ${(polls * pollMs) / 1000} s`);
  };
  return {
    async setPasswords(userId, passwords) {
      await active(userId);
      await client.send(
        new ModifyUserCommand({ UserId: userId, AuthenticationMode: { Type: 'password', Passwords: [...passwords] } }),
      );
      await active(userId);
    },
  };
}

/** Signs in over TLS, verifying the server's name, and PINGs. */
export async function cacheSignIn(host: string, port: number, username: string, password: string): Promise<void> {
  const client = new Redis({
    host,
    port,
    username,
    password,
    tls: { servername: host },
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableReadyCheck: false,
  });
  try {
    await client.connect();
    if ((await client.ping()) !== 'PONG') throw new RotationError('PING was not answered with PONG');
  } finally {
    client.disconnect();
  }
}

let targets: Record<string, RotationTarget> | undefined;

/** The rotated secrets' targets from the `ROTATION` variable; an error names what is wrong with it. */
export function targetsFromEnvironment(raw: string | undefined): Record<string, RotationTarget> {
  let json: unknown;
  try {
    json = JSON.parse(raw ?? '');
  } catch {
    throw new RotationError('ROTATION: expected the JSON the stack writes (contracts/rotation.ts RotationConfig)');
  }
  const parsed = RotationConfig.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RotationError(`ROTATION: ${issue?.path.join('.') || 'value'}: ${issue?.message ?? 'invalid'}`);
  }
  try {
    return targetsOf(parsed.data);
  } catch (error) {
    throw new RotationError(`ROTATION: ${(error as Error).message}`);
  }
}

export async function handler(event: RotationEvent): Promise<void> {
  targets ??= targetsFromEnvironment(process.env.ROTATION);
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
  const ports: Ports = {
    secrets: new SecretsManagerClient({}),
    ecs: new ECSClient({}),
    lambda: new LambdaClient({}),
    cacheUsers: elastiCacheUsers(new ElastiCacheClient({}), sleep),
    cacheSignIn,
    randomBytes,
    sleep,
    now: Date.now,
    log: (line) => console.log(JSON.stringify(line)),
    // Lambda allows 15 minutes; the finish step keeps two for its own calls.
    settleBudgetMs: 12 * 60_000,
    pollMs: 15_000,
  };
  await rotationStep(event, targets, ports);
}
