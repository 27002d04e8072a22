import { createHmac } from 'node:crypto';
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { type Deployment, PEPPER, startDeployment } from '../helpers/deployment';

/** dify-aws clients, end to end against a deployment in moto_server (helpers/deployment.ts). */
describe('dify-aws clients against moto_server', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment();
  });
  afterAll(async () => {
    await d?.stop();
  });

  describe('clients', () => {
    let firstKey = '';
    it('creates a client whose key is printed once and stored only as its keyed hash', async () => {
      const created = await d.cli([
        'clients',
        'create',
        '--id',
        'dify',
        '--cidrs',
        '10.0.4.0/22,10.0.8.0/22',
        '--models',
        'gpt-4o-mini',
        '--json',
      ]);
      expect(created.code).toBe(0);
      firstKey = JSON.parse(created.out).key;
      expect(firstKey).toMatch(/^dgw_dify_[A-Za-z0-9_-]{43}$/);
      const stored = await d.value(d.outputs.GatewayClientsSecretArn);
      expect(stored).not.toContain(firstKey);
      const [record] = JSON.parse(stored).clients;
      expect(record.keyHash).toBe(createHmac('sha256', PEPPER).update(firstKey).digest('hex'));
      // Made under the pepper's current version, which the record names: the gateway checks it under that one.
      const pepper = await d.clients.secrets.send(
        new DescribeSecretCommand({ SecretId: d.outputs.GatewayPepperSecretArn }),
      );
      const current = Object.entries(pepper.VersionIdsToStages!).find(([, s]) => s.includes('AWSCURRENT'))![0];
      expect(record.pepperVersionId).toBe(current);
      expect(record).toMatchObject({ allowedCidrs: ['10.0.4.0/22', '10.0.8.0/22'], allowedModels: ['gpt-4o-mini'] });
      const listed = await d.cli(['clients', 'list']);
      expect(listed.out).toContain('dify');
      expect(listed.out).not.toContain(firstKey);
    });

    it('rotates a client’s key and revokes a client', async () => {
      const rotated = await d.cli(['clients', 'rotate', '--id', 'dify', '--yes', '--json']);
      const newKey = JSON.parse(rotated.out).key;
      expect(newKey).not.toBe(firstKey);
      const [record] = JSON.parse(await d.value(d.outputs.GatewayClientsSecretArn)).clients;
      expect(record.keyHash).toBe(createHmac('sha256', PEPPER).update(newKey).digest('hex'));
      expect((await d.cli(['clients', 'revoke', '--id', 'dify', '--yes'])).code).toBe(0);
      expect(JSON.parse(await d.value(d.outputs.GatewayClientsSecretArn)).clients[0].disabled).toBe(true);
    });

    it('refuses a bad id and a missing network list, with exit code 2', async () => {
      expect(await d.cli(['clients', 'create', '--id', 'Bad_Id', '--cidrs', '10.0.0.0/8'])).toMatchObject({
        code: 2,
        err: expect.stringContaining("--id 'Bad_Id': expected 1-32 characters"),
      });
      expect(await d.cli(['clients', 'create', '--id', 'other'])).toMatchObject({
        code: 2,
        err: expect.stringContaining('clients create: --cidrs a,b is required: the networks the client calls from'),
      });
    });
  });
});
