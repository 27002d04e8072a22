import {
  classifyAnswer,
  classifyUpstream,
  cooldownUntil,
  DEFAULT_COOLDOWN_MS,
  parseDuration,
  retryable,
} from '../src/failure';
import { KeyPool, type Strategy } from '../src/pool';
import { providerPoolSchema } from '../../contracts/gateway-documents';

/** Pure decisions, with the clock injected: no test here sleeps or opens a socket. */

const poolDoc = (keys: Array<{ id: string; key: string; weight?: number; enabled?: boolean }>) =>
  providerPoolSchema.parse({
    version: 1,
    providers: { openai: { baseUrl: 'https://127.0.0.1:9', models: ['m'], keys } },
  });

describe('failure classification', () => {
  it.each([
    [200, 'success'],
    [201, 'success'],
    [401, 'auth'],
    // A 403 alone says nothing about the key (a region, one resource): classifyAnswer reads the body.
    [403, 'client'],
    [429, 'rate_limited'],
    [500, 'server'],
    [502, 'server'],
    [503, 'server'],
    [301, 'server'],
    [400, 'client'],
    [404, 'client'],
    [413, 'client'],
    [422, 'client'],
  ] as const)('status %i is %s', (status, outcome) => {
    expect(classifyUpstream(status)).toBe(outcome);
  });

  it.each([
    [{ code: 'UND_ERR_HEADERS_TIMEOUT', name: 'HeadersTimeoutError' }, 'timeout'],
    [{ code: 'UND_ERR_CONNECT_TIMEOUT', name: 'ConnectTimeoutError' }, 'timeout'],
    [{ code: 'UND_ERR_BODY_TIMEOUT', name: 'BodyTimeoutError' }, 'timeout'],
    [{ code: 'ECONNREFUSED', name: 'Error' }, 'network'],
    [{ code: 'ECONNRESET', name: 'Error' }, 'network'],
    [{ code: 'UND_ERR_SOCKET', name: 'SocketError' }, 'network'],
    [new Error('anything'), 'network'],
    [undefined, 'network'],
  ] as const)('error %j is %s', (error, outcome) => {
    expect(classifyUpstream(error)).toBe(outcome);
  });

  // Bodies as the providers send them (gateway/src/failure.ts cites where each was seen).
  const openai = (code: string | null, type: string) =>
    JSON.stringify({ error: { message: 'm', type, param: null, code } });
  const anthropic = (type: string, message: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ type: 'error', error: { type, message, ...extra } });
  it.each([
    ['OpenAI invalid key', 'openai', 401, openai('invalid_api_key', 'invalid_request_error'), 'auth'],
    ['OpenAI deactivated account', 'openai', 401, openai('account_deactivated', 'invalid_request_error'), 'auth'],
    ['OpenAI out of quota', 'openai', 429, openai('insufficient_quota', 'insufficient_quota'), 'auth'],
    ['OpenAI spend limit', 'openai', 429, openai('project_spend_limit_exceeded', 'insufficient_quota'), 'auth'],
    ['OpenAI billing inactive, code null', 'openai', 429, openai(null, 'billing_not_active'), 'auth'],
    ['OpenAI rate limit', 'openai', 429, openai('rate_limit_exceeded', 'requests'), 'rate_limited'],
    [
      'OpenAI region refusal',
      'openai',
      403,
      openai('unsupported_country_region_territory', 'request_forbidden'),
      'client',
    ],
    ['OpenAI model access', 'openai', 403, openai('model_not_found', 'invalid_request_error'), 'client'],
    ['OpenAI bad parameter', 'openai', 400, openai(null, 'invalid_request_error'), 'client'],
    [
      'Azure key authentication off',
      'azure-openai',
      403,
      JSON.stringify({ error: { code: 'AuthenticationTypeDisabled', message: 'm' } }),
      'auth',
    ],
    [
      'Azure firewall',
      'azure-openai',
      403,
      JSON.stringify({ error: { code: '403', message: 'Access denied due to Virtual Network/Firewall rules.' } }),
      'client',
    ],
    [
      'Azure invalid key',
      'azure-openai',
      401,
      JSON.stringify({ error: { code: '401', message: 'Access denied due to invalid subscription key' } }),
      'auth',
    ],
    ['Anthropic invalid key', 'anthropic', 401, anthropic('authentication_error', 'invalid x-api-key'), 'auth'],
    [
      'Anthropic CORS refusal',
      'anthropic',
      401,
      anthropic('authentication_error', 'CORS requests are not allowed for this Organization'),
      'client',
    ],
    ['Anthropic billing', 'anthropic', 402, anthropic('billing_error', 'There is an issue with your billing'), 'auth'],
    [
      'Anthropic no credit',
      'anthropic',
      400,
      anthropic('invalid_request_error', 'Your credit balance is too low to access the Anthropic API.'),
      'auth',
    ],
    [
      'Anthropic organization disabled',
      'anthropic',
      400,
      anthropic('invalid_request_error', 'This organization has been disabled.'),
      'auth',
    ],
    [
      'Anthropic spend limit',
      'anthropic',
      429,
      anthropic('rate_limit_error', 'limit', { details: { error_code: 'enforced_spend_limit_reached' } }),
      'auth',
    ],
    [
      'Anthropic rate limit',
      'anthropic',
      429,
      anthropic('rate_limit_error', 'Number of requests has exceeded your rate limit'),
      'rate_limited',
    ],
    [
      'Anthropic permission for one resource',
      'anthropic',
      403,
      anthropic('permission_error', 'no permission'),
      'client',
    ],
    [
      'Anthropic edge block',
      'anthropic',
      403,
      JSON.stringify({ error: { type: 'forbidden', message: 'Request not allowed' } }),
      'client',
    ],
    [
      'Anthropic message that merely mentions credit',
      'anthropic',
      400,
      anthropic('invalid_request_error', 'messages: the credit balance field is wrong'),
      'client',
    ],
    ['a 403 that is not JSON', 'openai', 403, '<html>forbidden</html>', 'client'],
    ['a 503', 'openai', 503, openai('server_error', 'server_error'), 'server'],
  ] as const)('%s is %s', (_name, provider, status, body, outcome) => {
    const classified = classifyAnswer(provider, status, body);
    expect(classified.outcome).toBe(outcome);
    // The reason is a fixed phrase with the status and code at most, never provider text.
    if (classified.reason !== undefined)
      expect(classified.reason).not.toMatch(/credit balance|invalid x-api-key|Access denied/);
  });

  it('retries on another key only for key and provider failures, never for the client’s own 4xx', () => {
    expect(['auth', 'rate_limited', 'server', 'network', 'timeout'].every((o) => retryable(o as never))).toBe(true);
    expect(retryable('client')).toBe(false);
    expect(retryable('success')).toBe(false);
  });
});

describe('cooldown parsing', () => {
  const now = Date.parse('2026-11-22T12:00:00Z');

  it('reads Retry-After in seconds and as an HTTP date', () => {
    expect(cooldownUntil({ 'retry-after': '7' }, now, 60_000)).toBe(now + 7000);
    expect(cooldownUntil({ 'retry-after': '1.5' }, now, 60_000)).toBe(now + 1500);
    expect(cooldownUntil({ 'retry-after': 'Sun, 22 Nov 2026 12:01:00 GMT' }, now, 60_000)).toBe(now + 60_000);
    // A date already past: usable again now, not never.
    expect(cooldownUntil({ 'retry-after': 'Sun, 22 Nov 2026 11:00:00 GMT' }, now, 60_000)).toBe(now);
  });

  it('reads OpenAI’s reset durations, taking the later of requests and tokens', () => {
    expect(cooldownUntil({ 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-reset-tokens': '6m0s' }, now, 1)).toBe(
      now + 360_000,
    );
    expect(cooldownUntil({ 'x-ratelimit-reset-tokens': '20ms' }, now, 1)).toBe(now + 20);
    expect([parseDuration('20ms'), parseDuration('1h2m3.5s'), parseDuration('6m0s'), parseDuration('soon')]).toEqual([
      20,
      3_723_500,
      360_000,
      undefined,
    ]);
    expect(parseDuration('1s garbage')).toBeUndefined();
  });

  it('reads Anthropic’s RFC 3339 reset timestamps, taking the latest', () => {
    expect(
      cooldownUntil(
        {
          'anthropic-ratelimit-requests-reset': '2026-11-22T12:00:30Z',
          'anthropic-ratelimit-tokens-reset': '2026-11-22T12:00:45Z',
        },
        now,
        1,
      ),
    ).toBe(now + 45_000);
  });

  it('falls back to the default without a usable header, and never benches a key for more than an hour', () => {
    expect(cooldownUntil({}, now, DEFAULT_COOLDOWN_MS)).toBe(now + 60_000);
    expect(cooldownUntil({ 'retry-after': 'whenever' }, now, 60_000)).toBe(now + 60_000);
    expect(cooldownUntil({ 'x-ratelimit-reset-requests': 'soon' }, now, 60_000)).toBe(now + 60_000);
    expect(cooldownUntil({ 'retry-after': '999999' }, now, 1)).toBe(now + 3_600_000);
  });
});

describe('the key pool', () => {
  let changes: string[] = [];
  beforeEach(() => {
    changes = [];
  });
  const make = (strategy: Strategy = 'weighted-round-robin', now = () => 0) =>
    new KeyPool({ strategy, now, onStateChange: (c) => changes.push(`${c.keyId}:${c.health}`) });
  const pick = (pool: KeyPool, exclude?: Set<string>) => {
    const lease = pool.acquire('openai', exclude);
    lease?.release();
    return lease?.keyId;
  };

  it('spreads requests in proportion to weight, evenly interleaved (smooth weighted round robin)', () => {
    const pool = make();
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-aaaaaaaa', weight: 3 },
        { id: 'b', key: 'key-bbbbbbbb', weight: 1 },
      ]),
    );
    const picks = Array.from({ length: 400 }, () => pick(pool));
    expect(picks.slice(0, 8).join('')).toBe('aabaaaba');
    expect(picks.filter((p) => p === 'a')).toHaveLength(300);
  });

  it('picks the key with the fewest requests in flight per weight, round robin among equals', () => {
    const pool = make('least-in-flight');
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-aaaaaaaa' },
        { id: 'b', key: 'key-bbbbbbbb' },
      ]),
    );
    const held = pool.acquire('openai')!;
    expect(pool.acquire('openai')!.keyId).not.toBe(held.keyId);
    const idle = make('least-in-flight');
    idle.load(
      poolDoc([
        { id: 'a', key: 'key-aaaaaaaa' },
        { id: 'b', key: 'key-bbbbbbbb' },
      ]),
    );
    expect(Array.from({ length: 4 }, () => pick(idle)).join('')).toBe('abab');
  });

  it('skips disabled, cooling and operator-disabled keys, and the keys a request already tried', () => {
    let clock = 0;
    const pool = make('weighted-round-robin', () => clock);
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-aaaaaaaa' },
        { id: 'b', key: 'key-bbbbbbbb' },
        { id: 'c', key: 'key-cccccccc', enabled: false },
      ]),
    );
    const a = pool.acquire('openai')!;
    pool.report(a, 'rate_limited', 10_000);
    a.release();
    expect(pick(pool, new Set(['b']))).toBeUndefined();
    expect(pool.nextAvailable('openai')).toBe(10_000);
    clock = 9_999;
    expect(pick(pool, new Set(['b']))).toBeUndefined();
    clock = 10_000;
    expect(pick(pool, new Set(['b']))).toBe('a');
    expect(changes).toEqual(['a:cooling', 'a:healthy']);
  });

  it('counts failures per key and resets the count on a success; client errors are not counted', () => {
    const pool = make();
    pool.load(poolDoc([{ id: 'a', key: 'key-aaaaaaaa' }]));
    for (const outcome of ['server', 'timeout', 'network', 'client'] as const) {
      const lease = pool.acquire('openai')!;
      pool.report(lease, outcome);
      lease.release();
    }
    expect(pool.snapshot().openai[0]).toMatchObject({ health: 'healthy', failures: 3 });
    const lease = pool.acquire('openai')!;
    pool.report(lease, 'success');
    lease.release();
    expect(pool.snapshot().openai[0].failures).toBe(0);
  });

  it('carries state across a reload by key id, and starts a replaced or re-added key over', () => {
    const pool = make();
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-aaaaaaaa' },
        { id: 'b', key: 'key-bbbbbbbb' },
      ]),
    );
    const a = pool.acquire('openai')!;
    pool.report(a, 'auth');
    a.release();
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-aaaaaaaa' },
        { id: 'b', key: 'key-bbbbbbbb' },
        { id: 'd', key: 'key-dddddddd' },
      ]),
    );
    expect(pool.snapshot().openai.map((k) => k.health)).toEqual(['disabled', 'healthy', 'healthy']);
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-a-replaced' },
        { id: 'b', key: 'key-bbbbbbbb' },
      ]),
    );
    expect(pool.snapshot().openai.map((k) => k.health)).toEqual(['healthy', 'healthy']);
    expect(changes).toEqual(['a:disabled', 'a:healthy']);
    // Removed, then added back with the same value: a new key as far as the pool knows.
    const again = pool.acquire('openai', new Set(['b']))!;
    pool.report(again, 'auth');
    again.release();
    pool.load(poolDoc([{ id: 'b', key: 'key-bbbbbbbb' }]));
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-a-replaced' },
        { id: 'b', key: 'key-bbbbbbbb' },
      ]),
    );
    expect(pool.snapshot().openai[0].health).toBe('healthy');
  });

  it('keeps the in-flight count of a carried key exact across a reload', () => {
    const pool = make('least-in-flight');
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-aaaaaaaa' },
        { id: 'b', key: 'key-bbbbbbbb' },
      ]),
    );
    const leases = [pool.acquire('openai')!, pool.acquire('openai')!, pool.acquire('openai')!];
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-aaaaaaaa', weight: 2 },
        { id: 'b', key: 'key-bbbbbbbb' },
      ]),
    );
    for (const lease of leases) lease.release();
    expect(pool.snapshot().openai.map((k) => k.inFlight)).toEqual([0, 0]);
  });

  it('ignores reports for a key removed or replaced while its request was in flight', () => {
    const pool = make();
    pool.load(poolDoc([{ id: 'a', key: 'key-aaaaaaaa' }]));
    const lease = pool.acquire('openai')!;
    pool.load(poolDoc([{ id: 'a', key: 'key-a-replaced' }]));
    pool.report(lease, 'auth');
    lease.release();
    expect(pool.snapshot().openai[0]).toMatchObject({ health: 'healthy', inFlight: 0 });
    pool.load(poolDoc([]));
    expect(pool.acquire('openai')).toBeUndefined();
  });

  it('re-enables a disabled key when its probe passes, but not a value that was replaced meanwhile', () => {
    const pool = make();
    pool.load(poolDoc([{ id: 'a', key: 'key-aaaaaaaa' }]));
    const lease = pool.acquire('openai')!;
    pool.report(lease, 'auth');
    lease.release();
    expect(pool.disabledKeys().map((k) => k.keyId)).toEqual(['a']);
    pool.enable('openai', 'a', 'key-other-value', 'probe passed');
    expect(pool.snapshot().openai[0].health).toBe('disabled');
    pool.enable('openai', 'a', 'key-aaaaaaaa', 'probe passed');
    expect(pool.snapshot().openai[0]).toMatchObject({ health: 'healthy', failures: 0 });
  });

  it('maps each model to the provider that lists it', () => {
    const pool = make();
    pool.load(
      providerPoolSchema.parse({
        version: 1,
        providers: {
          openai: { baseUrl: 'https://127.0.0.1:9', models: ['gpt-x', 'emb'], keys: [] },
          anthropic: { baseUrl: 'https://127.0.0.1:9', models: ['claude-x'], keys: [] },
        },
      }),
    );
    expect([pool.providerFor('gpt-x'), pool.providerFor('claude-x'), pool.providerFor('nope')]).toEqual([
      'openai',
      'anthropic',
      undefined,
    ]);
    expect(pool.models.sort()).toEqual(['claude-x', 'emb', 'gpt-x']);
  });
});
