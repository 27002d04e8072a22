import { buildGateway, workerOf } from './helpers/built';
import { type FakeProvider, startFakeProvider } from './helpers/fake-provider';
import { type Harness, type HarnessOptions, poolOf, startGateway } from './helpers/harness';
import { waitFor } from './helpers/processes';

/**
 * Screening off the event loop: large bodies, and every body when custom detectors are configured,
 * go to a worker thread of the built bundle (as in the container) under a CPU budget. A request that
 * cannot be screened within it is refused, and no request can stall the others.
 */

const KEY = 'sk-screening-key-000000000000000';
// Catastrophic backtracking: (a+)+$ on a run of a's followed by b takes 2^n steps.
const CATASTROPHIC = { name: 'runaway', pattern: '(a+)+$', flags: '' };

describe('the screening worker', () => {
  let provider: FakeProvider;
  let bundle: string;
  let gw: Harness | undefined;
  beforeAll(async () => {
    bundle = workerOf(buildGateway());
    provider = await startFakeProvider();
    provider.behave(KEY, 'ok');
  });
  afterAll(async () => {
    await provider.close();
  });
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    provider.received.length = 0;
  });
  const start = async (options: Partial<HarnessOptions> = {}) => {
    gw = await startGateway({
      pool: poolOf(provider.url, [{ id: 'k1', key: KEY }]),
      workerScript: bundle,
      screenInlineBytes: 1024,
      ...options,
    });
    return gw;
  };
  const post = async (g: Harness, content: string) => {
    const reply = await fetch(`${g.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${g.keys.dify}` },
      body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content }] }),
    });
    return { status: reply.status, body: (await reply.json()) as Record<string, any> };
  };

  it('screens a body over the inline limit in the worker, with the same verdict and redaction', async () => {
    const g = await start({ clients: [{ id: 'dify', guardrails: { credit_card: 'redact' } }] });
    const filler = 'lorem ipsum '.repeat(200);
    const reply = await post(g, `${filler} card 4111 1111 1111 1111 ${filler}`);
    expect(reply.status).toBe(200);
    expect(g.audits('request')[0].guardrails).toEqual([{ detector: 'credit_card', action: 'redact', count: 1 }]);
    const forwarded = provider.received[0].body;
    expect(forwarded).toContain('[REDACTED:credit_card]');
    expect(forwarded).not.toContain('4111');
    const blocked = await post(g, `${filler} write to jane@example.com ${filler}`);
    expect([blocked.status, blocked.body.error.detector]).toEqual([400, 'email']);
  });

  it('refuses what cannot be screened within the budget with 422, naming it, and screens the next request', async () => {
    const g = await start({ customDetectors: [CATASTROPHIC], screenBudgetMs: 300 });
    const reply = await post(g, `${'a'.repeat(40)}b`);
    expect([reply.status, reply.body.error.type, reply.body.error.budget_ms]).toEqual([
      422,
      'screening_budget_exceeded',
      300,
    ]);
    expect(reply.body.error.message).toContain('300 ms');
    expect(g.lines.some((l) => l.includes('"screening_budget_exceeded"'))).toBe(true);
    expect(provider.received).toHaveLength(0);
    // A fresh worker takes the next request.
    expect((await post(g, 'hello')).status).toBe(200);
  });

  it('keeps the event loop free while a worker is stuck: health checks and other clients are answered first', async () => {
    const g = await start({ customDetectors: [CATASTROPHIC], screenBudgetMs: 2000 });
    const order: string[] = [];
    const stuck = post(g, `${'a'.repeat(40)}b`).then((r) => order.push(`stuck ${r.status}`));
    await waitFor('the worker to be busy', async () => g.gateway.activeRequests === 1);
    const health = await fetch(`${g.url}/healthz`);
    order.push(`health ${health.status}`);
    const models = await fetch(`${g.url}/v1/models`, { headers: { authorization: `Bearer ${g.keys.dify}` } });
    order.push(`models ${models.status}`);
    await stuck;
    expect(order).toEqual(['health 200', 'models 200', 'stuck 422']);
  });

  it('answers 503 with Retry-After when too many large requests wait for a worker', async () => {
    const g = await start({ customDetectors: [CATASTROPHIC], screenBudgetMs: 1500, screenQueue: 1 });
    const replies = await Promise.all([
      post(g, `${'a'.repeat(40)}b`),
      post(g, `${'a'.repeat(40)}b`),
      post(g, `${'a'.repeat(40)}b`),
    ]);
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([422, 422, 503]);
    expect(replies.find((r) => r.status === 503)?.body.error.type).toBe('screening_busy');
  });
});
