import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { connect } from 'node:net';
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
 * Shutdown of the built gateway process, with its limits in Redis: it ends as soon as the real work
 * in flight ends (not after the whole drain, whatever idle or kept-alive connections remain), writes
 * the audit line of every request it answered, and reports no outage that did not happen.
 */

const PEPPER = 'shutdown-test-pepper-0123456789abcdefghijklmn';
const KEY = 'sk-shutdown-key-000000000000000';
const clientKey = generateClientKey('dify', fixedBytes(3));
const body = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hello' }], ...extra });

describe('the gateway process on SIGTERM', () => {
  let moto: Moto;
  let redis: RedisServer;
  let provider: FakeProvider;
  let main: string;
  const started: Array<ReturnType<typeof startProcess>> = [];

  beforeAll(async () => {
    main = buildGateway();
    [moto, redis, provider] = await Promise.all([startMoto(), startRedis(), startFakeProvider({ streamDelayMs: 30 })]);
    provider.behave(KEY, 'ok');
    const secrets = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: moto.endpoint,
      credentials: MOTO_CREDENTIALS,
    });
    await secrets.send(
      new CreateSecretCommand({
        Name: 'stop/pool',
        SecretString: JSON.stringify({
          version: 1,
          providers: { openai: { baseUrl: provider.url, models: ['gpt-test'], keys: [{ id: 'k1', key: KEY }] } },
        }),
      }),
    );
    await secrets.send(new CreateSecretCommand({ Name: 'stop/pepper', SecretString: PEPPER }));
    await secrets.send(new CreateSecretCommand({ Name: 'stop/rehash', SecretString: '{"version":1}' }));
    await secrets.send(
      new CreateSecretCommand({
        Name: 'stop/clients',
        SecretString: JSON.stringify({
          version: 1,
          clients: [
            {
              id: 'dify',
              keyHash: hashClientKey(PEPPER, clientKey),
              allowedCidrs: ['127.0.0.0/8'],
              allowedModels: ['*'],
              requestsPerMinute: 100_000,
              tokensPerMinute: 100_000_000,
            },
          ],
        }),
      }),
    );
    secrets.destroy();
  });
  afterAll(async () => {
    for (const process of started) await stopProcess(process.child);
    await provider?.close();
    await redis?.stop();
    await moto?.stop();
  });

  const startReplica = async () => {
    const port = await freeLoopbackPort();
    const replica = startProcess(process.execPath, [main], {
      PATH: process.env.PATH,
      PORT: String(port),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: moto.endpoint,
      PROVIDER_KEYS_SECRET_ID: 'stop/pool',
      CLIENTS_SECRET_ID: 'stop/clients',
      PEPPER_SECRET_ID: 'stop/pepper',
      REHASH_SECRET_ID: 'stop/rehash',
      // Far longer than any test waits: a shutdown that waits out its drain fails the test.
      SHUTDOWN_DRAIN_SECONDS: '600',
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(redis.port),
      NODE_EXTRA_CA_CERTS: loopbackCertificate().certPath,
      PROVIDER_ALLOWED_PRIVATE_CIDRS: '127.0.0.1/32',
    });
    started.push(replica);
    const url = `http://127.0.0.1:${port}`;
    await waitFor('the gateway', async () => (await fetch(`${url}/readyz`)).ok);
    const exited = new Promise<number | null>((resolve) => replica.child.once('exit', (code) => resolve(code)));
    const lines = () =>
      replica.output.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, any>);
    return { ...replica, port, url, exited, lines };
  };

  /** Resolves with the exit code, or rejects if the process is still running after `ms`. */
  const exitWithin = (exited: Promise<number | null>, ms: number) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
    });
    return Promise.race([exited, late]).finally(() => clearTimeout(timer));
  };

  it('ends when the stream in flight ends, whatever kept-alive, HTTP/1.0 and pipelined connections stay open', async () => {
    const replica = await startReplica();
    // An HTTP/1.0 keep-alive connection and a pipelined one, both answered and left open.
    const sockets = [connect(replica.port, '127.0.0.1'), connect(replica.port, '127.0.0.1')];
    const answered = sockets.map((socket) => new Promise<void>((resolve) => socket.once('data', () => resolve())));
    sockets[0].write('GET /healthz HTTP/1.0\r\nconnection: keep-alive\r\n\r\n');
    const post = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${clientKey}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body())}\r\n\r\n${body()}`;
    sockets[1].write(post + post);
    await Promise.all(answered);
    const stream = new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        `${replica.url}/v1/chat/completions`,
        { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` } },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => {
            text += chunk.toString('utf8');
            if (text.length > 0 && req.socket !== null) process.kill(replica.child.pid!, 'SIGTERM');
          });
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      req.end(body({ stream: true }));
    });
    expect(await stream).toBe(chatStream('gpt-test', false).join(''));
    expect(await exitWithin(replica.exited, 20_000)).toBe(0);
    for (const socket of sockets) socket.destroy();
    const events = replica.lines().map((l) => l.event);
    expect(events).not.toContain('drain_timeout');
    // Closing its own Redis connection is not an outage.
    expect(events).not.toContain('rate_limit_local_fallback');
    expect(replica.lines().at(-1)).toMatchObject({ event: 'stopped' });
    expect(replica.lines().filter((l) => l.type === 'request')).toHaveLength(3);
  });

  it.each([1, 2, 3])(
    'writes the audit line of every request it answered, when stopped under load (trial %i)',
    async () => {
      const replica = await startReplica();
      const answers: number[] = [];
      let signalled = false;
      const requests = Array.from(
        { length: 16 },
        (_, i) =>
          new Promise<void>((resolve) => {
            const req = httpRequest(
              `${replica.url}/v1/chat/completions`,
              { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` } },
              (res) => {
                res.resume();
                res.on('end', () => {
                  answers.push(res.statusCode!);
                  // Stop as soon as the first answer is complete: the others are mid-flight.
                  if (!signalled) {
                    signalled = true;
                    process.kill(replica.child.pid!, 'SIGTERM');
                  }
                  resolve();
                });
              },
            );
            req.on('error', () => resolve());
            req.end(body({ stream: i % 2 === 0 }));
          }),
      );
      await Promise.all(requests);
      expect(await exitWithin(replica.exited, 20_000)).toBe(0);
      const audited = replica.lines().filter((l) => l.type === 'request');
      expect(answers.length).toBeGreaterThan(0);
      expect(audited.filter((l) => l.status === 200)).toHaveLength(answers.filter((s) => s === 200).length);
      expect(new Set(audited.map((l) => l.requestId)).size).toBe(audited.length);
    },
  );
});
