/**
 * `npm run bench:gateway`: a benchmark, not a test. On loopback, in one run:
 *
 * - the fake provider directly,
 * - a bare proxy (node:http + the gateway's undici Agent, no auth, validation, screening or audit):
 *   the ceiling any Node proxy reaches on this machine, so the gateway's figures can be read,
 * - the gateway: gateway/dist/main.js started the way the container's CMD starts it, its documents
 *   in moto_server's Secrets Manager (as in production, through AWS_ENDPOINT_URL_SECRETS_MANAGER),
 *   no Redis (each replica's own counters; the limits are set out of reach),
 *
 * JSON and SSE chat completions at 1 and 50 connections (autocannon, DURATION_S each), the time to
 * first byte the gateway adds to a stream (p50 of sequential streams each way), and each proxy's
 * peak RSS (VmHWM). Every process runs on its own and is stopped by PID at the end, also on failure.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import autocannon from 'autocannon';
import { generateClientKey, hashClientKey } from '../src/client-keys';
import { Agent } from '../src/http-client';
import { startFakeProvider } from '../test/helpers/fake-provider';
import { freeLoopbackPort } from '../../test/helpers/free-port';

const DURATION_S = 5;
const TTFB_SAMPLES = 300;
const PROVIDER_KEY = 'sk-bench-provider-key-000000000000';
const PEPPER = 'bench-pepper-0123456789abcdefghijklmnopqrstuv';
const TARGETS = { ratio: 50, addedTtfbMs: 2, rssMb: 100 };

/** `bench.js --fake-provider`: the fake provider in a process of its own; prints its port. */
async function fakeProviderMain(): Promise<void> {
  const provider = await startFakeProvider();
  provider.behave(PROVIDER_KEY, 'ok');
  // The provider keeps no record under load: the array would only grow.
  provider.received.push = () => 0;
  process.stdout.write(`${provider.port}\n`);
}

/** `bench.js --bare-proxy <upstream>`: the least a Node proxy does; prints its port. */
function bareProxyMain(upstream: string): void {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      agent
        .request({
          origin: upstream,
          path: req.url ?? '/',
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
          body: Buffer.concat(chunks),
        })
        .then((upstreamResponse) => {
          res.writeHead(upstreamResponse.statusCode, {
            'content-type': String(upstreamResponse.headers['content-type']),
          });
          upstreamResponse.body.on('data', (chunk: Buffer) => res.write(chunk));
          upstreamResponse.body.on('end', () => res.end());
        })
        .catch(() => res.destroy());
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
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
  for (const child of started) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
      process.kill(child.pid, 'SIGKILL');
  }
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not start within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The port a child prints as its first line, bounded in time. */
function firstLine(child: ChildProcess, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes('\n')) {
        clearTimeout(timer);
        resolve(Number(buffered.split('\n')[0]));
      }
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
  const result = await autocannon({ url, connections, duration: DURATION_S, method: 'POST', body, headers });
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

async function createSecrets(motoUrl: string, providerUrl: string, clientKey: string): Promise<void> {
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
}

async function main(): Promise<void> {
  const here = __dirname;
  const env = { PATH: process.env.PATH };
  const provider = spawnTracked(process.execPath, [__filename, '--fake-provider'], env);
  const providerUrl = `http://127.0.0.1:${await firstLine(provider, 'the fake provider')}`;
  const bare = spawnTracked(process.execPath, [__filename, '--bare-proxy', providerUrl], env);
  const bareUrl = `http://127.0.0.1:${await firstLine(bare, 'the bare proxy')}`;

  const motoPort = await freeLoopbackPort();
  spawnTracked('moto_server', ['-H', '127.0.0.1', '-p', String(motoPort)], env, true);
  const motoUrl = `http://127.0.0.1:${motoPort}`;
  await waitFor(async () => (await fetch(`${motoUrl}/moto-api/`)).ok, 'moto_server');
  const clientKey = generateClientKey('bench', (n) => Buffer.alloc(n, 9));
  await createSecrets(motoUrl, providerUrl, clientKey);

  const gatewayPort = await freeLoopbackPort();
  // Started exactly as the container's CMD starts it (same Node flags), with the bundle's local path.
  const cmd = JSON.parse(
    /^CMD (\[.*\])$/m.exec(readFileSync(join(here, '..', '..', 'Dockerfile'), 'utf8'))![1],
  ) as string[];
  const gatewayArgs = cmd.slice(1).map((arg) => (arg === '/app/main.js' ? join(here, '..', 'main.js') : arg));
  const gateway = spawnTracked(process.execPath, gatewayArgs, {
    ...env,
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
  gateway.stdout!.resume(); // audit lines: read and dropped, as the log driver would take them
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  await waitFor(async () => (await fetch(`${gatewayUrl}/readyz`)).ok, 'the gateway');
  const readyRss = peakRss(gateway.pid!);

  const json = JSON.stringify({ model: 'gpt-bench', messages: [{ role: 'user', content: 'Say hello' }] });
  const sse = JSON.stringify({ model: 'gpt-bench', stream: true, messages: [{ role: 'user', content: 'Say hello' }] });
  const providerHeaders = { 'content-type': 'application/json', authorization: `Bearer ${PROVIDER_KEY}` };
  const clientHeaders = { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` };
  const path = '/v1/chat/completions';

  const fmt = (l: Load) =>
    `${l.rps.toFixed(0).padStart(6)} req/s p50 ${String(l.p50).padStart(2)} ms p99 ${String(l.p99).padStart(3)} ms`;
  const rows: string[] = [];
  const ratios: Record<string, { direct: number; bare: number }> = {};
  let errors = 0;
  for (const [kind, body] of [
    ['JSON', json],
    ['SSE', sse],
  ] as const) {
    for (const connections of [1, 50]) {
      const d = await load(`${providerUrl}${path}`, connections, body, providerHeaders);
      const b = await load(`${bareUrl}${path}`, connections, body, providerHeaders);
      const g = await load(`${gatewayUrl}${path}`, connections, body, clientHeaders);
      errors += d.errors + b.errors + g.errors;
      const ratio = { direct: (g.rps / d.rps) * 100, bare: (g.rps / b.rps) * 100 };
      ratios[`${kind} ${connections}`] = ratio;
      rows.push(
        `| ${kind.padEnd(4)} | ${String(connections).padStart(2)} | ${fmt(d)} | ${fmt(b)} | ${fmt(g)} | ${ratio.direct.toFixed(0).padStart(3)}% | ${ratio.bare.toFixed(0).padStart(3)}% |`,
      );
    }
  }
  const directTtfb: number[] = [];
  const gatewayTtfb: number[] = [];
  for (let i = 0; i < TTFB_SAMPLES; i++) {
    directTtfb.push(await ttfb(`${providerUrl}${path}`, sse, providerHeaders));
    gatewayTtfb.push(await ttfb(`${gatewayUrl}${path}`, sse, clientHeaders));
  }
  const added = median(gatewayTtfb) - median(directTtfb);
  const rss = peakRss(gateway.pid!);
  const bareRss = peakRss(bare.pid!);
  const at50 = Math.min(ratios['JSON 50'].direct, ratios['SSE 50'].direct);
  const bareAt50 = Math.min(ratios['JSON 50'].bare, ratios['SSE 50'].bare);
  const verdict = (met: boolean) => (met ? 'met' : 'MISSED');

  console.log(
    `gateway benchmark: ${cpus().length} cores (${cpus()[0]?.model.trim()}), node ${process.version}, ${DURATION_S} s per run, loopback, autocannon and all three servers on the same cores`,
  );
  console.log(
    `| kind | conns | direct (fake provider)               | bare Node proxy                      | gateway                              | gw/direct | gw/bare |`,
  );
  console.log(`|---|---|---|---|---|---|---|`);
  for (const row of rows) console.log(row);
  console.log(
    `time to first byte, SSE, p50 of ${TTFB_SAMPLES} sequential: direct ${median(directTtfb).toFixed(2)} ms, through the gateway ${median(gatewayTtfb).toFixed(2)} ms`,
  );
  console.log(`non-2xx or errors in all runs: ${errors}`);
  console.log('| target | figure | |');
  console.log('|---|---|---|');
  console.log(
    `| gateway >= ${TARGETS.ratio}% of direct req/s at 50 connections | ${at50.toFixed(0)}% (JSON ${ratios['JSON 50'].direct.toFixed(0)}%, SSE ${ratios['SSE 50'].direct.toFixed(0)}%); the bare proxy reaches ${Math.min(...['JSON 50', 'SSE 50'].map((k) => (ratios[k].direct / ratios[k].bare) * 100)).toFixed(0)}%, the gateway ${bareAt50.toFixed(0)}% of the bare proxy | ${verdict(at50 >= TARGETS.ratio)} |`,
  );
  console.log(
    `| added time to first byte p50 <= ${TARGETS.addedTtfbMs} ms | ${added.toFixed(2)} ms | ${verdict(added <= TARGETS.addedTtfbMs)} |`,
  );
  console.log(
    `| gateway peak RSS <= ${TARGETS.rssMb} MB | ${rss.toFixed(1)} MB (${readyRss.toFixed(1)} MB when ready; bare proxy ${bareRss.toFixed(1)} MB) | ${verdict(rss <= TARGETS.rssMb)} |`,
  );
}

if (process.argv.includes('--fake-provider')) {
  void fakeProviderMain();
} else if (process.argv.includes('--bare-proxy')) {
  bareProxyMain(process.argv[process.argv.indexOf('--bare-proxy') + 1]);
} else {
  main()
    .catch((error: Error) => {
      console.error(`benchmark failed: ${error.message}`);
      process.exitCode = 1;
    })
    .finally(stopAll);
}
