import { DescribeServicesCommand, type ECSClient, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { pepperRotationBlockers } from '../../../contracts/client-keys';
import {
  clientsDocumentSchema,
  EMPTY_CLIENTS_DOCUMENT,
  EMPTY_REHASH_DOCUMENT,
  rehashDocumentSchema,
  storedDocument,
} from '../../../contracts/gateway-documents';
import {
  alternateUser,
  currentVersionOf,
  type Consumers,
  newSecretValue,
  ROTATION_STEPS,
  type RotationStep,
  type RotationTarget,
} from '../../../contracts/rotation';

/**
 * One step of a Secrets Manager rotation (create, set, test, finish) for the stack's own secrets,
 * each kind designed so that nothing that runs is refused while it happens:
 *
 * - shared-key (sandbox key, plugin daemon keys): each side accepts exactly one value, so the new
 *   value becomes current and both sides restart together at the finish; until the last old task
 *   has stopped, a call between an old and a new task is refused (README: Rotating secrets).
 * - cache-user: the ElastiCache user accepts the old and the new password from the set step on; at
 *   the finish the new one becomes current, the consumers restart, and once they are all new the
 *   old password is removed. If they do not settle within the budget, the old password stays until
 *   the next rotation replaces it, and the log says so.
 * - database-role: the new password goes to the login nobody uses (`dify` ⇄ `dify_clone`), through
 *   the database bootstrap function; the finish makes it current and restarts the consumers, and the
 *   previous login keeps working until the next rotation.
 * - client-key-pepper (the LLM gateway's): the gateway holds the current and the previous version
 *   and rehashes each client key at its first use, so nothing restarts. It refuses to start while an
 *   enabled client's key is not known under the current version: that client would be locked out.
 *
 * Every step checks before it acts, so a rotation stopped after any step completes when it runs
 * again with the same token. Nothing it logs or throws holds a secret value.
 */

export interface RotationEvent {
  readonly SecretId: string;
  readonly ClientRequestToken: string;
  readonly Step: string;
}

/** An ElastiCache user's passwords, changed as ModifyUser does and waited for until active. */
export interface CacheUsers {
  setPasswords(userId: string, passwords: readonly string[]): Promise<void>;
}

export interface Ports {
  readonly secrets: SecretsManagerClient;
  readonly ecs: ECSClient;
  readonly lambda: LambdaClient;
  readonly cacheUsers: CacheUsers;
  /** Signs in to the cache as `username` with `password` and PINGs; throws naming the failure only. */
  readonly cacheSignIn: (host: string, port: number, username: string, password: string) => Promise<void>;
  readonly randomBytes: (n: number) => Buffer;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  readonly log: (line: Record<string, unknown>) => void;
  /** How long the finish step waits for restarted consumers before it leaves the old cache password. */
  readonly settleBudgetMs: number;
  readonly pollMs: number;
}

export class RotationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RotationError';
  }
}

interface Credentials {
  readonly username: string;
  readonly password: string;
  readonly [field: string]: unknown;
}

export async function rotationStep(
  event: RotationEvent,
  targets: Readonly<Record<string, RotationTarget>>,
  ports: Ports,
): Promise<void> {
  const { SecretId: secretId, ClientRequestToken: token } = event;
  const step = event.Step as RotationStep;
  if (!ROTATION_STEPS.includes(step)) {
    throw new RotationError(`Step: expected one of ${ROTATION_STEPS.join(', ')}, got '${String(event.Step)}'`);
  }
  if (typeof token !== 'string' || !/^[\w-]{32,64}$/.test(token)) {
    throw new RotationError('ClientRequestToken: expected a version id of 32 to 64 characters');
  }
  const target = targets[secretId];
  if (target === undefined) throw new RotationError(`secret ${secretId} is not one this function rotates`);
  const rotation = new Rotation(secretId, token, target, ports);
  await rotation.load();
  const started = ports.now();
  await rotation[step]();
  ports.log({ secret: target.what, step, token, ok: true, ms: ports.now() - started });
}

class Rotation {
  private versions: Record<string, string[]> = {};

  constructor(
    private readonly secretId: string,
    private readonly token: string,
    private readonly target: RotationTarget,
    private readonly ports: Ports,
  ) {}

  async load(): Promise<void> {
    const described = await this.aws(
      'describing the secret',
      this.ports.secrets.send(new DescribeSecretCommand({ SecretId: this.secretId })),
    );
    if (described.RotationEnabled !== true) {
      throw new RotationError(`${this.target.what}: rotation is not enabled on the secret`);
    }
    this.versions = described.VersionIdsToStages ?? {};
  }

  private stagesOf(versionId: string): string[] {
    return this.versions[versionId] ?? [];
  }

  private get isCurrent(): boolean {
    return this.stagesOf(this.token).includes('AWSCURRENT');
  }

  /** Stages the new value as AWSPENDING under the token, unless it already is. */
  async createSecret(): Promise<void> {
    if (this.isCurrent) return this.skip('createSecret', 'the token is already current');
    if (this.stagesOf(this.token).includes('AWSPENDING') && (await this.read('AWSPENDING', this.token, true))) {
      return this.skip('createSecret', 'the pending value is already staged');
    }
    if (this.target.kind === 'client-key-pepper') await this.refuseLockout(this.target);
    const value = newSecretValue(this.ports.randomBytes);
    let secretString: string;
    if (this.target.kind === 'shared-key' || this.target.kind === 'client-key-pepper') {
      secretString = value;
    } else {
      const current = credentials(await this.read('AWSCURRENT'), this.target.what);
      const username = this.target.kind === 'database-role' ? alternateUser(current.username) : current.username;
      secretString = JSON.stringify({ ...current, username, password: value });
    }
    await this.aws(
      'staging the new value as AWSPENDING (nothing else was changed)',
      this.ports.secrets.send(
        new PutSecretValueCommand({
          SecretId: this.secretId,
          ClientRequestToken: this.token,
          SecretString: secretString,
          VersionStages: ['AWSPENDING'],
        }),
      ),
    );
  }

  /** Makes the backend accept the pending value, beside the current one. */
  async setSecret(): Promise<void> {
    if (this.isCurrent) return this.skip('setSecret', 'the token is already current');
    const target = this.target;
    if (target.kind === 'shared-key') return this.skip('setSecret', 'both sides read the key at start');
    if (target.kind === 'client-key-pepper') {
      return this.skip('setSecret', 'the gateway reads the current and the previous pepper itself');
    }
    if (target.kind === 'cache-user') {
      const current = credentials(await this.read('AWSCURRENT'), target.what);
      const pending = credentials(await this.read('AWSPENDING', this.token), target.what);
      // Exactly these two: a password left over from an earlier rotation goes now.
      return this.cachePasswords(target.userId, [current.password, pending.password], 'accepting both passwords');
    }
    await this.askBootstrap('SetRolePassword', target);
  }

  /** Proves the pending value works where it will be used. */
  async testSecret(): Promise<void> {
    if (this.isCurrent) return this.skip('testSecret', 'the token is already current');
    const target = this.target;
    if (target.kind === 'shared-key' || target.kind === 'client-key-pepper') {
      const pending = (await this.read('AWSPENDING', this.token)) ?? '';
      if (!/^[A-Za-z0-9]{64}$/.test(pending)) {
        throw new RotationError(`${target.what}: the pending value is not 64 letters and digits`);
      }
      return;
    }
    if (target.kind === 'cache-user') {
      const pending = credentials(await this.read('AWSPENDING', this.token), target.what);
      try {
        await this.ports.cacheSignIn(target.host, target.port, pending.username, pending.password);
      } catch (error) {
        throw new RotationError(
          `${target.what}: signing in to the cache as ${pending.username} with the pending password failed (${(error as Error).name}: ${redisReason(error)}); the current password is unchanged and still accepted`,
        );
      }
      return;
    }
    await this.askBootstrap('TestRolePassword', target);
  }

  /** Makes the pending value current, restarts its consumers, and ends the old value's acceptance. */
  async finishSecret(): Promise<void> {
    const currentVersion = currentVersionOf(this.versions);
    if (currentVersion !== this.token) {
      await this.aws(
        'making the new value current',
        this.ports.secrets.send(
          new UpdateSecretVersionStageCommand({
            SecretId: this.secretId,
            VersionStage: 'AWSCURRENT',
            MoveToVersionId: this.token,
            RemoveFromVersionId: currentVersion,
          }),
        ),
      );
      this.ports.log({ secret: this.target.what, step: 'finishSecret', current: this.token });
    }
    const target = this.target;
    await this.restart(target.consumers);
    if (target.kind === 'cache-user') {
      if (await this.settled(target.consumers)) {
        const current = credentials(await this.read('AWSCURRENT'), target.what);
        await this.cachePasswords(target.userId, [current.password], 'removing the old password');
      } else {
        this.ports.log({
          secret: target.what,
          step: 'finishSecret',
          warning: 'old-password-kept',
          why: `the consumers were not all restarted within ${Math.round(this.ports.settleBudgetMs / 1000)} s; the old password stays accepted until the next rotation replaces it, or until this step runs again`,
        });
      }
    }
    // Last: no version left pending. Until then the version is current and pending at once, which
    // `secrets rotate` and `doctor` read as a finish that has not completed (its readers may not have
    // restarted yet), and the next rotation starts clean.
    if (this.stagesOf(this.token).includes('AWSPENDING') || currentVersion !== this.token) {
      await this.aws(
        'clearing the pending stage',
        this.ports.secrets.send(
          new UpdateSecretVersionStageCommand({
            SecretId: this.secretId,
            VersionStage: 'AWSPENDING',
            RemoveFromVersionId: this.token,
          }),
        ),
      );
    }
  }

  /**
   * Refuses a pepper rotation that would lock a client out: one whose key is not known under the
   * current pepper would, after it, be under a version the gateway no longer holds.
   */
  private async refuseLockout(target: Extract<RotationTarget, { kind: 'client-key-pepper' }>): Promise<void> {
    const current = currentVersionOf(this.versions);
    if (current === undefined) throw new RotationError(`${target.what}: the secret has no current version`);
    const clients = clientsDocumentSchema.safeParse(
      storedDocument(await this.readDocument(target.clientsSecretArn, 'client records'), EMPTY_CLIENTS_DOCUMENT),
    );
    const rehashes = rehashDocumentSchema.safeParse(
      storedDocument(await this.readDocument(target.rehashSecretArn, 'client key rehashes'), EMPTY_REHASH_DOCUMENT),
    );
    if (!clients.success || !rehashes.success) {
      const [name, issue] = !clients.success
        ? ['client records', clients.error.issues[0]]
        : ['client key rehashes', rehashes.error!.issues[0]];
      throw new RotationError(
        `${target.what}: not rotated: the gateway's ${name} do not parse at '${issue.path.join('.')}' (${issue.message}); nothing was changed`,
      );
    }
    const blockers = pepperRotationBlockers(clients.data, rehashes.data, current);
    if (blockers.length > 0) {
      throw new RotationError(
        `${target.what}: not rotated: client ${blockers.join(', ')} has not signed in since the pepper last changed, so the gateway does not yet hold its key's hash under the current pepper, and after this rotation it could not sign in. Have each make one request through the gateway, or issue it a new key (dify-aws clients rotate --id ID), or revoke it (dify-aws clients revoke --id ID); then rotate again. Nothing was changed`,
      );
    }
  }

  /** One of the gateway's documents, as JSON (its values are hashes and settings, never keys). */
  private async readDocument(secretId: string, name: string): Promise<unknown> {
    const answer = await this.aws(
      `reading the gateway's ${name}`,
      this.ports.secrets.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' })),
    );
    try {
      return JSON.parse(answer.SecretString ?? '');
    } catch {
      throw new RotationError(
        `${this.target.what}: not rotated: the gateway's ${name} are not JSON; nothing was changed`,
      );
    }
  }

  private async askBootstrap(action: 'SetRolePassword' | 'TestRolePassword', target: RotationTarget) {
    if (target.kind !== 'database-role') throw new RotationError('internal: not a database role');
    const answer = await this.aws(
      `invoking ${target.bootstrapFunction} (${action})`,
      this.ports.lambda.send(
        new InvokeCommand({
          FunctionName: target.bootstrapFunction,
          Payload: Buffer.from(
            JSON.stringify({
              Action: action,
              MasterSecretArn: target.masterSecretArn,
              RoleSecretArn: this.secretId,
              VersionId: this.token,
            }),
          ),
        }),
      ),
    );
    if (answer.FunctionError !== undefined) {
      // The bootstrap's errors name a step, a role and a code, never a value (lambda/db-bootstrap).
      let message = answer.FunctionError;
      try {
        message = String(JSON.parse(Buffer.from(answer.Payload ?? []).toString('utf8')).errorMessage ?? message);
      } catch {
        // keep the bare error type
      }
      throw new RotationError(
        `${target.what}: ${action} failed in ${target.bootstrapFunction}: ${message}. The current login and its password are unchanged`,
      );
    }
  }

  private async cachePasswords(userId: string, passwords: string[], step: string): Promise<void> {
    try {
      await this.ports.cacheUsers.setPasswords(userId, passwords);
    } catch (error) {
      throw new RotationError(`ElastiCache user ${userId}: ${step} failed: ${(error as Error).name}`);
    }
    this.ports.log({ secret: this.target.what, userId, step, passwords: passwords.length });
  }

  /** Restarts every consumer: a new ECS deployment, or an EKS rollout through the cluster responder. */
  private async restart(consumers: Consumers): Promise<void> {
    for (const service of consumers.services) {
      await this.aws(
        `restarting ${service}`,
        this.ports.ecs.send(
          new UpdateServiceCommand({ cluster: consumers.cluster, service, forceNewDeployment: true }),
        ),
      );
    }
    if (consumers.workloads.length > 0) {
      await this.askResponder(consumers, {
        action: 'restart',
        workloads: consumers.workloads,
        at: new Date(this.ports.now()).toISOString(),
      });
    }
    this.ports.log({
      secret: this.target.what,
      step: 'finishSecret',
      restarted: [...consumers.services, ...consumers.workloads],
    });
  }

  /** Whether every consumer runs new tasks or pods only, all healthy, within the budget. */
  private async settled(consumers: Consumers): Promise<boolean> {
    const deadline = this.ports.now() + this.ports.settleBudgetMs;
    for (;;) {
      const waiting: string[] = [];
      if (consumers.services.length > 0) {
        const described = await this.aws(
          'describing the consumers',
          this.ports.ecs.send(
            new DescribeServicesCommand({ cluster: consumers.cluster, services: consumers.services }),
          ),
        );
        for (const name of consumers.services) {
          const service = (described.services ?? []).find((s) => s.serviceName === name || s.serviceArn === name);
          const deployments = service?.deployments ?? [];
          const done =
            service !== undefined &&
            deployments.length === 1 &&
            (deployments[0].rolloutState ?? 'COMPLETED') === 'COMPLETED' &&
            service.runningCount === service.desiredCount;
          if (!done) waiting.push(name);
        }
      }
      if (consumers.workloads.length > 0) {
        const answer = (await this.askResponder(consumers, { action: 'rollout', workloads: consumers.workloads })) as {
          rows?: Array<{ workload: string; done: boolean }>;
        };
        for (const row of answer.rows ?? []) if (!row.done) waiting.push(row.workload);
      }
      if (waiting.length === 0) return true;
      if (this.ports.now() + this.ports.pollMs > deadline) return false;
      this.ports.log({ secret: this.target.what, step: 'finishSecret', waitingFor: waiting });
      await this.ports.sleep(this.ports.pollMs);
    }
  }

  private async askResponder(consumers: Consumers, request: Record<string, unknown>): Promise<unknown> {
    if (consumers.responder === undefined) throw new RotationError('internal: EKS consumers without a responder');
    const answer = await this.aws(
      `asking the cluster responder to ${String(request.action)}`,
      this.ports.lambda.send(
        new InvokeCommand({ FunctionName: consumers.responder, Payload: Buffer.from(JSON.stringify(request)) }),
      ),
    );
    const body = Buffer.from(answer.Payload ?? []).toString('utf8');
    if (answer.FunctionError !== undefined) {
      throw new RotationError(`the cluster responder refused ${String(request.action)}: ${answer.FunctionError}`);
    }
    return JSON.parse(body || '{}');
  }

  /** A version's value; with `optional`, undefined where it does not exist. */
  private async read(stage: 'AWSCURRENT' | 'AWSPENDING', versionId?: string, optional = false) {
    try {
      const answer = await this.ports.secrets.send(
        new GetSecretValueCommand({ SecretId: this.secretId, VersionStage: stage, VersionId: versionId }),
      );
      return answer.SecretString;
    } catch (error) {
      if (optional && (error as Error).name === 'ResourceNotFoundException') return undefined;
      throw new RotationError(`${this.target.what}: reading the ${stage} value failed: ${(error as Error).name}`);
    }
  }

  private skip(step: RotationStep, why: string): void {
    this.ports.log({ secret: this.target.what, step, skipped: why });
  }

  private async aws<T>(doing: string, call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      throw new RotationError(`${this.target.what}: ${doing} failed: ${(error as Error).name}`);
    }
  }
}

function credentials(secretString: string | undefined, what: string): Credentials {
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString ?? '');
  } catch {
    // Never the string itself: it is the credential.
    throw new RotationError(`${what}: expected a JSON object with username and password`);
  }
  const { username, password } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof username !== 'string' || typeof password !== 'string' || username === '') {
    throw new RotationError(`${what}: expected a JSON object with username and password`);
  }
  return parsed as Credentials;
}

/** The reply code of a Redis error (WRONGPASS, NOAUTH…), never its text beyond that word. */
function redisReason(error: unknown): string {
  const message = String((error as Error).message ?? '');
  return /^[A-Z]{3,}\b/.exec(message)?.[0] ?? 'no reply';
}
