/**
 * What the stack tells its secret-rotation function about each secret it rotates
 * (lambda/secret-rotation), and the small rules the function, the database bootstrap and the CLI
 * share: how a new value is drawn, and which login role a database secret alternates to.
 */
import { z } from 'zod';
import { WORKLOAD_IDS, WORKLOADS, type WorkloadId } from './kubernetes';
import { SECRETS, type SecretId } from './secrets';
import type { ServiceId } from './stack-outputs';

/** The four steps Secrets Manager asks a rotation function for, in order. */
export const ROTATION_STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type RotationStep = (typeof ROTATION_STEPS)[number];

const arn = (service: string) =>
  z.string().refine((value) => value.startsWith('arn:') && value.split(':')[2] === service, `an ${service} ARN`);

/** Who reads a secret at start, and so restarts once a new value is current. */
const Consumers = z
  .object({
    /** The ECS cluster of `services`; empty when there are none. */
    cluster: z.string(),
    /** ECS service names. */
    services: z.array(z.string().min(1)),
    /** EKS Deployments, restarted through the cluster responder. */
    workloads: z.array(z.enum(WORKLOAD_IDS as [WorkloadId, ...WorkloadId[]])),
    /** The cluster responder's function, when `workloads` is not empty. */
    responder: z.string().optional(),
  })
  .strict();
export type Consumers = z.infer<typeof Consumers>;

export const RotationTarget = z.discriminatedUnion('kind', [
  /**
   * A key that two services share and each accepts exactly one value of (the sandbox key, the
   * plugin daemon's keys): the new value becomes current, then both sides restart together.
   */
  z.object({ kind: z.literal('shared-key'), what: z.string(), consumers: Consumers }).strict(),
  /**
   * An ElastiCache user: it holds the old and the new password while its consumers restart, then
   * only the new one.
   */
  z
    .object({
      kind: z.literal('cache-user'),
      what: z.string(),
      consumers: Consumers,
      userId: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'an ElastiCache user id'),
      host: z.string().min(1),
      port: z.number().int().min(1).max(65_535),
    })
    .strict(),
  /**
   * A PostgreSQL login role, alternating between `name` and `name_clone` (both sign in as `name`),
   * set and tested through the database bootstrap function, which alone holds the master secret.
   */
  z
    .object({
      kind: z.literal('database-role'),
      what: z.string(),
      consumers: Consumers,
      bootstrapFunction: z.string().min(1),
      masterSecretArn: arn('secretsmanager'),
    })
    .strict(),
  /**
   * The LLM gateway's client-key pepper: the gateway reads the current and the previous version
   * itself and rehashes each key at its first use, so nothing restarts. The rotation refuses while an
   * enabled client's key is not yet known under the current version (contracts/client-keys.ts).
   */
  z
    .object({
      kind: z.literal('client-key-pepper'),
      what: z.string(),
      consumers: Consumers,
      clientsSecretArn: arn('secretsmanager'),
      rehashSecretArn: arn('secretsmanager'),
    })
    .strict(),
]);
export type RotationTarget = z.infer<typeof RotationTarget>;

export const RotationTargets = z.record(arn('secretsmanager'), RotationTarget);

/**
 * The function's `ROTATION` environment variable, kept small (Lambda allows 4 KB of environment):
 * the deployment's names, and each rotated secret's catalogue id. What a secret is, how it rotates
 * and who reads it come from the catalogue (contracts/secrets.ts); `targetsOf` joins the two.
 */
export const RotationConfig = z
  .object({
    /** The ECS cluster of the services below. */
    cluster: z.string(),
    /** ECS service names by catalogue service id; a consumer not here runs as an EKS Deployment. */
    services: z.record(z.string(), z.string().min(1)),
    /** The cluster responder (EKS only). */
    responder: z.string().optional(),
    bootstrapFunction: z.string().min(1),
    masterSecretArn: arn('secretsmanager'),
    cache: z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65_535) }).strict(),
    /** The gateway's client records and rehashes, which the pepper's rotation reads to refuse a lockout. */
    gateway: z.object({ clients: arn('secretsmanager'), rehash: arn('secretsmanager') }).strict(),
    /** Each rotated secret's ARN: its catalogue id, and for a cache user its ElastiCache user id. */
    secrets: z.record(arn('secretsmanager'), z.tuple([z.string(), z.string().optional()])),
  })
  .strict();
export type RotationConfig = z.infer<typeof RotationConfig>;

/** Every rotated secret's target, from the configuration and the catalogue; throws naming what is missing. */
export function targetsOf(config: RotationConfig): Record<string, RotationTarget> {
  const targets: Record<string, RotationTarget> = {};
  for (const [secretArn, [id, userId]] of Object.entries(config.secrets)) {
    const entry = (SECRETS as Record<string, (typeof SECRETS)[SecretId]>)[id];
    if (entry === undefined || entry.rotation.by !== 'schedule') {
      throw new Error(`secret ${secretArn}: '${id}' is not a scheduled secret of the catalogue`);
    }
    const consumers = consumersOf(entry.consumers, config);
    const what = entry.what;
    const kind = entry.rotation.kind;
    if (kind === 'shared-key') targets[secretArn] = { kind, what, consumers };
    else if (kind === 'client-key-pepper') {
      targets[secretArn] = {
        kind,
        what,
        consumers,
        clientsSecretArn: config.gateway.clients,
        rehashSecretArn: config.gateway.rehash,
      };
    } else if (kind === 'cache-user') {
      if (userId === undefined) throw new Error(`secret ${secretArn}: '${id}' needs its ElastiCache user id`);
      targets[secretArn] = RotationTarget.parse({ kind, what, consumers, userId, ...config.cache });
    } else {
      targets[secretArn] = {
        kind,
        what,
        consumers,
        bootstrapFunction: config.bootstrapFunction,
        masterSecretArn: config.masterSecretArn,
      };
    }
  }
  return targets;
}

function consumersOf(ids: readonly ServiceId[], config: RotationConfig): Consumers {
  const services: string[] = [];
  const workloads: WorkloadId[] = [];
  for (const id of ids) {
    const name = config.services[id];
    if (name !== undefined) services.push(name);
    else if (config.responder !== undefined && id in WORKLOADS) workloads.push(id as WorkloadId);
    else throw new Error(`consumer ${id} runs neither as an ECS service nor as an EKS Deployment`);
  }
  return {
    cluster: services.length > 0 ? config.cluster : '',
    services,
    workloads,
    ...(workloads.length > 0 ? { responder: config.responder } : {}),
  };
}

/** The version a secret's stages mark AWSCURRENT, if any (DescribeSecret's VersionIdsToStages). */
export function currentVersionOf(stages: Readonly<Record<string, readonly string[]>>): string | undefined {
  return Object.entries(stages).find(([, labels]) => labels.includes('AWSCURRENT'))?.[0];
}

/** The suffix of a database role's alternate login (AWS's alternating-users convention). */
export const CLONE_SUFFIX = '_clone';

/** The login a database secret alternates to: `dify` ⇄ `dify_clone`. */
export function alternateUser(username: string): string {
  return username.endsWith(CLONE_SUFFIX) ? username.slice(0, -CLONE_SUFFIX.length) : `${username}${CLONE_SUFFIX}`;
}

/** The role whose objects a login owns: `dify` for both `dify` and `dify_clone`. */
export function baseUser(username: string): string {
  return username.endsWith(CLONE_SUFFIX) ? username.slice(0, -CLONE_SUFFIX.length) : username;
}

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
