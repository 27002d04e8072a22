import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import Redis from 'ioredis';
import { createRateLimiter, type RateLimiter, type RateLimiterOptions, WINDOW_MS, windowKey } from '../src/ratelimit';
import { type RedisServer, startRedis } from './helpers/redis';

/** A minute boundary, so the window's remaining seconds read plainly. */
const START = Date.UTC(2026, 10, 22, 12, 0, 0);
const windowOf = (clock: number) => Math.floor(clock / WINDOW_MS);
const PLENTY = { requestsPerMinute: 1e9, tokensPerMinute: 1e9 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` passes; bounded in time, so a broken build fails with a message instead of hanging. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Every limiter and raw client a test opens, closed after it whatever happened. */
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const item of open.splice(0)) await item.close();
});

function limiterFor(options: RateLimiterOptions): RateLimiter {
  const limiter = createRateLimiter(options);
  open.push(limiter);
  return limiter;
}

function rawClient(port: number, password?: string): Redis {
  const client = new Redis({ host: '127.0.0.1', port, password, maxRetriesPerRequest: 1 });
  open.push({ close: () => client.quit().catch(() => client.disconnect()) });
  return client;
}

const allowed = { allowed: true, ticket: expect.any(Object) };

/** Admits a probe client until the limiter answers from Redis. */
async function connected(limiter: RateLimiter): Promise<void> {
  await until('the limiter answers from Redis', async () => {
    await limiter.admit('probe', PLENTY);
    return !limiter.degraded;
  });
}

async function admitMany(
  limiter: RateLimiter,
  clientId: string,
  n: number,
  limits = { requestsPerMinute: 3, tokensPerMinute: 1000 },
) {
  const results = [];
  for (let i = 0; i < n; i++) results.push(await limiter.admit(clientId, limits));
  return results;
}

describe('the local limiter (no Redis configured)', () => {
  it('applies the same limits and windows on its own, and is never degraded', async () => {
    let clock = START;
    const changes: boolean[] = [];
    const limiter = limiterFor({ now: () => clock, onDegradedChange: (d) => changes.push(d) });
    const limits = { requestsPerMinute: 2, tokensPerMinute: 100 };
    expect((await admitMany(limiter, 'a', 3, limits)).map((r) => r.allowed)).toEqual([true, true, false]);
    expect((await limiter.admit('b', limits)).allowed).toBe(true);
    clock += WINDOW_MS;
    const admitted = await limiter.admit('a', limits, 10);
    if (!admitted.allowed) throw new Error('not admitted');
    await limiter.settle(admitted.ticket, 100);
    expect(await limiter.admit('a', limits)).toEqual({ allowed: false, reason: 'tokens', retryAfterSeconds: 60 });
    expect([limiter.degraded, changes]).toEqual([false, []]);
  });

  it('reserves tokens at admission and gives back what a request did not use', async () => {
    const limiter = limiterFor({ now: () => START });
    const limits = { requestsPerMinute: 100, tokensPerMinute: 1000 };
    const first = await limiter.admit('a', limits, 600);
    expect(first.allowed).toBe(true);
    // 600 of 1000 are reserved: a second reservation of 600 does not fit, one of 400 does.
    expect(await limiter.admit('a', limits, 600)).toMatchObject({ allowed: false, reason: 'tokens' });
    if (!first.allowed) throw new Error('not admitted');
    await limiter.settle(first.ticket, 100);
    expect((await limiter.admit('a', limits, 600)).allowed).toBe(true);
  });
});

describe('the shared limiter, through a real redis-server', () => {
  let server: RedisServer;
  let prefixes = 0;
  /** A key prefix per test, so tests never see each other's windows. */
  const prefix = () => `t${++prefixes}:`;

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const shared = (clock: () => number, keyPrefix: string, extra: Partial<RateLimiterOptions> = {}) =>
    limiterFor({
      redis: { host: '127.0.0.1', port: server.port, keyPrefix, commandTimeoutMs: 1000 },
      now: clock,
      ...extra,
    });

  it('admits up to requestsPerMinute, then refuses with the reason and the seconds left in the window', async () => {
    const clock = START + 15_000;
    const keyPrefix = prefix();
    const limiter = shared(() => clock, keyPrefix);
    await connected(limiter);
    const results = await admitMany(limiter, 'dify', 5);
    expect(results).toEqual([
      allowed,
      allowed,
      allowed,
      { allowed: false, reason: 'requests', retryAfterSeconds: 45 },
      { allowed: false, reason: 'requests', retryAfterSeconds: 45 },
    ]);
    // Refused requests are not counted: with a small limit every lease is one request, so the window
    // holds exactly what was admitted.
    const raw = rawClient(server.port);
    expect(await raw.hget(windowKey(keyPrefix, 'dify', windowOf(clock)), 'r')).toBe('3');
    expect(limiter.degraded).toBe(false);
  });

  it('refuses a reservation that does not fit in what is left of tokensPerMinute, whatever requests remain', async () => {
    const clock = START;
    const limiter = shared(() => clock, prefix());
    await connected(limiter);
    const limits = { requestsPerMinute: 100, tokensPerMinute: 1000 };
    const first = await limiter.admit('dify', limits, 10);
    if (!first.allowed) throw new Error('not admitted');
    await limiter.settle(first.ticket, 999);
    expect((await limiter.admit('dify', limits, 1)).allowed).toBe(true);
    expect(await limiter.admit('dify', limits, 1)).toEqual({ allowed: false, reason: 'tokens', retryAfterSeconds: 60 });
  });

  it('counts tokens used beyond the reservation and the lease in Redis, for every replica to see', async () => {
    const clock = START;
    const keyPrefix = prefix();
    const [a, b] = [shared(() => clock, keyPrefix), shared(() => clock, keyPrefix)];
    await connected(a);
    await connected(b);
    const limits = { requestsPerMinute: 100, tokensPerMinute: 10_000 };
    const ticket = await a.admit('dify', limits, 100);
    if (!ticket.allowed) throw new Error('not admitted');
    await a.settle(ticket.ticket, 9_900);
    // Replica b never saw the request, yet the window is full for it too.
    expect(await b.admit('dify', limits, 200)).toMatchObject({ allowed: false, reason: 'tokens' });
  });

  it('admits from a lease: a thousand admissions take a handful of Redis round trips, and stop at the limit', async () => {
    const clock = START;
    const keyPrefix = prefix();
    const limiter = shared(() => clock, keyPrefix);
    await connected(limiter);
    const raw = rawClient(server.port);
    await raw.call('CONFIG', 'RESETSTAT');
    const limits = { requestsPerMinute: 1000, tokensPerMinute: 1e9 };
    const results = await admitMany(limiter, 'dify', 1010, limits);
    expect(results.filter((r) => r.allowed)).toHaveLength(1000);
    const stats = String(await raw.call('INFO', 'commandstats'));
    const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    // Each lease is 1/16 of what is left (at most 100): about 60 leases for 1000 requests.
    expect(calls('evalsha') + calls('eval')).toBeLessThan(100);
    expect(await raw.hget(windowKey(keyPrefix, 'dify', windowOf(clock)), 'r')).toBe('1000');
  });

  it('gives back what it leased and did not use when it closes, without reporting an outage', async () => {
    const clock = START;
    const keyPrefix = prefix();
    const changes: boolean[] = [];
    const limiter = shared(() => clock, keyPrefix, { onDegradedChange: (d) => changes.push(d) });
    await connected(limiter);
    changes.length = 0;
    const raw = rawClient(server.port);
    const key = windowKey(keyPrefix, 'dify', windowOf(clock));
    await limiter.admit('dify', { requestsPerMinute: 1600, tokensPerMinute: 1e9 }, 5);
    expect(Number(await raw.hget(key, 'r'))).toBe(100);
    await limiter.close();
    expect(await raw.hmget(key, 'r', 't')).toEqual(['1', '5']);
    expect(changes).toEqual([]);
  });

  it('starts a new window each minute of the injected clock, and lets Redis expire the old one', async () => {
    let clock = START + 59_500;
    const keyPrefix = prefix();
    const limiter = shared(() => clock, keyPrefix);
    await connected(limiter);
    const limits = { requestsPerMinute: 1, tokensPerMinute: 10 };
    expect((await admitMany(limiter, 'dify', 2, limits)).map((r) => r.allowed)).toEqual([true, false]);
    expect(await limiter.admit('dify', limits)).toMatchObject({ retryAfterSeconds: 1 });
    clock += 500;
    expect(await limiter.admit('dify', limits)).toEqual(allowed);
    expect(await limiter.admit('dify', limits)).toEqual({ allowed: false, reason: 'requests', retryAfterSeconds: 60 });
    const raw = rawClient(server.port);
    const ttl = await raw.pttl(windowKey(keyPrefix, 'dify', windowOf(clock) - 1));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2 * WINDOW_MS);
  });

  it('keeps clients apart, and puts only a validated id or a hash of it into a key', async () => {
    const clock = START;
    const keyPrefix = prefix();
    const limiter = shared(() => clock, keyPrefix);
    await connected(limiter);
    const odd = 'x}:{gw:rl:*\r\nFLUSHALL';
    expect((await admitMany(limiter, 'dify', 4)).map((r) => r.allowed)).toEqual([true, true, true, false]);
    expect((await admitMany(limiter, 'other', 3)).map((r) => r.allowed)).toEqual([true, true, true]);
    expect((await admitMany(limiter, odd, 4)).map((r) => r.allowed)).toEqual([true, true, true, false]);
    const raw = rawClient(server.port);
    const keys = (await raw.keys(`${keyPrefix}*`)).sort();
    const window = windowOf(clock);
    expect(keys.filter((k) => !k.includes('{h-'))).toEqual([
      `${keyPrefix}{dify}:${window}`,
      `${keyPrefix}{other}:${window}`,
      `${keyPrefix}{probe}:${window}`,
    ]);
    expect(keys.filter((k) => k.includes('{h-'))).toEqual([expect.stringMatching(/^t\d+:\{h-[0-9a-f]{32}\}:\d+$/)]);
    expect(keys.join('\n')).not.toContain('FLUSHALL');
  });

  it('holds one limit across two limiters with their own connections, as two replicas would', async () => {
    const clock = START;
    const keyPrefix = prefix();
    const replicas = [shared(() => clock, keyPrefix), shared(() => clock, keyPrefix)];
    for (const replica of replicas) await connected(replica);
    const limits = { requestsPerMinute: 10, tokensPerMinute: 1e9 };
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => replicas[i % 2].admit('dify', limits)));
    expect(results.filter((r) => r.allowed)).toHaveLength(10);
  });

  it('answers from the local limiter without waiting when Redis stops answering, and comes back by itself', async () => {
    const clock = START;
    const changes: boolean[] = [];
    const limiter = limiterFor({
      redis: { host: '127.0.0.1', port: server.port, keyPrefix: prefix(), commandTimeoutMs: 250 },
      now: () => clock,
      onDegradedChange: (d) => changes.push(d),
    });
    await connected(limiter);
    changes.length = 0;
    const pauser = rawClient(server.port);
    // CLIENT PAUSE holds every other client's commands for 2 s: an admission in the meantime must not wait for it.
    await pauser.call('CLIENT', 'PAUSE', '2000', 'ALL');
    // A client with no lease yet must ask Redis, which is paused: the local limiter answers instead.
    expect(await limiter.admit('fresh', PLENTY)).toEqual(allowed);
    expect(limiter.degraded).toBe(true);
    await until('back to Redis after the pause', async () => {
      await limiter.admit('probe', PLENTY);
      return !limiter.degraded;
    });
    expect(changes).toEqual([true, false]);
  });
});

describe('AUTH', () => {
  let server: RedisServer;
  const password = 'test-only-auth-token-0123456789';
  beforeAll(async () => {
    server = await startRedis({ password });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers from Redis with the right AUTH token', async () => {
    const limiter = limiterFor({
      redis: { host: '127.0.0.1', port: server.port, password, keyPrefix: 'auth:' },
      now: () => START,
    });
    await connected(limiter);
    expect(await rawClient(server.port, password).exists(windowKey('auth:', 'probe', windowOf(START)))).toBe(1);
  });

  it.each([
    ['a wrong AUTH token', 'not-the-token'],
    ['no AUTH token', undefined],
  ])('with %s, degrades to the local limiter instead of throwing, and says so once', async (_name, wrong) => {
    const changes: boolean[] = [];
    const limiter = limiterFor({
      redis: { host: '127.0.0.1', port: server.port, password: wrong, keyPrefix: 'auth:' },
      now: () => START,
      onDegradedChange: (d) => changes.push(d),
    });
    await until('degraded', () => limiter.degraded);
    const limits = { requestsPerMinute: 2, tokensPerMinute: 100 };
    expect((await admitMany(limiter, 'dify', 3, limits)).map((r) => r.allowed)).toEqual([true, true, false]);
    const last = await limiter.admit('other', limits, 1);
    if (!last.allowed) throw new Error('not admitted');
    await expect(limiter.settle(last.ticket, 10)).resolves.toBeUndefined();
    expect(changes).toEqual([true]);
  });
});

describe('a Redis outage', () => {
  it('falls back to local limits when redis-server is killed, and returns to Redis when it is back on the same port', async () => {
    let server: RedisServer | undefined = await startRedis();
    try {
      const port = server.port;
      let clock = START;
      const changes: boolean[] = [];
      const limiter = limiterFor({
        redis: { host: '127.0.0.1', port, keyPrefix: 'outage:', commandTimeoutMs: 1000 },
        now: () => clock,
        onDegradedChange: (d) => changes.push(d),
      });
      await connected(limiter);
      changes.length = 0;
      const limits = { requestsPerMinute: 5, tokensPerMinute: 1000 };
      expect((await admitMany(limiter, 'dify', 2, limits)).map((r) => r.allowed)).toEqual([true, true]);

      process.kill(server.pid, 'SIGKILL');
      await server.stop();
      server = undefined;
      await until('degraded', () => limiter.degraded);
      // The same limit, locally: this replica already admitted 2 of 5 in this window through Redis.
      const during = await admitMany(limiter, 'dify', 4, limits);
      expect(during.map((r) => r.allowed)).toEqual([true, true, true, false]);
      expect(during[3]).toEqual({ allowed: false, reason: 'requests', retryAfterSeconds: 60 });

      server = await startRedis({ port });
      await until('back to Redis', () => !limiter.degraded, 20_000);
      expect(changes).toEqual([true, false]);
      clock += WINDOW_MS;
      expect((await admitMany(limiter, 'dify', 6, limits)).map((r) => r.allowed)).toEqual([
        true,
        true,
        true,
        true,
        true,
        false,
      ]);
      // Answered from the restarted server, which knows nothing of the outage's window.
      expect(await rawClient(port).hget(windowKey('outage:', 'dify', windowOf(clock)), 'r')).toBe('5');
      expect(limiter.degraded).toBe(false);
    } finally {
      await server?.stop();
    }
  });

  it('never waits for a server that accepts connections but never answers', async () => {
    const { createServer } = await import('node:net');
    const sockets = new Set<import('node:net').Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as { port: number };
      const limiter = limiterFor({ redis: { host: '127.0.0.1', port, commandTimeoutMs: 100 }, now: () => START });
      const limits = { requestsPerMinute: 1, tokensPerMinute: 10 };
      expect(await limiter.admit('dify', limits)).toEqual(allowed);
      expect(await limiter.admit('dify', limits)).toMatchObject({ allowed: false, reason: 'requests' });
      expect(limiter.degraded).toBe(true);
      await limiter.close();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('two OS processes sharing one limit', () => {
  let server: RedisServer;
  let dir: string;
  let worker: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ratelimit-worker-'));
    worker = join(dir, 'worker.js');
    buildSync({
      entryPoints: [join(__dirname, 'fixtures', 'ratelimit-worker.ts')],
      bundle: true,
      platform: 'node',
      target: 'node20',
      outfile: worker,
      logLevel: 'silent',
    });
    server = await startRedis();
  });
  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined)
        process.kill(child.pid, 'SIGKILL');
    }
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Resolves with the first stdout line that `accept` takes; rejects if the process exits first. */
  function lineFrom(child: ChildProcess, accept: (line: string) => boolean, output: { text: string }): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = output.text.split('\n').find(accept);
        if (line !== undefined) {
          child.stdout!.off('data', check);
          resolve(line);
        }
      };
      child.stdout!.on('data', check);
      check();
      child.once('exit', (code) =>
        reject(new Error(`worker exited with ${code} before printing the line: ${output.text}`)),
      );
    });
  }

  it('admits exactly the limit in total when both admit at once', async () => {
    const limit = 40;
    const attempts = 60;
    const outputs = [{ text: '' }, { text: '' }];
    for (const output of outputs) {
      const child = spawn(process.execPath, [worker], {
        env: {
          PATH: process.env.PATH,
          REDIS_PORT: String(server.port),
          KEY_PREFIX: 'procs:',
          CLIENT_ID: 'dify',
          REQUESTS_PER_MINUTE: String(limit),
          ATTEMPTS: String(attempts),
          NOW_MS: String(START),
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      children.push(child);
      child.stdout!.on('data', (chunk: Buffer) => (output.text += chunk.toString('utf8')));
      child.stderr!.on('data', (chunk: Buffer) => (output.text += chunk.toString('utf8')));
    }
    const guard = (promise: Promise<string>) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('a worker did not answer within 30 s')), 30_000);
      });
      return Promise.race([promise, late]).finally(() => clearTimeout(timer));
    };
    await Promise.all(children.map((child, i) => guard(lineFrom(child, (l) => l === 'ready', outputs[i]))));
    for (const child of children) child.stdin!.write('go\n');
    const reports = await Promise.all(
      children.map((child, i) => guard(lineFrom(child, (l) => l.startsWith('{'), outputs[i]))),
    );
    const results = reports.map(
      (r) => JSON.parse(r) as { admitted: number; refused: number; degradedChanges: boolean[] },
    );
    expect(results.map((r) => r.degradedChanges)).toEqual([[], []]);
    expect(results.map((r) => r.admitted + r.refused)).toEqual([attempts, attempts]);
    expect(results[0].admitted + results[1].admitted).toBe(limit);
    expect(await rawClient(server.port).hget(windowKey('procs:', 'dify', windowOf(START)), 'r')).toBe(String(limit));
    await Promise.all(
      children.map((child) => (child.exitCode === null ? new Promise((r) => child.once('exit', r)) : null)),
    );
    expect(children.map((child) => child.exitCode)).toEqual([0, 0]);
  });
});
