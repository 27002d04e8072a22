import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { freeLoopbackPort } from '../../test/helpers/free-port';
import { generateClientKey, hashClientKey } from '../src/client-keys';
import { buildGateway } from './helpers/built';
import { chatStream, type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { fixedBytes } from './helpers/harness';
import { MOTO_CREDENTIALS, type Moto, startMoto } from './helpers/moto';
import { startProcess, stopProcess, waitFor } from './helpers/processes';

/**
 * The built gateway run as its own process, the way the container runs it, with its documents in
 * Secrets Manager (moto_server on loopback): start-up, hot reload under load, graceful shutdown.
 */

const PEPPER = 'process-test-pepper-0123456789abcdefghijklmnop';
const KEYS = [
  'sk-proc-key-one-1111111111111111',
  'sk-proc-key-two-2222222222222222',
  'sk-proc-key-new-3333333333333333',
];

function post(url: string, key: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
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

describe('the gateway as a process, with its documents in Secrets Manager', () => {
  let moto: Moto;
  let provider: FakeProvider;
  let secrets: SecretsManagerClient;
  let main: string;
  const clientKey = generateClientKey('dify', fixedBytes(7));
  const pool = (keys: Array<{ id: string; key: string }>) =>
    JSON.stringify({ version: 1, providers: { openai: { baseUrl: provider.url, models: ['gpt-test'], keys } } });

  beforeAll(async () => {
    main = buildGateway();
    moto = await startMoto();
    provider = await startFakeProvider({ streamDelayMs: 20 });
    for (const key of KEYS) provider.behave(key, 'ok');
    secrets = new SecretsManagerClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: MOTO_CREDENTIALS });
  });
  afterAll(async () => {
    secrets?.destroy();
    await provider?.close();
    await moto?.stop();
  });

  async function startGatewayProcess(name: string) {
    await secrets.send(
      new CreateSecretCommand({
        Name: `${name}/pool`,
        SecretString: pool([
          { id: 'k1', key: KEYS[0] },
          { id: 'k2', key: KEYS[1] },
        ]),
      }),
    );
    await secrets.send(
      new CreateSecretCommand({
        Name: `${name}/clients`,
        SecretString: JSON.stringify({
          version: 1,
          clients: [
            {
              id: 'dify',
              keyHash: hashClientKey(PEPPER, clientKey),
              allowedCidrs: ['127.0.0.0/8', '::1/128'],
              allowedModels: ['*'],
              requestsPerMinute: 100000,
              tokensPerMinute: 100000000,
            },
          ],
        }),
      }),
    );
    const port = await freeLoopbackPort();
    const process_ = startProcess(process.execPath, [main], {
      PATH: process.env.PATH,
      PORT: String(port),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: moto.endpoint,
      PROVIDER_KEYS_SECRET_ID: `${name}/pool`,
      CLIENTS_SECRET_ID: `${name}/clients`,
      CLIENT_KEY_PEPPER: PEPPER,
      SECRETS_POLL_INTERVAL_SECONDS: '1',
      SHUTDOWN_DRAIN_SECONDS: '10',
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor('the gateway', async () => (await fetch(`${url}/readyz`)).ok);
    } catch (error) {
      await stopProcess(process_.child);
      throw new Error(`${(error as Error).message}\n${process_.output.stderr}`, { cause: error });
    }
    return { url, ...process_ };
  }

  it('refuses to start on a bad setting, naming the variable, without printing the others', () => {
    const result = spawnSync(process.execPath, [main], {
      env: {
        PATH: process.env.PATH,
        PORT: 'eighty',
        PROVIDER_KEYS_SECRET_ID: 'x',
        CLIENTS_SECRET_ID: 'y',
        CLIENT_KEY_PEPPER: PEPPER,
      },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('PORT: expected a whole number');
    expect(result.stderr).not.toContain(PEPPER);
  });

  it('picks up a new key pool under load without dropping a request, then drains on SIGTERM', async () => {
    const gateway = await startGatewayProcess('reload');
    try {
      const results: number[] = [];
      let stop = false;
      const deadline = Date.now() + 20_000;
      const worker = async () => {
        for (let i = 0; i < 400 && !stop && Date.now() < deadline; i++) {
          results.push(
            (
              await post(`${gateway.url}/v1/chat/completions`, clientKey, {
                model: 'gpt-test',
                messages: [{ role: 'user', content: 'hi' }],
              })
            ).status,
          );
        }
      };
      const load = Promise.all(Array.from({ length: 8 }, worker));
      await waitFor('some load', async () => results.length > 50);
      // Remove k1, keep k2, add k3: the running gateway must switch without a restart.
      await secrets.send(
        new PutSecretValueCommand({
          SecretId: 'reload/pool',
          SecretString: pool([
            { id: 'k2', key: KEYS[1] },
            { id: 'k3', key: KEYS[2] },
          ]),
        }),
      );
      await waitFor(
        'the new pool',
        async () =>
          gateway.output.stdout.includes('"document_loaded"') &&
          gateway.output.stdout.split('"document_loaded"').length > 3,
      );
      const before = provider.received.length;
      await waitFor('requests on the new key', async () =>
        provider.received.slice(before).some((r) => r.key === KEYS[2]),
      );
      stop = true;
      await load;
      expect(results.length).toBeGreaterThan(50);
      expect(results.filter((s) => s !== 200)).toEqual([]);
      expect(provider.received.slice(before + 20).some((r) => r.key === KEYS[0])).toBe(false);

      // A stream in flight when SIGTERM arrives still completes, then the process exits 0.
      const stream = post(`${gateway.url}/v1/chat/completions`, clientKey, {
        model: 'gpt-test',
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      });
      await waitFor('the stream to start', async () => provider.received.some((r) => r.body.includes('"stream":true')));
      const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));
      process.kill(gateway.child.pid!, 'SIGTERM');
      const reply = await stream;
      expect(reply.body).toBe(chatStream('gpt-test').join(''));
      expect(await exited).toBe(0);

      const output = gateway.output.stdout + gateway.output.stderr;
      for (const secret of [...KEYS, clientKey, PEPPER]) expect(output).not.toContain(secret);
      const requests = output.split('\n').filter((l) => l.includes('"type":"request"'));
      expect(requests.length).toBe(results.length + 1);
    } finally {
      await stopProcess(gateway.child);
    }
  });
});
