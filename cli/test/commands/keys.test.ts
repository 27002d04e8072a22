import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { type Deployment, PLANTED, startDeployment } from '../helpers/deployment';

/** dify-aws keys, end to end against a deployment in moto_server (helpers/deployment.ts). */
describe('dify-aws keys against moto_server', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment();
  });
  afterAll(async () => {
    await d?.stop();
  });

  describe('keys', () => {
    it('adds a key read from stdin, as a new secret version, and never prints it', async () => {
      const added = await d.cli(
        [
          'keys',
          'add',
          '--provider',
          'openai',
          '--id',
          'openai-1',
          '--base-url',
          'https://api.openai.com',
          '--models',
          'gpt-4o-mini',
          '--json',
        ],
        PLANTED.openai,
      );
      expect(added.code).toBe(0);
      expect(JSON.parse(added.out)).toMatchObject({
        provider: 'openai',
        id: 'openai-1',
        fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{12}$/),
      });
      const pool = JSON.parse(await d.value(d.outputs.GatewayProviderKeysSecretArn));
      expect(pool.providers.openai.keys[0]).toMatchObject({
        id: 'openai-1',
        key: PLANTED.openai,
        weight: 1,
        enabled: true,
      });
      const listed = await d.cli(['keys', 'list']);
      expect(listed.out).toContain('openai-1');
      expect(listed.out).toContain('enabled');
    });

    it('lists each key’s age in days since it was added, and says when the pool does not record it', async () => {
      const arn = d.outputs.GatewayProviderKeysSecretArn;
      const original = await d.value(arn);
      const pool = JSON.parse(original);
      const addedAt = Date.parse(pool.providers.openai.keys[0].addedAt);
      expect(Number.isNaN(addedAt)).toBe(false);
      // A key put in the pool by hand, without addedAt.
      pool.providers.openai.keys.push({
        id: 'by-hand',
        key: 'sk-by-hand-0000000000000000000000',
        weight: 1,
        enabled: true,
      });
      await d.clients.secrets.send(new PutSecretValueCommand({ SecretId: arn, SecretString: JSON.stringify(pool) }));
      try {
        const later = new Date(addedAt + 200 * 86_400_000 + 3_600_000);
        const listed = await d.cli(['keys', 'list', '--json'], '', { now: () => later });
        expect(JSON.parse(listed.out).map((r: { id: string; ageDays: unknown }) => [r.id, r.ageDays])).toEqual([
          ['openai-1', 200],
          ['by-hand', 'unknown'],
        ]);
        expect(listed.out).not.toContain('sk-by-hand');
      } finally {
        await d.clients.secrets.send(new PutSecretValueCommand({ SecretId: arn, SecretString: original }));
      }
    });

    it('refuses a key of the wrong shape, a duplicate, and an unknown provider, saying what is expected', async () => {
      const shape = await d.cli(
        ['keys', 'add', '--provider', 'anthropic', '--base-url', 'https://api.anthropic.com', '--models', 'claude'],
        'sk-not-anthropic-000000000000000',
      );
      expect([shape.code, shape.err]).toEqual([1, expect.stringContaining("'sk-ant-'")]);
      const duplicate = await d.cli(['keys', 'add', '--provider', 'openai'], PLANTED.openai);
      expect(duplicate.err).toContain("already in the pool as 'openai-1'");
      const unknown = await d.cli(['keys', 'add', '--provider', 'gemini'], PLANTED.openai);
      expect([unknown.code, unknown.err]).toEqual([
        2,
        expect.stringContaining("--provider 'gemini': expected one of openai, anthropic, azure-openai, custom"),
      ]);
      // A provider key is never sent in clear: the gateway takes https base URLs only.
      const clear = await d.cli(
        ['keys', 'add', '--provider', 'custom', '--base-url', 'http://llm.example.com/v1', '--models', 'llama'],
        'sk-custom-000000000000000000000',
      );
      expect([clear.code, clear.err]).toEqual([
        2,
        expect.stringContaining("--base-url 'http://llm.example.com/v1': expected an https:// URL"),
      ]);
    });

    it('disables, enables and removes a key (removal asks, --yes answers)', async () => {
      expect((await d.cli(['keys', 'disable', '--provider', 'openai', '--id', 'openai-1'])).code).toBe(0);
      expect(JSON.parse(await d.value(d.outputs.GatewayProviderKeysSecretArn)).providers.openai.keys[0].enabled).toBe(
        false,
      );
      expect((await d.cli(['keys', 'enable', '--provider', 'openai', '--id', 'openai-1'])).code).toBe(0);
      const refused = await d.cli(['keys', 'remove', '--provider', 'openai', '--id', 'openai-1']);
      expect([refused.code, refused.err.trim()]).toEqual([3, 'dify-aws: cancelled']);
      expect(JSON.parse(await d.value(d.outputs.GatewayProviderKeysSecretArn)).providers.openai.keys).toHaveLength(1);
      expect((await d.cli(['keys', 'remove', '--provider', 'openai', '--id', 'openai-1', '--yes'])).code).toBe(0);
      expect(JSON.parse(await d.value(d.outputs.GatewayProviderKeysSecretArn)).providers.openai.keys).toHaveLength(0);
    });
  });
});
