import { request as httpRequest } from 'node:http';
import { chatStream, anthropicStream, type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { type Harness, poolOf, startGateway } from './helpers/harness';

/**
 * The gateway against a real fake provider on 127.0.0.1: authentication, failover, key states,
 * streaming, guardrails, audit. Nothing here mocks HTTP.
 */

const PROVIDER_KEYS = [
  'sk-test-key-one-AAAAAAAAAAAAAAAAAAAA',
  'sk-test-key-two-BBBBBBBBBBBBBBBBBBBB',
  'sk-test-key-three-CCCCCCCCCCCCCCCCCC',
];

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A plain HTTP call, so tests see exactly the bytes the gateway sends. */
function call(
  url: string,
  options: { method?: string; path: string; key?: string; body?: unknown; headers?: Record<string, string> },
): Promise<Reply> {
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
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const chat = (extra: Record<string, unknown> = {}) => ({
  model: 'gpt-test',
  messages: [{ role: 'user', content: 'Say hello' }],
  ...extra,
});

describe('the gateway in front of a fake provider', () => {
  let provider: FakeProvider;
  let gw: Harness | undefined;
  beforeAll(async () => {
    provider = await startFakeProvider();
  });
  afterAll(async () => {
    await provider.close();
  });
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    provider.received.length = 0;
  });
  const start = async (keys: string[], options: Partial<Parameters<typeof startGateway>[0]> = {}) => {
    gw = await startGateway({
      pool: poolOf(
        provider.url,
        keys.map((key, i) => ({ id: `k${i + 1}`, key })),
      ),
      ...options,
    });
    return gw;
  };
  const allOutput = () => [gw!.lines.join('\n'), JSON.stringify(provider.received.map((r) => r.url))].join('\n');

  it('answers a chat completion and forwards the provider key, never the client key', async () => {
    provider.behave(PROVIDER_KEYS[0], 'ok');
    const g = await start([PROVIDER_KEYS[0]]);
    const reply = await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body).choices[0].message.content).toBe('Hello, wörld');
    expect(reply.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const [forwarded] = provider.received;
    expect(forwarded.headers.authorization).toBe(`Bearer ${PROVIDER_KEYS[0]}`);
    expect(JSON.stringify(forwarded.headers)).not.toContain(g.keys.dify);
    const [audit] = g.audits('request');
    expect(audit).toMatchObject({
      clientId: 'dify',
      model: 'gpt-test',
      provider: 'openai',
      keyId: 'k1',
      status: 200,
      promptTokens: 9,
      completionTokens: 3,
      retries: 0,
    });
    expect(audit.sourceIp).toMatch(/127\.0\.0\.1/);
  });

  it('streams SSE through byte for byte', async () => {
    provider.behave(PROVIDER_KEYS[0], 'ok');
    const g = await start([PROVIDER_KEYS[0]]);
    const reply = await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat({ stream: true }) });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/event-stream');
    expect(reply.body).toBe(chatStream('gpt-test').join(''));
    expect(g.audits('request')[0]).toMatchObject({ promptTokens: 9, completionTokens: 3 });
  });

  it('fails over to another key on a 5xx, and records one line per attempt', async () => {
    provider.behave(PROVIDER_KEYS[0], '500');
    provider.behave(PROVIDER_KEYS[1], 'ok');
    const g = await start(PROVIDER_KEYS.slice(0, 2));
    const reply = await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() });
    expect(reply.status).toBe(200);
    expect(g.audits('attempt').map((a) => [a.keyId, a.outcome])).toEqual([
      ['k1', 'server'],
      ['k2', 'success'],
    ]);
    expect(g.audits('request')[0]).toMatchObject({ keyId: 'k2', retries: 1 });
  });

  it('fails over on a connection reset and on a timeout before the first byte', async () => {
    provider.behave(PROVIDER_KEYS[0], 'reset');
    provider.behave(PROVIDER_KEYS[1], 'timeout');
    provider.behave(PROVIDER_KEYS[2], 'ok');
    const g = await start(PROVIDER_KEYS, { upstreamTimeoutMs: 300 });
    const reply = await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() });
    expect(reply.status).toBe(200);
    expect(g.audits('attempt').map((a) => a.outcome)).toEqual(['network', 'timeout', 'success']);
  });

  it('disables a revoked key (401) until its value changes, and keeps serving on the others', async () => {
    provider.behave(PROVIDER_KEYS[0], '401');
    provider.behave(PROVIDER_KEYS[1], 'ok');
    const g = await start(PROVIDER_KEYS.slice(0, 2));
    for (let i = 0; i < 4; i++) {
      expect((await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() })).status).toBe(200);
    }
    expect(g.pool.snapshot().openai.map((k) => [k.id, k.health])).toEqual([
      ['k1', 'disabled'],
      ['k2', 'healthy'],
    ]);
    expect(provider.received.filter((r) => r.key === PROVIDER_KEYS[0])).toHaveLength(1);
    // The operator replaces k1's value: the key starts over as healthy.
    provider.behave(PROVIDER_KEYS[2], 'ok');
    g.pool.load(
      poolOf(provider.url, [
        { id: 'k1', key: PROVIDER_KEYS[2] },
        { id: 'k2', key: PROVIDER_KEYS[1] },
      ]),
    );
    expect(g.pool.snapshot().openai[0].health).toBe('healthy');
    expect(g.lines.some((l) => l.includes('"key_state_changed"') && l.includes('"disabled"'))).toBe(true);
  });

  it('cools a rate-limited key down until Retry-After, then uses it again', async () => {
    let clock = 1_000_000;
    provider.behave(PROVIDER_KEYS[0], { status: 429, retryAfter: '30' });
    provider.behave(PROVIDER_KEYS[1], 'ok');
    const g = await start(PROVIDER_KEYS.slice(0, 2), { now: () => clock });
    expect((await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() })).status).toBe(200);
    expect(g.pool.snapshot().openai[0].health).toBe('cooling');
    provider.behave(PROVIDER_KEYS[0], 'ok');
    clock += 29_000;
    await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() });
    expect(provider.received.filter((r) => r.key === PROVIDER_KEYS[0])).toHaveLength(1);
    clock += 2_000;
    for (let i = 0; i < 2; i++) await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() });
    expect(g.pool.snapshot().openai[0].health).toBe('healthy');
    expect(provider.received.filter((r) => r.key === PROVIDER_KEYS[0]).length).toBeGreaterThan(1);
  });

  it('answers 429 with Retry-After when every key is cooling, naming the provider', async () => {
    const clock = 5_000_000;
    provider.behave(PROVIDER_KEYS[0], { status: 429, resetHeader: ['x-ratelimit-reset-requests', '6m0s'] });
    const g = await start([PROVIDER_KEYS[0]], { now: () => clock });
    const first = await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() });
    expect(first.status).toBe(429);
    expect(JSON.parse(first.body).error).toMatchObject({ type: 'upstream_rate_limited', provider: 'openai' });
    expect(first.headers['retry-after']).toBe('360');
    const second = await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() });
    expect(second.status).toBe(429);
    expect(provider.received).toHaveLength(1);
  });

  it('passes a client-caused 400 through without holding it against the key', async () => {
    provider.behave(PROVIDER_KEYS[0], '400');
    const g = await start([PROVIDER_KEYS[0]]);
    const reply = await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() });
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.body).error.message).toBe('bad parameter');
    expect(g.pool.snapshot().openai[0]).toMatchObject({ health: 'healthy', failures: 0 });
    expect(provider.received).toHaveLength(1);
  });

  it('resets a key’s failure count on success', async () => {
    provider.behave(PROVIDER_KEYS[0], '500');
    const g = await start([PROVIDER_KEYS[0]], { maxAttempts: 1 });
    expect((await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() })).status).toBe(502);
    expect(g.pool.snapshot().openai[0].failures).toBe(1);
    provider.behave(PROVIDER_KEYS[0], 'ok');
    expect((await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() })).status).toBe(200);
    expect(g.pool.snapshot().openai[0].failures).toBe(0);
  });

  it('ends a stream that breaks midway with an SSE error event, and does not fail over after the first byte', async () => {
    provider.behave(PROVIDER_KEYS[0], 'abort-mid-stream');
    provider.behave(PROVIDER_KEYS[1], 'ok');
    const g = await start(PROVIDER_KEYS.slice(0, 2), { strategy: 'least-in-flight' });
    const reply = await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat({ stream: true }) });
    const events = chatStream('gpt-test');
    expect(reply.body.startsWith(events[0] + events[1])).toBe(true);
    expect(reply.body).toMatch(/event: error\ndata: \{"error":\{"type":"upstream_interrupted"/);
    expect(provider.received).toHaveLength(1);
    expect(g.audits('request')[0].errorType).toBe('upstream_interrupted');
  });

  it('ends a stream whose provider stalls midway with an SSE error event, after the idle bound', async () => {
    provider.behave(PROVIDER_KEYS[0], 'stall-mid-stream');
    const g = await start([PROVIDER_KEYS[0]], { upstreamTimeoutMs: 300 });
    const reply = await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat({ stream: true }) });
    expect(reply.body).toMatch(/event: error\ndata: \{"error":\{"type":"upstream_interrupted"/);
    expect(g.audits('request')[0].errorType).toBe('upstream_interrupted');
  });

  it('answers 503, labelled as upstream, when no key is configured', async () => {
    const g = await start([]);
    const reply = await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() });
    expect(reply.status).toBe(503);
    expect(JSON.parse(reply.body).error.type).toBe('upstream_unavailable');
  });

  it('passes Anthropic’s /v1/messages through, JSON and streaming, with its usage', async () => {
    provider.behave(PROVIDER_KEYS[0], 'ok');
    gw = await startGateway({
      pool: poolOf(provider.url, [{ id: 'a1', key: PROVIDER_KEYS[0] }], 'anthropic', ['claude-test']),
    });
    const body = { model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] };
    const json = await call(gw.url, {
      path: '/v1/messages',
      body,
      headers: { 'x-api-key': gw.keys.dify, 'anthropic-version': '2023-06-01' },
    });
    expect(json.status).toBe(200);
    expect(provider.received[0].headers['x-api-key']).toBe(PROVIDER_KEYS[0]);
    expect(provider.received[0].headers['anthropic-version']).toBe('2023-06-01');
    const stream = await call(gw.url, {
      path: '/v1/messages',
      body: { ...body, stream: true },
      headers: { 'x-api-key': gw.keys.dify },
    });
    expect(stream.body).toBe(anthropicStream('claude-test').join(''));
    expect(gw.audits('request').map((a) => [a.promptTokens, a.completionTokens])).toEqual([
      [11, 4],
      [11, 4],
    ]);
    const wrong = await call(gw.url, {
      path: '/v1/chat/completions',
      key: gw.keys.dify,
      body: { ...body, messages: body.messages },
    });
    expect(wrong.status).toBe(400);
    expect(JSON.parse(wrong.body).error.type).toBe('wrong_api');
  });

  it('lists only the models the client may use', async () => {
    provider.behave(PROVIDER_KEYS[0], 'ok');
    const g = await start([PROVIDER_KEYS[0]], { clients: [{ id: 'dify', allowedModels: ['gpt-test'] }] });
    const reply = await call(g.url, { method: 'GET', path: '/v1/models', key: g.keys.dify });
    expect(JSON.parse(reply.body).data.map((m: { id: string }) => m.id)).toEqual(['gpt-test']);
    const denied = await call(g.url, {
      path: '/v1/embeddings',
      key: g.keys.dify,
      body: { model: 'text-embedding-test', input: 'x' },
    });
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body).error.type).toBe('model_not_allowed');
  });

  describe('guardrails', () => {
    const card = '4111 1111 1111 1111';
    it('blocks with a 400 naming the detector and never the matched text', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]]);
      const reply = await call(g.url, {
        path: '/v1/chat/completions',
        key: g.keys.dify,
        body: chat({ messages: [{ role: 'user', content: `my card is ${card}` }] }),
      });
      expect(reply.status).toBe(400);
      expect(JSON.parse(reply.body).error).toMatchObject({ type: 'guardrail_blocked', detector: 'credit_card' });
      expect(reply.body).not.toContain('4111');
      expect(allOutput()).not.toContain('4111');
      expect(provider.received).toHaveLength(0);
      expect(g.audits('request')[0].guardrails).toEqual([{ detector: 'credit_card', action: 'block', count: 1 }]);
    });

    it('redacts before forwarding when the policy says redact, and only logs when it says log', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]], {
        clients: [{ id: 'dify', guardrails: { credit_card: 'redact', email: 'log' } }],
      });
      const text = `card ${card}, mail jane@example.com`;
      const reply = await call(g.url, {
        path: '/v1/chat/completions',
        key: g.keys.dify,
        body: chat({ messages: [{ role: 'user', content: text }] }),
      });
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
    const cases: Array<
      [
        string,
        Parameters<typeof call>[1] | ((keys: Record<string, string>) => Parameters<typeof call>[1]),
        number,
        string,
      ]
    > = [
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
      ['an unknown route', (k) => ({ path: '/v2/anything', key: k.dify, body: chat() }), 404, 'not_found'],
      [
        'a wrong method',
        (k) => ({ method: 'GET', path: '/v1/chat/completions', key: k.dify }),
        405,
        'method_not_allowed',
      ],
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
        clients: [{ id: 'dify' }, { id: 'other', allowedCidrs: ['10.0.0.0/8'] }],
      });
      const reply = await call(g.url, typeof request === 'function' ? request(g.keys) : request);
      expect(reply.status).toBe(status);
      const error = JSON.parse(reply.body).error;
      expect(error.type).toBe(type);
      expect(error.message.length).toBeGreaterThan(10);
      expect(provider.received).toHaveLength(0);
    });

    it('limits requests per minute per client', async () => {
      provider.behave(PROVIDER_KEYS[0], 'ok');
      const g = await start([PROVIDER_KEYS[0]], { clients: [{ id: 'dify', requestsPerMinute: 2 }] });
      const statuses = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat() })).status);
      expect(statuses).toEqual([200, 200, 429]);
    });
  });

  it('writes exactly one request line per request and one attempt line per attempt under concurrency, with no key material', async () => {
    provider.behave(PROVIDER_KEYS[0], 'ok');
    provider.behave(PROVIDER_KEYS[1], '500');
    provider.behave(PROVIDER_KEYS[2], 'ok');
    const g = await start(PROVIDER_KEYS);
    const total = 120;
    const replies = await Promise.all(
      Array.from({ length: total }, (_, i) =>
        call(g.url, { path: '/v1/chat/completions', key: g.keys.dify, body: chat({ stream: i % 2 === 0 }) }),
      ),
    );
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const requests = g.audits('request');
    const attempts = g.audits('attempt');
    expect(requests).toHaveLength(total);
    expect(new Set(requests.map((r) => r.requestId)).size).toBe(total);
    expect(attempts).toHaveLength(provider.received.length);
    expect(requests.reduce((sum, r) => sum + r.retries + 1, 0)).toBe(attempts.length);
    const output = g.lines.join('\n');
    for (const secret of [...PROVIDER_KEYS, g.keys.dify, 'Say hello']) expect(output).not.toContain(secret);
  });
});
