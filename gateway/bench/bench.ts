/**
 * `npm run bench:gateway`: the fake provider directly, then through the gateway, on loopback, in one
 * run. JSON and SSE at 1 and 50 connections (autocannon, 5 s each), the time to first byte the
 * gateway adds to a stream (p50 of 300 sequential streams each way) and the gateway's peak RSS.
 * Every process it starts is stopped by PID at the end, also on failure. A benchmark, not a test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import autocannon from 'autocannon';
import { generateClientKey, hashClientKey } from '../src/client-keys';
import { startFakeProvider } from '../test/helpers/fake-provider';
import { freeLoopbackPort } from '../../test/helpers/free-port';

const DURATION_S = 5;
const TTFB_SAMPLES = 300;
const PROVIDER_KEY = 'sk-bench-provider-key-000000000000';
const PEPPER = 'bench-pepper-0123456789abcdefghijklmnopqrstuv';

async function fakeProviderMain(): Promise<void> {
  const provider = await startFakeProvider();
  provider.behave(PROVIDER_KEY, 'ok');
  // The provider keeps no record under load: the array would only grow.
  provider.received.push = () => 0;
  process.stdout.write(`${provider.port}\n`);
}

const started: ChildProcess[] = [];
function spawnTracked(command: string, args: string[], env: NodeJS.ProcessEnv, quiet = false): ChildProcess {
  const child = spawn(command, args, {
    env,
    stdio: ['ignore', quiet ? 'ignore' : 'pipe', quiet ? 'ignore' : 'inherit'],
  });
  started.push(child);
  return child;
}
function stopAll(): void {
  for (const child of started)
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not start within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes('\n')) resolve(buffered.split('\n')[0]);
    });
  });
}

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function load(url: string, connections: number, body: string, headers: Record<string, string>): Promise<Load> {
  const result = await autocannon({
    url,
    connections,
    duration: DURATION_S,
    method: 'POST',
    body,
    headers,
    pipelining: 1,
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
  };
}

function ttfb(url: string, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = request(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.once('data', () => resolve(Number(process.hrtime.bigint() - start) / 1e6));
        res.resume();
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

function peakRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

async function main(): Promise<void> {
  const here = __dirname;
  const gatewayMain = join(here, '..', 'main.js');
  const provider = spawnTracked(process.execPath, [__filename, '--fake-provider'], { PATH: process.env.PATH });
  const providerPort = Number(await firstLine(provider));
  const providerUrl = `http://127.0.0.1:${providerPort}`;

  const motoPort = await freeLoopbackPort();
  spawnTracked('moto_server', ['-H', '127.0.0.1', '-p', String(motoPort)], { PATH: process.env.PATH }, true);
  const motoUrl = `http://127.0.0.1:${motoPort}`;
  await waitFor(async () => (await fetch(`${motoUrl}/moto-api/`)).ok, 'moto_server');
  const clientKey = generateClientKey('bench', (n) => Buffer.alloc(n, 9));
  const secrets = new SecretsManagerClient({
    region: 'us-east-1',
    endpoint: motoUrl,
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  });
  await secrets.send(
    new CreateSecretCommand({
      Name: 'bench/pool',
      SecretString: JSON.stringify({
        version: 1,
        providers: { openai: { baseUrl: providerUrl, models: ['gpt-bench'], keys: [{ id: 'k1', key: PROVIDER_KEY }] } },
      }),
    }),
  );
  await secrets.send(
    new CreateSecretCommand({
      Name: 'bench/clients',
      SecretString: JSON.stringify({
        version: 1,
        clients: [
          {
            id: 'bench',
            keyHash: hashClientKey(PEPPER, clientKey),
            allowedCidrs: ['127.0.0.0/8', '::1/128'],
            allowedModels: ['*'],
            requestsPerMinute: 1e9,
            tokensPerMinute: 1e12,
          },
        ],
      }),
    }),
  );
  secrets.destroy();

  const gatewayPort = await freeLoopbackPort();
  // Started exactly as the container's CMD starts it (same Node flags), with the bundle's local path.
  const cmd = JSON.parse(
    /^CMD (\[.*\])$/m.exec(readFileSync(join(here, '..', '..', 'Dockerfile'), 'utf8'))![1],
  ) as string[];
  const dockerCommand = cmd.slice(1).map((arg) => (arg === '/app/main.js' ? gatewayMain : arg));
  const gateway = spawnTracked(process.execPath, dockerCommand, {
    PATH: process.env.PATH,
    PORT: String(gatewayPort),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: motoUrl,
    PROVIDER_KEYS_SECRET_ID: 'bench/pool',
    CLIENTS_SECRET_ID: 'bench/clients',
    CLIENT_KEY_PEPPER: PEPPER,
    SECRETS_POLL_INTERVAL_SECONDS: '3600',
  });
  gateway.stdout!.resume(); // audit lines: read and dropped, as CloudWatch's agent would take them
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  await waitFor(async () => (await fetch(`${gatewayUrl}/readyz`)).ok, 'the gateway');
  const idleRss = peakRss(gateway.pid!);

  const json = JSON.stringify({ model: 'gpt-bench', messages: [{ role: 'user', content: 'Say hello' }] });
  const sse = JSON.stringify({ model: 'gpt-bench', stream: true, messages: [{ role: 'user', content: 'Say hello' }] });
  const direct = { 'content-type': 'application/json', authorization: `Bearer ${PROVIDER_KEY}` };
  const through = { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` };

  const rows: string[] = [];
  const results: Record<string, { direct: Load; gateway: Load }> = {};
  for (const [kind, body] of [
    ['JSON', json],
    ['SSE', sse],
  ] as const) {
    for (const connections of [1, 50]) {
      const d = await load(`${providerUrl}/v1/chat/completions`, connections, body, direct);
      const g = await load(`${gatewayUrl}/v1/chat/completions`, connections, body, through);
      results[`${kind} ${connections}`] = { direct: d, gateway: g };
      rows.push(
        `${kind.padEnd(4)} ${String(connections).padStart(2)} conn | direct ${d.rps.toFixed(0).padStart(6)} req/s p50 ${d.p50} ms p99 ${d.p99} ms | gateway ${g.rps.toFixed(0).padStart(6)} req/s p50 ${g.p50} ms p99 ${g.p99} ms | ${((g.rps / d.rps) * 100).toFixed(0)}% | errors ${d.errors}/${g.errors}`,
      );
    }
  }
  const directTtfb: number[] = [];
  const gatewayTtfb: number[] = [];
  for (let i = 0; i < TTFB_SAMPLES; i++) {
    directTtfb.push(await ttfb(`${providerUrl}/v1/chat/completions`, sse, direct));
    gatewayTtfb.push(await ttfb(`${gatewayUrl}/v1/chat/completions`, sse, through));
  }
  const added = median(gatewayTtfb) - median(directTtfb);
  const rss = peakRss(gateway.pid!);
  const ratio = (results['JSON 50'].gateway.rps / results['JSON 50'].direct.rps) * 100;
  const sseRatio = (results['SSE 50'].gateway.rps / results['SSE 50'].direct.rps) * 100;

  console.log(
    `gateway benchmark: ${cpus().length} cores (${cpus()[0]?.model.trim()}), node ${process.version}, ${DURATION_S} s per run, loopback`,
  );
  for (const row of rows) console.log(`  ${row}`);
  console.log(
    `  time to first byte (SSE, p50 of ${TTFB_SAMPLES}): direct ${median(directTtfb).toFixed(2)} ms, gateway ${median(gatewayTtfb).toFixed(2)} ms`,
  );
  console.log('targets:');
  console.log(
    `  through the gateway at 50 connections >= 50% of direct req/s: JSON ${ratio.toFixed(0)}%, SSE ${sseRatio.toFixed(0)}%  ${ratio >= 50 && sseRatio >= 50 ? 'met' : 'MISSED'}`,
  );
  console.log(`  added time to first byte p50 <= 2 ms: ${added.toFixed(2)} ms  ${added <= 2 ? 'met' : 'MISSED'}`);
  console.log(
    `  gateway peak RSS <= 100 MB: ${rss.toFixed(1)} MB (${idleRss.toFixed(1)} MB when ready)  ${rss <= 100 ? 'met' : 'MISSED'}`,
  );
}

if (process.argv.includes('--fake-provider')) {
  void fakeProviderMain();
} else {
  main()
    .catch((error: Error) => {
      console.error(`benchmark failed: ${error.message}`);
      process.exitCode = 1;
    })
    .finally(stopAll);
}
