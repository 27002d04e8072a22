import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { request as httpRequest } from 'node:http';
import { freeLoopbackPort } from '../../test/helpers/free-port';
import { generateClientKey, hashClientKey } from '../src/client-keys';
import { createRateLimiter } from '../src/ratelimit';
import { buildGateway } from './helpers/built';
import { type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { fixedBytes } from './helpers/harness';
import { MOTO_CREDENTIALS, type Moto, startMoto } from './helpers/moto';
import { startProcess, stopProcess, waitFor } from './helpers/processes';
import { type RedisServer, startRedis } from './helpers/redis';

/** The per-client limits, shared through a real redis-server on loopback. */
describe('the distributed rate limit', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('counts requests and tokens in one-minute windows per client, and says when to retry', async () => {
    let clock = 120_000 * 1000;
    const limiter = createRateLimiter({
      redis: { host: '127.0.0.1', port: redis.port, keyPrefix: 'unit:' },
      now: () => clock,
    });
    await waitFor(
      'redis connection',
      async () =>
        (await limiter.admit('probe', { requestsPerMinute: 1e6, tokensPerMinute: 1e9 })).allowed && !limiter.degraded,
    );
    const limits = { requestsPerMinute: 3, tokensPerMinute: 100 };
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await limiter.admit('a', limits));
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false]);
    expect(results[3]).toEqual({ allowed: false, reason: 'requests', retryAfterSeconds: 60 });
    expect((await limiter.admit('b', limits)).allowed).toBe(true);
    clock += 30_000;
    expect(await limiter.admit('a', limits)).toMatchObject({ allowed: false, retryAfterSeconds: 30 });
    clock += 30_000;
    expect((await limiter.admit('a', limits)).allowed).toBe(true);
    await limiter.recordTokens('a', 150);
    expect(await limiter.admit('a', limits)).toMatchObject({ allowed: false, reason: 'tokens' });
    await limiter.close();
  });

  it('falls back to local limits when Redis is unreachable, says so, and returns when it is back', async () => {
    const second = await startRedis();
    const changes: boolean[] = [];
    const limiter = createRateLimiter({
      redis: { host: '127.0.0.1', port: second.port, keyPrefix: 'fallback:' },
      onDegradedChange: (degraded) => changes.push(degraded),
    });
    const limits = { requestsPerMinute: 1000, tokensPerMinute: 1e9 };
    await waitFor('redis connection', async () => (await limiter.admit('c', limits)).allowed && !limiter.degraded);
    // Admissions before the first connection are answered locally too; count from connected on.
    changes.length = 0;
    await second.stop();
    await waitFor('degraded mode', async () => (await limiter.admit('c', limits)).allowed && limiter.degraded);
    const restarted = await startRedis({ port: second.port });
    try {
      await waitFor(
        'shared mode again',
        async () => (await limiter.admit('c', limits)).allowed && !limiter.degraded,
        20_000,
      );
      expect(changes).toEqual([true, false]);
    } finally {
      await limiter.close();
      await restarted.stop();
    }
  });

  it('holds one limit across two gateway processes', async () => {
    let moto: Moto | undefined;
    let provider: FakeProvider | undefined;
    const gateways: Array<ReturnType<typeof startProcess>> = [];
    const secrets = () =>
      new SecretsManagerClient({ region: 'us-east-1', endpoint: moto!.endpoint, credentials: MOTO_CREDENTIALS });
    try {
      moto = await startMoto();
      provider = await startFakeProvider();
      provider.behave('sk-ratelimit-key-000000000000', 'ok');
      const pepper = 'ratelimit-pepper-0123456789abcdefghijklmnopq';
      const clientKey = generateClientKey('dify', fixedBytes(3));
      const client = secrets();
      await client.send(
        new CreateSecretCommand({
          Name: 'rl/pool',
          SecretString: JSON.stringify({
            version: 1,
            providers: {
              openai: {
                baseUrl: provider.url,
                models: ['gpt-test'],
                keys: [{ id: 'k1', key: 'sk-ratelimit-key-000000000000' }],
              },
            },
          }),
        }),
      );
      await client.send(
        new CreateSecretCommand({
          Name: 'rl/clients',
          SecretString: JSON.stringify({
            version: 1,
            clients: [
              {
                id: 'dify',
                keyHash: hashClientKey(pepper, clientKey),
                allowedCidrs: ['127.0.0.0/8', '::1/128'],
                allowedModels: ['*'],
                requestsPerMinute: 25,
                tokensPerMinute: 1e9,
              },
            ],
          }),
        }),
      );
      client.destroy();
      const main = buildGateway();
      const urls: string[] = [];
      for (let i = 0; i < 2; i++) {
        const port = await freeLoopbackPort();
        const gateway = startProcess(process.execPath, [main], {
          PATH: process.env.PATH,
          PORT: String(port),
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: moto.endpoint,
          PROVIDER_KEYS_SECRET_ID: 'rl/pool',
          CLIENTS_SECRET_ID: 'rl/clients',
          CLIENT_KEY_PEPPER: pepper,
          REDIS_HOST: '127.0.0.1',
          REDIS_PORT: String(redis.port),
        });
        gateways.push(gateway);
        urls.push(`http://127.0.0.1:${port}`);
        await waitFor('a gateway', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok);
      }
      // 60 requests alternating between the two replicas, all inside one minute window (barring a
      // window boundary, which the assertion allows for by checking both windows' totals).
      const statuses = await Promise.all(
        Array.from(
          { length: 60 },
          (_, i) =>
            new Promise<number>((resolve, reject) => {
              const req = httpRequest(
                `${urls[i % 2]}/v1/chat/completions`,
                {
                  method: 'POST',
                  headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` },
                },
                (res) => {
                  res.resume();
                  res.on('end', () => resolve(res.statusCode!));
                },
              );
              req.on('error', reject);
              req.end(JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }));
            }),
        ),
      );
      const admitted = statuses.filter((s) => s === 200).length;
      expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
      // One window: exactly 25. Straddling a minute boundary: at most 50, never the 60 two
      // independent replicas would admit.
      expect(admitted === 25 || (admitted > 25 && admitted <= 50)).toBe(true);
      expect(provider.received.length).toBe(admitted);
    } finally {
      for (const gateway of gateways) await stopProcess(gateway.child);
      await provider?.close();
      await moto?.stop();
    }
  });
});
