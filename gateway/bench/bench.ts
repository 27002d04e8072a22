/**
 * `npm run bench:gateway`: a benchmark, not a test. Everything on loopback, in one run, on this
 * machine's cores, against one fake provider that serves HTTPS with a throwaway certificate (the
 * gateway sends provider keys over https only):
 *
 * - direct: the client talks to the fake provider itself;
 * - the gateway as deployed: gateway/dist/main.js started the way the container's CMD starts it, its
 *   documents in moto_server's Secrets Manager, its rate limits in a real redis-server, a client key;
 * - `--compare`: Portkey's open-source gateway 1.15.2 as well (installed on demand, bench/portkey.ts);
 *   without it, a bare Node proxy (node:http and the gateway's undici Agent, nothing else) as the
 *   ceiling any Node proxy reaches here;
 * - `--profile`: the gateway under JSON load with V8's CPU profiler, and where its time goes.
 *
 * Runs are interleaved (direct, then each proxy, ROUNDS times) and medians reported, so a noisy
 * neighbour on the shared cores hits every column alike. Every process is stopped by PID at the end,
 * also on failure; every load run is bounded by DURATION_S.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createConnection } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import autocannon from 'autocannon';
import { generateClientKey, hashClientKey } from '../../contracts/client-keys';
import { createDispatcher } from '../src/http-client';
import { parseAllowedNetworks } from '../src/provider-address';
import { startFakeProvider } from '../test/helpers/fake-provider';
import { loopbackCertificate } from '../test/helpers/tls';
import { freeLoopbackPort } from '../../test/helpers/free-port';
import { PORTKEY_PATH, portkeyHeaders, startPortkey } from './portkey';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 50;
const TTFB_SAMPLES = 300;
const PROVIDER_KEY = 'sk-bench-provider-key-000000000000';
const PEPPER = 'bench-pepper-0123456789abcdefghijklmnopqrstuv';
/** The targets at 50 connections. */
const TARGETS = { ofDirect: 0.5, ofPortkey: 5, addedTtfbMs: 2, rssMb: 100 };
const COMPARE = process.argv.includes('--compare');
const PROFILE = process.argv.includes('--profile');

/** `bench.js --fake-provider`: the fake provider in a process of its own; prints its port and certificate. */
async function fakeProviderMain(): Promise<void> {
  const provider = await startFakeProvider();
  provider.behave(PROVIDER_KEY, 'ok');
  // The provider keeps no record under load: the array would only grow.
  provider.received.push = () => 0;
  process.stdout.write(`${provider.port} ${loopbackCertificate().certPath}\n`);
}

/** `bench.js --bare-proxy <upstream> <ca>`: the least a Node proxy does; prints its port. */
function bareProxyMain(upstream: string, caPath: string): void {
  const agent = createDispatcher({ policy: parseAllowedNetworks('127.0.0.1/32'), ca: readFileSync(caPath, 'utf8') });
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
/** Starts a process to stop at the end; `quiet` drops its output (moto's request log, Redis's banner). */
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

/** The first line a child prints, bounded in time. */
function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes('\n')) {
        clearTimeout(timer);
        resolve(buffered.split('\n')[0]);
      }
    });
  });
}

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU the measured proxy used per request, ms (utime + stime from /proc). */
  cpuMsPerRequest?: number;
}

/** CPU time of a process so far, ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks of 10 ms.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function load(url: string, body: string, headers: Record<string, string>, measured?: number): Promise<Load> {
  const cpuBefore = measured === undefined ? 0 : cpuMs(measured);
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_S,
    method: 'POST',
    body,
    headers,
  });
  const total = result.requests.total;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
    cpuMsPerRequest: measured === undefined || total === 0 ? undefined : (cpuMs(measured) - cpuBefore) / total,
  };
}

/** Time to the first byte of the answer, ms. */
function ttfb(url: string, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const client = url.startsWith('https:') ? httpsRequest : request;
    const req = client(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) }, rejectUnauthorized: false },
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
  // The pepper as the stack keeps it, and the client record made under its version as the CLI makes it.
  const pepper = await secrets.send(new CreateSecretCommand({ Name: 'bench/pepper', SecretString: PEPPER }));
  await secrets.send(new CreateSecretCommand({ Name: 'bench/rehash', SecretString: '{"version":1}' }));
  await secrets.send(
    new CreateSecretCommand({
      Name: 'bench/clients',
      SecretString: JSON.stringify({
        version: 1,
        clients: [
          {
            id: 'bench',
            keyHash: hashClientKey(PEPPER, clientKey),
            pepperVersionId: pepper.VersionId,
            allowedCidrs: ['127.0.0.0/8', '::1/128'],
            allowedModels: ['*'],
            requestsPerMinute: 1e9,
            tokensPerMinute: 1e12,
            maxInFlight: 10_000,
          },
        ],
      }),
    }),
  );
  secrets.destroy();
}

/** A redis-server on a free loopback port, without persistence; resolves once it answers PING. */
async function startRedisServer(): Promise<number> {
  const port = await freeLoopbackPort();
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(
      'redis-server is not installed: the gateway runs as deployed, with its limits in Redis (apt-get install -y redis-server)',
    );
  }
  spawnTracked(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { PATH: process.env.PATH },
    true,
  );
  await waitFor(
    () =>
      new Promise((resolve) => {
        const socket = createConnection({ host: '127.0.0.1', port });
        socket.on('connect', () => socket.write('PING\r\n'));
        socket.on('data', (d: Buffer) => {
          socket.destroy();
          resolve(d.toString().includes('PONG'));
        });
        socket.on('error', () => resolve(false));
      }),
    'redis-server',
  );
  return port;
}

/** The top functions of a V8 CPU profile by self time, with their share. */
function profileSummary(dir: string): string[] {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) return ['(no profile written)'];
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    const file = frame.url.split('/').slice(-2).join('/') || '(native)';
    const key = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
    const delta = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + delta);
    total += delta;
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([key, us]) => `${((us / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
}

async function main(): Promise<void> {
  const here = __dirname;
  const env = { PATH: process.env.PATH };
  const provider = spawnTracked(process.execPath, [__filename, '--fake-provider'], env);
  const [providerPort, certPath] = (await firstLine(provider, 'the fake provider')).split(' ');
  const providerUrl = `https://127.0.0.1:${providerPort}`;

  const motoPort = await freeLoopbackPort();
  spawnTracked('moto_server', ['-H', '127.0.0.1', '-p', String(motoPort)], env, true);
  const motoUrl = `http://127.0.0.1:${motoPort}`;
  await waitFor(async () => (await fetch(`${motoUrl}/moto-api/`)).ok, 'moto_server');
  const redisPort = await startRedisServer();
  const clientKey = generateClientKey('bench', (n) => Buffer.alloc(n, 9));
  await createSecrets(motoUrl, providerUrl, clientKey);

  const gatewayPort = await freeLoopbackPort();
  // Started exactly as the container's CMD starts it (same Node flags), with the bundle's local path.
  const cmd = JSON.parse(
    /^CMD (\[.*\])$/m.exec(readFileSync(join(here, '..', '..', 'Dockerfile'), 'utf8'))![1],
  ) as string[];
  const profileDir = mkdtempSync(join(tmpdir(), 'gateway-profile-'));
  const gatewayArgs = [
    ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    ...cmd.slice(1).map((arg) => (arg === '/app/main.js' ? join(here, '..', 'main.js') : arg)),
  ];
  const gateway = spawnTracked(process.execPath, gatewayArgs, {
    ...env,
    PORT: String(gatewayPort),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: motoUrl,
    PROVIDER_KEYS_SECRET_ID: 'bench/pool',
    CLIENTS_SECRET_ID: 'bench/clients',
    PEPPER_SECRET_ID: 'bench/pepper',
    REHASH_SECRET_ID: 'bench/rehash',
    SECRETS_POLL_INTERVAL_SECONDS: '3600',
    REDIS_HOST: '127.0.0.1',
    REDIS_PORT: String(redisPort),
    NODE_EXTRA_CA_CERTS: certPath,
    PROVIDER_ALLOWED_PRIVATE_CIDRS: '127.0.0.1/32',
  });
  gateway.stdout!.resume(); // audit lines: read and dropped, as the log driver would take them
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  await waitFor(async () => (await fetch(`${gatewayUrl}/readyz`)).ok, 'the gateway');
  const readyRss = peakRss(gateway.pid!);

  const path = '/v1/chat/completions';
  const messages = [{ role: 'user', content: 'Say hello' }];
  const bodies = {
    JSON: JSON.stringify({ model: 'gpt-bench', messages }),
    SSE: JSON.stringify({ model: 'gpt-bench', stream: true, messages }),
  };
  const providerHeaders = { 'content-type': 'application/json', authorization: `Bearer ${PROVIDER_KEY}` };
  const clientHeaders = { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` };

  if (PROFILE) {
    await load(`${gatewayUrl}${path}`, bodies.JSON, clientHeaders);
    const exited = new Promise((resolve) => gateway.once('exit', resolve));
    process.kill(gateway.pid!, 'SIGTERM');
    await exited;
    console.log(
      `CPU profile of the gateway under JSON load at ${CONNECTIONS} connections, ${DURATION_S} s, by self time:`,
    );
    for (const line of profileSummary(profileDir)) console.log(line);
    return;
  }

  // The third column: Portkey (--compare) or the bare proxy.
  let other: { name: string; url: string; headers: Record<string, string>; pid: number };
  if (COMPARE) {
    const portkey = await startPortkey({
      port: await freeLoopbackPort(),
      env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: certPath },
    });
    started.push(portkey.child);
    other = {
      name: 'Portkey 1.15.2',
      url: `${portkey.url}${PORTKEY_PATH}`,
      headers: portkeyHeaders(providerUrl, PROVIDER_KEY),
      pid: portkey.child.pid!,
    };
  } else {
    const bare = spawnTracked(process.execPath, [__filename, '--bare-proxy', providerUrl, certPath], env);
    other = {
      name: 'bare Node proxy',
      url: `http://127.0.0.1:${await firstLine(bare, 'the bare proxy')}${path}`,
      headers: providerHeaders,
      pid: bare.pid!,
    };
  }

  const runs: Record<string, { direct: Load[]; other: Load[]; gateway: Load[] }> = {};
  for (const kind of ['JSON', 'SSE'] as const) {
    runs[kind] = { direct: [], other: [], gateway: [] };
    for (let round = 0; round < ROUNDS; round++) {
      runs[kind].direct.push(await load(`${providerUrl}${path}`, bodies[kind], providerHeaders));
      runs[kind].other.push(await load(other.url, bodies[kind], other.headers, other.pid));
      runs[kind].gateway.push(await load(`${gatewayUrl}${path}`, bodies[kind], clientHeaders, gateway.pid!));
    }
  }
  const ttfbs: Record<string, { direct: number; other: number; gateway: number }> = {};
  for (const kind of ['JSON', 'SSE'] as const) {
    const samples = { direct: [] as number[], other: [] as number[], gateway: [] as number[] };
    for (let i = 0; i < TTFB_SAMPLES; i++) {
      samples.direct.push(await ttfb(`${providerUrl}${path}`, bodies[kind], providerHeaders));
      samples.other.push(await ttfb(other.url, bodies[kind], other.headers));
      samples.gateway.push(await ttfb(`${gatewayUrl}${path}`, bodies[kind], clientHeaders));
    }
    ttfbs[kind] = { direct: median(samples.direct), other: median(samples.other), gateway: median(samples.gateway) };
  }
  const rss = { gateway: peakRss(gateway.pid!), other: peakRss(other.pid) };

  const med = (loads: Load[], pick: (l: Load) => number | undefined) => median(loads.map((l) => pick(l) ?? 0));
  const rps = (loads: Load[]) => med(loads, (l) => l.rps);
  const errors = Object.values(runs)
    .flatMap((r) => [...r.direct, ...r.other, ...r.gateway])
    .reduce((sum, l) => sum + l.errors, 0);
  const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
  const fmt = (n: number) => n.toFixed(0).padStart(6);

  console.log(
    `gateway benchmark: ${cpus().length} cores (${cpus()[0]?.model.trim()}), node ${process.version}, ${CONNECTIONS} connections, ` +
      `${DURATION_S} s a run, ${ROUNDS} interleaved rounds (medians), loopback; load generator, provider (HTTPS), moto, Redis and proxies share the cores`,
  );
  console.log(
    `| ${CONNECTIONS} connections | direct | ${other.name} | ours | ours / direct | ours / ${COMPARE ? 'Portkey' : 'bare'} |`,
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const kind of ['JSON', 'SSE'] as const) {
    const d = rps(runs[kind].direct);
    const o = rps(runs[kind].other);
    const g = rps(runs[kind].gateway);
    console.log(
      `| ${kind} req/s | ${fmt(d)} | ${fmt(o)} | ${fmt(g)} | ${(g / d).toFixed(2)} | ${(g / o).toFixed(1)}× |`,
    );
  }
  for (const kind of ['JSON', 'SSE'] as const) {
    const t = ttfbs[kind];
    console.log(
      `| ${kind} time to first byte p50 (sequential) | ${t.direct.toFixed(2)} ms | ${t.other.toFixed(2)} ms (+${(t.other - t.direct).toFixed(2)}) | ${t.gateway.toFixed(2)} ms (+${(t.gateway - t.direct).toFixed(2)}) | | |`,
    );
  }
  for (const kind of ['JSON', 'SSE'] as const) {
    console.log(
      `| ${kind} CPU per request | | ${med(runs[kind].other, (l) => l.cpuMsPerRequest).toFixed(3)} ms | ${med(runs[kind].gateway, (l) => l.cpuMsPerRequest).toFixed(3)} ms | | |`,
    );
  }
  console.log(
    `| peak RSS | | ${rss.other.toFixed(0)} MB | ${rss.gateway.toFixed(0)} MB (${readyRss.toFixed(0)} MB when ready) | | |`,
  );
  console.log(`non-2xx or errors in all runs: ${errors}`);
  console.log('');
  console.log('| target (50 connections) | figure | |');
  console.log('|---|---|---|');
  const json = { d: rps(runs.JSON.direct), o: rps(runs.JSON.other), g: rps(runs.JSON.gateway) };
  const sse = { d: rps(runs.SSE.direct), g: rps(runs.SSE.gateway) };
  console.log(
    `| JSON req/s >= ${TARGETS.ofDirect * 100}% of direct | ${((json.g / json.d) * 100).toFixed(0)}% | ${verdict(json.g >= TARGETS.ofDirect * json.d)} |`,
  );
  if (COMPARE)
    console.log(
      `| JSON req/s >= ${TARGETS.ofPortkey}× Portkey | ${(json.g / json.o).toFixed(1)}× | ${verdict(json.g >= TARGETS.ofPortkey * json.o)} |`,
    );
  console.log(
    `| SSE req/s >= ${TARGETS.ofDirect * 100}% of direct | ${((sse.g / sse.d) * 100).toFixed(0)}% | ${verdict(sse.g >= TARGETS.ofDirect * sse.d)} |`,
  );
  for (const kind of ['JSON', 'SSE'] as const) {
    const added = ttfbs[kind].gateway - ttfbs[kind].direct;
    console.log(
      `| added time to first byte p50 <= ${TARGETS.addedTtfbMs} ms, ${kind} | ${added.toFixed(2)} ms | ${verdict(added <= TARGETS.addedTtfbMs)} |`,
    );
  }
  console.log(
    `| peak RSS under load <= ${TARGETS.rssMb} MB | ${rss.gateway.toFixed(0)} MB | ${verdict(rss.gateway <= TARGETS.rssMb)} |`,
  );
}

if (process.argv.includes('--fake-provider')) {
  void fakeProviderMain();
} else if (process.argv.includes('--bare-proxy')) {
  const at = process.argv.indexOf('--bare-proxy');
  bareProxyMain(process.argv[at + 1], process.argv[at + 2]);
} else {
  main()
    .catch((error: Error) => {
      console.error(`benchmark failed: ${error.message}`);
      process.exitCode = 1;
    })
    .finally(stopAll);
}
