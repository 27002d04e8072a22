import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { freeLoopbackPort } from '../../test/helpers/free-port';
import { generateClientKey, hashClientKey } from '../../contracts/client-keys';
import { buildGateway } from './helpers/built';
import { chatStream, type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { fixedBytes } from './helpers/harness';
import { MOTO_CREDENTIALS, type Moto, startMoto } from './helpers/moto';
import { startProcess, stopProcess, waitFor } from './helpers/processes';
import { type RedisServer, startRedis } from './helpers/redis';
import { loopbackCertificate } from './helpers/tls';

/**
 * The container's way: gateway/build.mjs bundles main.js, and `node main.js` runs as its own process
 * with the container's environment, its documents in Secrets Manager (moto_server) and its shared
 * limits in Redis (redis-server), all on loopback. Two replicas run side by side.
 */

const PEPPER = 'process-test-pepper-0123456789abcdefghijklmnop';
const NEXT_PEPPERS = ['process-second-pepper-0123456789abcdefghijklm', 'process-third-pepper-0123456789abcdefghijklmn'];
const KEYS = [
  'sk-proc-key-one-1111111111111111',
  'sk-proc-key-two-2222222222222222',
  'sk-proc-key-new-3333333333333333',
  'sk-proc-key-two-replaced-44444444',
];
const PROMPT = 'process planted prompt text';
const LIMIT = 25;

interface Reply {
  status: number;
  body: string;
}

function post(url: string, key: string, body: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}/v1/chat/completions`,
      { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const chat = (extra: Record<string, unknown> = {}) => ({
  model: 'gpt-test',
  messages: [{ role: 'user', content: PROMPT }],
  ...extra,
});

type Replica = ReturnType<typeof startProcess> & { url: string };
const linesOf = (replica: Replica) =>
  replica.output.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
const loadedCount = (replica: Replica, document: string) =>
  linesOf(replica).filter((l) => l.event === 'document_loaded' && l.document === document).length;

describe('the built gateway as two processes, with Secrets Manager and Redis on loopback', () => {
  let moto: Moto;
  let redis: RedisServer;
  let provider: FakeProvider;
  let secrets: SecretsManagerClient;
  let main: string;
  const replicas: Replica[] = [];
  let firstPepper: string;
  const clientKey = generateClientKey('dify', fixedBytes(7));
  const limitedKey = generateClientKey('limited', fixedBytes(8));
  const lateKey = generateClientKey('late', fixedBytes(9));
  const pool = (keys: Array<{ id: string; key: string }>) =>
    JSON.stringify({ version: 1, providers: { openai: { baseUrl: provider.url, models: ['gpt-test'], keys } } });
  const client = (id: string, key: string, requestsPerMinute = 100_000) => ({
    id,
    keyHash: hashClientKey(PEPPER, key),
    allowedCidrs: ['127.0.0.0/8', '::1/128'],
    allowedModels: ['*'],
    requestsPerMinute,
    tokensPerMinute: 100_000_000,
  });

  const startReplica = async (extraEnv: Record<string, string> = {}): Promise<Replica> => {
    const port = await freeLoopbackPort();
    const replica = startProcess(process.execPath, [main], {
      PATH: process.env.PATH,
      PORT: String(port),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      // The SDK's own variable: the gateway's code has no endpoint setting.
      AWS_ENDPOINT_URL_SECRETS_MANAGER: moto.endpoint,
      PROVIDER_KEYS_SECRET_ID: 'proc/pool',
      CLIENTS_SECRET_ID: 'proc/clients',
      PEPPER_SECRET_ID: 'proc/pepper',
      REHASH_SECRET_ID: 'proc/rehash',
      SECRETS_POLL_INTERVAL_SECONDS: '1',
      SHUTDOWN_DRAIN_SECONDS: '10',
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(redis.port),
      REDIS_TLS: 'false',
      // The fake provider serves HTTPS on loopback with a throwaway certificate (helpers/tls.ts).
      NODE_EXTRA_CA_CERTS: loopbackCertificate().certPath,
      PROVIDER_ALLOWED_PRIVATE_CIDRS: '127.0.0.1/32',
      ...extraEnv,
    });
    const started = { ...replica, url: `http://127.0.0.1:${port}` };
    replicas.push(started);
    try {
      await waitFor('the gateway', async () => (await fetch(`${started.url}/readyz`)).ok);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${replica.output.stderr}`, { cause: error });
    }
    return started;
  };

  beforeAll(async () => {
    main = buildGateway();
    [moto, redis, provider] = await Promise.all([startMoto(), startRedis(), startFakeProvider({ streamDelayMs: 20 })]);
    for (const key of KEYS) provider.behave(key, 'ok');
    secrets = new SecretsManagerClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: MOTO_CREDENTIALS });
    await secrets.send(
      new CreateSecretCommand({
        Name: 'proc/pool',
        SecretString: pool([
          { id: 'k1', key: KEYS[0] },
          { id: 'k2', key: KEYS[1] },
        ]),
      }),
    );
    await secrets.send(
      new CreateSecretCommand({
        Name: 'proc/clients',
        SecretString: JSON.stringify({
          version: 1,
          clients: [client('dify', clientKey), client('limited', limitedKey, LIMIT)],
        }),
      }),
    );
    firstPepper = (await secrets.send(new CreateSecretCommand({ Name: 'proc/pepper', SecretString: PEPPER })))
      .VersionId!;
    // The placeholder CloudFormation writes, which reads as an empty rehash document.
    await secrets.send(
      new CreateSecretCommand({ Name: 'proc/rehash', SecretString: '{"uninitialized":true,"placeholder":"x"}' }),
    );
    await startReplica();
    await startReplica({ POOL_STRATEGY: 'least-in-flight' });
  });
  afterAll(async () => {
    for (const replica of replicas) await stopProcess(replica.child);
    secrets?.destroy();
    await provider?.close();
    await redis?.stop();
    await moto?.stop();
  });

  it('refuses to start on a bad setting, naming the variable and the expected form, printing no value', () => {
    const result = spawnSync(process.execPath, [main], {
      env: {
        PATH: process.env.PATH,
        PORT: 'eighty',
        POOL_STRATEGY: 'random',
        BODY_TIMEOUT_MS: 'soon',
        SCREEN_WORKERS: '0',
        PROVIDER_ALLOWED_PRIVATE_CIDRS: '10.0.0.0/8,169.254.0.0/16',
        PROVIDER_KEYS_SECRET_ID: 'x',
        PEPPER_SECRET_ID: 'x',
        AWS_REGION: 'us-east-1',
      },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    const line = JSON.parse(result.stderr.trim().split('\n').at(-1)!);
    expect(line).toMatchObject({ level: 'error', event: 'start_failed' });
    expect(line.message).toContain('PORT: expected a whole number from 1 to 65535');
    expect(line.message).toContain('POOL_STRATEGY: expected one of weighted-round-robin, least-in-flight');
    expect(line.message).toContain('CLIENTS_SECRET_ID: required');
    expect(line.message).toContain('REHASH_SECRET_ID: required: the client key rehash secret ARN or name');
    expect(line.message).toContain('BODY_TIMEOUT_MS: expected a whole number from 100 to 600000');
    expect(line.message).toContain('SCREEN_WORKERS: expected 1 at least');
    expect(line.message).toContain(
      "PROVIDER_ALLOWED_PRIVATE_CIDRS: expected comma-separated private CIDRs: '169.254.0.0/16' is a linkLocal range, which a provider may never use",
    );
    expect(result.stderr + result.stdout).not.toContain(PEPPER);
  });

  it('serves a request end to end, with its audit line and its metrics on stdout', async () => {
    const [a] = replicas;
    const reply = await post(a.url, clientKey, chat());
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body).choices[0].message.content).toBe('Hello, wörld');
    await waitFor('the audit line', async () => linesOf(a).some((l) => l.type === 'request'));
    expect(linesOf(a).find((l) => l.type === 'request')).toMatchObject({
      clientId: 'dify',
      provider: 'openai',
      status: 200,
      promptTokens: 9,
      completionTokens: 3,
    });
    expect(linesOf(a).find((l) => l.event === 'listening')).toMatchObject({ port: Number(new URL(a.url).port) });
  });

  it('holds one request limit across both replicas through Redis: exactly the limit is admitted in a window', async () => {
    // Start well inside a minute window, so the burst below cannot straddle two (the burst takes well
    // under a second; the audit lines' times confirm it afterwards).
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_500 - intoMinute));
    const statuses = await Promise.all(
      Array.from({ length: 60 }, (_, i) => post(replicas[i % 2].url, limitedKey, chat()).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    const times = await waitFor('the audit lines', async () => {
      const lines = replicas.flatMap(linesOf).filter((l) => l.type === 'request' && l.clientId === 'limited');
      return lines.length === 60;
    }).then(() =>
      replicas
        .flatMap(linesOf)
        .filter((l) => l.type === 'request' && l.clientId === 'limited')
        .map((l) => Math.floor(Date.parse(l.time) / 60_000)),
    );
    expect(new Set(times).size).toBe(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
    // Both replicas admitted some and refused some: the count is shared, not split.
    for (const replica of replicas) {
      const mine = linesOf(replica).filter((l) => l.type === 'request' && l.clientId === 'limited');
      expect(mine.some((l) => l.status === 200)).toBe(true);
      expect(mine.some((l) => l.status === 429)).toBe(true);
    }
  });

  it('takes a new key pool under load without one failed request: a key added, one removed, one replaced', async () => {
    const results: number[] = [];
    let stop = false;
    const deadline = Date.now() + 20_000;
    const WORKERS = 8;
    const worker = async (n: number) => {
      for (let i = 0; i < 300 && !stop && Date.now() < deadline; i++) {
        results.push((await post(replicas[n % 2].url, clientKey, chat())).status);
      }
    };
    const load = Promise.all(Array.from({ length: WORKERS }, (_, n) => worker(n)));
    await waitFor('some load', async () => results.length > 50);
    const loadedBefore = replicas.map((r) => loadedCount(r, 'provider key pool'));
    await secrets.send(
      new PutSecretValueCommand({
        SecretId: 'proc/pool',
        SecretString: pool([
          { id: 'k2', key: KEYS[3] },
          { id: 'k3', key: KEYS[2] },
        ]),
      }),
    );
    await waitFor('both replicas to load the new pool', async () =>
      replicas.every((r, i) => loadedCount(r, 'provider key pool') > loadedBefore[i]),
    );
    const after = provider.received.length;
    await waitFor('requests on the new keys', async () => {
      const keys = new Set(provider.received.slice(after).map((r) => r.key));
      return keys.has(KEYS[2]) && keys.has(KEYS[3]);
    });
    stop = true;
    await load;
    expect(results.length).toBeGreaterThan(100);
    expect(results.filter((s) => s !== 200)).toEqual([]);
    // At most one request per worker was already in flight with an old key when the log line appeared.
    const late = provider.received.slice(after + WORKERS).map((r) => r.key);
    expect(late.filter((k) => k === KEYS[0] || k === KEYS[1])).toEqual([]);
  });

  it('rejects a bad pool version, keeps serving with the previous one, and logs no key from it', async () => {
    const planted = 'sk-proc-planted-in-a-bad-document-5555';
    await secrets.send(
      new PutSecretValueCommand({
        SecretId: 'proc/pool',
        SecretString: JSON.stringify({ version: 2, providers: { openai: { keys: [{ id: 'x', key: planted }] } } }),
      }),
    );
    await waitFor('both replicas to reject it', async () =>
      replicas.every((r) => linesOf(r).some((l) => l.event === 'document_rejected')),
    );
    for (const replica of replicas) expect((await post(replica.url, clientKey, chat())).status).toBe(200);
    expect(provider.received.at(-1)!.key).not.toBe(planted);
    for (const replica of replicas) expect(replica.output.stdout + replica.output.stderr).not.toContain(planted);
  });

  it('takes a new client without a restart', async () => {
    expect((await post(replicas[0].url, lateKey, chat())).status).toBe(401);
    const before = replicas.map((r) => loadedCount(r, 'client records'));
    await secrets.send(
      new PutSecretValueCommand({
        SecretId: 'proc/clients',
        SecretString: JSON.stringify({
          version: 1,
          clients: [client('dify', clientKey), client('limited', limitedKey, LIMIT), client('late', lateKey)],
        }),
      }),
    );
    await waitFor('the new client records', async () =>
      replicas.every((r, i) => loadedCount(r, 'client records') > before[i]),
    );
    for (const replica of replicas) expect((await post(replica.url, lateKey, chat())).status).toBe(200);
  });

  it('rotates the pepper twice under load without one refused request: keys in use are rehashed and survive both', async () => {
    const rotate = async (value: string) =>
      (await secrets.send(new PutSecretValueCommand({ SecretId: 'proc/pepper', SecretString: value }))).VersionId!;
    const rehashes = async () => {
      const stored = await secrets.send(new GetSecretValueCommand({ SecretId: 'proc/rehash' }));
      return { versionId: stored.VersionId!, clients: JSON.parse(stored.SecretString!).clients ?? {} };
    };
    const loadedPepper = (versionId: string) =>
      replicas.every((r) => linesOf(r).some((l) => l.event === 'pepper_loaded' && l.versionId === versionId));
    const loadedRehashes = (versionId: string) =>
      replicas.every((r) =>
        linesOf(r).some(
          (l) => l.event === 'document_loaded' && l.document === 'client key rehashes' && l.versionId === versionId,
        ),
      );
    // Load on both replicas with the key Dify uses, bounded in count; every reply is counted.
    const statuses: number[] = [];
    let running = true;
    const load = (async () => {
      for (let i = 0; running && i < 4000; i++)
        statuses.push((await post(replicas[i % 2].url, clientKey, chat())).status);
    })();
    try {
      const second = await rotate(NEXT_PEPPERS[0]);
      await waitFor('both replicas to hold the second pepper', async () => loadedPepper(second));
      expect((await post(replicas[1].url, lateKey, chat())).status).toBe(200);
      await waitFor('the rehashes under the second pepper', async () => {
        const document = await rehashes();
        return ['dify', 'late'].every((id) => document.clients[id]?.pepperVersionId === second);
      });
      // 'limited' made no request since the rotation: it keeps the confirmation its first use wrote
      // (its record names no pepper), under the first pepper.
      expect((await rehashes()).clients.limited?.pepperVersionId).toBe(firstPepper);
      await waitFor('both replicas to load them', async () => loadedRehashes((await rehashes()).versionId));
      const third = await rotate(NEXT_PEPPERS[1]);
      await waitFor('both replicas to hold the third pepper', async () => loadedPepper(third));
      for (const replica of replicas) expect((await post(replica.url, lateKey, chat())).status).toBe(200);
      // A key left unused through a whole rotation is made under a pepper no longer held: the reason the
      // rotation function refuses to rotate while such a client exists (pepperRotationBlockers).
      for (const replica of replicas) expect((await post(replica.url, limitedKey, chat())).status).toBe(401);
      await waitFor(
        'the rehash under the third pepper',
        async () => (await rehashes()).clients.dify?.pepperVersionId === third,
      );
      // Entries under a pepper no longer held are dropped as the document is written.
      expect((await rehashes()).clients.limited).toBeUndefined();
    } finally {
      running = false;
      await load;
    }
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    for (const replica of replicas) {
      expect(linesOf(replica).filter((l) => l.event === 'rehash_write_failed')).toEqual([]);
    }
  });

  it('keeps serving when Redis goes away, and reports the degraded rate limit as a metric', async () => {
    await redis.stop();
    const [a] = replicas;
    const statuses: number[] = [];
    await waitFor('the degraded metric', async () => {
      statuses.push((await post(a.url, clientKey, chat())).status);
      return linesOf(a).some((l) => l._aws !== undefined && l.RateLimitDegraded === 1);
    });
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(linesOf(a).some((l) => l.event === 'rate_limit_local_fallback')).toBe(true);
    const emf = linesOf(a).find((l) => l.RateLimitDegraded === 1)!;
    expect(emf._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: 'DifyLlmGateway',
      Metrics: expect.arrayContaining([{ Name: 'RateLimitDegraded', Unit: 'Count' }]),
    });
  });

  it('finishes a stream in flight on SIGTERM, then exits 0', async () => {
    for (const replica of replicas) {
      const before = provider.received.length;
      const stream = post(replica.url, clientKey, chat({ stream: true }));
      await waitFor('the stream to start', async () =>
        provider.received.slice(before).some((r) => r.body.includes('"stream":true')),
      );
      const exited = new Promise<number | null>((resolve) => replica.child.once('exit', (code) => resolve(code)));
      process.kill(replica.child.pid!, 'SIGTERM');
      const reply = await stream;
      expect(reply.body).toBe(chatStream('gpt-test', false).join(''));
      expect(await exited).toBe(0);
      expect(linesOf(replica).find((l) => l.event === 'shutdown')).toMatchObject({ signal: 'SIGTERM', inFlight: 1 });
      expect(linesOf(replica).at(-1)).toMatchObject({ event: 'stopped' });
    }
  });

  it('wrote one request line per request, and nothing secret, in all of the above', () => {
    const output = replicas.map((r) => r.output.stdout + r.output.stderr).join('\n');
    for (const secret of [...KEYS, clientKey, limitedKey, lateKey, PEPPER, ...NEXT_PEPPERS, PROMPT])
      expect(output).not.toContain(secret);
    const ids = replicas
      .flatMap(linesOf)
      .filter((l) => l.type === 'request')
      .map((l) => l.requestId);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
