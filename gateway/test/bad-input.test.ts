import { connect } from 'node:net';
import { type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { type Harness, poolOf, startGateway } from './helpers/harness';

/** mulberry32: the same 1,200 cases on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sends raw bytes and reads the raw answer: malformed HTTP is part of the point. */
function raw(port: number, bytes: Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    socket.setTimeout(timeoutMs, done);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', done);
    socket.on('error', done);
    socket.on('connect', () => socket.end(bytes));
  });
}

const PATHS = [
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/messages',
  '/v1/models',
  '/v1/chat',
  '/',
  '/v1/chat/completions/../../etc',
  '/%00',
  '/v1/embeddings?x=%zz',
];
const METHODS = ['POST', 'GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];

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
    });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw.close();
    await provider.close();
  });

  it('answers 1,200 of them with a 4xx JSON error (or a valid 2xx), never a 5xx, and keeps running', async () => {
    const random = prng(1122);
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
    const key = gw.keys.dify;
    const bodies: Array<() => string | Buffer> = [
      () => '{"model": "gpt-test", "messages": [',
      () => '',
      () => 'null',
      () => '[]',
      () => '"just a string"',
      () => JSON.stringify({ model: 42, messages: 'hi' }),
      () => JSON.stringify({ model: 'gpt-test', messages: [] }),
      () => JSON.stringify({ model: 'gpt-test', messages: [{ content: 'no role' }] }),
      () => JSON.stringify({ model: 'gpt-unknown', messages: [{ role: 'user', content: 'x' }] }),
      () => JSON.stringify({ model: 'gpt-test', input: { nested: true } }),
      () => JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'x'.repeat(20_000) }] }),
      () => Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
      () => '{"model":"gpt-test","messages":[{"role":"user","content":"\\ud800"}]}',
      () =>
        Array.from({ length: Math.floor(random() * 200) }, () => String.fromCharCode(Math.floor(random() * 128))).join(
          '',
        ),
      () => JSON.stringify({ model: 'claude-x', max_tokens: -1, messages: [{ role: 'user', content: 'x' }] }),
      () => '{"model":"gpt-test","messages":[{"role":"user","content":"x"}]'.repeat(3),
    ];
    const headersFor: Array<() => string[]> = [
      () => [`authorization: Bearer ${key}`, 'content-type: application/json'],
      () => ['content-type: application/json'],
      () => [`authorization: Bearer ${key}x`, 'content-type: application/json'],
      () => ['authorization: Basic Zm9vOmJhcg==', 'content-type: application/json'],
      () => [`authorization: Bearer ${key}`, 'content-type: text/plain'],
      () => [`authorization: Bearer ${key}`],
      () => [`x-api-key: ${key}`, 'content-type: application/json; charset=utf-8'],
      () => [`authorization: Bearer ${'A'.repeat(5000)}`, 'content-type: application/json'],
      () => ['authorization: Bearer ', 'content-type: application/json'],
    ];
    const counts = { total: 0, fiveHundreds: 0, nonJsonErrors: 0, noAnswer: 0 };
    const samples: string[] = [];
    const cases = Array.from({ length: 1200 }, (_, i) => {
      const method = pick(METHODS);
      const path = pick(PATHS);
      const body = pick(bodies)();
      const headers = pick(headersFor)();
      const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
      const framing = i % 7;
      let head = `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${headers.join('\r\n')}\r\n`;
      // Framing oddities: a lying content-length, chunked encoding, garbage header lines.
      if (framing === 1) head += `content-length: ${bytes.length + 10}\r\n`;
      else if (framing === 2) {
        return Buffer.concat([
          Buffer.from(`${head}transfer-encoding: chunked\r\n\r\n${bytes.length.toString(16)}\r\n`),
          bytes,
          Buffer.from('\r\n0\r\n\r\n'),
        ]);
      } else if (framing === 3) head += 'this is not a header\r\n';
      else head += `content-length: ${bytes.length}\r\n`;
      return Buffer.concat([Buffer.from(`${head}connection: close\r\n\r\n`, 'latin1'), bytes]);
    }).map((bytes) => ({ bytes, head: bytes.toString('latin1').startsWith('HEAD ') }));
    // Bounded: 1,200 cases, 20 at a time, each with its own 5 s socket timeout.
    for (let i = 0; i < cases.length; i += 20) {
      const batch = cases.slice(i, i + 20);
      const answers = await Promise.all(batch.map((c) => raw(port, c.bytes, 1500)));
      for (const [index, answer] of answers.entries()) {
        const head = batch[index].head;
        counts.total += 1;
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
        if (!status) {
          counts.noAnswer += 1;
          continue;
        }
        if (status >= 500) counts.fiveHundreds += 1;
        if (status >= 400) {
          const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
          try {
            const parsed = JSON.parse(body) as { error?: { type?: string; message?: string } };
            if (!parsed.error?.type || !parsed.error.message) counts.nonJsonErrors += 1;
          } catch {
            // A HEAD answer has no body by definition (RFC 9110); its status line still counts.
            if (!head) {
              counts.nonJsonErrors += 1;
              if (samples.length < 3) samples.push(answer.slice(0, 300));
            }
          }
        }
      }
    }
    expect(counts.total).toBe(1200);
    expect(counts.fiveHundreds).toBe(0);
    expect({ nonJsonErrors: counts.nonJsonErrors, samples }).toEqual({ nonJsonErrors: 0, samples: [] });
    // A lying content-length leaves the server waiting for bytes that never come; the client's own
    // timeout ends those, and they are the only unanswered cases.
    expect(counts.noAnswer).toBeLessThanOrEqual(Math.ceil(1200 / 7) + 1);
    const health = await fetch(`${gw.url}/healthz`);
    expect(health.status).toBe(200);
    expect(gw.lines.join('\n')).not.toContain(key);
  }, 120_000);
});
