import { randomBytes, randomUUID } from 'node:crypto';
import { createConnection } from 'node:net';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import Redis from 'ioredis';
import { Client as PgClient } from 'pg';
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { ROTATION_STEPS, type RotationTarget } from '../../../contracts/rotation';
import { MOTO_CREDENTIALS, type Moto, startMoto } from '../../../gateway/test/helpers/moto';
import { type RedisServer, startRedis } from '../../../gateway/test/helpers/redis';
import { MASTER, PG_BIN, type Postgres, startPostgres } from '../../../test/helpers/postgres';
import {
  bootstrap,
  type Clients,
  type RolePasswordRequest,
  setRolePassword,
  testRolePassword,
  verifiedConnection,
} from '../../db-bootstrap/src/index';
import { type Ports, type RotationEvent, rotationStep } from '../src/rotation';
import { generateClientKey, hashClientKey, type Peppers } from '../../../contracts/client-keys';
import { clientsDocumentSchema } from '../../../contracts/gateway-documents';
import { ClientRegistry } from '../../../gateway/src/clients';
import { PepperSource } from '../../../gateway/src/peppers';

/**
 * Each kind of rotation end to end against the real thing on loopback: Secrets Manager's version
 * stages in moto_server, a PostgreSQL role through the database bootstrap's own code, a Valkey user
 * as ACL rules on a real redis-server. Consumers are played by loops that read the current value
 * when they (re)start, as Dify's tasks do, and count every refused operation. ECS is a small fake
 * that restarts those loops and reports the rollout.
 */
const REGION = 'eu-west-1';
const ARN = (name: string) => `arn:aws:secretsmanager:${REGION}:123456789012:secret:${name}`;
const ADMIN_PASSWORD = 'redisAdminPassw0rdForRotation1';

/** A consumer: holds the value it read at its last start, and uses it until restarted. */
class Consumer {
  value: string | undefined;
  ops = 0;
  failures: string[] = [];
  constructor(
    readonly name: string,
    private readonly readCurrent: () => Promise<string>,
  ) {}
  async start() {
    this.value = await this.readCurrent();
  }
}

/** ECS as far as the rotation sees it: UpdateService restarts a consumer; DescribeServices reports it settled. */
function fakeEcs(consumers: Record<string, Consumer>, calls: string[], settles = true) {
  const rolling = new Set<string>();
  return {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name;
      if (name === 'UpdateServiceCommand') {
        const service = String(command.input.service);
        calls.push(`restart ${service}`);
        rolling.add(service);
        await consumers[service]?.start();
        return {};
      }
      if (name === 'DescribeServicesCommand') {
        const services = (command.input.services as string[]).map((serviceName) => {
          const done = settles || !rolling.has(serviceName);
          return {
            serviceName,
            desiredCount: 1,
            runningCount: 1,
            deployments: done ? [{ rolloutState: 'COMPLETED' }] : [{ rolloutState: 'IN_PROGRESS' }, {}],
          };
        });
        return { services };
      }
      throw new Error(`unexpected ECS call ${name}`);
    },
  } as unknown as ECSClient;
}

describe('scheduled rotation against moto_server, PostgreSQL and redis-server', () => {
  if (PG_BIN === undefined) {
    it('needs PostgreSQL (apt-get install -y postgresql; .ci/run installs it)', () => {
      throw new Error('PostgreSQL is not installed: this suite would prove nothing without it');
    });
    return;
  }
  let moto: Moto;
  let redis: RedisServer;
  let pg: Postgres;
  let secrets: SecretsManagerClient;
  let admin: Redis;
  let watcher: PgClient;
  const logs: string[] = [];
  const ecsCalls: string[] = [];
  const consumers: Record<string, Consumer> = {};
  let failCacheOnce = false;
  let settles = true;

  const targets: Record<string, RotationTarget> = {};
  const consumersOf = (...services: string[]) => ({ cluster: 'dify', services, workloads: [] });

  /** Every password or key the suite has read back: none may appear in a log line. */
  const seen = new Set<string>();
  async function value(secret: string, stage = 'AWSCURRENT', versionId?: string) {
    const answer = await secrets.send(
      new GetSecretValueCommand({ SecretId: secret, VersionStage: stage, VersionId: versionId }),
    );
    const text = answer.SecretString!;
    seen.add(text.startsWith('{') ? JSON.parse(text).password : text);
    return text;
  }
  async function stages(secret: string) {
    return (await secrets.send(new DescribeSecretCommand({ SecretId: secret }))).VersionIdsToStages ?? {};
  }

  /** The bootstrap function, as the Lambda invoke would run it: its own code, against this server. */
  function bootstrapClients(): Clients {
    return {
      secrets,
      connect: verifiedConnection(pg.ca),
      sleep: async () => undefined,
      log: (line) => logs.push(JSON.stringify(line)),
    };
  }
  const lambda = {
    send: async (command: { input: { Payload: Uint8Array } }) => {
      const request = JSON.parse(Buffer.from(command.input.Payload).toString('utf8')) as RolePasswordRequest;
      try {
        const run = request.Action === 'SetRolePassword' ? setRolePassword : testRolePassword;
        return { Payload: Buffer.from(JSON.stringify(await run(request, bootstrapClients()))) };
      } catch (error) {
        return {
          FunctionError: 'Unhandled',
          Payload: Buffer.from(JSON.stringify({ errorMessage: (error as Error).message })),
        };
      }
    },
  } as unknown as LambdaClient;

  function ports(): Ports {
    let clock = 0;
    return {
      secrets,
      ecs: fakeEcs(consumers, ecsCalls, settles),
      lambda,
      cacheUsers: {
        async setPasswords(userId, passwords) {
          if (failCacheOnce) {
            failCacheOnce = false;
            throw Object.assign(new Error('modify failed'), { name: 'InvalidUserStateFault' });
          }
          await admin.call('ACL', 'SETUSER', userId, 'resetpass', ...passwords.map((p) => `>${p}`));
        },
      },
      cacheSignIn: async (host, port, username, password) => {
        const client = new Redis({ host, port, username, password, lazyConnect: true, maxRetriesPerRequest: 0 });
        client.on('error', () => undefined);
        try {
          await client.connect();
          await client.ping();
        } finally {
          client.disconnect();
        }
      },
      randomBytes,
      sleep: async (ms) => {
        clock += ms;
      },
      now: () => Date.UTC(2026, 11, 2) + clock,
      log: (line) => logs.push(JSON.stringify(line)),
      settleBudgetMs: 60_000,
      pollMs: 15_000,
    };
  }

  /** Secrets Manager's side of a rotation: the four steps in order with one token, stopping after `stopAfter` steps. */
  async function rotate(
    secret: string,
    token = randomUUID(),
    stopAfter = 4,
    afterEachStep: () => Promise<void> = async () => undefined,
  ) {
    for (const step of ROTATION_STEPS.slice(0, stopAfter)) {
      const event: RotationEvent = { SecretId: secret, ClientRequestToken: token, Step: step };
      await rotationStep(event, targets, ports());
      await afterEachStep();
    }
    return token;
  }

  async function createSecret(name: string, value: string) {
    const arn = (await secrets.send(new CreateSecretCommand({ Name: name, SecretString: value }))).ARN!;
    // Turns rotation on without running one (moto has no Lambda to run): the value is unchanged.
    await secrets.send(
      new RotateSecretCommand({
        SecretId: arn,
        RotationRules: { AutomaticallyAfterDays: 90 },
        RotateImmediately: false,
      }),
    );
    return arn;
  }

  const pgSignIn = async (credentials: string) => {
    const { username, password, dbname } = JSON.parse(credentials);
    const client = new PgClient({
      host: '127.0.0.1',
      port: pg.port,
      user: username,
      password,
      database: dbname,
      ssl: { ca: pg.ca },
      connectionTimeoutMillis: 5000,
    });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT current_user AS acting, session_user AS login');
      return rows[0] as { acting: string; login: string };
    } finally {
      await client.end();
      await signedOut(username);
    }
  };
  /** A closed session leaves pg_stat_activity a moment after its client returns: wait, up to 2 s. */
  const signedOut = async (login: string) => {
    for (let i = 0; i < 40; i++) {
      const { rows } = await watcher.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [
        login,
      ]);
      if (rows[0].n === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  /** AUTH then PING over a raw connection: 'PONG', or an error whose message is the server's reply. */
  const cacheSignIn = (credentials: string) => {
    const { username, password } = JSON.parse(credentials) as { username: string; password: string };
    const bulk = (...parts: string[]) =>
      `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`;
    return new Promise<string>((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port: redis.port });
      let data = '';
      const done = (error?: Error) => {
        socket.destroy();
        if (error) reject(error);
        else resolve('PONG');
      };
      socket.setTimeout(2000, () => done(new Error('TIMEOUT')));
      socket.on('error', (error) => done(error));
      socket.on('data', (chunk) => {
        data += chunk.toString('utf8');
        if (data.startsWith('-')) done(new Error(data.split('\r\n')[0].slice(1)));
        else if (data.includes('+PONG')) done();
      });
      socket.on('connect', () => socket.write(bulk('AUTH', username, password) + bulk('PING')));
    });
  };

  /**
   * Rotates `secret` while the consumer uses its value (a fresh sign-in each time, as a pool that
   * reconnects does): in a loop alongside the whole rotation, and five times more after each step,
   * so every intermediate state is used whatever the timing. The loop stops after `most` uses or
   * 30 s. Returns how many uses happened while the rotation ran.
   */
  async function throughRotation(
    consumer: Consumer,
    use: (value: string) => Promise<unknown>,
    most: number,
    secret: string,
  ): Promise<number> {
    await consumer.start();
    consumer.ops = 0;
    consumer.failures = [];
    const once = async () => {
      try {
        await use(consumer.value!);
        consumer.ops++;
      } catch (error) {
        consumer.failures.push((error as { code?: string }).code ?? (error as Error).message.split(' ')[0]);
      }
    };
    let rotating = true;
    const loop = (async () => {
      const deadline = Date.now() + 30_000;
      while (rotating && consumer.ops < most && Date.now() < deadline) await once();
    })();
    try {
      await rotate(secret, randomUUID(), 4, async () => {
        for (let i = 0; i < 5; i++) await once();
      });
    } finally {
      rotating = false;
      await loop;
    }
    return consumer.ops;
  }

  let appSecret: string;
  let cacheSecret: string;
  let sandboxSecret: string;

  beforeAll(async () => {
    [moto, redis, pg] = await Promise.all([
      startMoto(),
      startRedis({
        password: ADMIN_PASSWORD,
        config: 'user dify on >difyCachePassw0rdBeforeRotation ~* &* +@all\n',
      }),
      startPostgres(),
    ]);
    secrets = new SecretsManagerClient({ region: REGION, endpoint: moto.endpoint, credentials: MOTO_CREDENTIALS });
    admin = new Redis({ host: '127.0.0.1', port: redis.port, password: ADMIN_PASSWORD });
    watcher = new PgClient({
      host: '127.0.0.1',
      port: pg.port,
      user: MASTER.user,
      password: MASTER.password,
      database: 'postgres',
      ssl: { ca: pg.ca },
    });
    await watcher.connect();

    const master = await createSecret(
      'master',
      JSON.stringify({ username: MASTER.user, password: MASTER.password, host: '127.0.0.1', port: pg.port }),
    );
    appSecret = await createSecret(
      'app',
      JSON.stringify({
        username: 'dify',
        password: 'AppPassw0rdBeforeAnyRotation123',
        host: '127.0.0.1',
        port: pg.port,
        dbname: 'dify',
      }),
    );
    await bootstrap(
      {
        RequestType: 'Create',
        ResourceProperties: {
          ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
          ClusterArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:dify-aurora',
          MasterSecretArn: master,
          Roles: [{ SecretArn: appSecret, Database: 'dify' }],
          Extensions: [],
        },
      } as never,
      bootstrapClients(),
    );
    cacheSecret = await createSecret(
      'cache',
      JSON.stringify({ username: 'dify', password: 'difyCachePassw0rdBeforeRotation' }),
    );
    sandboxSecret = await createSecret('sandbox', 'A'.repeat(64));
    targets[appSecret] = {
      kind: 'database-role',
      what: "the dify database role's password",
      consumers: consumersOf('api-db'),
      bootstrapFunction: 'dify-bootstrap',
      masterSecretArn: master,
    };
    targets[cacheSecret] = {
      kind: 'cache-user',
      what: "Dify's Valkey user password",
      consumers: consumersOf('api-cache'),
      userId: 'dify',
      host: '127.0.0.1',
      port: redis.port,
    };
    targets[sandboxSecret] = {
      kind: 'shared-key',
      what: 'the sandbox API key',
      consumers: consumersOf('api-sandbox', 'sandbox'),
    };
    consumers['api-db'] = new Consumer('api-db', () => value(appSecret));
    consumers['api-cache'] = new Consumer('api-cache', () => value(cacheSecret));
    consumers['api-sandbox'] = new Consumer('api-sandbox', () => value(sandboxSecret));
    consumers.sandbox = new Consumer('sandbox', () => value(sandboxSecret));
    for (const consumer of Object.values(consumers)) await consumer.start();
  }, 90_000);

  afterAll(async () => {
    admin?.disconnect();
    await watcher?.end();
    await Promise.all([moto?.stop(), redis?.stop(), pg?.stop()]);
  });

  beforeEach(() => {
    logs.length = 0;
    ecsCalls.length = 0;
    settles = true;
  });

  afterEach(() => {
    for (const line of logs) for (const secret of seen) expect(line).not.toContain(secret);
  });

  describe('a database role, by alternating logins', () => {
    it('moves the secret to dify_clone, which acts as dify, while the old login keeps working', async () => {
      const before = await value(appSecret);
      const token = await rotate(appSecret);
      const after = await value(appSecret);
      expect(JSON.parse(after).username).toBe('dify_clone');
      expect((await stages(appSecret))[token]).toEqual(['AWSCURRENT']);
      await expect(pgSignIn(after)).resolves.toEqual({ acting: 'dify', login: 'dify_clone' });
      await expect(pgSignIn(before)).resolves.toEqual({ acting: 'dify', login: 'dify' });
      expect(ecsCalls).toEqual(['restart api-db']);
      // What the clone creates, the owning role owns.
      const created = pg.psql(
        MASTER.user,
        MASTER.password,
        'dify',
        "SELECT count(*) FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid WHERE r.rolname = 'dify_clone'",
      );
      expect(created.stdout.trim()).toBe('1');
    });

    it('alternates back to dify on the next rotation, once the consumers moved off it', async () => {
      await rotate(appSecret);
      const current = JSON.parse(await value(appSecret));
      expect(current.username).toBe('dify');
      await expect(pgSignIn(JSON.stringify(current))).resolves.toEqual({ acting: 'dify', login: 'dify' });
    });

    it('refuses to change the password of a login that sessions still use, and changes nothing', async () => {
      // A consumer that never restarted holds the login the next rotation would change (dify_clone).
      const held = JSON.parse(await value(appSecret, 'AWSPREVIOUS'));
      expect(held.username).toBe('dify_clone');
      const stale = new PgClient({
        host: '127.0.0.1',
        port: pg.port,
        user: held.username,
        password: held.password,
        database: 'dify',
        ssl: { ca: pg.ca },
      });
      await stale.connect();
      try {
        const token = randomUUID();
        await expect(rotate(appSecret, token)).rejects.toThrow(
          /1 session\(s\) are signed in as dify_clone, whose password this rotation would change: .* Restart them so they use dify, then rotate again\. The current login and its password are unchanged/,
        );
        await expect(pgSignIn(JSON.stringify(held))).resolves.toMatchObject({ login: 'dify_clone' });
        await stale.end();
        await signedOut(held.username);
        // The same token completes it once the stale session is gone.
        await rotate(appSecret, token);
        expect((await stages(appSecret))[token]).toEqual(['AWSCURRENT']);
      } finally {
        await stale.end().catch(() => undefined);
      }
    });

    it('keeps a client that reconnects all the time working through a rotation: zero failed operations', async () => {
      const consumer = consumers['api-db'];
      const uses = await throughRotation(consumer, pgSignIn, 2000, appSecret);
      expect(consumer.failures).toEqual([]);
      expect(uses).toBeGreaterThanOrEqual(20);
      // The consumer was restarted onto the new login during the run.
      expect(JSON.parse(consumer.value!).username).toBe(JSON.parse(await value(appSecret)).username);
    });

    it.each([1, 2, 3, 4])(
      'ends consistent when stopped after step %i and run again with the same token',
      async (stopAfter) => {
        const before = await value(appSecret);
        const token = randomUUID();
        await rotate(appSecret, token, stopAfter);
        // Until the finish, the current value is untouched and works.
        if (stopAfter < 4) expect(await value(appSecret)).toBe(before);
        await expect(pgSignIn(before)).resolves.toMatchObject({ acting: 'dify' });
        if (stopAfter === 2 || stopAfter === 3) {
          await expect(pgSignIn(await value(appSecret, 'AWSPENDING', token))).resolves.toBeDefined();
        }
        await consumers['api-db'].start();
        await rotate(appSecret, token);
        const after = await value(appSecret);
        expect((await stages(appSecret))[token]).toEqual(['AWSCURRENT']);
        expect(JSON.parse(after).username).not.toBe(JSON.parse(before).username);
        await expect(pgSignIn(after)).resolves.toMatchObject({ acting: 'dify' });
        await expect(pgSignIn(before)).resolves.toMatchObject({ acting: 'dify' });
      },
    );

    it('lets a stack update re-run the bootstrap while the clone is current, without moving ownership', async () => {
      const masterArn = (targets[appSecret] as { masterSecretArn: string }).masterSecretArn;
      if (JSON.parse(await value(appSecret)).username !== 'dify_clone') await rotate(appSecret);
      await bootstrap(
        {
          RequestType: 'Update',
          PhysicalResourceId: 'dify-database-bootstrap',
          ResourceProperties: {
            ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
            ClusterArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:dify-aurora',
            MasterSecretArn: masterArn,
            Roles: [{ SecretArn: appSecret, Database: 'dify' }],
            Extensions: [],
          },
        } as never,
        bootstrapClients(),
      );
      const owner = pg.psql(
        MASTER.user,
        MASTER.password,
        'postgres',
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'dify'",
      );
      expect(owner.stdout.trim()).toBe('dify');
      await expect(pgSignIn(await value(appSecret))).resolves.toEqual({ acting: 'dify', login: 'dify_clone' });
    });
  });

  describe('a Valkey user, holding two passwords during the switch', () => {
    it('accepts both passwords from the set step, and only the new one once the consumers restarted', async () => {
      const before = await value(cacheSecret);
      const token = randomUUID();
      await rotate(cacheSecret, token, 3);
      const pending = await value(cacheSecret, 'AWSPENDING', token);
      await expect(cacheSignIn(before)).resolves.toBe('PONG');
      await expect(cacheSignIn(pending)).resolves.toBe('PONG');
      await rotate(cacheSecret, token);
      expect(await value(cacheSecret)).toBe(pending);
      await expect(cacheSignIn(pending)).resolves.toBe('PONG');
      await expect(cacheSignIn(before)).rejects.toThrow(/WRONGPASS/);
      expect(ecsCalls).toEqual(['restart api-cache']);
    });

    it('keeps a client that reconnects all the time working through a rotation: zero failed operations', async () => {
      const consumer = consumers['api-cache'];
      const uses = await throughRotation(consumer, cacheSignIn, 5000, cacheSecret);
      expect(consumer.failures).toEqual([]);
      expect(uses).toBeGreaterThanOrEqual(20);
      expect(consumer.value).toBe(await value(cacheSecret));
    });

    it.each([1, 2, 3, 4])(
      'ends consistent when stopped after step %i and run again with the same token',
      async (stopAfter) => {
        const before = await value(cacheSecret);
        const token = randomUUID();
        await rotate(cacheSecret, token, stopAfter);
        if (stopAfter < 4) {
          expect(await value(cacheSecret)).toBe(before);
          await expect(cacheSignIn(before)).resolves.toBe('PONG');
        }
        await rotate(cacheSecret, token);
        const after = await value(cacheSecret);
        expect((await stages(cacheSecret))[token]).toEqual(['AWSCURRENT']);
        await expect(cacheSignIn(after)).resolves.toBe('PONG');
        await expect(cacheSignIn(before)).rejects.toThrow(/WRONGPASS/);
      },
    );

    it('leaves the current password working when ElastiCache refuses the change, and completes on the rerun', async () => {
      const before = await value(cacheSecret);
      const token = randomUUID();
      failCacheOnce = true;
      await expect(rotate(cacheSecret, token)).rejects.toThrow(
        'ElastiCache user dify: accepting both passwords failed: InvalidUserStateFault',
      );
      await expect(cacheSignIn(before)).resolves.toBe('PONG');
      expect(await value(cacheSecret)).toBe(before);
      await rotate(cacheSecret, token);
      await expect(cacheSignIn(await value(cacheSecret))).resolves.toBe('PONG');
    });

    it('keeps the old password, and says so, when the consumers do not settle within the budget', async () => {
      settles = false;
      const before = await value(cacheSecret);
      await rotate(cacheSecret);
      await expect(cacheSignIn(before)).resolves.toBe('PONG');
      expect(logs.some((line) => line.includes('old-password-kept'))).toBe(true);
      // The next rotation's set step leaves exactly the current and the new password.
      settles = true;
      const token = randomUUID();
      await rotate(cacheSecret, token, 2);
      await expect(cacheSignIn(before)).rejects.toThrow(/WRONGPASS/);
      await rotate(cacheSecret, token);
    });
  });

  describe('a key two services share', () => {
    it('makes a new 64-character value current and restarts both sides together', async () => {
      const before = await value(sandboxSecret);
      await rotate(sandboxSecret);
      const after = await value(sandboxSecret);
      expect(after).toMatch(/^[A-Za-z0-9]{64}$/);
      expect(after).not.toBe(before);
      expect(ecsCalls).toEqual(['restart api-sandbox', 'restart sandbox']);
      expect(consumers['api-sandbox'].value).toBe(consumers.sandbox.value);
    });

    it.each([1, 2, 3])(
      'stopped after step %i, the current key is untouched; the rerun completes',
      async (stopAfter) => {
        const before = await value(sandboxSecret);
        const token = randomUUID();
        await rotate(sandboxSecret, token, stopAfter);
        expect(await value(sandboxSecret)).toBe(before);
        expect(ecsCalls).toEqual([]);
        const pending = await value(sandboxSecret, 'AWSPENDING', token);
        await rotate(sandboxSecret, token);
        // The rerun kept the value staged the first time.
        expect(await value(sandboxSecret)).toBe(pending);
      },
    );
  });

  describe("the LLM gateway's pepper, two versions held", () => {
    const key = generateClientKey('dify', () => Buffer.alloc(32, 3));
    const idle = generateClientKey('idle', () => Buffer.alloc(32, 4));
    let pepperSecret: string;
    let clientsSecret: string;
    let rehashSecret: string;
    const base = { allowedCidrs: ['10.0.0.0/8'], allowedModels: ['*'], requestsPerMinute: 1, tokensPerMinute: 1 };
    const currentVersion = async () =>
      Object.entries(await stages(pepperSecret)).find(([, s]) => s.includes('AWSCURRENT'))![0];
    const writeClients = (clients: Array<Record<string, unknown>>) =>
      secrets.send(
        new PutSecretValueCommand({
          SecretId: clientsSecret,
          SecretString: JSON.stringify({ version: 1, clients: clients.map((c) => ({ ...base, ...c })) }),
        }),
      );
    /** What the gateway holds after reading the secret's stages (its own PepperSource). */
    const gatewayPeppers = async () => {
      let held: Peppers | undefined;
      await new PepperSource({
        client: secrets,
        secretId: pepperSecret,
        accept: (p) => (held = p),
        log: () => undefined,
      }).refresh();
      return held!;
    };
    const gatewayAccepts = async (k: string) => {
      const stored = JSON.parse(
        (await secrets.send(new GetSecretValueCommand({ SecretId: clientsSecret }))).SecretString!,
      );
      return (
        new ClientRegistry(clientsDocumentSchema.parse(stored), await gatewayPeppers()).authenticate(k) !== undefined
      );
    };

    beforeAll(async () => {
      pepperSecret = await createSecret('pepper', 'P'.repeat(64));
      clientsSecret = (
        await secrets.send(new CreateSecretCommand({ Name: 'gw-clients', SecretString: '{"version":1}' }))
      ).ARN!;
      rehashSecret = (
        await secrets.send(
          new CreateSecretCommand({ Name: 'gw-rehash', SecretString: '{"uninitialized":true,"placeholder":"q"}' }),
        )
      ).ARN!;
      targets[pepperSecret] = {
        kind: 'client-key-pepper',
        what: "the LLM gateway's client-key pepper",
        consumers: consumersOf(),
        clientsSecretArn: clientsSecret,
        rehashSecretArn: rehashSecret,
      };
    });

    it('refuses while an enabled client is not known under the current pepper, naming it and changing nothing', async () => {
      const first = await currentVersion();
      await writeClients([
        { id: 'dify', keyHash: hashClientKey('P'.repeat(64), key), pepperVersionId: first },
        { id: 'idle', keyHash: hashClientKey('P'.repeat(64), idle) },
        { id: 'gone', keyHash: 'e'.repeat(64), pepperVersionId: 'older-version', disabled: true },
      ]);
      const token = randomUUID();
      await expect(rotate(pepperSecret, token)).rejects.toThrow(
        "the LLM gateway's client-key pepper: not rotated: client idle has not signed in since the pepper last changed",
      );
      expect(await currentVersion()).toBe(first);
      expect(Object.values(await stages(pepperSecret)).flat()).not.toContain('AWSPENDING');
      // The gateway confirms it at its first use (a rehash under the current version): now it rotates.
      await secrets.send(
        new PutSecretValueCommand({
          SecretId: rehashSecret,
          SecretString: JSON.stringify({
            version: 1,
            clients: {
              idle: {
                from: hashClientKey('P'.repeat(64), idle),
                to: hashClientKey('P'.repeat(64), idle),
                pepperVersionId: first,
              },
            },
          }),
        }),
      );
      await rotate(pepperSecret, token);
      expect(await currentVersion()).toBe(token);
    });

    it('makes a new value current with the old one previous, restarts nothing, and every key keeps working', async () => {
      const before = await currentVersion();
      const beforeValue = await value(pepperSecret);
      await writeClients([{ id: 'dify', keyHash: hashClientKey(beforeValue, key), pepperVersionId: before }]);
      expect(await gatewayAccepts(key)).toBe(true);
      const token = await rotate(pepperSecret);
      const after = await value(pepperSecret);
      expect(after).toMatch(/^[A-Za-z0-9]{64}$/);
      expect(after).not.toBe(beforeValue);
      const moved = await stages(pepperSecret);
      expect([moved[before], moved[token]]).toEqual([['AWSPREVIOUS'], ['AWSCURRENT']]);
      expect(ecsCalls).toEqual([]);
      expect(await gatewayPeppers()).toEqual({
        current: { versionId: token, value: after },
        previous: { versionId: before, value: beforeValue },
      });
      // The key made under the pepper now previous still signs in, with nothing re-issued.
      expect(await gatewayAccepts(key)).toBe(true);
    });

    it.each([1, 2, 3])(
      'stopped after step %i, the current pepper is untouched and keys still sign in; the rerun completes',
      async (stopAfter) => {
        const before = await currentVersion();
        const beforeValue = await value(pepperSecret);
        await writeClients([{ id: 'dify', keyHash: hashClientKey(beforeValue, key), pepperVersionId: before }]);
        const token = randomUUID();
        await rotate(pepperSecret, token, stopAfter);
        expect(await value(pepperSecret)).toBe(beforeValue);
        expect(await gatewayAccepts(key)).toBe(true);
        const pending = await value(pepperSecret, 'AWSPENDING', token);
        await rotate(pepperSecret, token);
        expect(await value(pepperSecret)).toBe(pending);
        expect(await gatewayAccepts(key)).toBe(true);
      },
    );
  });

  describe('bad events', () => {
    it('names the step it expected', async () => {
      await expect(
        rotationStep(
          { SecretId: sandboxSecret, ClientRequestToken: randomUUID(), Step: 'deleteSecret' },
          targets,
          ports(),
        ),
      ).rejects.toThrow("Step: expected one of createSecret, setSecret, testSecret, finishSecret, got 'deleteSecret'");
    });

    it('refuses a secret it was not given', async () => {
      await expect(
        rotationStep(
          { SecretId: ARN('other'), ClientRequestToken: randomUUID(), Step: 'createSecret' },
          targets,
          ports(),
        ),
      ).rejects.toThrow(`secret ${ARN('other')} is not one this function rotates`);
    });
  });
});
