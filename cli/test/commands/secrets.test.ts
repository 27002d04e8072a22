import { DescribeServicesCommand, ECSClient, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { DescribeUsersCommand, ElastiCacheClient, ModifyUserCommand } from '@aws-sdk/client-elasticache';
import { mockClient } from 'aws-sdk-client-mock';
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { CreateKeyCommand, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { SecretsManagerClient, UpdateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { MOTO_CREDENTIALS } from '../../../gateway/test/helpers/moto';
import { type Deployment, PLANTED, REGION, rolling, settledEcs, startDeployment } from '../helpers/deployment';

/** dify-aws secrets rotate and secrets migrate-kms, end to end against a deployment in moto_server (helpers/deployment.ts). */
/** A Lambda response payload, as the SDK hands it back. */
const payload = (body: unknown) =>
  Buffer.from(JSON.stringify(body)) as unknown as NonNullable<InvokeCommandOutput['Payload']>;

describe('dify-aws secrets against moto_server', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment();
  });
  afterAll(async () => {
    await d?.stop();
  });

  describe('secrets rotate', () => {
    it('rotates the sandbox key and redeploys exactly its readers until they are stable', async () => {
      // moto registers Fargate services but runs no tasks, so the rollout is played by a mock ECS.
      const ecs = mockClient(ECSClient);
      ecs.on(UpdateServiceCommand).resolves({});
      ecs
        .on(DescribeServicesCommand)
        .resolvesOnce({
          services: ['dify-api', 'dify-worker', 'dify-sandbox'].map((n) => rolling(n, 'IN_PROGRESS')),
        })
        .resolves({
          services: ['dify-api', 'dify-worker', 'dify-sandbox'].map((n) => rolling(n, 'COMPLETED')),
        });
      try {
        const before = await d.value(d.outputs.SandboxApiKeySecretArn);
        const rotated = await d.cli(['secrets', 'rotate', 'sandbox-key', '--yes', '--json'], '', {
          clients: {
            cloudFormation: d.clients.cfn,
            secrets: d.clients.secrets,
            kms: d.clients.kms,
            ecs: new ECSClient({ region: REGION }),
          },
        });
        expect(rotated.code).toBe(0);
        const after = await d.value(d.outputs.SandboxApiKeySecretArn);
        expect(after).not.toBe(before);
        expect(after).toMatch(/^[A-Za-z0-9]{64}$/);
        expect(JSON.parse(rotated.out)).toMatchObject({
          // Beat never reads the sandbox key (it only schedules), so it is not redeployed.
          redeployed: ['Api', 'Worker', 'Sandbox'],
          healthy: true,
        });
        expect(
          ecs
            .commandCalls(UpdateServiceCommand)
            .map((c) => [c.args[0].input.service, c.args[0].input.forceNewDeployment]),
        ).toEqual([
          ['dify-api', true],
          ['dify-worker', true],
          ['dify-sandbox', true],
        ]);
        expect(rotated.err).toContain('waiting for dify-api (1/2)');
        expect(rotated.out + rotated.err).not.toContain(after);
      } finally {
        ecs.restore();
      }
    });

    it('rotates Dify’s Valkey user: both passwords while its readers redeploy, then only the new one', async () => {
      const ecs = settledEcs();
      const elastiCache = mockClient(ElastiCacheClient);
      const order: string[] = [];
      elastiCache.on(ModifyUserCommand).callsFake((input) => {
        order.push(`modify ${input.AuthenticationMode.Passwords.length}`);
        return {};
      });
      ecs.on(UpdateServiceCommand).callsFake((input) => {
        order.push(`redeploy ${input.service}`);
        return {};
      });
      elastiCache
        .on(DescribeUsersCommand)
        .resolvesOnce({ Users: [{ Status: 'modifying' }] })
        .resolves({ Users: [{ Status: 'active' }] });
      const old = JSON.parse(await d.value(d.outputs.CacheDifyUserSecretArn)).password;
      try {
        const rotated = await d.cli(['secrets', 'rotate', 'cache-dify-password', '--yes'], '', {
          clients: {
            cloudFormation: d.clients.cfn,
            secrets: d.clients.secrets,
            kms: d.clients.kms,
            ecs: new ECSClient({ region: REGION }),
            elastiCache: new ElastiCacheClient({ region: REGION }),
          },
        });
        expect(rotated.code).toBe(0);
        const stored = JSON.parse(await d.value(d.outputs.CacheDifyUserSecretArn));
        expect(stored.username).toBe('dify');
        expect(stored.password).toMatch(/^[A-Za-z0-9]{64}$/);
        const calls = elastiCache.commandCalls(ModifyUserCommand).map((c) => c.args[0].input);
        expect(calls.map((c) => [c.UserId, c.AuthenticationMode?.Passwords])).toEqual([
          ['dify-dify', [old, stored.password]],
          ['dify-dify', [stored.password]],
        ]);
        // Only Dify's own readers redeploy, between adding the new password and removing the old one.
        expect(order).toEqual([
          'modify 2',
          'redeploy dify-api',
          'redeploy dify-worker',
          'redeploy dify-beat',
          'modify 1',
        ]);
        expect(rotated.out + rotated.err).not.toContain(stored.password);
        expect(rotated.out + rotated.err).not.toContain(old);
      } finally {
        ecs.restore();
        elastiCache.restore();
      }
    });

    /** `secrets rotate plugin-db-password` with moto's stack and secrets, and mocked ECS and Lambda. */
    const rotatePluginDbPassword = () =>
      d.cli(['secrets', 'rotate', 'plugin-db-password', '--yes'], '', {
        clients: {
          cloudFormation: d.clients.cfn,
          secrets: d.clients.secrets,
          kms: d.clients.kms,
          ecs: new ECSClient({ region: REGION }),
          lambda: new LambdaClient({ region: REGION }),
        },
      });

    it('rotates a database role’s password inside the VPC: pending first, the function sets it, then current', async () => {
      const ecs = settledEcs();
      const lambda = mockClient(LambdaClient);
      let pendingAtInvoke: string | undefined;
      lambda.on(InvokeCommand).callsFake(async () => {
        // What the function would set: the AWSPENDING value, while AWSCURRENT still holds the old one.
        pendingAtInvoke = await d.value(d.outputs.DatabasePluginSecretArn, 'AWSPENDING');
        return { StatusCode: 200, Payload: payload({ Role: 'dify_plugin' }) };
      });
      const before = await d.value(d.outputs.DatabasePluginSecretArn);
      try {
        const rotated = await rotatePluginDbPassword();
        expect(rotated.code).toBe(0);
        const stored = JSON.parse(await d.value(d.outputs.DatabasePluginSecretArn));
        expect(stored).toMatchObject({ username: 'dify_plugin', host: 'db.example.internal' });
        expect(stored.password).toMatch(/^[A-Za-z0-9]{64}$/);
        expect(JSON.parse(pendingAtInvoke!).password).toBe(stored.password);
        const [call] = lambda.commandCalls(InvokeCommand);
        expect(call.args[0].input.FunctionName).toBe(d.outputs.DatabaseBootstrapFunctionName);
        const payload = Buffer.from(call.args[0].input.Payload as Uint8Array).toString('utf8');
        expect(JSON.parse(payload)).toEqual({
          Action: 'SetRolePassword',
          MasterSecretArn: d.outputs.DatabaseMasterSecretArn,
          RoleSecretArn: d.outputs.DatabasePluginSecretArn,
        });
        // The new password travels only inside Secrets Manager, never in the invocation.
        expect(payload).not.toContain(stored.password);
        expect(JSON.stringify(stored)).not.toBe(before);
        expect(ecs.commandCalls(UpdateServiceCommand).map((c) => c.args[0].input.service)).toEqual([
          'dify-plugindaemon',
        ]);
        expect(rotated.out + rotated.err).not.toContain(stored.password);
      } finally {
        ecs.restore();
        lambda.restore();
      }
    });

    it('leaves the current secret and the services alone when the function cannot change the password', async () => {
      const ecs = mockClient(ECSClient);
      const lambda = mockClient(LambdaClient);
      lambda.on(InvokeCommand).resolves({
        StatusCode: 200,
        FunctionError: 'Unhandled',
        Payload: payload({ errorMessage: 'role dify_plugin does not exist: deploy the stack first' }),
      });
      const before = await d.value(d.outputs.DatabasePluginSecretArn);
      try {
        const failed = await rotatePluginDbPassword();
        expect(failed.code).toBe(1);
        expect(failed.err).toContain('role dify_plugin does not exist');
        expect(failed.err).toContain('The database and the current secret are unchanged');
        expect(await d.value(d.outputs.DatabasePluginSecretArn)).toBe(before);
        expect(ecs.commandCalls(UpdateServiceCommand)).toEqual([]);
      } finally {
        ecs.restore();
        lambda.restore();
      }
    });

    it('refuses SECRET_KEY with the reason, and changes nothing', async () => {
      const refused = await d.cli(['secrets', 'rotate', 'secret-key', '--yes']);
      expect(refused.code).toBe(1);
      // What a new SECRET_KEY really costs in Dify 1.13.3, and what it does not (provider credentials).
      expect(refused.err).toContain('anonymous visitors of a shared web app get a new identity');
      expect(refused.err).toContain('system OAuth client parameters');
      expect(refused.err).toContain('Stored model provider and plugin credentials are not affected');
      expect(refused.err).toContain('--force-secret-key');
      expect(await d.value(d.outputs.DifySecretKeySecretArn)).toBe(PLANTED.secretKey);
    });
  });

  describe('secrets migrate-kms', () => {
    const stackSecrets = () =>
      Object.entries(d.outputs)
        .filter(([k]) => k.endsWith('SecretArn'))
        .map(([, v]) => v);
    const state = async () =>
      Promise.all(stackSecrets().map(async (arn) => ({ arn, value: await d.value(arn), key: await d.kmsOf(arn) })));

    it('lists what would move with --dry-run and changes nothing', async () => {
      const keyB = (await d.clients.kms.send(new CreateKeyCommand({ Description: 'new secrets key' }))).KeyMetadata!
        .Arn!;
      const before = await state();
      const dry = await d.cli(['secrets', 'migrate-kms', '--to', keyB, '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.out.match(/would move/g)).toHaveLength(stackSecrets().length);
      expect(await state()).toEqual(before);
    });

    it('rolls every changed secret back when a permission error strikes halfway', async () => {
      const keyC = (await d.clients.kms.send(new CreateKeyCommand({ Description: 'key C' }))).KeyMetadata!.Arn!;
      const before = await state();
      // A client that is denied on the third UpdateSecret: two secrets have moved by then.
      let updates = 0;
      const failing = new SecretsManagerClient({
        region: REGION,
        endpoint: d.moto.endpoint,
        credentials: MOTO_CREDENTIALS,
      });
      const send = failing.send.bind(failing);
      failing.send = (async (command: unknown) => {
        if (command instanceof UpdateSecretCommand && command.input.KmsKeyId === keyC && ++updates === 3) {
          throw Object.assign(new Error('User is not authorized to perform kms:Encrypt'), {
            name: 'AccessDeniedException',
          });
        }
        return send(command as never);
      }) as typeof failing.send;
      const result = await d.cli(['secrets', 'migrate-kms', '--to', keyC, '--yes'], '', {
        clients: { cloudFormation: d.clients.cfn, secrets: failing, kms: d.clients.kms, ecs: d.clients.ecs },
      });
      failing.destroy();
      expect(result.code).toBe(1);
      expect(result.err).toContain('every changed secret was rolled back');
      expect(result.out.match(/rolled back/g)).toHaveLength(2);
      expect(await state()).toEqual(before);
    });

    it('refuses a key that cannot be used, before touching anything', async () => {
      const created = (await d.clients.kms.send(new CreateKeyCommand({ Description: 'key pending deletion' })))
        .KeyMetadata!;
      await d.clients.kms.send(new ScheduleKeyDeletionCommand({ KeyId: created.KeyId, PendingWindowInDays: 7 }));
      const keyD = created.Arn!;
      const before = await state();
      const refused = await d.cli(['secrets', 'migrate-kms', '--to', keyD, '--yes']);
      expect([refused.code, refused.err]).toEqual([1, expect.stringContaining('is not enabled')]);
      expect(await state()).toEqual(before);
    });

    it('moves every secret to the new key, reads each back, and prints a table', async () => {
      const keyE = (await d.clients.kms.send(new CreateKeyCommand({ Description: 'key E' }))).KeyMetadata!.Arn!;
      const before = await state();
      const moved = await d.cli(['secrets', 'migrate-kms', '--to', keyE, '--yes']);
      expect(moved.code).toBe(0);
      expect(moved.out.match(/ moved/g)).toHaveLength(stackSecrets().length);
      const after = await state();
      expect(after.map((s) => s.value)).toEqual(before.map((s) => s.value));
      for (const secret of after) expect(secret.key).toBe(keyE);
    });
  });
});
