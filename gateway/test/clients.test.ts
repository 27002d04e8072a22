import { generateClientKey, hashClientKey } from '../../contracts/client-keys';
import { ClientRegistry, clientOf, modelAllowed, policyOf, sourceAllowed } from '../src/clients';
import { CLIENT_KEY_PATTERN, clientSchema, clientsDocumentSchema } from '../../contracts/gateway-documents';

/** Client keys, as the operator CLI creates them and the gateway checks them. */

const PEPPER = 'unit-pepper-0123456789abcdefghijklmnopqrstu';

const registryOf = (clients: Array<Record<string, unknown>>) =>
  new ClientRegistry(clientsDocumentSchema.parse({ version: 1, clients }), PEPPER);

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
