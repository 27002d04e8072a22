import { request as httpRequest } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { chatStream, type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { type Harness, type HarnessOptions, poolOf, startGateway } from './helpers/harness';
import { waitFor } from './helpers/processes';
import { exchange, parseResponses, rawPost } from './helpers/raw-http';

/**
 * The gateway under hostile clients, on raw sockets: what a client can do to a connection (pipeline,
 * send malformed bytes behind a stream, leave midway, trickle a body, send huge headers) must never
 * corrupt another answer, leave a request unaccounted, or hold a connection forever. Each test here
 * failed on the gateway this issue was filed against.
 */

const KEY = 'sk-hostile-key-0000000000000000';
const chatBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hello there' }], ...extra });

describe('the gateway under hostile clients', () => {
  let provider: FakeProvider;
  /** Streams at 40 ms a chunk: a stream is still flowing when a test acts on it. */
  let slow: FakeProvider;
  /** Streams at 5 ms a chunk: still flowing after two chunks, and quick enough for hundreds of streams. */
  let brisk: FakeProvider;
  let gw: Harness | undefined;
  beforeAll(async () => {
    [provider, slow, brisk] = await Promise.all([
      startFakeProvider(),
      startFakeProvider({ streamDelayMs: 40 }),
      startFakeProvider({ streamDelayMs: 5 }),
    ]);
    for (const p of [provider, slow, brisk]) p.behave(KEY, 'ok');
  });
  afterAll(async () => {
    await Promise.all([provider.close(), slow.close(), brisk.close()]);
  });
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });
  const start = async (options: Partial<HarnessOptions> = {}, upstream = provider) => {
    gw = await startGateway({ pool: poolOf(upstream.url, [{ id: 'k1', key: KEY }]), ...options });
    return { g: gw, port: Number(new URL(gw.url).port) };
  };

  describe('framing', () => {
    it('answers malformed bytes behind a stream only after the stream, never inside it', async () => {
      const { g, port } = await start({}, slow);
      const { bytes, closedByServer } = await exchange(port, (socket) =>
        socket.write(
          `${rawPost('/v1/chat/completions', g.keys.dify, chatBody({ stream: true }))}GARBAGE \x01\x02\r\n\r\n`,
        ),
      );
      const { responses, rest } = parseResponses(bytes);
      expect(responses.map((r) => r.status)).toEqual([200, 400]);
      expect(responses[0].body).toBe(chatStream('gpt-test', false).join(''));
      expect(JSON.parse(responses[1].body).error.type).toBe('bad_http');
      expect([rest, closedByServer]).toEqual(['', true]);
      await waitFor('the audit line', async () => g.audits('request').length === 1);
      expect(g.audits('request')[0]).toMatchObject({ status: 200 });
    });

    it('answers malformed bytes sent while a stream is flowing after that stream, and closes', async () => {
      const { g, port } = await start({}, slow);
      const { bytes } = await exchange(port, (socket, received) => {
        socket.write(rawPost('/v1/chat/completions', g.keys.dify, chatBody({ stream: true })));
        const poll = setInterval(() => {
          if (received().includes('data: ')) {
            clearInterval(poll);
            socket.write('NOT HTTP AT ALL\r\n\r\n');
          }
        }, 5);
      });
      const { responses, rest } = parseResponses(bytes);
      expect(responses.map((r) => r.status)).toEqual([200, 400]);
      expect(responses[0].body).toBe(chatStream('gpt-test', false).join(''));
      expect(rest).toBe('');
    });

    it('answers pipelined requests in order, each whole, with one audit line each', async () => {
      const { g, port } = await start({}, slow);
      const requests = [
        rawPost('/v1/chat/completions', g.keys.dify, chatBody({ stream: true })),
        rawPost('/v1/chat/completions', g.keys.dify, chatBody()),
        'GET /healthz HTTP/1.1\r\nhost: gateway\r\n\r\n',
        rawPost('/v1/chat/completions', g.keys.dify, chatBody({ stream: true }), 'connection: close\r\n'),
      ];
      const { bytes, closedByServer } = await exchange(port, (socket) => socket.write(requests.join('')));
      const { responses, rest } = parseResponses(bytes);
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(responses[0].body).toBe(chatStream('gpt-test', false).join(''));
      expect(JSON.parse(responses[1].body).choices[0].message.content).toBe('Hello, wörld');
      expect(JSON.parse(responses[2].body)).toEqual({ status: 'ok' });
      expect(responses[3].body).toBe(chatStream('gpt-test', false).join(''));
      expect([rest, closedByServer]).toEqual(['', true]);
      await waitFor('three audit lines', async () => g.audits('request').length === 3);
      await waitFor('nothing in flight', async () => g.gateway.activeRequests === 0);
    });

    it('counts HTTP/1.0 keep-alive and pipelined requests out again when they are done', async () => {
      const { g, port } = await start();
      const idle = await exchange(
        port,
        (socket) => {
          socket.write('GET /healthz HTTP/1.0\r\nconnection: keep-alive\r\n\r\n');
          socket.write(
            `${rawPost('/v1/chat/completions', g.keys.dify, chatBody())}${rawPost('/v1/chat/completions', g.keys.dify, chatBody())}`,
          );
        },
        1500,
      );
      expect(parseResponses(idle.bytes).responses.map((r) => r.status)).toEqual([200, 200, 200]);
      // The connection is still open (kept alive) when the exchange gives up; nothing is in flight.
      expect(idle.closedByServer).toBe(false);
      await waitFor('nothing in flight', async () => g.gateway.activeRequests === 0, 5000);
    });

    it('answers oversized headers with 431 and headers that never finish with 408', async () => {
      const { port } = await start({ headersTimeoutMs: 500 });
      const big = await exchange(port, (socket) =>
        socket.write(`GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`),
      );
      expect(parseResponses(big.bytes).responses.map((r) => [r.status, JSON.parse(r.body).error.type])).toEqual([
        [431, 'headers_too_large'],
      ]);
      const partial = await exchange(port, (socket) =>
        socket.write('POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n'),
      );
      expect(parseResponses(partial.bytes).responses.map((r) => [r.status, JSON.parse(r.body).error.type])).toEqual([
        [408, 'request_timeout'],
      ]);
      expect(partial.closedByServer).toBe(true);
    });

    it('answers a body trickled a byte at a time with 408 once its time is up, and audits it', async () => {
      const { g, port } = await start({ bodyTimeoutMs: 600 });
      const forwardedBefore = provider.received.length;
      const body = chatBody();
      const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${g.keys.dify}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;
      const { bytes, closedByServer } = await exchange(port, (socket) => {
        socket.write(head);
        let at = 0;
        const drip = setInterval(() => {
          if (socket.destroyed || at >= body.length) return clearInterval(drip);
          socket.write(body[at++]);
        }, 200);
      });
      const [answer] = parseResponses(bytes).responses;
      expect([answer.status, JSON.parse(answer.body).error.type, answer.headers.connection]).toEqual([
        408,
        'request_timeout',
        'close',
      ]);
      expect(closedByServer).toBe(true);
      await waitFor('the audit line', async () => g.audits('request').length === 1);
      expect(g.audits('request')[0]).toMatchObject({ status: 408, errorClass: 'request_timeout', clientId: 'dify' });
      expect(provider.received).toHaveLength(forwardedBefore);
    });
  });

  describe('accounting', () => {
    /** Starts a stream and leaves after two chunks: closing, or resetting the connection. */
    const leaveMidStream = (g: Harness, how: 'close' | 'reset') =>
      new Promise<void>((resolve, reject) => {
        // Cleared once the client has left: a pending timer would keep this request (its socket
        // and parser) alive for its 10 s, and the heap test would count the harness, not the gateway.
        const timer = setTimeout(() => reject(new Error('no stream')), 10_000);
        const req = httpRequest(
          `${g.url}/v1/chat/completions`,
          { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${g.keys.dify}` } },
          (res) => {
            let chunks = 0;
            res.on('data', () => {
              if (++chunks !== 2) return;
              if (how === 'reset') req.socket?.resetAndDestroy();
              else req.destroy();
              clearTimeout(timer);
              resolve();
            });
          },
        );
        req.on('error', () => undefined);
        req.end(chatBody({ stream: true }));
      });

    it('writes one audit line, with its tokens counted, for every client that leaves a stream midway', async () => {
      const { g } = await start({}, brisk);
      const leaving = 60;
      for (let i = 0; i < leaving; i++) await leaveMidStream(g, i % 2 === 0 ? 'close' : 'reset');
      await waitFor('every audit line', async () => g.audits('request').length === leaving, 10_000);
      const lines = g.audits('request');
      expect(lines.every((l) => l.errorClass === 'client_disconnected' && l.status === 200)).toBe(true);
      expect(lines.every((l) => l.estimatedTokens > 0)).toBe(true);
      await waitFor('nothing in flight', async () => g.gateway.activeRequests === 0);
      expect(g.pool.snapshot().openai[0]).toMatchObject({ health: 'healthy', inFlight: 0 });
    });

    it('counts the tokens of streams their clients left against the tokens-per-minute limit', async () => {
      // Each request reserves about 1,050 tokens (its prompt and the default completion bound) and
      // settles at what was relayed; leaving midway does not make a request free.
      const { g } = await start({ clients: [{ id: 'dify', tokensPerMinute: 1200 }] }, slow);
      await leaveMidStream(g, 'close');
      await waitFor('the audit line', async () => g.audits('request').length === 1);
      const spent = g.audits('request')[0].estimatedTokens as number;
      expect(spent).toBeGreaterThan(0);
      const next = await fetch(`${g.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${g.keys.dify}` },
        body: chatBody({ max_tokens: 1200 - spent }),
      });
      expect([next.status, ((await next.json()) as any).error.reason]).toEqual([429, 'tokens']);
    });

    it('holds no memory for clients that left: the heap after 300 of them is where it was', async () => {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      // Collect until the heap stops shrinking: one pass leaves what finalizers and timers free next.
      const settle = async () => {
        for (let i = 0; i < 3; i++) {
          gc();
          await new Promise((resolve) => setImmediate(resolve));
        }
      };
      const { g } = await start({}, brisk);
      // Warm up both ways of leaving, so that one-time allocations (compiled code, socket and TLS
      // session pools) are in `before`, not counted as held per client.
      for (let i = 0; i < 100; i++) await leaveMidStream(g, i % 2 === 0 ? 'close' : 'reset');
      await waitFor('nothing in flight', async () => g.gateway.activeRequests === 0, 10_000);
      g.lines.length = 0;
      await settle();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < 300; i++) await leaveMidStream(g, i % 2 === 0 ? 'close' : 'reset');
      await waitFor('nothing in flight', async () => g.gateway.activeRequests === 0, 10_000);
      g.lines.length = 0;
      await settle();
      const grown = process.memoryUsage().heapUsed - before;
      // The audit lines were dropped above; what stays is what the gateway holds per request.
      expect(grown).toBeLessThan(4 * 1024 * 1024);
    });

    it('reserves a request’s max_tokens at admission: a second one that does not fit waits its turn', async () => {
      const { g } = await start({ clients: [{ id: 'dify', tokensPerMinute: 5000 }] }, slow);
      const post = (maxTokens: number) =>
        fetch(`${g.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${g.keys.dify}` },
          body: chatBody({ stream: true, max_tokens: maxTokens }),
        });
      const first = post(4000);
      await waitFor('the first stream', async () => g.gateway.activeRequests === 1 && slow.received.length > 0);
      const second = await post(4000);
      expect([second.status, ((await second.json()) as any).error.reason]).toEqual([429, 'tokens']);
      const done = await first;
      expect(done.status).toBe(200);
      await done.text();
      await waitFor('both audit lines', async () => g.audits('request').length === 2);
      expect(g.audits('request').find((a) => a.status === 200)?.reservedTokens).toBeGreaterThan(4000);
    });

    it('caps the requests one client has in flight, per replica', async () => {
      const { g } = await start({ clients: [{ id: 'dify', maxInFlight: 2 }] }, slow);
      const post = () =>
        fetch(`${g.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${g.keys.dify}` },
          body: chatBody({ stream: true }),
        });
      const running = [post(), post()];
      await waitFor('two streams', async () => g.gateway.activeRequests === 2);
      const third = await post();
      expect([third.status, third.headers.get('retry-after'), ((await third.json()) as any).error.type]).toEqual([
        429,
        '1',
        'too_many_in_flight',
      ]);
      for (const reply of await Promise.all(running)) {
        expect(reply.status).toBe(200);
        await reply.text();
      }
      expect((await post()).status).toBe(200);
    });

    it('bounds every field of an audit line, however long what the client sent', async () => {
      const { g, port } = await start({ maxBodyBytes: 4 * 1024 * 1024 });
      await exchange(port, (socket) =>
        socket.write(
          rawPost(
            '/v1/chat/completions',
            g.keys.dify,
            JSON.stringify({ model: 'm'.repeat(3_000_000), messages: [{ role: 'user', content: 'x' }] }),
            'connection: close\r\n',
          ),
        ),
      );
      await exchange(port, (socket) =>
        socket.write(`GET /${'p'.repeat(15_000)} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`),
      );
      await waitFor('two audit lines', async () => g.audits('request').length === 2);
      expect(Math.max(...g.lines.map((l) => l.length))).toBeLessThan(4096);
      expect(g.audits('request')[0]).toMatchObject({ status: 404, errorClass: 'model_not_found' });
    });
  });
});
