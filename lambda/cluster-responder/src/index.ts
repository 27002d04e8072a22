import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Redis } from 'ioredis';
import { Agent } from 'undici';
import { z } from 'zod';
import { ResponderRequest, type ResponderResponse } from '../../../contracts/cluster-responder';
import { REFRESH_TOKEN_PREFIXES } from '../../../contracts/dify-sessions';
import { act, type ActionDependencies } from './actions';
import { KubeClient } from './kube';
import { credentialsFromEnvironment, eksToken } from './token';

/**
 * The cluster responder: the operator CLI's way into an EKS deployment's private Kubernetes API
 * without a bastion. It runs in the VPC's private subnets; its role is mapped by an access entry to
 * the `dify-responders` group, so the cluster lets it do what the incident-responder Role allows and
 * nothing more; only the incident-responder IAM role (and account administrators) may invoke it.
 * Each invocation is one request of a closed set (contracts/cluster-responder.ts), validated before
 * anything reaches the cluster, and writes one audit line: the action, its target and its outcome.
 */

export interface HandlerDependencies extends ActionDependencies {
  readonly log: (line: Record<string, unknown>) => void;
}

/** Validates and carries out one request; every failure is an answer that says what went wrong. */
export async function respond(event: unknown, deps: HandlerDependencies): Promise<ResponderResponse> {
  const parsed = ResponderRequest.safeParse(event);
  if (!parsed.success) {
    const error = `request: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`;
    deps.log({ action: 'invalid', outcome: 'refused', error });
    return { ok: false, error };
  }
  const request = parsed.data;
  const target = 'target' in request ? request.target : 'workloads' in request ? request.workloads : undefined;
  try {
    const result = await act(request, deps);
    deps.log({ action: request.action, target, outcome: 'done' });
    return { ok: true, result };
  } catch (error) {
    const message = (error as Error)?.message ?? String(error);
    deps.log({ action: request.action, target, outcome: 'failed', error: message });
    return { ok: false, error: `${request.action}: ${message}` };
  }
}

/** Deletes every refresh-token key, signed in as Dify's own Valkey user over TLS. */
export async function deleteRefreshTokens(redis: Redis): Promise<number> {
  let deleted = 0;
  for (const prefix of REFRESH_TOKEN_PREFIXES) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  }
  return deleted;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`cluster responder: environment variable ${name} is not set`);
  return value;
}

let dependencies: HandlerDependencies | undefined;

function fromEnvironment(): HandlerDependencies {
  const endpoint = required('CLUSTER_ENDPOINT');
  if (!endpoint.startsWith('https://')) throw new Error('cluster responder: CLUSTER_ENDPOINT must be https://');
  const clusterName = required('CLUSTER_NAME');
  const region = required('AWS_REGION');
  const kube = new KubeClient({
    baseUrl: endpoint,
    token: () => eksToken(clusterName, region, credentialsFromEnvironment(process.env), new Date()),
    dispatcher: new Agent({ connect: { ca: Buffer.from(required('CLUSTER_CA'), 'base64').toString('utf8') } }),
    timeoutMs: 10_000,
  });
  const secrets = new SecretsManagerClient({ region });
  return {
    kube,
    log: (line) => console.log(JSON.stringify(line)),
    revokeSessions: async () => {
      const read = await secrets.send(new GetSecretValueCommand({ SecretId: required('CACHE_SECRET_ARN') }));
      const { username, password } = JSON.parse(read.SecretString ?? '{}') as { username?: string; password?: string };
      if (!username || !password) throw new Error("Dify's cache user secret has no username or password");
      const host = required('CACHE_HOST');
      const redis = new Redis({
        host,
        port: Number(required('CACHE_PORT')),
        username,
        password,
        tls: { servername: host },
        lazyConnect: true,
        // INFO is one of the @dangerous commands Dify's user may not run.
        enableReadyCheck: false,
        maxRetriesPerRequest: 2,
        connectTimeout: 10_000,
      });
      try {
        await redis.connect();
        return await deleteRefreshTokens(redis);
      } finally {
        redis.disconnect();
      }
    },
  };
}

export const handler = async (event: unknown): Promise<ResponderResponse> => {
  dependencies ??= fromEnvironment();
  return respond(event, dependencies);
};
