import { DescribeServicesCommand, ECSClient, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { CreateKeyCommand, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import {
  DescribeSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import type { Peppers } from '../../../contracts/client-keys';
import { clientsDocumentSchema } from '../../../contracts/gateway-documents';
import { ClientRegistry } from '../../../gateway/src/clients';
import { PepperSource } from '../../../gateway/src/peppers';
import { ROTATION_STEPS } from '../../../contracts/rotation';
import { MOTO_CREDENTIALS } from '../../../gateway/test/helpers/moto';
import { type Deployment, PLANTED, REGION, rolling, settledEcs, startDeployment } from '../helpers/deployment';
import { enableRotation, type RotationDriver, rotationDriver } from '../helpers/rotation';

/** dify-aws secrets rotate and secrets migrate-kms, end to end against a deployment in moto_server (helpers/deployment.ts). */

describe('dify-aws secrets against moto_server', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment();
  });
  afterAll(async () => {
    await d?.stop();
  });

  describe('secrets rotate', () => {
    const SANDBOX_READERS = ['dify-api', 'dify-worker', 'dify-sandbox'];
    let driver: RotationDriver;
    beforeAll(async () => {
      await enableRotation(d.clients.secrets, d.outputs.SandboxApiKeySecretArn);
      await enableRotation(d.clients.secrets, d.outputs.GatewayPepperSecretArn);
      driver = rotationDriver({
        moto: d.clients.secrets,
        functionName: d.outputs.SecretRotationFunctionName,
        targets: {
          [d.outputs.GatewayPepperSecretArn]: {
            kind: 'client-key-pepper',
            what: "the LLM gateway's client-key pepper",
            consumers: { cluster: '', services: [], workloads: [] },
            clientsSecretArn: d.outputs.GatewayClientsSecretArn,
            rehashSecretArn: d.outputs.GatewayRehashSecretArn,
          },
          [d.outputs.SandboxApiKeySecretArn]: {
            kind: 'shared-key',
            what: 'the sandbox API key',
            consumers: { cluster: 'dify-cluster', services: SANDBOX_READERS, workloads: [] },
          },
        },
      });
    });
    beforeEach(() => {
      driver.stopAfter = undefined;
      driver.failNext = undefined;
      driver.steps.length = 0;
    });
    /** The CLI with Secrets Manager's rotation played by the driver. */
    const viaDriver = (...args: string[]) =>
      d.cli(args, '', {
        // Each wait lasts until the rotation Secrets Manager runs in the background has ended.
        sleep: async () => {
          await driver.running;
        },
        clients: {
          cloudFormation: d.clients.cfn,
          secrets: driver.secrets,
          kms: d.clients.kms,
          ecs: new ECSClient({ region: REGION }),
          lambda: driver.lambda,
        },
      });
    const rotateSandboxKey = (...extra: string[]) => viaDriver('secrets', 'rotate', 'sandbox-key', '--yes', ...extra);
    const stagesOf = async () =>
      (await d.clients.secrets.send(new DescribeSecretCommand({ SecretId: d.outputs.SandboxApiKeySecretArn })))
        .VersionIdsToStages ?? {};

    it('starts the scheduled rotation now, follows it until current, then waits for the readers it restarted', async () => {
      // moto registers Fargate services but runs no tasks, so the rollout is played by a mock ECS.
      const ecs = mockClient(ECSClient);
      ecs.on(UpdateServiceCommand).resolves({});
      ecs
        .on(DescribeServicesCommand)
        .resolvesOnce({ services: SANDBOX_READERS.map((n) => rolling(n, 'IN_PROGRESS')) })
        .resolves({ services: SANDBOX_READERS.map((n) => rolling(n, 'COMPLETED')) });
      try {
        const before = await d.value(d.outputs.SandboxApiKeySecretArn);
        const rotated = await rotateSandboxKey('--json');
        expect(rotated.code).toBe(0);
        const after = await d.value(d.outputs.SandboxApiKeySecretArn);
        expect(after).not.toBe(before);
        expect(after).toMatch(/^[A-Za-z0-9]{64}$/);
        const result = JSON.parse(rotated.out);
        // Beat never reads the sandbox key (it only schedules), so it is not restarted.
        expect(result).toMatchObject({ restarted: ['Api', 'Worker', 'Sandbox'], healthy: true, resumed: false });
        expect((await stagesOf())[result.versionId]).toContain('AWSCURRENT');
        // The four steps of the schedule's function, with the token RotateSecret returned.
        expect(driver.steps).toEqual(ROTATION_STEPS.map((step) => `${step} ${result.versionId}`));
        expect(
          ecs
            .commandCalls(UpdateServiceCommand)
            .map((c) => [c.args[0].input.service, c.args[0].input.forceNewDeployment]),
        ).toEqual(SANDBOX_READERS.map((service) => [service, true]));
        // Progress on stderr, with the time since the wait began (the test's clock does not move).
        expect(rotated.err).toMatch(
          /waiting until the services run new, healthy tasks or pods only: dify-api \(1\/2\), .* \(0 s elapsed\)/,
        );
        expect(rotated.out + rotated.err).not.toContain(after);
      } finally {
        ecs.restore();
      }
    });

    it('says which value is live when the rotation stops, and finishes that same rotation when run again', async () => {
      const ecs = settledEcs();
      try {
        const before = await d.value(d.outputs.SandboxApiKeySecretArn);
        driver.stopAfter = 1;
        const stopped = await rotateSandboxKey('--timeout', '30');
        await driver.running;
        expect(stopped.code).toBe(1);
        const pending = Object.entries(await stagesOf()).find(([, s]) => s.includes('AWSPENDING'))![0];
        expect(stopped.err).toContain(
          `The live value is still the previous version (AWSCURRENT); the new one is staged as AWSPENDING (version ${pending}). Run \`dify-aws secrets rotate sandbox-key\` again to finish it`,
        );
        expect(await d.value(d.outputs.SandboxApiKeySecretArn)).toBe(before);
        const staged = await d.value(d.outputs.SandboxApiKeySecretArn, 'AWSPENDING');

        driver.stopAfter = undefined;
        driver.steps.length = 0;
        const finished = await rotateSandboxKey('--json');
        expect(finished.code).toBe(0);
        expect(JSON.parse(finished.out)).toMatchObject({ versionId: pending, resumed: true });
        // The same token through the function, step by step; the staged value is the one made current.
        expect(driver.steps).toEqual(ROTATION_STEPS.map((step) => `${step} ${pending}`));
        expect(await d.value(d.outputs.SandboxApiKeySecretArn)).toBe(staged);
        expect((await stagesOf())[pending]).toEqual(['AWSCURRENT']);
      } finally {
        ecs.restore();
      }
    });

    it('names the failing step and what is live when the function fails while finishing a rotation', async () => {
      const ecs = settledEcs();
      try {
        driver.stopAfter = 1;
        await rotateSandboxKey('--timeout', '10');
        await driver.running;
        const before = await d.value(d.outputs.SandboxApiKeySecretArn);
        const pending = Object.entries(await stagesOf()).find(([, s]) => s.includes('AWSPENDING'))![0];
        driver.stopAfter = undefined;
        driver.failNext = 'the cluster responder refused restart: Unhandled';
        const failed = await rotateSandboxKey();
        expect(failed.code).toBe(1);
        expect(failed.err).toContain(
          `rotating the sandbox API key failed at createSecret: the cluster responder refused restart: Unhandled. The live value is still the previous version (AWSCURRENT), and the new one stays staged as AWSPENDING (version ${pending}); run the command again to finish`,
        );
        expect(await d.value(d.outputs.SandboxApiKeySecretArn)).toBe(before);
        expect((await rotateSandboxKey()).code).toBe(0);
        expect((await stagesOf())[pending]).toEqual(['AWSCURRENT']);
      } finally {
        ecs.restore();
      }
    });

    it('rotates the gateway pepper with nothing restarted, and a client key made before still signs in', async () => {
      const cli = viaDriver;
      const pepperStages = async () =>
        (await d.clients.secrets.send(new DescribeSecretCommand({ SecretId: d.outputs.GatewayPepperSecretArn })))
          .VersionIdsToStages ?? {};
      const current = async () => Object.entries(await pepperStages()).find(([, s]) => s.includes('AWSCURRENT'))![0];
      const clientsBefore = await d.value(d.outputs.GatewayClientsSecretArn);
      try {
        // A record from before records named their pepper, whose client never signed in since: refused up front.
        await d.clients.secrets.send(
          new PutSecretValueCommand({
            SecretId: d.outputs.GatewayClientsSecretArn,
            SecretString: JSON.stringify({
              version: 1,
              clients: [
                {
                  id: 'legacy',
                  keyHash: 'a'.repeat(64),
                  allowedCidrs: ['10.0.0.0/8'],
                  allowedModels: ['*'],
                  requestsPerMinute: 1,
                  tokensPerMinute: 1,
                },
              ],
            }),
          }),
        );
        const before = await current();
        const refused = await cli('secrets', 'rotate', 'gateway-pepper', '--yes');
        expect(refused.code).toBe(1);
        expect(refused.err).toContain(
          "not rotating the LLM gateway's client-key pepper: client legacy has not signed in since the pepper last changed",
        );
        expect(driver.steps).toEqual([]);
        expect(await current()).toBe(before);

        expect((await cli('clients', 'revoke', '--id', 'legacy', '--yes')).code).toBe(0);
        const created = JSON.parse(
          (await cli('clients', 'create', '--id', 'tool', '--cidrs', '127.0.0.0/8', '--json')).out,
        ) as { key: string };
        const rotated = await cli('secrets', 'rotate', 'gateway-pepper', '--yes', '--json');
        expect(rotated.code).toBe(0);
        const result = JSON.parse(rotated.out);
        expect(result).toMatchObject({ secret: 'gateway-pepper', restarted: [], healthy: true, resumed: false });
        const stages = await pepperStages();
        expect([stages[result.versionId], stages[before]]).toEqual([['AWSCURRENT'], ['AWSPREVIOUS']]);
        // The gateway's own view after the rotation: both versions held, and the key made before accepted.
        let peppers: Peppers | undefined;
        await new PepperSource({
          client: d.clients.secrets,
          secretId: d.outputs.GatewayPepperSecretArn,
          accept: (p) => (peppers = p),
          log: () => undefined,
        }).refresh();
        const records = clientsDocumentSchema.parse(JSON.parse(await d.value(d.outputs.GatewayClientsSecretArn)));
        expect(new ClientRegistry(records, peppers!).authenticate(created.key)?.record.id).toBe('tool');
        expect(rotated.out + rotated.err).not.toContain(peppers!.current.value);
      } finally {
        await d.clients.secrets.send(
          new PutSecretValueCommand({ SecretId: d.outputs.GatewayClientsSecretArn, SecretString: clientsBefore }),
        );
      }
    });

    it('refuses a secret whose rotation is not enabled, saying how to get it', async () => {
      const refused = await d.cli(['secrets', 'rotate', 'plugin-daemon-key', '--yes']);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain(
        'rotation is not enabled on the plugin daemon server key: deploy the stack, which gives it its schedule and function (Dify-SecretRotation)',
      );
      expect(await d.value(d.outputs.PluginDaemonKeySecretArn)).toBe(PLANTED.pluginDaemon);
    });

    it('refuses an unknown name with the list, and a bad --timeout, before reading anything', async () => {
      const unknown = await d.cli(['secrets', 'rotate', 'pepper', '--yes']);
      expect(unknown.code).toBe(2);
      expect(unknown.err).toContain(
        "secrets rotate NAME 'pepper': expected one of secret-key, sandbox-key, plugin-daemon-key, plugin-inner-key, cache-dify-password, cache-plugin-daemon-password, cache-gateway-password, app-db-password, plugin-db-password, gateway-pepper",
      );
      const timeout = await d.cli(['secrets', 'rotate', 'sandbox-key', '--yes', '--timeout', 'soon']);
      expect([timeout.code, timeout.err]).toEqual([
        2,
        expect.stringContaining("--timeout 'soon': expected a whole number of seconds from 1 to 86400"),
      ]);
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
