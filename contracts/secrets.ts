/**
 * The stack's secrets, one per purpose: the output that holds each one's ARN, the services that read
 * it, and how it rotates. The stack grants each service exactly these (test/contracts/secrets.test.ts
 * reads the synthesized template); the rotation function restarts exactly these consumers, and
 * `dify-aws doctor` checks each one's rotation.
 */
import { OUTPUTS, type ServiceId } from './stack-outputs';

/** How the rotation function rotates a secret (contracts/rotation.ts, lambda/secret-rotation). */
export type RotationKind = 'shared-key' | 'cache-user' | 'database-role' | 'client-key-pepper';

/** How a secret changes. */
export type Rotation =
  /**
   * `dify-aws secrets rotate <name>`: a new value, then the consumers redeploy. `routine: false`: not
   * part of regular rotation (SECRET_KEY: a new one ends every web-app visitor's anonymous identity and
   * makes the system OAuth client parameters unreadable).
   */
  | {
      readonly by: 'cli';
      readonly name: string;
      readonly method: 'value' | 'cache-user' | 'database-role';
      readonly routine?: false;
    }
  /**
   * The stack's rotation function (lambda/secret-rotation), on the deployment's schedule
   * (configuration key rotationSchedule); `dify-aws secrets rotate <name>` starts the same rotation
   * at once and follows it.
   */
  | { readonly by: 'schedule'; readonly name: string; readonly kind: RotationKind }
  /** Secrets Manager's own rotation function (the Aurora master), every `days` days. */
  | { readonly by: 'hosted'; readonly days: number }
  /** A document rewritten entry by entry (keys and clients by the CLI, rehashes by the gateway), not a credential of its own. */
  | { readonly by: 'document' }
  /** Read once, to create the owner account. */
  | { readonly by: 'never'; readonly why: string }
  /**
   * A deploy with configuration key `key` raised by one: a new value is written at deploy time and
   * the consumers are restarted by the operator (README: Email). For credentials that a scheduled
   * rotation in the VPC cannot make (an IAM user's access key: IAM has no VPC endpoint).
   */
  | { readonly by: 'deploy'; readonly key: string };

export interface SecretEntry {
  /** The output that holds its ARN. */
  readonly output: string;
  /** What it is, for messages. */
  readonly what: string;
  /** The services whose containers are given it (their execution role may read it). */
  readonly consumers: readonly ServiceId[];
  /** One-off tasks given it as well (they run at deploy time, never redeployed). */
  readonly tasks: readonly 'MigrationTask'[];
  /** Task roles that read it at run time themselves (the gateway's documents and its pepper). */
  readonly readers?: readonly ServiceId[];
  /** Task roles that write it at run time (the gateway's rehashes). */
  readonly writers?: readonly ServiceId[];
  /** For an ElastiCache user's secret: the output holding the user's id. */
  readonly cacheUserIdOutput?: string;
  /**
   * The configuration key that creates it; without it the secret and its output do not exist.
   * @default - every deployment has it
   */
  readonly onlyWith?: string;
  readonly rotation: Rotation;
}

export const SECRETS = {
  secretKey: {
    output: OUTPUTS.difySecretKeySecretArn,
    what: "Dify's SECRET_KEY",
    consumers: ['Api', 'Worker', 'Beat'],
    tasks: ['MigrationTask'],
    rotation: { by: 'cli', name: 'secret-key', method: 'value', routine: false },
  },
  sandboxApiKey: {
    output: OUTPUTS.sandboxApiKeySecretArn,
    what: 'the sandbox API key',
    consumers: ['Api', 'Worker', 'Sandbox'],
    tasks: [],
    rotation: { by: 'schedule', name: 'sandbox-key', kind: 'shared-key' },
  },
  pluginDaemonKey: {
    output: OUTPUTS.pluginDaemonKeySecretArn,
    what: 'the plugin daemon server key',
    consumers: ['Api', 'Worker', 'PluginDaemon'],
    tasks: [],
    rotation: { by: 'schedule', name: 'plugin-daemon-key', kind: 'shared-key' },
  },
  pluginInnerApiKey: {
    output: OUTPUTS.pluginInnerApiKeySecretArn,
    what: 'the plugin inner API key',
    consumers: ['Api', 'Worker', 'PluginDaemon'],
    tasks: [],
    rotation: { by: 'schedule', name: 'plugin-inner-key', kind: 'shared-key' },
  },
  initPassword: {
    output: OUTPUTS.initPasswordSecretArn,
    what: 'the /install password',
    consumers: ['Api'],
    tasks: [],
    rotation: { by: 'never', why: 'it opens /install once, to create the owner account' },
  },
  cacheDify: {
    cacheUserIdOutput: OUTPUTS.cacheDifyUserId,
    output: OUTPUTS.cacheDifyUserSecretArn,
    what: "Dify's Valkey user password",
    consumers: ['Api', 'Worker', 'Beat'],
    tasks: ['MigrationTask'],
    rotation: { by: 'schedule', name: 'cache-dify-password', kind: 'cache-user' },
  },
  cachePluginDaemon: {
    cacheUserIdOutput: OUTPUTS.cachePluginDaemonUserId,
    output: OUTPUTS.cachePluginDaemonUserSecretArn,
    what: "the plugin daemon's Valkey user password",
    consumers: ['PluginDaemon'],
    tasks: [],
    rotation: { by: 'schedule', name: 'cache-plugin-daemon-password', kind: 'cache-user' },
  },
  cacheGateway: {
    cacheUserIdOutput: OUTPUTS.cacheGatewayUserId,
    output: OUTPUTS.cacheGatewayUserSecretArn,
    what: "the LLM gateway's Valkey user password",
    consumers: ['Gateway'],
    tasks: [],
    rotation: { by: 'schedule', name: 'cache-gateway-password', kind: 'cache-user' },
  },
  appDatabase: {
    output: OUTPUTS.databaseAppSecretArn,
    what: "the dify database role's password",
    consumers: ['Api', 'Worker', 'Beat'],
    tasks: ['MigrationTask'],
    rotation: { by: 'schedule', name: 'app-db-password', kind: 'database-role' },
  },
  pluginDatabase: {
    output: OUTPUTS.databasePluginSecretArn,
    what: "the dify_plugin database role's password",
    consumers: ['PluginDaemon'],
    tasks: [],
    rotation: { by: 'schedule', name: 'plugin-db-password', kind: 'database-role' },
  },
  databaseMaster: {
    output: OUTPUTS.databaseMasterSecretArn,
    what: "Aurora's master password",
    consumers: [],
    tasks: [],
    rotation: { by: 'hosted', days: 30 },
  },
  gatewayPepper: {
    output: OUTPUTS.gatewayPepperSecretArn,
    what: "the LLM gateway's client-key pepper",
    consumers: [],
    tasks: [],
    // Read at run time, its current and previous versions, so that a rotation needs no restart.
    readers: ['Gateway'],
    rotation: { by: 'schedule', name: 'gateway-pepper', kind: 'client-key-pepper' },
  },
  gatewayRehash: {
    output: OUTPUTS.gatewayRehashSecretArn,
    what: "the LLM gateway's client key rehashes",
    consumers: [],
    tasks: [],
    readers: ['Gateway'],
    writers: ['Gateway'],
    rotation: { by: 'document' },
  },
  gatewayProviderKeys: {
    output: OUTPUTS.gatewayProviderKeysSecretArn,
    what: "the LLM gateway's provider key pool",
    consumers: [],
    tasks: [],
    readers: ['Gateway'],
    rotation: { by: 'document' },
  },
  gatewayClients: {
    output: OUTPUTS.gatewayClientsSecretArn,
    what: "the LLM gateway's client records",
    consumers: [],
    tasks: [],
    readers: ['Gateway'],
    rotation: { by: 'document' },
  },
  smtp: {
    output: OUTPUTS.smtpSecretArn,
    what: 'the SES SMTP credentials',
    // The api shows e-mail features and sends some mail itself; the worker sends invitations and resets.
    consumers: ['Api', 'Worker'],
    tasks: [],
    onlyWith: 'email',
    rotation: { by: 'deploy', key: 'emailCredentialsGeneration' },
  },
} as const satisfies Record<string, SecretEntry>;

export type SecretId = keyof typeof SECRETS;

/** The secrets the rotation function rotates on the schedule, with their kind. */
export function scheduled(): Array<{ id: SecretId; entry: SecretEntry; name: string; kind: RotationKind }> {
  return (Object.entries(SECRETS) as Array<[SecretId, SecretEntry]>).flatMap(([id, entry]) =>
    entry.rotation.by === 'schedule' ? [{ id, entry, name: entry.rotation.name, kind: entry.rotation.kind }] : [],
  );
}

/** Every secret `dify-aws secrets rotate` knows, by its CLI name: the scheduled ones and SECRET_KEY. */
export function cliRotated(): Array<{ id: SecretId; entry: SecretEntry; name: string }> {
  return (Object.entries(SECRETS) as Array<[SecretId, SecretEntry]>).flatMap(([id, entry]) =>
    entry.rotation.by === 'schedule' || entry.rotation.by === 'cli' ? [{ id, entry, name: entry.rotation.name }] : [],
  );
}
