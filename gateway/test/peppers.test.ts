import {
  CreateSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import type { Peppers } from '../../contracts/client-keys';
import { PepperSource } from '../src/peppers';
import { RehashWriter } from '../src/rehash';
import { MOTO_CREDENTIALS, type Moto, startMoto } from './helpers/moto';

/**
 * The pepper's versions as the gateway reads them, and the rehashes it writes, against Secrets
 * Manager's version stages (moto_server on loopback).
 */

const FIRST = 'peppers-test-first-0123456789abcdefghijklmnopq';
const SECOND = 'peppers-test-second-0123456789abcdefghijklmnop';
const hash = (c: string) => c.repeat(64);

describe('the pepper and the rehashes in Secrets Manager', () => {
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

  const lines: Array<Record<string, unknown>> = [];
  const log = (level: string, event: string, fields: Record<string, unknown>) =>
    lines.push({ level, event, ...fields });
  beforeEach(() => lines.splice(0));

  const pepperSource = () => {
    const taken: Peppers[] = [];
    const source = new PepperSource({ client, secretId: 'gw/pepper', accept: (p) => taken.push(p), log });
    return { source, taken };
  };

  it('holds the current version, and the previous one once it rotated, re-reading only when a stage moves', async () => {
    const first = (await client.send(new CreateSecretCommand({ Name: 'gw/pepper', SecretString: FIRST }))).VersionId!;
    const { source, taken } = pepperSource();
    expect(source.loaded).toBe(false);
    await source.refresh();
    expect(source.loaded).toBe(true);
    expect(taken).toEqual([{ current: { versionId: first, value: FIRST } }]);
    await source.refresh();
    expect(taken).toHaveLength(1);
    // As a rotation's finish step does: stage the new version, then move AWSCURRENT to it.
    await client.send(
      new PutSecretValueCommand({
        SecretId: 'gw/pepper',
        SecretString: SECOND,
        ClientRequestToken: 'rotation-token-0000000000000000000000000000',
        VersionStages: ['AWSPENDING'],
      }),
    );
    await source.refresh();
    expect(taken).toHaveLength(1);
    await client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: 'gw/pepper',
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: 'rotation-token-0000000000000000000000000000',
        RemoveFromVersionId: first,
      }),
    );
    await source.refresh();
    expect(taken.at(-1)).toEqual({
      current: { versionId: 'rotation-token-0000000000000000000000000000', value: SECOND },
      previous: { versionId: first, value: FIRST },
    });
    expect(lines.at(-1)).toEqual({
      level: 'info',
      event: 'pepper_loaded',
      versionId: 'rotation-token-0000000000000000000000000000',
      previousVersionId: first,
    });
    expect(JSON.stringify(lines)).not.toContain(FIRST.slice(0, 20));
  });

  it('refuses a pepper shorter than 32 characters and keeps the one it holds; an unreadable secret is logged by error name', async () => {
    const { source, taken } = pepperSource();
    await source.refresh();
    expect(source.loaded).toBe(false);
    expect(lines).toEqual([{ level: 'warn', event: 'pepper_unreadable', error: 'ResourceNotFoundException' }]);
    await client.send(new CreateSecretCommand({ Name: 'gw/pepper', SecretString: FIRST }));
    await source.refresh();
    const short = 'short-pepper-planted';
    const put = await client.send(new PutSecretValueCommand({ SecretId: 'gw/pepper', SecretString: short }));
    await source.refresh();
    expect(taken).toHaveLength(1);
    expect(taken[0].current.value).toBe(FIRST);
    expect(lines.at(-1)).toEqual({
      level: 'warn',
      event: 'pepper_rejected',
      versionId: put.VersionId,
      problem: 'shorter than 32 characters',
    });
    expect(JSON.stringify(lines)).not.toContain(short);
  });

  describe('the rehash writer', () => {
    const peppers: Peppers = {
      current: { versionId: 'v2', value: SECOND },
      previous: { versionId: 'v1', value: FIRST },
    };
    const writer = (held: Peppers = peppers) =>
      new RehashWriter({ client, secretId: 'gw/rehash', peppers: () => held, delayMs: 60_000, log });
    const stored = async () =>
      JSON.parse((await client.send(new GetSecretValueCommand({ SecretId: 'gw/rehash' }))).SecretString!);

    it('merges its rehashes into what other replicas wrote, and drops entries under a pepper no longer held', async () => {
      await client.send(
        new CreateSecretCommand({
          Name: 'gw/rehash',
          SecretString: JSON.stringify({
            version: 1,
            clients: {
              other: { from: hash('a'), to: hash('b'), pepperVersionId: 'v2' },
              old: { from: hash('c'), to: hash('d'), pepperVersionId: 'v0' },
            },
          }),
        }),
      );
      const w = writer();
      w.add('dify', { from: hash('e'), to: hash('f'), pepperVersionId: 'v2' });
      w.add('dify', { from: hash('e'), to: hash('f'), pepperVersionId: 'v2' });
      expect(w.waiting).toBe(1);
      await w.flush();
      w.stop();
      expect(await stored()).toEqual({
        version: 1,
        clients: {
          other: { from: hash('a'), to: hash('b'), pepperVersionId: 'v2' },
          dify: { from: hash('e'), to: hash('f'), pepperVersionId: 'v2' },
        },
      });
      expect(lines).toEqual([{ level: 'info', event: 'client_key_rehashed', client: 'dify', pepperVersionId: 'v2' }]);
      // Sent: the same rehash again is not written again, until a loaded document lacks it.
      w.add('dify', { from: hash('e'), to: hash('f'), pepperVersionId: 'v2' });
      expect(w.waiting).toBe(0);
      w.documentLoaded({ version: 1, clients: {} });
      w.add('dify', { from: hash('e'), to: hash('f'), pepperVersionId: 'v2' });
      expect(w.waiting).toBe(1);
      w.stop();
    });

    it('keeps a rehash whose write failed and writes it at the next flush; replaces a version that is not a rehash document', async () => {
      const w = writer();
      w.add('dify', { from: hash('e'), to: hash('f'), pepperVersionId: 'v2' });
      await w.flush();
      expect(lines).toEqual([
        { level: 'warn', event: 'rehash_write_failed', error: 'ResourceNotFoundException', clients: 1 },
      ]);
      expect(w.waiting).toBe(1);
      await client.send(new CreateSecretCommand({ Name: 'gw/rehash', SecretString: 'not json' }));
      await w.flush();
      w.stop();
      expect(w.waiting).toBe(0);
      expect(lines.map((l) => l.event)).toEqual([
        'rehash_write_failed',
        'rehash_document_replaced',
        'client_key_rehashed',
      ]);
      expect((await stored()).clients.dify.to).toBe(hash('f'));
    });

    it('writes once for a burst of first uses, after its delay', async () => {
      await client.send(new CreateSecretCommand({ Name: 'gw/rehash', SecretString: '{"version":1}' }));
      const w = new RehashWriter({ client, secretId: 'gw/rehash', peppers: () => peppers, delayMs: 20, log });
      for (const id of ['a', 'b', 'c']) w.add(id, { from: hash('1'), to: hash('2'), pepperVersionId: 'v2' });
      const deadline = Date.now() + 10_000;
      while (lines.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      w.stop();
      expect(Object.keys((await stored()).clients).sort()).toEqual(['a', 'b', 'c']);
      expect(lines.map((l) => l.event)).toEqual(['client_key_rehashed', 'client_key_rehashed', 'client_key_rehashed']);
      // One write: the created version and one more.
      const versions = await client.send(new ListSecretVersionIdsCommand({ SecretId: 'gw/rehash' }));
      expect(versions.Versions).toHaveLength(2);
    });
  });
});
