import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  ECSClient,
  DescribeTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import { DescribeUsersCommand, ElastiCacheClient, ModifyUserCommand } from '@aws-sdk/client-elasticache';
import { mockClient } from 'aws-sdk-client-mock';
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import {
  ApplicationAutoScalingClient,
  DescribeScalableTargetsCommand,
  RegisterScalableTargetCommand,
} from '@aws-sdk/client-application-auto-scaling';
import { CreateKeyCommand, KMSClient, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import { createHmac } from 'node:crypto';
import { MOTO_CREDENTIALS, type Moto, startMoto } from '../../gateway/test/helpers/moto';
import { run } from '../src/main';
import type { Io } from '../src/io';

/**
 * The CLI end to end against moto_server: a CloudFormation stack with the outputs a deployed stack
 * has, its secrets under a KMS key, and its ECS services. Each command runs as a user would run it
 * (argv, stdin, stdout, stderr, exit code), and the test reads the results back from moto.
 */

const REGION = 'us-east-1';
const PEPPER = 'cli-test-pepper-0123456789abcdefghijklmnopqrstuv';
const PLANTED = {
  sandbox: 'sandboxSecretValue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH',
  pluginDaemon: 'pluginDaemonSecretValue0123456789abcdefghijklmnopqrstuvwxyzABC',
  secretKey: 'difySecretKeyValue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHI',
  openai: 'sk-planted-openai-key-0123456789abcdefghij',
  cacheToken: 'cacheTokenValue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL',
  dbPassword: 'pluginDbPasswordValue0123456789abcdefghijklmnopqrstuvwxyzABCD',
  masterPassword: 'masterPasswordValue0123456789abcdefghijklmnopqrstuvwxyzABCDEF',
};

/** A service mid-rollout (two deployments, one task of two running) or done. */
const rolling = (serviceName: string, state: 'IN_PROGRESS' | 'COMPLETED') => ({
  serviceName,
  desiredCount: 2,
  runningCount: state === 'COMPLETED' ? 2 : 1,
  deployments:
    state === 'COMPLETED'
      ? [{ rolloutState: 'COMPLETED' as const }]
      : [{ rolloutState: 'IN_PROGRESS' as const }, { rolloutState: 'COMPLETED' as const }],
});

interface Captured {
  code: number;
  out: string;
  err: string;
}

describe('dify-aws against moto_server', () => {
  let moto: Moto;
  const clients: { cfn?: CloudFormationClient; secrets?: SecretsManagerClient; kms?: KMSClient; ecs?: ECSClient } = {};
  const outputs: Record<string, string> = {};
  let keyA: string;
  const everything: string[] = [];

  const io = (stdin = ''): Io & { out: (l: string) => void; captured: Captured } => {
    const captured: Captured = { code: -1, out: '', err: '' };
    return {
      captured,
      out: (line) => (captured.out += `${line}\n`),
      err: (line) => (captured.err += `${line}\n`),
      readSecret: async () => stdin,
      confirm: async () => false,
    };
  };

  async function cli(argv: string[], stdin = '', overrides: Parameters<typeof run>[2] = {}): Promise<Captured> {
    const terminal = io(stdin);
    terminal.captured.code = await run([...argv, '--region', REGION], terminal, {
      clients: { cloudFormation: clients.cfn, secrets: clients.secrets, kms: clients.kms, ecs: clients.ecs },
      sleep: async () => undefined,
      ...overrides,
    });
    everything.push(terminal.captured.out, terminal.captured.err);
    return terminal.captured;
  }

  /** A Lambda response payload, as the SDK hands it back. */
  const payload = (body: unknown) =>
    Buffer.from(JSON.stringify(body)) as unknown as NonNullable<InvokeCommandOutput['Payload']>;
  const value = async (arn: string, stage: 'AWSCURRENT' | 'AWSPENDING' = 'AWSCURRENT') =>
    (await clients.secrets!.send(new GetSecretValueCommand({ SecretId: arn, VersionStage: stage }))).SecretString!;
  const kmsOf = async (arn: string) =>
    (await clients.secrets!.send(new DescribeSecretCommand({ SecretId: arn }))).KmsKeyId;

  beforeAll(async () => {
    moto = await startMoto();
    const config = { region: REGION, endpoint: moto.endpoint, credentials: MOTO_CREDENTIALS };
    clients.cfn = new CloudFormationClient(config);
    clients.secrets = new SecretsManagerClient(config);
    clients.kms = new KMSClient(config);
    clients.ecs = new ECSClient(config);
    keyA = (await clients.kms.send(new CreateKeyCommand({ Description: 'secrets key' }))).KeyMetadata!.Arn!;
    const secret = async (name: string, secretString: string) =>
      (await clients.secrets!.send(new CreateSecretCommand({ Name: name, SecretString: secretString, KmsKeyId: keyA })))
        .ARN!;
    // As a new stack leaves it: CloudFormation's generated placeholder, which the CLI reads as the empty pool.
    outputs.GatewayProviderKeysSecretArn = await secret(
      'Dify/pool',
      JSON.stringify({ uninitialized: true, placeholder: 'GeneratedByCfn0' }),
    );
    outputs.GatewayClientsSecretArn = await secret(
      'Dify/clients',
      JSON.stringify({ version: 1, clients: [], customDetectors: [] }),
    );
    outputs.GatewayPepperSecretArn = await secret('Dify/pepper', PEPPER);
    outputs.SandboxApiKeySecretArn = await secret('Dify/sandbox', PLANTED.sandbox);
    outputs.PluginDaemonKeySecretArn = await secret('Dify/plugin-daemon', PLANTED.pluginDaemon);
    outputs.DifySecretKeySecretArn = await secret('Dify/secret-key', PLANTED.secretKey);
    outputs.CacheDifyUserSecretArn = await secret(
      'Dify/cache-dify',
      JSON.stringify({ username: 'dify', password: PLANTED.cacheToken }),
    );
    outputs.CacheDifyUserId = 'dify-dify';
    outputs.CacheReplicationGroupId = 'dify-cache';
    outputs.DatabasePluginSecretArn = await secret(
      'Dify/plugin-db',
      JSON.stringify({ username: 'dify_plugin', password: PLANTED.dbPassword, host: 'db.example.internal' }),
    );
    outputs.DatabaseClusterArn = 'arn:aws:rds:us-east-1:123456789012:cluster:dify-aurora';
    outputs.DatabaseBootstrapFunctionName = 'Dify-DatabaseBootstrapFunction';
    outputs.DatabaseMasterSecretArn = await secret(
      'Dify/master',
      JSON.stringify({ username: 'postgres', password: PLANTED.masterPassword }),
    );
    await clients.ecs.send(new CreateClusterCommand({ clusterName: 'dify-cluster' }));
    await clients.ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'dify',
        containerDefinitions: [{ name: 'app', image: 'app', memory: 512 }],
      }),
    );
    outputs.ClusterName = 'dify-cluster';
    outputs.MigrationTaskFamily = 'Dify-migration';
    outputs.MigrationTaskSecurityGroupId = 'sg-0123456789abcdef0';
    outputs.PrivateSubnetIds = 'subnet-0aaaaaaaaaaaaaaaa,subnet-0bbbbbbbbbbbbbbbb';
    for (const service of ['Api', 'Worker', 'Beat', 'Sandbox', 'PluginDaemon', 'Gateway']) {
      await clients.ecs.send(
        new CreateServiceCommand({
          cluster: 'dify-cluster',
          serviceName: `dify-${service.toLowerCase()}`,
          taskDefinition: 'dify',
          desiredCount: 1,
        }),
      );
      outputs[`${service}ServiceName`] = `dify-${service.toLowerCase()}`;
    }
    const template = {
      Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
      Outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { Value: v }])),
    };
    await clients.cfn.send(new CreateStackCommand({ StackName: 'Dify', TemplateBody: JSON.stringify(template) }));
  });

  afterAll(async () => {
    for (const client of Object.values(clients)) client?.destroy();
    await moto?.stop();
  });

  describe('keys', () => {
    it('adds a key read from stdin, as a new secret version, and never prints it', async () => {
      const added = await cli(
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
      const pool = JSON.parse(await value(outputs.GatewayProviderKeysSecretArn));
      expect(pool.providers.openai.keys[0]).toMatchObject({
        id: 'openai-1',
        key: PLANTED.openai,
        weight: 1,
        enabled: true,
      });
      const listed = await cli(['keys', 'list']);
      expect(listed.out).toContain('openai-1');
      expect(listed.out).toContain('enabled');
    });

    it('refuses a key of the wrong shape, a duplicate, and an unknown provider, saying what is expected', async () => {
      const shape = await cli(
        ['keys', 'add', '--provider', 'anthropic', '--base-url', 'https://api.anthropic.com', '--models', 'claude'],
        'sk-not-anthropic-000000000000000',
      );
      expect([shape.code, shape.err]).toEqual([1, expect.stringContaining("'sk-ant-'")]);
      const duplicate = await cli(['keys', 'add', '--provider', 'openai'], PLANTED.openai);
      expect(duplicate.err).toContain("already in the pool as 'openai-1'");
      const unknown = await cli(['keys', 'add', '--provider', 'gemini'], PLANTED.openai);
      expect(unknown.err).toContain('--provider: expected one of openai, anthropic, azure-openai, custom');
      // A provider key is never sent in clear: the gateway takes https base URLs only.
      const clear = await cli(
        ['keys', 'add', '--provider', 'custom', '--base-url', 'http://llm.example.com/v1', '--models', 'llama'],
        'sk-custom-000000000000000000000',
      );
      expect([clear.code, clear.err]).toEqual([1, expect.stringContaining('--base-url: expected an https:// URL')]);
    });

    it('disables, enables and removes a key (removal asks, --yes answers)', async () => {
      expect((await cli(['keys', 'disable', '--provider', 'openai', '--id', 'openai-1'])).code).toBe(0);
      expect(JSON.parse(await value(outputs.GatewayProviderKeysSecretArn)).providers.openai.keys[0].enabled).toBe(
        false,
      );
      expect((await cli(['keys', 'enable', '--provider', 'openai', '--id', 'openai-1'])).code).toBe(0);
      const refused = await cli(['keys', 'remove', '--provider', 'openai', '--id', 'openai-1']);
      expect([refused.code, refused.err.trim()]).toEqual([3, 'dify-aws: cancelled']);
      expect(JSON.parse(await value(outputs.GatewayProviderKeysSecretArn)).providers.openai.keys).toHaveLength(1);
      expect((await cli(['keys', 'remove', '--provider', 'openai', '--id', 'openai-1', '--yes'])).code).toBe(0);
      expect(JSON.parse(await value(outputs.GatewayProviderKeysSecretArn)).providers.openai.keys).toHaveLength(0);
    });
  });

  describe('clients', () => {
    let firstKey = '';
    it('creates a client whose key is printed once and stored only as its keyed hash', async () => {
      const created = await cli([
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
      const stored = await value(outputs.GatewayClientsSecretArn);
      expect(stored).not.toContain(firstKey);
      const [record] = JSON.parse(stored).clients;
      expect(record.keyHash).toBe(createHmac('sha256', PEPPER).update(firstKey).digest('hex'));
      expect(record).toMatchObject({ allowedCidrs: ['10.0.4.0/22', '10.0.8.0/22'], allowedModels: ['gpt-4o-mini'] });
      const listed = await cli(['clients', 'list']);
      expect(listed.out).toContain('dify');
      expect(listed.out).not.toContain(firstKey);
    });

    it('rotates a client’s key and revokes a client', async () => {
      const rotated = await cli(['clients', 'rotate', '--id', 'dify', '--yes', '--json']);
      const newKey = JSON.parse(rotated.out).key;
      expect(newKey).not.toBe(firstKey);
      const [record] = JSON.parse(await value(outputs.GatewayClientsSecretArn)).clients;
      expect(record.keyHash).toBe(createHmac('sha256', PEPPER).update(newKey).digest('hex'));
      expect((await cli(['clients', 'revoke', '--id', 'dify', '--yes'])).code).toBe(0);
      expect(JSON.parse(await value(outputs.GatewayClientsSecretArn)).clients[0].disabled).toBe(true);
    });

    it('refuses a bad id and a missing network list', async () => {
      expect((await cli(['clients', 'create', '--id', 'Bad_Id', '--cidrs', '10.0.0.0/8'])).err).toContain(
        '--id: expected 1-32 characters',
      );
      expect((await cli(['clients', 'create', '--id', 'other'])).err).toContain('--cidrs: expected the networks');
    });
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
        const before = await value(outputs.SandboxApiKeySecretArn);
        const rotated = await cli(['secrets', 'rotate', 'sandbox-key', '--yes', '--json'], '', {
          clients: {
            cloudFormation: clients.cfn,
            secrets: clients.secrets,
            kms: clients.kms,
            ecs: new ECSClient({ region: REGION }),
          },
        });
        expect(rotated.code).toBe(0);
        const after = await value(outputs.SandboxApiKeySecretArn);
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
      const ecs = mockClient(ECSClient);
      ecs.on(UpdateServiceCommand).resolves({});
      ecs.on(DescribeServicesCommand).callsFake((input: { services: string[] }) => ({
        services: input.services.map((n) => rolling(n, 'COMPLETED')),
      }));
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
      const old = JSON.parse(await value(outputs.CacheDifyUserSecretArn)).password;
      try {
        const rotated = await cli(['secrets', 'rotate', 'cache-dify-password', '--yes'], '', {
          clients: {
            cloudFormation: clients.cfn,
            secrets: clients.secrets,
            kms: clients.kms,
            ecs: new ECSClient({ region: REGION }),
            elastiCache: new ElastiCacheClient({ region: REGION }),
          },
        });
        expect(rotated.code).toBe(0);
        const stored = JSON.parse(await value(outputs.CacheDifyUserSecretArn));
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
      cli(['secrets', 'rotate', 'plugin-db-password', '--yes'], '', {
        clients: {
          cloudFormation: clients.cfn,
          secrets: clients.secrets,
          kms: clients.kms,
          ecs: new ECSClient({ region: REGION }),
          lambda: new LambdaClient({ region: REGION }),
        },
      });

    it('rotates a database role’s password inside the VPC: pending first, the function sets it, then current', async () => {
      const ecs = mockClient(ECSClient);
      ecs.on(UpdateServiceCommand).resolves({});
      ecs.on(DescribeServicesCommand).callsFake((input: { services: string[] }) => ({
        services: input.services.map((n) => rolling(n, 'COMPLETED')),
      }));
      const lambda = mockClient(LambdaClient);
      let pendingAtInvoke: string | undefined;
      lambda.on(InvokeCommand).callsFake(async () => {
        // What the function would set: the AWSPENDING value, while AWSCURRENT still holds the old one.
        pendingAtInvoke = await value(outputs.DatabasePluginSecretArn, 'AWSPENDING');
        return { StatusCode: 200, Payload: payload({ Role: 'dify_plugin' }) };
      });
      const before = await value(outputs.DatabasePluginSecretArn);
      try {
        const rotated = await rotatePluginDbPassword();
        expect(rotated.code).toBe(0);
        const stored = JSON.parse(await value(outputs.DatabasePluginSecretArn));
        expect(stored).toMatchObject({ username: 'dify_plugin', host: 'db.example.internal' });
        expect(stored.password).toMatch(/^[A-Za-z0-9]{64}$/);
        expect(JSON.parse(pendingAtInvoke!).password).toBe(stored.password);
        const [call] = lambda.commandCalls(InvokeCommand);
        expect(call.args[0].input.FunctionName).toBe(outputs.DatabaseBootstrapFunctionName);
        const payload = Buffer.from(call.args[0].input.Payload as Uint8Array).toString('utf8');
        expect(JSON.parse(payload)).toEqual({
          Action: 'SetRolePassword',
          MasterSecretArn: outputs.DatabaseMasterSecretArn,
          RoleSecretArn: outputs.DatabasePluginSecretArn,
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
      const before = await value(outputs.DatabasePluginSecretArn);
      try {
        const failed = await rotatePluginDbPassword();
        expect(failed.code).toBe(1);
        expect(failed.err).toContain('role dify_plugin does not exist');
        expect(failed.err).toContain('The database and the current secret are unchanged');
        expect(await value(outputs.DatabasePluginSecretArn)).toBe(before);
        expect(ecs.commandCalls(UpdateServiceCommand)).toEqual([]);
      } finally {
        ecs.restore();
        lambda.restore();
      }
    });

    it('refuses SECRET_KEY with the reason, and changes nothing', async () => {
      const refused = await cli(['secrets', 'rotate', 'secret-key', '--yes']);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain('every stored credential becomes unreadable');
      expect(refused.err).toContain('--force-secret-key');
      expect(await value(outputs.DifySecretKeySecretArn)).toBe(PLANTED.secretKey);
    });
  });

  describe('secrets migrate-kms', () => {
    const stackSecrets = () =>
      Object.entries(outputs)
        .filter(([k]) => k.endsWith('SecretArn'))
        .map(([, v]) => v);
    const state = async () =>
      Promise.all(stackSecrets().map(async (arn) => ({ arn, value: await value(arn), key: await kmsOf(arn) })));

    it('lists what would move with --dry-run and changes nothing', async () => {
      const keyB = (await clients.kms!.send(new CreateKeyCommand({ Description: 'new secrets key' }))).KeyMetadata!
        .Arn!;
      const before = await state();
      const dry = await cli(['secrets', 'migrate-kms', '--to', keyB, '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.out.match(/would move/g)).toHaveLength(stackSecrets().length);
      expect(await state()).toEqual(before);
    });

    it('rolls every changed secret back when a permission error strikes halfway', async () => {
      const keyC = (await clients.kms!.send(new CreateKeyCommand({ Description: 'key C' }))).KeyMetadata!.Arn!;
      const before = await state();
      // A client that is denied on the third UpdateSecret: two secrets have moved by then.
      let updates = 0;
      const failing = new SecretsManagerClient({
        region: REGION,
        endpoint: moto.endpoint,
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
      const result = await cli(['secrets', 'migrate-kms', '--to', keyC, '--yes'], '', {
        clients: { cloudFormation: clients.cfn, secrets: failing, kms: clients.kms, ecs: clients.ecs },
      });
      failing.destroy();
      expect(result.code).toBe(1);
      expect(result.err).toContain('every changed secret was rolled back');
      expect(result.out.match(/rolled back/g)).toHaveLength(2);
      expect(await state()).toEqual(before);
    });

    it('refuses a key that cannot be used, before touching anything', async () => {
      const created = (await clients.kms!.send(new CreateKeyCommand({ Description: 'key pending deletion' })))
        .KeyMetadata!;
      await clients.kms!.send(new ScheduleKeyDeletionCommand({ KeyId: created.KeyId, PendingWindowInDays: 7 }));
      const keyD = created.Arn!;
      const before = await state();
      const refused = await cli(['secrets', 'migrate-kms', '--to', keyD, '--yes']);
      expect([refused.code, refused.err]).toEqual([1, expect.stringContaining('is not enabled')]);
      expect(await state()).toEqual(before);
    });

    it('moves every secret to the new key, reads each back, and prints a table', async () => {
      const keyE = (await clients.kms!.send(new CreateKeyCommand({ Description: 'key E' }))).KeyMetadata!.Arn!;
      const before = await state();
      const moved = await cli(['secrets', 'migrate-kms', '--to', keyE, '--yes']);
      expect(moved.code).toBe(0);
      expect(moved.out.match(/ moved/g)).toHaveLength(stackSecrets().length);
      const after = await state();
      expect(after.map((s) => s.value)).toEqual(before.map((s) => s.value));
      for (const secret of after) expect(secret.key).toBe(keyE);
    });
  });

  describe('revoke-sessions', () => {
    it('deletes the console refresh tokens in a one-off task inside the VPC and reports its exit', async () => {
      const ecs = mockClient(ECSClient);
      ecs
        .on(RunTaskCommand)
        .resolves({ tasks: [{ taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/dify-cluster/abc' }] });
      ecs
        .on(DescribeTasksCommand)
        .resolvesOnce({ tasks: [{ lastStatus: 'RUNNING' }] })
        .resolves({ tasks: [{ lastStatus: 'STOPPED', containers: [{ name: 'migration', exitCode: 0 }] }] });
      try {
        const result = await cli(['revoke-sessions', '--yes'], '', {
          clients: {
            cloudFormation: clients.cfn,
            secrets: clients.secrets,
            kms: clients.kms,
            ecs: new ECSClient({ region: REGION }),
          },
        });
        expect(result.code).toBe(0);
        const input = ecs.commandCalls(RunTaskCommand)[0].args[0].input;
        expect(input).toMatchObject({
          cluster: 'dify-cluster',
          taskDefinition: 'Dify-migration',
          launchType: 'FARGATE',
          networkConfiguration: {
            awsvpcConfiguration: {
              subnets: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
              securityGroups: ['sg-0123456789abcdef0'],
              assignPublicIp: 'DISABLED',
            },
          },
        });
        const script = input.overrides!.containerOverrides![0].command![0];
        expect(script).toContain("'refresh_token:', 'account_refresh_token:'");
        expect(script).toContain("ssl_cert_reqs='required'");
        expect(script).not.toContain(PLANTED.cacheToken);
        expect(result.out).toContain('ACCESS_TOKEN_EXPIRE_MINUTES');
      } finally {
        ecs.restore();
      }
    });

    it('fails with the exit code when the task fails', async () => {
      const ecs = mockClient(ECSClient);
      ecs
        .on(RunTaskCommand)
        .resolves({ tasks: [{ taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/dify-cluster/def' }] });
      ecs.on(DescribeTasksCommand).resolves({
        tasks: [
          {
            lastStatus: 'STOPPED',
            stoppedReason: 'Essential container exited',
            containers: [{ name: 'migration', exitCode: 1 }],
          },
        ],
      });
      try {
        const result = await cli(['revoke-sessions', '--yes'], '', {
          clients: {
            cloudFormation: clients.cfn,
            secrets: clients.secrets,
            kms: clients.kms,
            ecs: new ECSClient({ region: REGION }),
          },
        });
        expect([result.code, result.err]).toEqual([
          1,
          expect.stringContaining('exited with 1 (Essential container exited)'),
        ]);
      } finally {
        ecs.restore();
      }
    });
  });

  describe('lockdown', () => {
    const names = ['dify-api', 'dify-worker', 'dify-beat', 'dify-sandbox', 'dify-plugindaemon', 'dify-gateway'];
    const desired = async () =>
      Object.fromEntries(
        (
          (await clients.ecs!.send(new DescribeServicesCommand({ cluster: 'dify-cluster', services: names })))
            .services ?? []
        ).map((s) => [s.serviceName, s.desiredCount]),
      );

    it('scales every service to zero with autoscaling held there, and --undo restores exactly what was', async () => {
      const scaling = new ApplicationAutoScalingClient({
        region: REGION,
        endpoint: moto.endpoint,
        credentials: MOTO_CREDENTIALS,
      });
      await scaling.send(
        new RegisterScalableTargetCommand({
          ServiceNamespace: 'ecs',
          ScalableDimension: 'ecs:service:DesiredCount',
          ResourceId: 'service/dify-cluster/dify-api',
          MinCapacity: 2,
          MaxCapacity: 10,
        }),
      );
      const target = async () =>
        (
          await scaling.send(
            new DescribeScalableTargetsCommand({
              ServiceNamespace: 'ecs',
              ResourceIds: ['service/dify-cluster/dify-api'],
            }),
          )
        ).ScalableTargets![0];
      const before = await desired();
      try {
        const refused = await cli(['lockdown'], '', { scaling } as never);
        expect(refused.code).toBe(3);
        expect(await desired()).toEqual(before);

        const locked = await cli(['lockdown', '--yes', '--json'], '', { scaling } as never);
        expect(locked.code).toBe(0);
        expect(Object.values(await desired()).every((count) => count === 0)).toBe(true);
        expect(await target()).toMatchObject({
          MinCapacity: 0,
          MaxCapacity: 0,
          SuspendedState: { DynamicScalingOutSuspended: true },
        });
        // A second lockdown must not overwrite what the first remembered.
        expect((await cli(['lockdown', '--yes'], '', { scaling } as never)).out).toContain('already locked down');

        const undone = await cli(['lockdown', '--undo', '--json'], '', { scaling } as never);
        expect(undone.code).toBe(0);
        expect(await desired()).toEqual(before);
        expect(await target()).toMatchObject({
          MinCapacity: 2,
          MaxCapacity: 10,
          SuspendedState: { DynamicScalingOutSuspended: false },
        });
        expect(JSON.parse(undone.out).services.every((s: { result: string }) => s.result === 'restored')).toBe(true);
      } finally {
        scaling.destroy();
      }
    });
  });

  describe('every command', () => {
    it('names a missing stack and exits non-zero', async () => {
      const missing = await cli(['keys', 'list', '--stack', 'NoSuchStack']);
      expect(missing.code).toBe(1);
      expect(missing.err).toContain('stack NoSuchStack not found');
    });

    it('says how to give credentials when there are none', async () => {
      const noCredentials = new CloudFormationClient({
        region: REGION,
        endpoint: moto.endpoint,
        credentials: async () => {
          throw Object.assign(new Error('Could not load credentials from any providers'), {
            name: 'CredentialsProviderError',
          });
        },
      });
      const result = await cli(['keys', 'list'], '', { clients: { cloudFormation: noCredentials } });
      noCredentials.destroy();
      expect([result.code, result.err]).toEqual([
        1,
        expect.stringContaining('no AWS credentials found; set AWS_PROFILE'),
      ]);
    });

    it('names an unknown command or option', async () => {
      expect((await cli(['launch'])).err).toContain("unknown command 'launch'");
      const option = await cli(['keys', 'list', '--colour']);
      expect([option.code, option.err]).toEqual([2, expect.stringContaining("Unknown option '--colour'")]);
    });

    it('never printed a secret value (planted ones, the pepper, the provider key)', () => {
      const output = everything.join('\n');
      for (const planted of [...Object.values(PLANTED), PEPPER]) expect(output).not.toContain(planted);
    });
  });
});
