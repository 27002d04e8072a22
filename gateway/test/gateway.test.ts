import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import type { Guardrails } from '../src/guardrails';
import { probeDisabledKeys } from '../src/probe';
import { anthropicStream, bigEvent, chatStream, type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { type Harness, type HarnessOptions, poolOf, startGateway } from './helpers/harness';
import { waitFor } from './helpers/processes';

/**
 * The gateway against a real fake provider on 127.0.0.1: authentication, failover, key states,
 * streaming, guardrails, audit. Nothing here mocks HTTP.
 */

const PROVIDER_KEYS = [
  'sk-test-key-one-AAAAAAAAAAAAAAAAAAAA',
  'sk-test-key-two-BBBBBBBBBBBBBBBBBBBB',
  'sk-test-key-three-CCCCCCCCCCCCCCCCCC',
];
const PROMPT = 'Say hello to the planted prompt text';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface CallOptions {
  method?: string;
  path: string;
  key?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Every reply any test received, scanned at the end for key material and prompt text. */
const replies: Reply[] = [];

/** A plain HTTP call, so tests see exactly the bytes the gateway sends. */
function call(url: string, options: CallOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload =
      options.body === undefined
        ? undefined
        : typeof options.body === 'string'
          ? options.body
          : JSON.stringify(options.body);
    const req = httpRequest(
      `${url}${options.path}`,
      {
        method: options.method ?? 'POST',
        headers: {
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(options.key !== undefined ? { authorization: `Bearer ${options.key}` } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const reply = { status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') };
          replies.push(reply);
          resolve(reply);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const chat = (extra: Record<string, unknown> = {}) => ({
  model: 'gpt-test',
  messages: [{ role: 'user', content: PROMPT }],
  ...extra,
});
const errorOf = (reply: Reply) => JSON.parse(reply.body).error as Record<string, unknown>;

describe('the gateway in front of a fake provider', () => {
  let provider: FakeProvider;
  let gw: Harness | undefined;
  const allLines: string[] = [];
  beforeAll(async () => {
    provider = await startFakeProvider({ bigStreamBytes: 24 * 1024 * 1024 });
  });
  afterAll(async () => {
    await provider.close();
  });
  afterEach(async () => {
    if (gw !== undefined) {
      allLines.push(...gw.lines);
      await gw.close();
    }
    gw = undefined;
    provider.received.length = 0;
  });
  const start = async (keys: string[], options: Partial<HarnessOptions> = {}) => {
    gw = await startGateway({
      pool: poolOf(
        provider.url,
        keys.map((key, i) => ({ id: `k${i + 1}`, key })),
      ),
      ...options,
    });
    return gw;
  };
  const post = (g: Harness, body: unknown = chat(), headers: Record<string, string> = {}) =>
    call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body, headers });
  const sentWith = (key: string) => provider.received.filter((r) => r.key === key);

  describe('forwarding', () => {
    it('answers a chat completion with the provider key, forwarding only allow-listed headers', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]]);
      const reply = await post(g, chat(), {
        cookie: 'session=planted-cookie',
        'x-api-key': g.keys.dify,
        'x-forwarded-for': '203.0.113.9',
        'openai-organization': 'org-planted',
      });
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body).choices[0].message.content).toBe('Hello, wörld');
      expect(reply.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const [forwarded] = provider.received;
      expect(forwarded.url).toBe('/v1/chat/completions');
      expect(forwarded.headers.authorization).toBe(`Bearer ${PROVIDER_KEYS[0]}`);
      expect(Object.keys(forwarded.headers).sort()).toEqual(
        [
          'accept',
          'accept-encoding',
          'authorization',
          'connection',
          'content-length',
          'content-type',
          'host',
          'user-agent',
        ].sort(),
      );
      expect(JSON.stringify(forwarded.headers)).not.toContain(g.keys.dify);
      // Not redacted, not streamed: the body goes out byte for byte as the client sent it.
      expect(forwarded.body).toBe(JSON.stringify(chat()));
      const [audit] = g.audits('request');
      expect(audit).toMatchObject({
        type: 'request',
        clientId: 'dify',
        route: '/v1/chat/completions',
        model: 'gpt-test',
        provider: 'openai',
        keyId: 'k1',
        status: 200,
        promptTokens: 9,
        completionTokens: 3,
        attempts: 1,
        retries: 0,
        guardrails: [],
      });
      expect(audit.errorClass).toBeUndefined();
      expect(audit.sourceIp).toMatch(/127\.0\.0\.1/);
      for (const field of ['time', 'requestId', 'latencyMs', 'ttfbMs']) expect(audit[field]).toBeDefined();
      expect(audit.requestId).toBe(reply.headers['x-request-id']);
    });

    it('streams SSE through byte for byte, asking OpenAI for usage and dropping the chunk the client did not ask for', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]]);
      const reply = await post(g, chat({ stream: true }));
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toBe('text/event-stream');
      expect(reply.body).toBe(chatStream('gpt-test', false).join(''));
      expect(JSON.parse(provider.received[0].body).stream_options).toEqual({ include_usage: true });
      expect(g.audits('request')[0]).toMatchObject({ stream: true, promptTokens: 9, completionTokens: 3 });
    });

    it('passes the usage chunk through when the client asked for it, and the body untouched', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]]);
      const body = chat({ stream: true, stream_options: { include_usage: true } });
      const reply = await post(g, body);
      expect(reply.body).toBe(chatStream('gpt-test', true).join(''));
      expect(provider.received[0].body).toBe(JSON.stringify(body));
    });

    it('sends custom providers one /v1 whether or not the base URL ends in it, never adding options', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      for (const baseUrl of [provider.url, `${provider.url}/v1`, `${provider.url}/v1/`]) {
        gw = await startGateway({ pool: poolOf(baseUrl, [{ id: 'c1', key: PROVIDER_KEYS[0] }], 'custom') });
        const body = chat({ stream: true });
        const reply = await post(gw, body);
        expect(reply.body).toBe(chatStream('gpt-test', false).join(''));
        expect(provider.received.at(-1)!.url).toBe('/v1/chat/completions');
        expect(provider.received.at(-1)!.body).toBe(JSON.stringify(body));
        // No usage in the stream: counted from the sizes, and marked as an estimate.
        expect(gw.audits('request')[0].estimatedTokens).toBeGreaterThan(0);
        allLines.push(...gw.lines);
        await gw.close();
        gw = undefined;
      }
    });

    it('calls Azure OpenAI’s deployment URL with api-version and the api-key header', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      gw = await startGateway({
        pool: poolOf(provider.url, [{ id: 'z1', key: PROVIDER_KEYS[0] }], 'azure-openai', ['gpt-test'], {
          apiVersion: '2024-10-21',
          deployments: { 'gpt-test': 'prod-gpt' },
        }),
      });
      expect((await post(gw)).status).toBe(200);
      const [forwarded] = provider.received;
      expect(forwarded.url).toBe('/openai/deployments/prod-gpt/chat/completions?api-version=2024-10-21');
      expect(forwarded.headers['api-key']).toBe(PROVIDER_KEYS[0]);
      expect(forwarded.headers.authorization).toBeUndefined();
    });

    it('passes Anthropic’s /v1/messages through, JSON and streaming, with its usage and version headers', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      gw = await startGateway({
        pool: poolOf(provider.url, [{ id: 'a1', key: PROVIDER_KEYS[0] }], 'anthropic', ['claude-test']),
      });
      const body = { model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: PROMPT }] };
      const json = await call(gw.url, {
        path: '/v1/messages',
        body,
        headers: {
          'x-api-key': gw.keys.dify,
          'anthropic-version': '2023-01-01',
          'anthropic-beta': 'prompt-caching-2024-07-31, context-1m-2025-08-07',
        },
      });
      expect(json.status).toBe(200);
      expect(provider.received[0].headers).toMatchObject({
        'x-api-key': PROVIDER_KEYS[0],
        'anthropic-version': '2023-01-01',
        'anthropic-beta': 'prompt-caching-2024-07-31,context-1m-2025-08-07',
      });
      const stream = await call(gw.url, {
        path: '/v1/messages',
        body: { ...body, stream: true },
        headers: { 'x-api-key': gw.keys.dify },
      });
      expect(stream.body).toBe(anthropicStream('claude-test').join(''));
      expect(provider.received[1].headers['anthropic-version']).toBe('2023-06-01');
      expect(gw.audits('request').map((a) => [a.promptTokens, a.completionTokens])).toEqual([
        [11, 4],
        [11, 4],
      ]);
      const wrong = await post(gw, body);
      expect(wrong.status).toBe(400);
      expect(errorOf(wrong).type).toBe('wrong_api');
    });

    it('lists only the models the client may use, in OpenAI’s list format', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]], { clients: [{ id: 'dify', allowedModels: ['gpt-test'] }] });
      const reply = await call(g.url, { method: 'GET', path: '/v1/models', key: g.keys.dify });
      expect(JSON.parse(reply.body)).toEqual({
        object: 'list',
        data: [{ id: 'gpt-test', object: 'model', created: 0, owned_by: 'openai' }],
      });
      const denied = await call(g.url, {
        path: '/v1/embeddings',
        key: g.keys.dify,
        body: { model: 'text-embedding-test', input: 'x' },
      });
      expect(denied.status).toBe(403);
      expect(errorOf(denied).type).toBe('model_not_allowed');
    });
  });

  describe('failover and key states', () => {
    it('fails over to another key on a 5xx, with one audit line per attempt and a jittered backoff', async () => {
      provider.behave(PROVIDER_KEYS[0], '500');
      provider.behave(PROVIDER_KEYS[1], 'ok');
      const sleeps: number[] = [];
      const g = await start(PROVIDER_KEYS.slice(0, 2), { sleeps, random: () => 0.25 });
      const reply = await post(g);
      expect(reply.status).toBe(200);
      expect(g.audits('attempt').map((a) => [a.attempt, a.keyId, a.status, a.errorClass])).toEqual([
        [1, 'k1', 500, 'server'],
        [2, 'k2', 200, undefined],
      ]);
      expect(g.audits('request')[0]).toMatchObject({ keyId: 'k2', attempts: 2, retries: 1, status: 200 });
      // 50 ms * 2^0 * (0.5 + 0.25)
      expect(sleeps).toEqual([37.5]);
    });

    it('fails over on a connection reset and on a timeout before the first byte', async () => {
      provider.behave(PROVIDER_KEYS[0], 'reset');
      provider.behave(PROVIDER_KEYS[1], 'timeout');
      provider.behave(PROVIDER_KEYS[2], 'ok');
      const g = await start(PROVIDER_KEYS, { upstreamTimeoutMs: 300, strategy: 'least-in-flight' });
      const reply = await post(g);
      expect(reply.status).toBe(200);
      expect(g.audits('attempt').map((a) => a.outcome)).toEqual(['network', 'timeout', 'success']);
    });

    // Only answers that say the key itself is bad disable it: a 401, a quota or billing code, key
    // authentication switched off. A 403 that is about the request (a region, a permission for one
    // resource) used to disable the key too, so one client's request could bench the whole pool.
    it.each([
      ['401 invalid_api_key', '401'],
      ['429 insufficient_quota', 'quota'],
      ['403 AuthenticationTypeDisabled (Azure)', 'key-auth-disabled'],
    ] as const)(
      'disables a key the provider says is bad (%s), re-reads the pool at once, and starts it over when its value changes',
      async (_name, behaviour) => {
        provider.behave(PROVIDER_KEYS[0], behaviour);
        provider.behave(PROVIDER_KEYS[1], 'ok');
        let rereads = 0;
        const g = await start(PROVIDER_KEYS.slice(0, 2), { onKeyRejected: () => (rereads += 1) });
        for (let i = 0; i < 4; i++) expect((await post(g)).status).toBe(200);
        expect(g.pool.snapshot().openai.map((k) => [k.id, k.health])).toEqual([
          ['k1', 'disabled'],
          ['k2', 'healthy'],
        ]);
        expect(sentWith(PROVIDER_KEYS[0])).toHaveLength(1);
        expect(rereads).toBe(1);
        expect(g.lines.some((l) => l.includes('"key_state_changed"') && l.includes('"disabled"'))).toBe(true);
        // The operator replaces k1's value: the key starts over as healthy.
        provider.behave(PROVIDER_KEYS[2], 'ok');
        g.pool.load(
          poolOf(provider.url, [
            { id: 'k1', key: PROVIDER_KEYS[2] },
            { id: 'k2', key: PROVIDER_KEYS[1] },
          ]),
        );
        expect(g.pool.snapshot().openai[0].health).toBe('healthy');
        for (let i = 0; i < 2; i++) expect((await post(g)).status).toBe(200);
        expect(sentWith(PROVIDER_KEYS[2])).toHaveLength(1);
      },
    );

    it.each([
      ['a region refusal (403 unsupported_country_region_territory)', '403', 'openai', 403],
      ['a permission refusal for one resource (Anthropic 403 permission_error)', 'permission', 'anthropic', 403],
    ] as const)('relays %s to the client and leaves every key healthy', async (_name, behaviour, kind, status) => {
      for (const key of PROVIDER_KEYS) provider.behave(key, behaviour);
      const anthropic = kind === 'anthropic';
      const g = await startGateway({
        pool: poolOf(
          provider.url,
          PROVIDER_KEYS.map((key, i) => ({ id: `k${i + 1}`, key })),
          kind,
          [anthropic ? 'claude-test' : 'gpt-test'],
        ),
      });
      gw = g;
      const body = anthropic
        ? { model: 'claude-test', max_tokens: 9, messages: [{ role: 'user', content: 'hi' }] }
        : chat();
      for (let i = 0; i < 3; i++) {
        const reply = await call(g.url, {
          path: anthropic ? '/v1/messages' : '/v1/chat/completions',
          key: g.keys.dify,
          body,
        });
        expect(reply.status).toBe(status);
        expect(JSON.parse(reply.body).error.type).toBe(anthropic ? 'permission_error' : 'request_forbidden');
      }
      expect(g.pool.snapshot()[kind].every((k) => k.health === 'healthy')).toBe(true);
      expect(g.audits('attempt').map((a) => a.outcome)).toEqual(['client', 'client', 'client']);
      expect(g.audits('request').map((a) => a.errorClass)).toEqual(Array(3).fill('upstream_rejected_request'));
    });

    it('disables an Anthropic key whose organization has no credit left (400 with that message), not one with a bad parameter', async () => {
      provider.behave(PROVIDER_KEYS[0], 'no-credit');
      provider.behave(PROVIDER_KEYS[1], 'ok');
      const g = await startGateway({
        pool: poolOf(
          provider.url,
          PROVIDER_KEYS.slice(0, 2).map((key, i) => ({ id: `k${i + 1}`, key })),
          'anthropic',
          ['claude-test'],
        ),
        strategy: 'least-in-flight',
      });
      gw = g;
      const body = { model: 'claude-test', max_tokens: 9, messages: [{ role: 'user', content: 'hi' }] };
      expect((await call(g.url, { path: '/v1/messages', key: g.keys.dify, body })).status).toBe(200);
      expect(g.pool.snapshot().anthropic.map((k) => k.health)).toEqual(['disabled', 'healthy']);
      provider.behave(PROVIDER_KEYS[1], '400');
      expect((await call(g.url, { path: '/v1/messages', key: g.keys.dify, body })).status).toBe(400);
      expect(g.pool.snapshot().anthropic.map((k) => k.health)).toEqual(['disabled', 'healthy']);
    });

    it('re-enables a disabled key when a probe with it passes, and keeps it disabled while it fails', async () => {
      provider.behave(PROVIDER_KEYS[0], '401');
      provider.behave(PROVIDER_KEYS[1], 'ok');
      const g = await start(PROVIDER_KEYS.slice(0, 2));
      await post(g);
      expect(g.pool.snapshot().openai[0].health).toBe('disabled');
      await probeDisabledKeys(g.pool, { dispatcher: g.dispatcher, timeoutMs: 2000 });
      expect(g.pool.snapshot().openai[0].health).toBe('disabled');
      provider.behave(PROVIDER_KEYS[0], 'ok');
      await probeDisabledKeys(g.pool, { dispatcher: g.dispatcher, timeoutMs: 2000 });
      expect(g.pool.snapshot().openai[0].health).toBe('healthy');
      const probes = sentWith(PROVIDER_KEYS[0]).filter((r) => r.url === '/v1/models');
      expect(probes).toHaveLength(2);
    });

    it('cools a rate-limited key down until Retry-After, then uses it again (injected clock)', async () => {
      let clock = 1_000_000;
      provider.behave(PROVIDER_KEYS[0], { status: 429, retryAfter: '30' });
      provider.behave(PROVIDER_KEYS[1], 'ok');
      const g = await start(PROVIDER_KEYS.slice(0, 2), { now: () => clock });
      expect((await post(g)).status).toBe(200);
      expect(g.pool.snapshot().openai[0].health).toBe('cooling');
      expect(g.audits('attempt')[0]).toMatchObject({
        errorClass: 'rate_limited',
        cooldownUntil: new Date(1_000_000 + 30_000).toISOString(),
      });
      provider.behave(PROVIDER_KEYS[0], 'ok');
      clock += 29_000;
      for (let i = 0; i < 3; i++) await post(g);
      expect(sentWith(PROVIDER_KEYS[0])).toHaveLength(1);
      clock += 1_000;
      for (let i = 0; i < 2; i++) await post(g);
      expect(g.pool.snapshot().openai[0].health).toBe('healthy');
      expect(sentWith(PROVIDER_KEYS[0]).length).toBeGreaterThan(1);
    });

    it('answers 429 with Retry-After when every key is cooling, naming the provider', async () => {
      const clock = 5_000_000;
      provider.behave(PROVIDER_KEYS[0], { status: 429, resetHeader: ['x-ratelimit-reset-requests', '6m0s'] });
      const g = await start([PROVIDER_KEYS[0]], { now: () => clock });
      const first = await post(g);
      expect(first.status).toBe(429);
      expect(errorOf(first)).toMatchObject({ type: 'upstream_rate_limited', provider: 'openai' });
      expect(first.headers['retry-after']).toBe('360');
      const second = await post(g);
      expect(second.status).toBe(429);
      expect(second.headers['retry-after']).toBe('360');
      expect(provider.received).toHaveLength(1);
    });

    it('labels every exhausted case as the provider’s condition: 503 refused, 502 failing, 504 silent', async () => {
      provider.behave(PROVIDER_KEYS[0], '401');
      let g = await start([PROVIDER_KEYS[0]]);
      let reply = await post(g);
      expect([reply.status, errorOf(reply).type, errorOf(reply).provider]).toEqual([
        503,
        'upstream_unavailable',
        'openai',
      ]);
      reply = await post(g);
      expect([reply.status, errorOf(reply).type]).toEqual([503, 'upstream_unavailable']);
      allLines.push(...g.lines);
      await g.close();

      provider.behave(PROVIDER_KEYS[0], '500');
      provider.behave(PROVIDER_KEYS[1], '500');
      g = await start(PROVIDER_KEYS.slice(0, 2));
      reply = await post(g);
      expect([reply.status, errorOf(reply).type]).toEqual([502, 'upstream_error']);
      // Every attempt is used: after both keys failed with a 5xx, the third tries a key again.
      const keyIds = g.audits('attempt').map((a) => a.keyId);
      expect([keyIds.length, new Set(keyIds.slice(0, 2)).size]).toEqual([3, 2]);
      allLines.push(...g.lines);
      await g.close();

      provider.behave(PROVIDER_KEYS[0], 'timeout');
      g = await start([PROVIDER_KEYS[0]], { upstreamTimeoutMs: 200 });
      reply = await post(g);
      expect([reply.status, errorOf(reply).type]).toEqual([504, 'upstream_timeout']);
      expect(g.audits('request')[0].errorClass).toBe('upstream_timeout');
    });

    it('answers 503, labelled as upstream, when no key is configured', async () => {
      const g = await start([]);
      const reply = await post(g);
      expect(reply.status).toBe(503);
      expect(errorOf(reply).type).toBe('upstream_unavailable');
    });

    it('passes a client-caused 400 through unchanged without holding it against the key', async () => {
      provider.behave(PROVIDER_KEYS[0], '400');
      const g = await start([PROVIDER_KEYS[0]]);
      const reply = await post(g);
      expect(reply.status).toBe(400);
      expect(JSON.parse(reply.body)).toEqual({
        error: { type: 'invalid_request_error', message: 'bad parameter' },
      });
      expect(g.pool.snapshot().openai[0]).toMatchObject({ health: 'healthy', failures: 0 });
      expect(provider.received).toHaveLength(1);
      expect(g.audits('request')[0].errorClass).toBe('upstream_rejected_request');
    });

    it('resets a key’s failure count on success', async () => {
      provider.behave(PROVIDER_KEYS[0], '500');
      const g = await start([PROVIDER_KEYS[0]], { maxAttempts: 1 });
      expect((await post(g)).status).toBe(502);
      expect(g.pool.snapshot().openai[0].failures).toBe(1);
      provider.behave(PROVIDER_KEYS[0], 'ok');
      expect((await post(g)).status).toBe(200);
      expect(g.pool.snapshot().openai[0].failures).toBe(0);
    });
  });

  describe('streams', () => {
    it('ends a stream that breaks midway with an SSE error event, and does not fail over after the first byte', async () => {
      provider.behave(PROVIDER_KEYS[0], 'abort-mid-stream');
      provider.behave(PROVIDER_KEYS[1], 'ok');
      const g = await start(PROVIDER_KEYS.slice(0, 2), { strategy: 'least-in-flight' });
      const reply = await post(g, chat({ stream: true }));
      const events = chatStream('gpt-test', false);
      expect(reply.body.startsWith(events[0] + events[1])).toBe(true);
      const tail = reply.body.slice(reply.body.indexOf('event: error'));
      expect(tail).toMatch(/^event: error\ndata: \{"error":\{"type":"upstream_interrupted".*\}\}\n\n$/);
      expect(provider.received).toHaveLength(1);
      expect(g.audits('request')[0].errorClass).toBe('upstream_interrupted');
      expect(g.audits('attempt')[0].errorClass).toBe('upstream_interrupted');
    });

    it('ends a stream whose provider stalls midway with an SSE error event, after the idle bound', async () => {
      provider.behave(PROVIDER_KEYS[0], 'stall-mid-stream');
      const g = await start([PROVIDER_KEYS[0]], { upstreamTimeoutMs: 300 });
      const reply = await post(g, chat({ stream: true }));
      expect(reply.body).toMatch(/event: error\ndata: \{"error":\{"type":"upstream_interrupted"/);
      expect(g.audits('request')[0].errorClass).toBe('upstream_interrupted');
    });

    it('honours backpressure: a client that stops reading stops the provider, and then gets every byte', async () => {
      provider.behave(PROVIDER_KEYS[0], 'big-stream');
      const g = await start([PROVIDER_KEYS[0]]);
      const total = 24 * 1024 * 1024;
      const received = await new Promise<Buffer>((resolve, reject) => {
        const req = httpRequest(
          `${g.url}/v1/chat/completions`,
          { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${g.keys.dify}` } },
          (res) => {
            res.pause();
            const chunks: Buffer[] = [];
            waitFor('the provider to wait for drain', async () => provider.bigStream.waitingForDrain)
              .then(() => new Promise((r) => setTimeout(r, 300)))
              .then(() => {
                // Still blocked: nothing between the provider and this paused reader held the rest.
                expect(provider.bigStream.done).toBe(false);
                expect(provider.bigStream.written).toBeLessThan(total);
                res.on('data', (c: Buffer) => chunks.push(c));
                res.on('end', () => resolve(Buffer.concat(chunks)));
                res.resume();
              })
              .catch(reject);
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify(chat({ stream: true })));
      });
      expect(received.length).toBe(total);
      const event = bigEvent();
      for (let at = 0; at < total; at += event.length) {
        if (!received.subarray(at, at + event.length).equals(event)) throw new Error(`bytes differ at ${at}`);
      }
    });

    it('cancels the upstream stream when the client goes away, without holding it against the key', async () => {
      provider.behave(PROVIDER_KEYS[0], 'big-stream');
      const g = await start([PROVIDER_KEYS[0]]);
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest(
          `${g.url}/v1/chat/completions`,
          { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${g.keys.dify}` } },
          (res) =>
            res.once('data', () => {
              req.destroy();
              resolve();
            }),
        );
        req.on('error', () => undefined);
        req.end(JSON.stringify(chat({ stream: true })));
        setTimeout(() => reject(new Error('no data')), 10_000).unref();
      });
      await waitFor('the request line', async () => g.audits('request').length === 1);
      expect(g.audits('request')[0]).toMatchObject({ errorClass: 'client_disconnected', status: 200 });
      expect(g.audits('attempt')[0]).toMatchObject({ outcome: 'client', errorClass: 'client_disconnected' });
      expect(g.pool.snapshot().openai[0]).toMatchObject({ health: 'healthy', failures: 0, inFlight: 0 });
      expect(provider.bigStream.done).toBe(false);
    });
  });

  describe('guardrails', () => {
    const card = '4111 1111 1111 1111';
    it('blocks with a 400 naming the detector and never the matched text', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]]);
      const reply = await post(g, chat({ messages: [{ role: 'user', content: `my card is ${card}` }] }));
      expect(reply.status).toBe(400);
      expect(errorOf(reply)).toMatchObject({ type: 'guardrail_blocked', detector: 'credit_card' });
      expect(reply.body).not.toContain('4111');
      expect(g.lines.join('\n')).not.toContain('4111');
      expect(provider.received).toHaveLength(0);
      expect(g.audits('request')[0]).toMatchObject({
        errorClass: 'guardrail_blocked',
        guardrails: [{ detector: 'credit_card', action: 'block', count: 1 }],
      });
    });

    it('redacts before forwarding when the policy says redact, and only records when it says log', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]], {
        clients: [{ id: 'dify', guardrails: { credit_card: 'redact', email: 'log' } }],
      });
      const text = `card ${card}, mail jane@example.com`;
      const reply = await post(g, chat({ messages: [{ role: 'user', content: text }] }));
      expect(reply.status).toBe(200);
      const forwarded = JSON.parse(provider.received[0].body).messages[0].content;
      expect(forwarded).toBe('card [REDACTED:credit_card], mail jane@example.com');
      expect(g.audits('request')[0].guardrails).toEqual([
        { detector: 'credit_card', action: 'redact', count: 1 },
        { detector: 'email', action: 'log', count: 1 },
      ]);
      expect(g.lines.join('\n')).not.toContain('jane@example.com');
    });
  });

  describe('bad input gets the right 4xx, naming the problem', () => {
    type Case = CallOptions | ((keys: Record<string, string>) => CallOptions);
    const cases: Array<[string, Case, number, string]> = [
      ['no client key', { path: '/v1/chat/completions', body: chat() }, 401, 'missing_client_key'],
      [
        'a wrong client key',
        { path: '/v1/chat/completions', key: 'dgw_dify_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', body: chat() },
        401,
        'invalid_client_key',
      ],
      [
        'a key in another format',
        { path: '/v1/chat/completions', key: 'sk-not-a-client-key', body: chat() },
        401,
        'invalid_client_key',
      ],
      [
        'a disabled client',
        (k) => ({ path: '/v1/chat/completions', key: k.off, body: chat() }),
        401,
        'invalid_client_key',
      ],
      [
        'malformed JSON',
        (k) => ({ path: '/v1/chat/completions', key: k.dify, body: '{"model": "gpt-test",' }),
        400,
        'invalid_json',
      ],
      [
        'a missing field',
        (k) => ({ path: '/v1/chat/completions', key: k.dify, body: { model: 'gpt-test' } }),
        400,
        'invalid_request',
      ],
      [
        'a wrong type',
        (k) => ({ path: '/v1/chat/completions', key: k.dify, body: { model: 5, messages: [] } }),
        400,
        'invalid_request',
      ],
      [
        'a wrong content type',
        (k) => ({
          path: '/v1/chat/completions',
          key: k.dify,
          body: JSON.stringify(chat()),
          headers: { 'content-type': 'text/plain' },
        }),
        415,
        'unsupported_media_type',
      ],
      [
        'an oversize body',
        (k) => ({
          path: '/v1/chat/completions',
          key: k.dify,
          body: chat({ messages: [{ role: 'user', content: 'x'.repeat(70_000) }] }),
        }),
        413,
        'request_too_large',
      ],
      [
        'an unknown model',
        (k) => ({ path: '/v1/chat/completions', key: k.dify, body: chat({ model: 'gpt-nope' }) }),
        404,
        'model_not_found',
      ],
      [
        'a model the client may not use',
        (k) => ({ path: '/v1/chat/completions', key: k.narrow, body: chat() }),
        403,
        'model_not_allowed',
      ],
      ['an unknown route', (k) => ({ path: '/v2/anything', key: k.dify, body: chat() }), 404, 'not_found'],
      [
        'a wrong method',
        (k) => ({ method: 'GET', path: '/v1/chat/completions', key: k.dify }),
        405,
        'method_not_allowed',
      ],
      ['a wrong method on a health check', { method: 'POST', path: '/healthz', body: '{}' }, 405, 'method_not_allowed'],
      [
        'a network that is not allowed',
        (k) => ({ path: '/v1/chat/completions', key: k.other, body: chat() }),
        403,
        'source_not_allowed',
      ],
    ];
    it.each(cases)('%s', async (_name, request, status, type) => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]], {
        maxBodyBytes: 64 * 1024,
        clients: [
          { id: 'dify' },
          { id: 'other', allowedCidrs: ['10.0.0.0/8'] },
          { id: 'off', disabled: true },
          { id: 'narrow', allowedModels: ['text-embedding-test'] },
        ],
      });
      const options = typeof request === 'function' ? request(g.keys) : request;
      const reply = await call(g.url, options);
      expect(reply.status).toBe(status);
      const error = errorOf(reply);
      expect(error.type).toBe(type);
      expect((error.message as string).length).toBeGreaterThan(10);
      expect(provider.received).toHaveLength(0);
      if (status === 413) expect(reply.headers.connection).toBe('close');
      if (status === 401) expect(reply.headers['www-authenticate']).toBe('Bearer');
      // Health checks are not audited; every other request is, with its error class.
      if (options.path !== '/healthz') expect(g.audits('request')[0]).toMatchObject({ status, errorClass: type });
    });

    it('limits requests per minute per client, with Retry-After', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]], { clients: [{ id: 'dify', requestsPerMinute: 2 }] });
      const statuses = [];
      for (let i = 0; i < 2; i++) statuses.push((await post(g)).status);
      const limited = await post(g);
      expect([...statuses, limited.status]).toEqual([200, 200, 429]);
      expect(errorOf(limited)).toMatchObject({ type: 'rate_limited', reason: 'requests' });
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    });
  });

  describe('its own condition', () => {
    it('answers 503 naming Secrets Manager until its documents are loaded, and /readyz says so', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      let ready = false;
      const g = await start([PROVIDER_KEYS[0]], { ready: () => ready });
      const early = await post(g);
      expect([early.status, errorOf(early).type, early.headers['retry-after']]).toEqual([
        503,
        'secrets_unavailable',
        '5',
      ]);
      expect((await call(g.url, { method: 'GET', path: '/readyz' })).status).toBe(503);
      expect((await call(g.url, { method: 'GET', path: '/healthz' })).status).toBe(200);
      ready = true;
      expect((await call(g.url, { method: 'GET', path: '/readyz' })).status).toBe(200);
      expect((await post(g)).status).toBe(200);
    });

    it('while draining, lets the stream in flight finish, answers /readyz 503 and takes no new connection', async () => {
      provider.behave(PROVIDER_KEYS[0], 'stall-mid-stream');
      const g = await start([PROVIDER_KEYS[0]], { upstreamTimeoutMs: 500 });
      const port = Number(new URL(g.url).port);
      const body = JSON.stringify(chat({ stream: true }));
      const answer = await new Promise<string>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          if (text === '') {
            // The stream has started: drain now, then ask for readiness on the same, busy connection.
            g.gateway.startDraining();
            socket.write('GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n');
          }
          text += chunk.toString('utf8');
        });
        socket.on('close', () => resolve(text));
        socket.write(
          `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${g.keys.dify}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      });
      const [stream, readyz] = answer.split(/(?=HTTP\/1\.1 503)/);
      expect(stream).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(stream).toContain('event: error');
      expect(readyz).toMatch(/connection: close/i);
      expect(readyz).toContain('{"status":"draining"}');
      await expect(fetch(`${g.url}/healthz`)).rejects.toThrow();
    });

    it('survives a defect in a handler: a 500 that says so, a log line without content, and serving on', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const broken = {
        detectorNames: [],
        screen: () => {
          throw new TypeError(`cannot read ${PROMPT}`);
        },
      } as unknown as Guardrails;
      const g = await start([PROVIDER_KEYS[0]], { guardrails: broken });
      const reply = await post(g);
      expect([reply.status, errorOf(reply).type]).toEqual([500, 'internal_error']);
      const logged = g.lines.map((l) => JSON.parse(l)).find((l) => l.event === 'internal_error');
      expect(logged).toMatchObject({ level: 'error', error: 'TypeError', requestId: reply.headers['x-request-id'] });
      expect(g.lines.join('\n')).not.toContain(PROMPT);
      expect((await call(g.url, { method: 'GET', path: '/healthz' })).status).toBe(200);
      expect((await call(g.url, { method: 'GET', path: '/v1/models', key: g.keys.dify })).status).toBe(200);
    });
  });

  it('writes exactly one request line per request and one attempt line per attempt under concurrency', async () => {
    provider.behave(PROVIDER_KEYS[0], 'ok');
    provider.behave(PROVIDER_KEYS[1], '500');
    provider.behave(PROVIDER_KEYS[2], 'ok');
    const g = await start(PROVIDER_KEYS);
    const total = 120;
    const results = await Promise.all(Array.from({ length: total }, (_, i) => post(g, chat({ stream: i % 2 === 0 }))));
    expect(results.every((r) => r.status === 200)).toBe(true);
    const requests = g.audits('request');
    const attempts = g.audits('attempt');
    expect(requests).toHaveLength(total);
    expect(new Set(requests.map((r) => r.requestId)).size).toBe(total);
    expect(attempts).toHaveLength(provider.received.length);
    expect(requests.reduce((sum, r) => sum + r.attempts, 0)).toBe(attempts.length);
    for (const request of requests) {
      const mine = attempts.filter((a) => a.requestId === request.requestId);
      expect(mine.map((a) => a.attempt)).toEqual(Array.from({ length: request.attempts }, (_, i) => i + 1));
      expect(mine.at(-1)!.keyId).toBe(request.keyId);
    }
  });

  it('never lets key material or prompt text into a log line, a metric or an answer (all tests above)', () => {
    const output = [...allLines, ...replies.map((r) => JSON.stringify(r))].join('\n');
    expect(output.length).toBeGreaterThan(10_000);
    const planted = [...PROVIDER_KEYS, PROMPT, 'jane@example.com', '4111 1111', 'planted-cookie', 'org-planted'];
    for (const secret of planted) expect(output).not.toContain(secret);
    // Client keys are deterministic in the harness: none appears anywhere either.
    expect(output).not.toMatch(/dgw_[a-z][a-z0-9-]*_[A-Za-z0-9_-]{43}/);
    // The pepper is the harness's constant.
    expect(output).not.toContain('test-pepper-0123456789');
    // Every metric line is EMF in our namespace.
    const metrics = allLines.filter((l) => l.includes('"_aws"')).map((l) => JSON.parse(l));
    expect(metrics.length).toBeGreaterThan(0);
    for (const m of metrics) expect(m._aws.CloudWatchMetrics[0].Namespace).toBe('DifyLlmGateway');
  });
});
