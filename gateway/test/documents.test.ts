import {
  CreateSecretCommand,
  DeleteSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { DocumentSource } from '../src/documents';
import { EMPTY_PROVIDER_POOL, type ProviderPool, providerPoolSchema } from '../../contracts/gateway-documents';
import { MOTO_CREDENTIALS, type Moto, startMoto } from './helpers/moto';

/** A document kept in Secrets Manager (moto_server on loopback), re-read when its version changes. */

const KEY = 'sk-documents-test-key-planted-0000';
const poolWith = (keys: Array<Record<string, unknown>>) =>
  JSON.stringify({ version: 1, providers: { openai: { baseUrl: 'https://api.openai.com', models: ['m'], keys } } });

describe('a document in Secrets Manager', () => {
  let moto: Moto;
  let client: SecretsManagerClient;
  beforeAll(async () => {
    moto = await startMoto();
    client = new SecretsManagerClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: MOTO_CREDENTIALS });
  });
  afterEach(async () => {
    await moto.reset();
  });
  afterAll(async () => {
    client?.destroy();
    await moto?.stop();
  });

  const source = (accept: (doc: ProviderPool) => void = () => undefined) => {
    const lines: string[] = [];
    const taken: ProviderPool[] = [];
    const doc = new DocumentSource({
      client,
      secretId: 'gw/pool',
      name: 'provider key pool',
      schema: providerPoolSchema,
      empty: EMPTY_PROVIDER_POOL,
      accept: (d) => {
        accept(d);
        taken.push(d);
      },
      log: (level, event, fields) => lines.push(JSON.stringify({ level, event, ...fields })),
    });
    return { doc, lines, taken };
  };

  it('reads CloudFormation’s placeholder as the empty document, and nothing else as empty', async () => {
    // The stack generates `{"uninitialized":true,"placeholder":"<random>"}` once; the template holds no
    // document value that could overwrite a live pool.
    await client.send(
      new CreateSecretCommand({ Name: 'gw/pool', SecretString: '{"uninitialized":true,"placeholder":"Xy7"}' }),
    );
    const { doc, taken } = source();
    await doc.refresh();
    expect(taken).toEqual([EMPTY_PROVIDER_POOL]);
    // A document that merely carries the marker besides real content is not the placeholder.
    await client.send(
      new PutSecretValueCommand({
        SecretId: 'gw/pool',
        SecretString: '{"uninitialized":true,"version":1,"providers":{}}',
      }),
    );
    const { doc: again, taken: none, lines } = source();
    await again.refresh();
    expect(none).toEqual([]);
    expect(lines.join('\n')).toContain('document_rejected');
  });

  it('loads the current version, and loads again only when a new version is current', async () => {
    await client.send(new CreateSecretCommand({ Name: 'gw/pool', SecretString: poolWith([{ id: 'a', key: KEY }]) }));
    const { doc, taken, lines } = source();
    expect(doc.loaded).toBe(false);
    await doc.refresh();
    expect(doc.loaded).toBe(true);
    await Promise.all([doc.refresh(), doc.refresh()]);
    expect(taken).toHaveLength(1);
    await client.send(
      new PutSecretValueCommand({
        SecretId: 'gw/pool',
        SecretString: poolWith([
          { id: 'a', key: KEY },
          { id: 'b', key: `${KEY}-b` },
        ]),
      }),
    );
    await doc.refresh();
    expect(taken.map((t) => t.providers.openai!.keys.length)).toEqual([1, 2]);
    expect(lines.filter((l) => l.includes('document_loaded'))).toHaveLength(2);
  });

  it('rejects a version that fails the schema or is not JSON, keeps the previous one, and logs no value', async () => {
    await client.send(new CreateSecretCommand({ Name: 'gw/pool', SecretString: poolWith([{ id: 'a', key: KEY }]) }));
    const { doc, taken, lines } = source();
    await doc.refresh();
    // An id the schema refuses, next to a key value that must not reach the log.
    await client.send(
      new PutSecretValueCommand({ SecretId: 'gw/pool', SecretString: poolWith([{ id: 'Bad Id', key: `${KEY}-x` }]) }),
    );
    await doc.refresh();
    await client.send(new PutSecretValueCommand({ SecretId: 'gw/pool', SecretString: `{"version":1,"key":"${KEY}"` }));
    await doc.refresh();
    expect(taken).toHaveLength(1);
    expect(doc.loaded).toBe(true);
    const rejected = lines.filter((l) => l.includes('document_rejected')).map((l) => JSON.parse(l));
    expect(rejected.map((r) => r.problems[0])).toEqual([
      expect.stringMatching(/^providers\.openai\.keys\.0\.id: an id is 1-32 characters/),
      'not JSON',
    ]);
    expect(lines.join('\n')).not.toContain(KEY);
  });

  it('rejects a version its consumer refuses (a custom detector that does not compile), keeping the previous', async () => {
    await client.send(new CreateSecretCommand({ Name: 'gw/pool', SecretString: poolWith([{ id: 'a', key: KEY }]) }));
    let calls = 0;
    const { doc, lines } = source(() => {
      calls += 1;
      if (calls > 1) throw new Error("custom detector 'x': invalid regular expression");
    });
    await doc.refresh();
    await client.send(new PutSecretValueCommand({ SecretId: 'gw/pool', SecretString: poolWith([]) }));
    await doc.refresh();
    expect(lines.some((l) => l.includes('document_rejected') && l.includes('invalid regular expression'))).toBe(true);
    expect(doc.loaded).toBe(true);
  });

  it('stays unloaded, and says so without detail, while the secret cannot be read', async () => {
    const { doc, lines } = source();
    await doc.refresh();
    expect(doc.loaded).toBe(false);
    expect(JSON.parse(lines[0])).toMatchObject({ level: 'warn', event: 'document_unreadable' });
    await client.send(new CreateSecretCommand({ Name: 'gw/pool', SecretString: poolWith([]) }));
    await doc.refresh();
    expect(doc.loaded).toBe(true);
    await client.send(new DeleteSecretCommand({ SecretId: 'gw/pool', ForceDeleteWithoutRecovery: true }));
    await doc.refresh();
    expect(doc.loaded).toBe(true);
  });
});
