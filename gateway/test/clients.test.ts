import { generateClientKey, hashClientKey, pepperRotationBlockers, type Peppers } from '../../contracts/client-keys';
import { ClientRegistry, clientOf, modelAllowed, policyOf, sourceAllowed } from '../src/clients';
import {
  CLIENT_KEY_PATTERN,
  clientSchema,
  clientsDocumentSchema,
  type Rehash,
  rehashDocumentSchema,
} from '../../contracts/gateway-documents';

/** Client keys, as the operator CLI creates them and the gateway checks them. */

const PEPPER = 'unit-pepper-0123456789abcdefghijklmnopqrstu';

const registryOf = (clients: Array<Record<string, unknown>>) =>
  new ClientRegistry(clientsDocumentSchema.parse({ version: 1, clients }), {
    current: { versionId: 'v1', value: PEPPER },
  });

describe('client keys', () => {
  it('are dgw_<id>_<43 base64url characters> from 32 random bytes, and only their keyed hash is stored', () => {
    const key = generateClientKey('dify', (size) => Buffer.alloc(size, 0xfb));
    expect(key).toMatch(CLIENT_KEY_PATTERN);
    expect(key).toBe(`dgw_dify_${Buffer.alloc(32, 0xfb).toString('base64url')}`);
    const hash = hashClientKey(PEPPER, key);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashClientKey(PEPPER, key)).toBe(hash);
    expect(hashClientKey(`${PEPPER}x`, key)).not.toBe(hash);
  });

  it('refuses a client id the key format cannot carry', () => {
    expect(() => generateClientKey('Dify', (size) => Buffer.alloc(size, 1))).toThrow("'Dify' is not a valid client id");
  });

  it('authenticates by id and hash, and refuses a wrong key, an unknown id, another format and a disabled client', () => {
    const key = generateClientKey('dify', (size) => Buffer.alloc(size, 1));
    const off = generateClientKey('off', (size) => Buffer.alloc(size, 2));
    const base = { allowedCidrs: ['10.0.0.0/8'], allowedModels: ['*'], requestsPerMinute: 1, tokensPerMinute: 1 };
    const registry = registryOf([
      { id: 'dify', keyHash: hashClientKey(PEPPER, key), ...base },
      { id: 'off', keyHash: hashClientKey(PEPPER, off), disabled: true, ...base },
    ]);
    expect(registry.authenticate(key)?.record.id).toBe('dify');
    expect(registry.authenticate(`${key.slice(0, -1)}A`)).toBeUndefined();
    expect(registry.authenticate(key.replace('dgw_dify_', 'dgw_else_'))).toBeUndefined();
    expect(registry.authenticate('sk-something-else')).toBeUndefined();
    expect(registry.authenticate(off)).toBeUndefined();
  });
});

describe('client networks, models and policies', () => {
  const c = clientOf(
    clientSchema.parse({
      id: 'dify',
      keyHash: 'a'.repeat(64),
      allowedCidrs: ['10.1.0.0/16', 'fd00::/8'],
      allowedModels: ['gpt-a'],
      requestsPerMinute: 1,
      tokensPerMinute: 1,
      guardrails: { email: 'log' },
      defaultGuardrailAction: 'redact',
    }),
  );

  it('match the TCP peer address, IPv4-mapped IPv6 included, and nothing outside', () => {
    expect(sourceAllowed(c, '10.1.2.3')).toBe(true);
    expect(sourceAllowed(c, '::ffff:10.1.2.3')).toBe(true);
    expect(sourceAllowed(c, 'fd12::1')).toBe(true);
    expect(sourceAllowed(c, '10.2.0.1')).toBe(false);
    expect(sourceAllowed(c, '::ffff:10.2.0.1')).toBe(false);
    expect(sourceAllowed(c, '::1')).toBe(false);
    expect(sourceAllowed(c, 'not an address')).toBe(false);
  });

  it('allow the listed models only, or every model with *', () => {
    expect(modelAllowed(c, 'gpt-a')).toBe(true);
    expect(modelAllowed(c, 'gpt-b')).toBe(false);
    expect(modelAllowed({ ...c, record: { ...c.record, allowedModels: ['*'] } }, 'gpt-b')).toBe(true);
  });

  it('apply the per-detector action, else the default', () => {
    expect([policyOf(c)('email'), policyOf(c)('credit_card')]).toEqual(['log', 'redact']);
  });

  it('refuse a document with a CIDR that does not parse', () => {
    expect(() =>
      registryOf([
        {
          id: 'x',
          keyHash: 'a'.repeat(64),
          allowedCidrs: ['10.0.0.0/33'],
          allowedModels: ['*'],
          requestsPerMinute: 1,
          tokensPerMinute: 1,
        },
      ]),
    ).toThrow();
  });
});

describe('client keys across a pepper rotation', () => {
  const P1 = { versionId: 'pepper-v1', value: 'first-pepper-0123456789abcdefghijklmnopqrstuvwxyz' };
  const P2 = { versionId: 'pepper-v2', value: 'second-pepper-0123456789abcdefghijklmnopqrstuvwxy' };
  const P3 = { versionId: 'pepper-v3', value: 'third-pepper-0123456789abcdefghijklmnopqrstuvwxyz' };
  const base = { allowedCidrs: ['10.0.0.0/8'], allowedModels: ['*'], requestsPerMinute: 1, tokensPerMinute: 1 };
  const key = generateClientKey('dify', (size) => Buffer.alloc(size, 7));
  const other = generateClientKey('tool', (size) => Buffer.alloc(size, 8));
  const documentOf = (...clients: Array<Record<string, unknown>>) =>
    clientsDocumentSchema.parse({ version: 1, clients: clients.map((c) => ({ ...base, ...c })) });
  const rehashesOf = (clients: Record<string, Rehash> = {}) => rehashDocumentSchema.parse({ version: 1, clients });
  const registry = (
    clients: Array<Record<string, unknown>>,
    peppers: Peppers,
    rehashes: Record<string, Rehash> = {},
  ) => {
    const reported: Array<[string, Rehash]> = [];
    const built = new ClientRegistry(documentOf(...clients), peppers, rehashesOf(rehashes), (id, rehash) =>
      reported.push([id, rehash]),
    );
    return { registry: built, reported };
  };
  const made = (pepper: typeof P1, k = key, id = 'dify') => ({
    id,
    keyHash: hashClientKey(pepper.value, k),
    pepperVersionId: pepper.versionId,
  });

  it('accepts a key made under the previous pepper and reports its hash under the current one', () => {
    const { registry: r, reported } = registry([made(P1)], { current: P2, previous: P1 });
    expect(r.authenticate(key)?.record.id).toBe('dify');
    expect(reported).toEqual([
      ['dify', { from: hashClientKey(P1.value, key), to: hashClientKey(P2.value, key), pepperVersionId: P2.versionId }],
    ]);
    expect(r.authenticate(other)).toBeUndefined();
    expect(r.authenticate(`${key.slice(0, -1)}A`)).toBeUndefined();
    expect(reported).toHaveLength(1);
  });

  it('reports nothing for a key made under the current pepper', () => {
    const { registry: r, reported } = registry([made(P2)], { current: P2, previous: P1 });
    expect(r.authenticate(key)?.record.id).toBe('dify');
    expect(reported).toEqual([]);
  });

  it('uses a stored rehash, so the key survives the next rotation, which drops the pepper it was made under', () => {
    const rehash = {
      from: hashClientKey(P1.value, key),
      to: hashClientKey(P2.value, key),
      pepperVersionId: 'pepper-v2',
    };
    const withRehash = registry([made(P1)], { current: P3, previous: P2 }, { dify: rehash });
    expect(withRehash.registry.authenticate(key)?.record.id).toBe('dify');
    expect(withRehash.reported.map(([, r]) => r.to)).toEqual([hashClientKey(P3.value, key)]);
    // Without it, the key was made under a pepper no longer held: refused.
    const without = registry([made(P1)], { current: P3, previous: P2 });
    expect(without.registry.authenticate(key)).toBeUndefined();
    expect(without.reported).toEqual([]);
  });

  it('ignores a rehash of a key that was since replaced (clients rotate), and a rehash under a pepper not held', () => {
    const replaced = generateClientKey('dify', (size) => Buffer.alloc(size, 9));
    const stale = {
      from: hashClientKey(P1.value, key),
      to: hashClientKey(P2.value, key),
      pepperVersionId: 'pepper-v2',
    };
    const { registry: r } = registry([made(P2, replaced)], { current: P2, previous: P1 }, { dify: stale });
    expect(r.authenticate(key)).toBeUndefined();
    expect(r.authenticate(replaced)?.record.id).toBe('dify');
    const unheld = { ...stale, pepperVersionId: 'pepper-v9' };
    const fallback = registry([made(P1)], { current: P2, previous: P1 }, { dify: unheld });
    expect(fallback.registry.authenticate(key)?.record.id).toBe('dify');
  });

  it('holds a record to the pepper it names: the same key hashed under another held pepper is refused', () => {
    const mislabelled = { id: 'dify', keyHash: hashClientKey(P2.value, key), pepperVersionId: P1.versionId };
    expect(registry([mislabelled], { current: P2, previous: P1 }).registry.authenticate(key)).toBeUndefined();
  });

  it('accepts a record that names no pepper under either, and reports it so the next rotation knows', () => {
    const legacyCurrent = { id: 'dify', keyHash: hashClientKey(P2.value, key) };
    const legacyPrevious = { id: 'tool', keyHash: hashClientKey(P1.value, other) };
    const { registry: r, reported } = registry([legacyCurrent, legacyPrevious], { current: P2, previous: P1 });
    expect(r.authenticate(key)?.record.id).toBe('dify');
    expect(r.authenticate(other)?.record.id).toBe('tool');
    expect(reported).toEqual([
      ['dify', { from: legacyCurrent.keyHash, to: legacyCurrent.keyHash, pepperVersionId: P2.versionId }],
      ['tool', { from: legacyPrevious.keyHash, to: hashClientKey(P2.value, other), pepperVersionId: P2.versionId }],
    ]);
  });

  it('refuses a disabled client under the previous pepper, and reports nothing for it', () => {
    const { registry: r, reported } = registry([{ ...made(P1), disabled: true }], { current: P2, previous: P1 });
    expect(r.authenticate(key)).toBeUndefined();
    expect(reported).toEqual([]);
  });

  it('names the enabled clients a further rotation would lock out', () => {
    const document = documentOf(
      made(P2, key, 'dify'),
      made(P1, other, 'tool'),
      { id: 'legacy', keyHash: 'c'.repeat(64) },
      { ...made(P1, other, 'off'), disabled: true },
      made(P1, other, 'moved'),
    );
    const rehashes = rehashesOf({
      moved: { from: hashClientKey(P1.value, other), to: 'd'.repeat(64), pepperVersionId: P2.versionId },
    });
    expect(pepperRotationBlockers(document, rehashes, P2.versionId)).toEqual(['tool', 'legacy']);
    expect(pepperRotationBlockers(documentOf(made(P2)), rehashesOf(), P2.versionId)).toEqual([]);
  });
});
