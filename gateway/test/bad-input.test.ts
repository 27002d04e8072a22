import { connect } from 'node:net';
import { type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { type Harness, poolOf, startGateway } from './helpers/harness';
import { prng } from './helpers/prng';

/** How a case's bytes are sent: all at once and half-closed, or in pieces over time and left open. */
interface Case {
  readonly bytes: Buffer;
  readonly name: string;
  /** Send in this many pieces, `gapMs` apart, and do not half-close (slowloris-style). */
  readonly pieces?: number;
  readonly gapMs?: number;
}

/** Sends raw bytes and reads the raw answer: malformed HTTP is part of the point. Bounded by `timeoutMs`. */
function send(port: number, c: Case, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    socket.setTimeout(timeoutMs, done);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', done);
    socket.on('error', done);
    socket.on('connect', () => {
      if (c.pieces === undefined) {
        socket.end(c.bytes);
        return;
      }
      const size = Math.ceil(c.bytes.length / c.pieces);
      let at = 0;
      const next = () => {
        if (at >= c.bytes.length || socket.destroyed) return;
        socket.write(c.bytes.subarray(at, at + size));
        at += size;
        timer = setTimeout(next, c.gapMs ?? 10);
      };
      next();
    });
  });
}

/** Runs `tasks` with at most `limit` at a time. */
async function pooled<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]();
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

const PATHS = [
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/messages',
  '/v1/models',
  '/v1/chat',
  '/',
  '/healthz',
  '/v1/chat/completions/../../etc',
  '/%00',
  '/v1/embeddings?x=%zz',
  '//v1//chat/completions',
  'http://127.0.0.1/v1/chat/completions',
  '*',
];
const METHODS = ['POST', 'GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'CONNECT', 'BREW'];

describe('a generated suite of malformed requests', () => {
  let provider: FakeProvider;
  let gw: Harness;
  let port: number;
  beforeAll(async () => {
    provider = await startFakeProvider();
    provider.behave('sk-bad-input-key-0000000000000', 'ok');
    gw = await startGateway({
      pool: poolOf(provider.url, [{ id: 'k1', key: 'sk-bad-input-key-0000000000000' }]),
      maxBodyBytes: 16 * 1024,
      // Short, so the slow cases end in bounded time: a client that never finishes its headers or
      // its body gets a 408 instead of holding a connection.
      headersTimeoutMs: 1000,
      bodyTimeoutMs: 1500,
    });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw.close();
    await provider.close();
  });

  it('answers 1,300 of them with a JSON 4xx naming the problem (or a valid 2xx), never a 5xx, and keeps running', async () => {
    const random = prng(1122);
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
    const key = gw.keys.dify;
    const bodies: Array<() => string | Buffer> = [
      () => '{"model": "gpt-test", "messages": [',
      () => '',
      () => 'null',
      () => '[]',
      () => '"just a string"',
      () => '{"model":"gpt-test","messages":[{"role":"user","content":"x"}]}',
      () => JSON.stringify({ model: 42, messages: 'hi' }),
      () => JSON.stringify({ model: 'gpt-test', messages: [] }),
      () => JSON.stringify({ model: 'gpt-test', messages: [{ content: 'no role' }] }),
      () => JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 5 }] }),
      () => JSON.stringify({ model: 'gpt-unknown', messages: [{ role: 'user', content: 'x' }] }),
      () => JSON.stringify({ model: 'gpt-test', input: { nested: true } }),
      () => JSON.stringify({ model: 'gpt-test', stream: 'yes', messages: [{ role: 'user', content: 'x' }] }),
      () => JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'x'.repeat(20_000) }] }),
      () => Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
      () => Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1]),
      () => '{"model":"gpt-test","messages":[{"role":"user","content":"\\ud800"}]}',
      () => `{"model":"gpt-test","messages":${'['.repeat(5000)}`,
      () =>
        Array.from({ length: Math.floor(random() * 200) }, () => String.fromCharCode(Math.floor(random() * 128))).join(
          '',
        ),
      () => JSON.stringify({ model: 'claude-x', max_tokens: -1, messages: [{ role: 'user', content: 'x' }] }),
      () => '{"model":"gpt-test","messages":[{"role":"user","content":"x"}]}'.repeat(3),
      () => '\uFEFF{"model":"gpt-test","messages":[{"role":"user","content":"x"}]}',
    ];
    const headersFor: Array<() => string[]> = [
      () => [`authorization: Bearer ${key}`, 'content-type: application/json'],
      () => ['content-type: application/json'],
      () => [`authorization: Bearer ${key}x`, 'content-type: application/json'],
      () => ['authorization: Basic Zm9vOmJhcg==', 'content-type: application/json'],
      () => [`authorization: Bearer ${key}`, 'content-type: text/plain'],
      () => [`authorization: Bearer ${key}`, 'content-type: multipart/form-data; boundary=x'],
      () => [`authorization: Bearer ${key}`],
      () => [`x-api-key: ${key}`, 'content-type: application/json; charset=utf-8'],
      () => [`authorization: Bearer ${'A'.repeat(5000)}`, 'content-type: application/json'],
      () => ['authorization: Bearer ', 'content-type: application/json'],
      () => [`authorization: Bearer ${key}`, `authorization: Bearer ${key}`, 'content-type: application/json'],
      () => [`authorization: Bearer dgw_dify_${'\u00ff'.repeat(43)}`, 'content-type: application/json'],
      () => [`authorization: bearer\t${key}`, 'content-type: APPLICATION/JSON'],
    ];
    const cases: Case[] = Array.from({ length: 1200 }, (_, i) => {
      const method = pick(METHODS);
      const path = pick(PATHS);
      const body = pick(bodies)();
      const headers = pick(headersFor)();
      const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
      const framing = i % 10;
      let head = `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${headers.join('\r\n')}\r\n`;
      const name = `${method} ${path} framing ${framing}`;
      const raw = (text: string, rest: Buffer = Buffer.alloc(0)) => ({
        name,
        bytes: Buffer.concat([Buffer.from(text, 'latin1'), rest]),
      });
      switch (framing) {
        case 1: // a content-length longer than the body: the request times out, 408
          return raw(`${head}content-length: ${bytes.length + 10}\r\n\r\n`, bytes);
        case 2: // chunked
          return raw(
            `${head}transfer-encoding: chunked\r\n\r\n${bytes.length.toString(16)}\r\n`,
            Buffer.concat([bytes, Buffer.from('\r\n0\r\n\r\n')]),
          );
        case 3: // a line that is not a header
          return raw(`${head}this is not a header\r\ncontent-length: ${bytes.length}\r\n\r\n`, bytes);
        case 4: // a chunk size that is not hex, or a missing last chunk
          return i % 20 === 4
            ? raw(
                `${head}transfer-encoding: chunked\r\n\r\nzz\r\n`,
                Buffer.concat([bytes, Buffer.from('\r\n0\r\n\r\n')]),
              )
            : raw(`${head}transfer-encoding: chunked\r\n\r\n${bytes.length.toString(16)};ext=1\r\n`, bytes);
        case 5: // both framings, or two content-lengths that disagree
          return i % 20 === 5
            ? raw(`${head}content-length: ${bytes.length}\r\ntransfer-encoding: chunked\r\n\r\n`, bytes)
            : raw(`${head}content-length: ${bytes.length}\r\ncontent-length: ${bytes.length + 1}\r\n\r\n`, bytes);
        case 6: // a control character in a header value, or a header name with a space
          return i % 20 === 6
            ? raw(`${head}x-note: a\x01b\r\ncontent-length: ${bytes.length}\r\n\r\n`, bytes)
            : raw(`${head}bad name: 1\r\ncontent-length: ${bytes.length}\r\n\r\n`, bytes);
        case 7: // HTTP/1.0 without a host
          head = `${method} ${path} HTTP/1.0\r\n${headers.join('\r\n')}\r\n`;
          return raw(`${head}content-length: ${bytes.length}\r\n\r\n`, bytes);
        default:
          return raw(`${head}content-length: ${bytes.length}\r\nconnection: close\r\n\r\n`, bytes);
      }
    });
    const valid = `{"model":"gpt-test","messages":[{"role":"user","content":"x"}]}`;
    const special: Case[] = [
      // Headers over Node's 16 KiB limit: 431.
      ...Array.from({ length: 40 }, (_, i) => ({
        name: 'huge headers',
        bytes: Buffer.from(
          `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-pad: ${'p'.repeat(17_000 + i * 1000)}\r\n\r\n`,
        ),
      })),
      ...Array.from({ length: 20 }, (_, i) => ({
        name: 'many headers',
        bytes: Buffer.from(
          `GET /v1/models HTTP/1.1\r\nhost: x\r\n${Array.from({ length: 2000 + i * 10 }, (_, n) => `x-h${n}: v`).join('\r\n')}\r\n\r\n`,
        ),
      })),
      // Slowloris: headers that never finish, sent slowly and left open: 408 after the headers timeout.
      ...Array.from({ length: 20 }, () => ({
        name: 'slow headers',
        bytes: Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\nx-slow: `),
        pieces: 5,
        gapMs: 100,
      })),
      // A body that trickles in and never completes: 408 after the request timeout.
      ...Array.from({ length: 20 }, () => ({
        name: 'slow body',
        bytes: Buffer.from(
          `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\ncontent-type: application/json\r\ncontent-length: ${valid.length + 100}\r\n\r\n${valid}`,
        ),
        pieces: 4,
        gapMs: 100,
      })),
      // An oversize body announced up front, and one that is not (chunked): 413 either way.
      ...Array.from({ length: 10 }, (_, i) => ({
        name: 'oversize',
        bytes:
          i % 2 === 0
            ? Buffer.from(
                `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\ncontent-type: application/json\r\ncontent-length: ${1024 * 1024}\r\n\r\n{"model":`,
              )
            : Buffer.from(
                `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${(40_000).toString(16)}\r\n${'x'.repeat(40_000)}\r\n0\r\n\r\n`,
              ),
      })),
      // Not HTTP at all.
      ...Array.from({ length: 10 }, (_, i) => ({
        name: 'garbage',
        bytes: Buffer.from(Array.from({ length: 64 + i * 50 }, () => Math.floor(random() * 256))),
      })),
    ];
    const all = [...cases, ...special];
    const counts = { total: 0, fiveHundreds: 0, badErrorBodies: 0, noAnswer: 0 };
    const samples: string[] = [];
    // Bounded: 1,320 cases, 50 at a time, each with its own 5 s limit.
    const answers = await pooled(
      all.map((c) => () => send(port, c, 5000)),
      50,
    );
    for (const [index, answer] of answers.entries()) {
      const c = all[index];
      counts.total += 1;
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1]);
      if (!status) {
        counts.noAnswer += 1;
        if (samples.length < 5) samples.push(`no answer: ${c.name}`);
        continue;
      }
      if (status >= 500) {
        counts.fiveHundreds += 1;
        if (samples.length < 5) samples.push(`${status}: ${c.name}: ${answer.slice(0, 300)}`);
      }
      if (status >= 400 && !c.name.startsWith('HEAD')) {
        // A HEAD answer has no body by definition (RFC 9110); its status line still counts. The
        // first answer's body only: a kept-alive connection may carry a second answer after it.
        const start = answer.indexOf('\r\n\r\n') + 4;
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(answer.slice(0, start))?.[1] ?? answer.length);
        const body = answer.slice(start, start + length);
        let ok: boolean;
        try {
          const parsed = JSON.parse(body) as { error?: { type?: string; message?: string } };
          ok = typeof parsed.error?.type === 'string' && (parsed.error.message ?? '').length > 10;
        } catch {
          ok = false;
        }
        if (!ok) {
          counts.badErrorBodies += 1;
          if (samples.length < 5) samples.push(`${c.name}: ${answer.slice(0, 300)}`);
        }
      }
    }
    expect({ ...counts, samples }).toEqual({
      total: 1320,
      fiveHundreds: 0,
      badErrorBodies: 0,
      noAnswer: 0,
      samples: [],
    });
    const statuses = new Set(answers.map((a) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(a)?.[1])));
    for (const expected of [400, 401, 404, 405, 408, 413, 415, 431]) expect(statuses).toContain(expected);
    const health = await fetch(`${gw.url}/healthz`);
    expect(health.status).toBe(200);
    expect(gw.lines.join('\n')).not.toContain(key);
    expect(gw.lines.some((l) => l.includes('"internal_error"'))).toBe(false);
  }, 90_000);
});
