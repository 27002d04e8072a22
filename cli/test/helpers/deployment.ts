import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { deploymentStacks } from '../../../contracts/stack-outputs';
import { MOTO_CREDENTIALS, type Moto, startMoto } from '../../../gateway/test/helpers/moto';
import type { Io } from '../../src/io';
import { run } from '../../src/main';

/**
 * A deployed Dify in moto_server, as the CLI finds one: the deployment's four stacks with the
 * outputs a real deployment has (spread over them, as the CLI must read them all), its secrets
 * under a KMS key, and its ECS services. One per test file; each command runs as a user would run it
 * (argv, stdin, stdout, stderr, exit code).
 */

export const REGION = 'us-east-1';
export const PEPPER = 'cli-test-pepper-0123456789abcdefghijklmnopqrstuv';
/** Secret values planted in the deployment: no command may ever print one. */
export const PLANTED = {
  sandbox: 'sandboxSecretValue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH',
  pluginDaemon: 'pluginDaemonSecretValue0123456789abcdefghijklmnopqrstuvwxyzABC',
  secretKey: 'difySecretKeyValue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHI',
  openai: 'sk-planted-openai-key-0123456789abcdefghij',
  cacheToken: 'cacheTokenValue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL',
  dbPassword: 'pluginDbPasswordValue0123456789abcdefghijklmnopqrstuvwxyzABCD',
  masterPassword: 'masterPasswordValue0123456789abcdefghijklmnopqrstuvwxyzABCDEF',
};

/** A service mid-rollout (two deployments, one task of two running) or done. */
export const rolling = (serviceName: string, state: 'IN_PROGRESS' | 'COMPLETED') => ({
  serviceName,
  desiredCount: 2,
  runningCount: state === 'COMPLETED' ? 2 : 1,
  deployments:
    state === 'COMPLETED'
      ? [{ rolloutState: 'COMPLETED' as const }]
      : [{ rolloutState: 'IN_PROGRESS' as const }, { rolloutState: 'COMPLETED' as const }],
});

/** An ECS mock on which every redeploy is accepted and every service has finished rolling. */
export const settledEcs = () => {
  const ecs = mockClient(ECSClient);
  ecs.on(UpdateServiceCommand).resolves({});
  ecs.on(DescribeServicesCommand).callsFake((input: { services: string[] }) => ({
    services: input.services.map((n) => rolling(n, 'COMPLETED')),
  }));
  return ecs;
};

export interface Captured {
  code: number;
  out: string;
  err: string;
}

export interface Deployment {
  readonly moto: Moto;
  readonly clients: { cfn: CloudFormationClient; secrets: SecretsManagerClient; kms: KMSClient; ecs: ECSClient };
  /** Every output of the deployment, whichever stack holds it. */
  readonly outputs: Record<string, string>;
  /** The KMS key the secrets start under. */
  readonly keyA: string;
  /**
   * Runs `dify-aws <argv> --region us-east-1` with `stdin`; fails the test if it printed a planted
   * secret value or the pepper.
   */
  cli(argv: string[], stdin?: string, overrides?: Parameters<typeof run>[2]): Promise<Captured>;
  /** A secret's current (or pending) value, read back from moto. */
  value(arn: string, stage?: 'AWSCURRENT' | 'AWSPENDING'): Promise<string>;
  kmsOf(arn: string): Promise<string | undefined>;
  stop(): Promise<void>;
}

function terminal(stdin: string): Io & { captured: Captured } {
  const captured: Captured = { code: -1, out: '', err: '' };
  return {
    captured,
    out: (line) => (captured.out += `${line}\n`),
    err: (line) => (captured.err += `${line}\n`),
    readSecret: async () => stdin,
    confirm: async () => false,
  };
}

/**
 * With `platform: 'eks'`, Dify's services are Deployments in a cluster (the CLI reaches them through
 * the cluster responder, which a test supplies as the `lambda` client) and only the LLM gateway is an
 * ECS service; the outputs are an EKS deployment's.
 */
export async function startDeployment(options: { platform?: 'ecs' | 'eks' } = {}): Promise<Deployment> {
  const moto = await startMoto();
  const config = { region: REGION, endpoint: moto.endpoint, credentials: MOTO_CREDENTIALS };
  const clients = {
    cfn: new CloudFormationClient(config),
    secrets: new SecretsManagerClient(config),
    kms: new KMSClient(config),
    ecs: new ECSClient(config),
  };
  const outputs: Record<string, string> = {};
  const keyA = (await clients.kms.send(new CreateKeyCommand({ Description: 'secrets key' }))).KeyMetadata!.Arn!;
  const secret = async (name: string, secretString: string) =>
    (await clients.secrets.send(new CreateSecretCommand({ Name: name, SecretString: secretString, KmsKeyId: keyA })))
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
  outputs.GatewayRehashSecretArn = await secret(
    'Dify/rehash',
    JSON.stringify({ uninitialized: true, placeholder: 'GeneratedByCfn1' }),
  );
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
  outputs.SecretRotationFunctionName = 'Dify-SecretRotation';
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
  if (options.platform === 'eks') {
    outputs.Platform = 'eks';
    outputs.EksClusterName = 'Dify';
    outputs.ClusterResponderFunctionName = 'Dify-ClusterResponder';
    for (const role of ['BreakGlass', 'Operator', 'Responder'])
      outputs[`${role}RoleArn`] = `arn:aws:iam::123456789012:role/Dify-${role}`;
  }
  const ecsServices =
    options.platform === 'eks' ? ['Gateway'] : ['Api', 'Worker', 'Beat', 'Sandbox', 'PluginDaemon', 'Gateway'];
  for (const service of ecsServices) {
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
  // Spread over the deployment's stacks, round robin: the CLI must read every one of them.
  const stacks = deploymentStacks('Dify');
  const entries = Object.entries(outputs);
  for (const [index, stackName] of stacks.entries()) {
    const mine = entries.filter((_, position) => position % stacks.length === index);
    const template = {
      Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
      Outputs: Object.fromEntries(mine.map(([k, v]) => [k, { Value: v }])),
    };
    await clients.cfn.send(new CreateStackCommand({ StackName: stackName, TemplateBody: JSON.stringify(template) }));
  }

  const secrets = [...Object.values(PLANTED), PEPPER];
  return {
    moto,
    clients,
    outputs,
    keyA,
    async cli(argv, stdin = '', overrides = {}) {
      const io = terminal(stdin);
      io.captured.code = await run([...argv, '--region', REGION], io, {
        sleep: async () => undefined,
        ...overrides,
        clients: {
          cloudFormation: clients.cfn,
          secrets: clients.secrets,
          kms: clients.kms,
          ecs: clients.ecs,
          ...overrides.clients,
        },
      });
      const printed = `${io.captured.out}\n${io.captured.err}`;
      const leaked = secrets.filter((value) => printed.includes(value));
      if (leaked.length > 0)
        throw new Error(`dify-aws ${argv.join(' ')} printed ${leaked.length} planted secret value(s)`);
      return io.captured;
    },
    value: async (arn, stage = 'AWSCURRENT') =>
      (await clients.secrets.send(new GetSecretValueCommand({ SecretId: arn, VersionStage: stage }))).SecretString!,
    kmsOf: async (arn) => (await clients.secrets.send(new DescribeSecretCommand({ SecretId: arn }))).KmsKeyId,
    async stop() {
      for (const client of Object.values(clients)) client.destroy();
      await moto.stop();
    },
  };
}
