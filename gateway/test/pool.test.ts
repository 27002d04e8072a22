import { classifyStatus, cooldownUntil, parseDuration, retryable } from '../src/failure';
import { KeyPool } from '../src/pool';
import { providerPoolSchema } from '../src/records';

const poolDoc = (keys: Array<{ id: string; key: string; weight?: number; enabled?: boolean }>) =>
  providerPoolSchema.parse({
    version: 1,
    providers: { openai: { baseUrl: 'http://127.0.0.1:9', models: ['m'], keys } },
  });

describe('failure classification', () => {
  it.each([
    [200, 'success'],
    [401, 'auth'],
    [403, 'auth'],
    [429, 'rate_limited'],
    [500, 'server'],
    [503, 'server'],
    [400, 'client'],
    [404, 'client'],
    [413, 'client'],
    [422, 'client'],
  ] as const)('%i is %s', (status, outcome) => {
    expect(classifyStatus(status)).toBe(outcome);
  });

  it('retries on another key only for key and provider failures', () => {
    expect(['auth', 'rate_limited', 'server', 'network', 'timeout'].every((o) => retryable(o as never))).toBe(true);
    expect(retryable('client')).toBe(false);
    expect(retryable('success')).toBe(false);
  });

  it('reads the provider’s reset headers', () => {
    const now = Date.parse('2026-11-22T12:00:00Z');
    expect(cooldownUntil({ 'retry-after': '7' }, now, 60_000)).toBe(now + 7000);
    expect(cooldownUntil({ 'retry-after': 'Sun, 22 Nov 2026 12:01:00 GMT' }, now, 60_000)).toBe(now + 60_000);
    expect(cooldownUntil({ 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-reset-tokens': '6m0s' }, now, 1)).toBe(
      now + 360_000,
    );
    expect(cooldownUntil({ 'anthropic-ratelimit-requests-reset': '2026-11-22T12:00:30Z' }, now, 1)).toBe(now + 30_000);
    expect(cooldownUntil({}, now, 60_000)).toBe(now + 60_000);
    expect(cooldownUntil({ 'retry-after': '999999' }, now, 1)).toBe(now + 3_600_000);
    expect([parseDuration('20ms'), parseDuration('1h2m3.5s'), parseDuration('soon')]).toEqual([
      20,
      3_723_500,
      undefined,
    ]);
  });
});

describe('the key pool', () => {
  const changes: string[] = [];
  const make = (strategy: 'weighted-round-robin' | 'least-in-flight' = 'weighted-round-robin', now = () => 0) =>
    new KeyPool({ strategy, now, onStateChange: (c) => changes.push(`${c.keyId}:${c.health}`) });

  it('spreads requests in proportion to weight, evenly interleaved', () => {
    const pool = make();
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-aaaaaaaa', weight: 3 },
        { id: 'b', key: 'key-bbbbbbbb', weight: 1 },
      ]),
    );
    const picks = Array.from({ length: 8 }, () => {
      const lease = pool.acquire('openai')!;
      lease.release();
      return lease.keyId;
    });
    // Smooth weighted round robin interleaves: a a b a, then again.
    expect(picks.join('')).toBe('aabaaaba');
    expect(picks.filter((p) => p === 'a')).toHaveLength(6);
  });

  it('picks the key with the fewest requests in flight when asked to', () => {
    const pool = make('least-in-flight');
    pool.load(
      poolDoc([
        { id: 'a', key: 'key-aaaaaaaa' },
        { id: 'b', key: 'key-bbbbbbbb' },
      ]),
    );
    const first = pool.acquire('openai')!;
    expect(pool.acquire('openai')!.keyId).not.toBe(first.keyId);
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
    expect(pool.acquire('openai', new Set(['b']))).toBeUndefined();
    expect(pool.nextAvailable('openai')).toBe(10_000);
    clock = 10_000;
    expect(pool.acquire('openai', new Set(['b']))!.keyId).toBe('a');
  });

  it('carries state across a reload by key id, and starts a replaced key over', () => {
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
    expect(changes).toEqual(expect.arrayContaining(['a:disabled', 'a:healthy']));
  });

  it('ignores reports for a key removed while its request was in flight', () => {
    const pool = make();
    pool.load(poolDoc([{ id: 'a', key: 'key-aaaaaaaa' }]));
    const lease = pool.acquire('openai')!;
    pool.load(poolDoc([]));
    expect(() => pool.report(lease, 'auth')).not.toThrow();
    lease.release();
    expect(pool.acquire('openai')).toBeUndefined();
  });
});
