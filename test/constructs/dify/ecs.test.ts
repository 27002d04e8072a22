import { Stack } from 'aws-cdk-lib';
import { CONTRACT_ADDITIONS, NOT_READ_BY } from '../../../lib/constructs/dify/contract-additions';
import { DIFY_SERVICES, type DifyServiceName, environmentOf } from '../../../lib/constructs/dify/catalog';
import { DEFAULT_CAPABILITIES } from '../../../lib/constructs/runtime/ecs-task';
import { build, type Built, ecsService, VARIANTS } from '../../helpers/synth';
import { logicalId, references, resources, strings } from '../../helpers/template';
import { DIFY_RELEASE } from '../../../contracts/dify-release';

/**
 * Dify's services as the synthesized template has them: what each container is given, what each
 * role may do, how each container is locked down, and how the services deploy and scale. Each test
 * reads the template, not the constructs' intentions.
 */

const CONTRACT = DIFY_RELEASE;

/** Container name in the template -> Dify's service name in the contract. */
const SERVICES: Record<string, DifyServiceName> = {
  api: 'api',
  worker: 'worker',
  beat: 'worker_beat',
  migration: 'migration',
  web: 'web',
  sandbox: 'sandbox',
  'plugin-daemon': 'plugin_daemon',
  'ssrf-proxy': 'ssrf_proxy',
};

interface Container {
  readonly taskDefinitionId: string;
  readonly taskDefinition: Record<string, any>;
  readonly container: Record<string, any>;
}

function containers(built: Built): Record<string, Container> {
  const found: Record<string, Container> = {};
  for (const [id, resource] of resources(built.template, 'AWS::ECS::TaskDefinition')) {
    const definitions = resource.Properties?.ContainerDefinitions as Array<Record<string, any>>;
    expect(definitions).toHaveLength(1);
    // The LLM gateway is ours, not Dify's: test/constructs/llm-gateway.test.ts covers it.
    if (definitions[0].Name === 'llm-gateway') continue;
    found[definitions[0].Name] = {
      taskDefinitionId: id,
      taskDefinition: resource.Properties!,
      container: definitions[0],
    };
  }
  return found;
}

/** The secret (logical id) and JSON field a `ValueFrom` points at. */
function secretSource(valueFrom: unknown): string {
  const refs = JSON.stringify(valueFrom).match(/"Ref":"([A-Za-z0-9]+)"/g) ?? [];
  const field = /:([a-z]+)::/.exec(JSON.stringify(valueFrom))?.[1];
  return `${refs.map((r) => r.slice(7, -1)).join(',')}${field ? `#${field}` : ''}`;
}

const dev = build(VARIANTS.dev);
const prod = build(VARIANTS.prod);
const options = build(VARIANTS['dev-options']);

describe('every Dify task definition, against the pinned release’s contract', () => {
  const all = containers(dev);

  it('has one task definition per service and the migration task', () => {
    expect(Object.keys(all).sort()).toEqual(Object.keys(SERVICES).sort());
  });

  describe.each(Object.entries(SERVICES))('%s', (name, service) => {
    const { container } = all[name];
    const env = CONTRACT.services[service].env;
    const environment = (container.Environment as Array<{ Name: string; Value: unknown }>).map((e) => e.Name);
    const secrets = ((container.Secrets ?? []) as Array<{ Name: string }>).map((s) => s.Name);
    const command = strings(container.Command).join('\n');

    it('sets in environment and secrets only variables the release reads (or documented additions)', () => {
      const additions = CONTRACT_ADDITIONS[service] ?? {};
      expect([...environment, ...secrets].filter((n) => !(n in env) && !(n in additions))).toEqual([]);
    });

    it('sets every variable the release marks required, in the task or in its start command', () => {
      const missing = Object.entries(env)
        .filter(([, variable]) => variable.required)
        .map(([variable]) => variable)
        .filter((v) => !environment.includes(v) && !secrets.includes(v) && !command.includes(`export ${v}=`))
        // Left out on purpose, with where the release reads it instead (contract-additions.ts).
        .filter((v) => !(v in (NOT_READ_BY[service] ?? {})));
      expect(missing).toEqual([]);
    });

    it('keeps every secret-marked variable out of the plain environment', () => {
      expect(environment.filter((n) => env[n]?.secret)).toEqual([]);
    });

    it('injects exactly the secrets the service’s environment asks for, each from its own secret', () => {
      expect(secrets.sort()).toEqual(Object.keys(environmentOf(service, WIRING_PLACEHOLDER).secrets).sort());
    });
  });

  it('feeds each pair of keys that must match from the same secret, in the deployed task definitions', () => {
    const source = (service: string, variable: string) => {
      const name = Object.entries(SERVICES).find(([, s]) => s === service)![0];
      const secret = (all[name].container.Secrets as Array<{ Name: string; ValueFrom: unknown }>).find(
        (s) => s.Name === variable,
      );
      return secret === undefined ? undefined : secretSource(secret.ValueFrom);
    };
    for (const pair of CONTRACT.sharedSecretsMustMatch) {
      const sources = pair.flatMap((entry) => {
        const [services, variable] = entry.split(' ');
        return services.split('/').map((service) => source(service, variable));
      });
      expect(sources.every((s) => s !== undefined)).toBe(true);
      expect(new Set(sources).size).toBe(1);
    }
  });

  it('migrates only in the migration task, never in a long-running replica', () => {
    for (const [name, { container }] of Object.entries(all)) {
      const flag = (container.Environment as Array<{ Name: string; Value: string }>).find(
        (e) => e.Name === 'MIGRATION_ENABLED',
      )?.Value;
      if (['api', 'worker', 'beat'].includes(name)) expect({ name, flag }).toEqual({ name, flag: 'false' });
      if (name === 'migration') expect(flag).toBe('true');
    }
  });

  it('runs images mirrored into the app’s ECR asset repository, for ARM64', () => {
    for (const { container, taskDefinition } of Object.values(all)) {
      expect(JSON.stringify(container.Image)).toContain('.dkr.ecr.');
      expect(taskDefinition.RuntimePlatform).toEqual({ CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' });
    }
  });
});

/** A service's secret names do not depend on the wiring values; any wiring will do. */
const WIRING_PLACEHOLDER = {
  publicUrl: 'https://x',
  region: 'r',
  serviceDomain: 'dify.internal',
  credentialsAddress: '169.254.170.2',
  databaseHost: 'd',
  databasePort: 5432,
  appDatabase: 'dify',
  pluginDatabase: 'dify_plugin',
  cacheHost: 'c',
  cachePort: 6379,
  bucketName: 'b',
  pluginBucketName: 'p',
  uploadFileSizeLimitMb: 15,
};

describe('hardening of every container', () => {
  // Why: a container escape starts from root, a writable root filesystem or a kept capability; each
  // exception is written down in the catalogue row's hardening with its reason and must match what
  // is deployed.
  const all = containers(dev);

  it.each(Object.entries(SERVICES))('%s is locked down as its catalogue row claims', (name, service) => {
    const { container, taskDefinition } = all[name];
    const claim = DIFY_SERVICES[service].hardening;
    expect(container.Privileged).toBe(false);
    expect(container.User).toBe(claim.user);
    if (claim.user === undefined) expect(claim.runsAsRootBecause?.length).toBeGreaterThan(40);
    else expect(Number(claim.user)).toBeGreaterThan(0);
    expect(container.ReadonlyRootFilesystem).toBe(claim.readonlyRootFilesystem);
    if (!claim.readonlyRootFilesystem) expect(claim.writableRootBecause?.length).toBeGreaterThan(40);
    const dropped: string[] = container.LinuxParameters.Capabilities.Drop;
    const kept = claim.keepCapabilities.map((k) => k.capability as string);
    if (kept.length === 0) expect(dropped).toEqual(['ALL']);
    else expect([...dropped, ...kept].sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
    expect(container.LinuxParameters.Capabilities.Add ?? []).toEqual([]);
    for (const k of claim.keepCapabilities) expect(k.why.length).toBeGreaterThan(10);
    // Writable paths are exactly the declared volumes, each an ephemeral task volume.
    expect((container.MountPoints ?? []).map((m: { ContainerPath: string }) => m.ContainerPath).sort()).toEqual(
      claim.writablePaths.map((p) => p.path).sort(),
    );
    for (const volume of taskDefinition.Volumes ?? []) expect(Object.keys(volume)).toEqual(['Name']);
  });

  it('runs the api, worker, beat, migration and web as uid 1001, never as root', () => {
    for (const name of ['api', 'worker', 'beat', 'migration', 'web']) expect(all[name].container.User).toBe('1001');
  });

  it('gives every container a memory hard limit equal to its task’s, a health check and an init process', () => {
    for (const { container, taskDefinition } of Object.values(all)) {
      expect(container.Memory).toBe(Number(taskDefinition.Memory));
      expect(container.HealthCheck.Command[0]).toBe('CMD');
      expect(container.HealthCheck.Command.length).toBeGreaterThan(2);
      expect(container.LinuxParameters.InitProcessEnabled).toBe(true);
    }
  });

  it('checks health without going through a proxy', () => {
    for (const { container } of Object.values(all)) {
      const check = container.HealthCheck.Command.join(' ');
      expect(check).toMatch(/127\.0\.0\.1|\/proc\//);
      if (check.includes('urllib')) expect(check).toContain('ProxyHandler({})');
      if (check.includes('curl')) expect(check).toContain('--noproxy');
    }
  });

  it('sends each service’s logs to its own KMS-encrypted log group with a retention', () => {
    const groups = new Set<string>();
    for (const { container } of Object.values(all)) {
      const group = container.LogConfiguration.Options['awslogs-group'].Ref as string;
      groups.add(group);
      const properties = dev.template.toJSON().Resources[group].Properties;
      expect(properties.KmsKeyId).toBeDefined();
      expect(properties.RetentionInDays).toBeGreaterThan(0);
      expect(properties.LogGroupName).toMatch(/^\/dify\/Dify\/ecs\//);
    }
    expect(groups.size).toBe(Object.keys(all).length);
  });

  it('turns read-only root filesystems off only while ECS Exec is on, and says so', () => {
    const withExec = containers(options);
    for (const { container } of Object.values(withExec)) expect(container.ReadonlyRootFilesystem).toBe(false);
    for (const [, service] of resources(options.template, 'AWS::ECS::Service')) {
      expect(service.Properties?.EnableExecuteCommand).toBe(true);
    }
    for (const [, service] of resources(dev.template, 'AWS::ECS::Service')) {
      expect(service.Properties?.EnableExecuteCommand).toBe(false);
    }
  });
});

describe('task and execution roles', () => {
  type Statement = { Effect: string; Action: string | string[]; Resource: unknown };
  const statementsOf = (built: Built, roleId: string): Statement[] =>
    resources(built.template, 'AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties?.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
      .flatMap(([, p]) => (p.Properties?.PolicyDocument as { Statement: Statement[] }).Statement);
  const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
  const resourceList = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);
  const DATA_ACTION = /^(s3|kms|secretsmanager|dynamodb|rds|rds-data|elasticache|bedrock):/;

  const roles = (built: Built) =>
    Object.entries(containers(built)).flatMap(([name, { taskDefinition }]) => [
      { name, kind: 'task', id: (taskDefinition.TaskRoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0] },
      {
        name,
        kind: 'execution',
        id: (taskDefinition.ExecutionRoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0],
      },
    ]);

  it.each([
    ['dev', dev],
    ['prod', prod],
    ['dev-options', options],
  ] as const)('never puts * on a data action (%s)', (_variant, built) => {
    for (const role of roles(built)) {
      for (const statement of statementsOf(built, role.id)) {
        if (!actions(statement).some((a) => DATA_ACTION.test(a))) continue;
        expect({ role, resources: resourceList(statement) }).toEqual({
          role,
          resources: expect.not.arrayContaining(['*']),
        });
      }
    }
  });

  it('lets each execution role read only the secrets its own container is injected with, and task roles none', () => {
    const all = containers(dev);
    for (const role of roles(dev)) {
      const read = statementsOf(dev, role.id)
        .filter((s) => actions(s).some((a) => a.startsWith('secretsmanager:')))
        .flatMap((s) => resourceList(s).map((r) => JSON.stringify(r).match(/"Ref":"([A-Za-z0-9]+)"/)![1]))
        .sort();
      if (role.kind === 'task') {
        expect({ role, read }).toEqual({ role, read: [] });
        continue;
      }
      const injected = [
        ...new Set(
          ((all[role.name].container.Secrets ?? []) as Array<{ ValueFrom: unknown }>).map(
            (s) => secretSource(s.ValueFrom).split('#')[0],
          ),
        ),
      ].sort();
      expect({ role, read: [...new Set(read)] }).toEqual({ role, read: injected });
    }
  });

  const usersOf = (construct: Parameters<typeof logicalId>[0]) =>
    roles(dev)
      .filter((role) => statementsOf(dev, role.id).some((s) => references(s.Resource, logicalId(construct))))
      .map((role) => `${role.name} ${role.kind}`)
      .sort();

  it('lets only the api and worker use Dify’s storage bucket, and only the plugin daemon its own', () => {
    // Why: the plugin daemon runs third-party plugin code as root; Dify's bucket holds every
    // tenant's RSA private key (privkeys/<tenant>/private.pem), which it must never read.
    expect(usersOf(dev.stacks.storage.bucket)).toEqual(['api task', 'worker task']);
    expect(usersOf(dev.stacks.storage.pluginBucket)).toEqual(['plugin-daemon task']);
    expect(usersOf(dev.stacks.keys.data)).toEqual(['api task', 'plugin-daemon task', 'worker task']);
    const daemon = containers(dev)['plugin-daemon'].container.Environment as Array<{ Name: string; Value: unknown }>;
    expect(daemon.find((e) => e.Name === 'PLUGIN_STORAGE_OSS_BUCKET')?.Value).toEqual({
      Ref: logicalId(dev.stacks.storage.pluginBucket),
    });
  });

  it('grants Bedrock only when models are listed, only to the plugin daemon, and only on those models', () => {
    const bedrock = (built: Built) =>
      roles(built).flatMap((role) =>
        statementsOf(built, role.id)
          .filter((s) => actions(s).some((a) => a.startsWith('bedrock:')))
          .map((s) => ({ role: `${role.name} ${role.kind}`, resources: strings(s.Resource).join('') })),
      );
    expect(bedrock(dev)).toEqual([]);
    const granted = bedrock(options);
    expect(granted.map((g) => g.role)).toEqual(['plugin-daemon task']);
    expect(granted[0].resources).toContain('foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0');
    expect(granted[0].resources).toContain('inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0');
    expect(granted[0].resources).toContain(':bedrock:*::foundation-model/anthropic.claude-3-7-sonnet-20250219-v1:0');
  });
});

describe('deployment and capacity', () => {
  const serviceOf = (built: Built, name: string) => {
    const task = containers(built)[name].taskDefinitionId;
    const found = resources(built.template, 'AWS::ECS::Service').find(([, s]) =>
      references(s.Properties?.TaskDefinition, task),
    );
    return found!;
  };

  it('rolls every service with a circuit breaker and rollback, keeping it serving; beat never runs twice', () => {
    for (const name of Object.keys(SERVICES).filter((n) => n !== 'migration')) {
      const [, service] = serviceOf(prod, name);
      const config = service.Properties?.DeploymentConfiguration as Record<string, any>;
      expect(config.DeploymentCircuitBreaker).toEqual({ Enable: true, Rollback: true });
      if (name === 'beat') {
        expect([config.MinimumHealthyPercent, config.MaximumPercent, service.Properties?.DesiredCount]).toEqual([
          0, 100, 1,
        ]);
      } else expect([config.MinimumHealthyPercent, config.MaximumPercent]).toEqual([100, 200]);
      expect((service.Properties?.NetworkConfiguration as any).AwsvpcConfiguration.AssignPublicIp).toBe('DISABLED');
    }
  });

  it('gives the api at least 1 vCPU and 4 GiB in prod (pitfall 10)', () => {
    const { taskDefinition } = containers(prod).api;
    expect(Number(taskDefinition.Cpu)).toBeGreaterThanOrEqual(1024);
    expect(Number(taskDefinition.Memory)).toBeGreaterThanOrEqual(4096);
  });

  it('scales the api and web on CPU and on requests per target, and the worker on CPU', () => {
    const policies = resources(prod.template, 'AWS::ApplicationAutoScaling::ScalingPolicy').map(([, p]) => {
      const config = p.Properties?.TargetTrackingScalingPolicyConfiguration as any;
      const target = resources(prod.template, 'AWS::ApplicationAutoScaling::ScalableTarget').find(([id]) =>
        references(p.Properties?.ScalingTargetId, id),
      )!;
      const service = resources(prod.template, 'AWS::ECS::Service').find(
        ([id]) =>
          strings(target[1].Properties?.ResourceId).includes(id) || references(target[1].Properties?.ResourceId, id),
      )!;
      const name =
        Object.entries(containers(prod)).find(([, c]) =>
          references(service[1].Properties?.TaskDefinition, c.taskDefinitionId),
        )?.[0] ?? 'llm-gateway';
      return `${name} ${config.PredefinedMetricSpecification.PredefinedMetricType}`;
    });
    expect(policies.sort()).toEqual([
      'api ALBRequestCountPerTarget',
      'api ECSServiceAverageCPUUtilization',
      'llm-gateway ECSServiceAverageCPUUtilization',
      'web ALBRequestCountPerTarget',
      'web ECSServiceAverageCPUUtilization',
      'worker ECSServiceAverageCPUUtilization',
    ]);
  });

  it('puts the worker on Fargate Spot only when asked, in dev', () => {
    const strategy = (built: Built) => serviceOf(built, 'worker')[1].Properties?.CapacityProviderStrategy;
    expect(strategy(dev)).toBeUndefined();
    expect(strategy(options)).toEqual([{ CapacityProvider: 'FARGATE_SPOT', Weight: 1 }]);
    expect(serviceOf(options, 'api')[1].Properties?.CapacityProviderStrategy).toBeUndefined();
  });

  it('runs the migration task before the api, worker and beat roll, with its newest revision', () => {
    const migration = logicalId(
      dev.stacks.main.node.findChild('Dify').node.findChild('Migration').node.findChild('Resource'),
    );
    const resource = dev.template.toJSON().Resources[migration];
    expect(resource.Type).toBe('Custom::DifyMigration');
    expect(references(resource.Properties.TaskDefinition, containers(dev).migration.taskDefinitionId)).toBe(true);
    for (const name of ['api', 'worker', 'beat']) {
      expect({ name, dependsOn: serviceOf(dev, name)[1].DependsOn }).toEqual({
        name,
        dependsOn: expect.arrayContaining([migration]),
      });
    }
    // The migration fetches the RDS CA through the proxy: it starts once the proxy's service is up,
    // through the stack order when the proxy lives in an earlier stack.
    const proxy = ecsService(dev, 'ssrf_proxy').service;
    const runner = Stack.of(dev.stacks.main.node.findChild('Dify'));
    if (Stack.of(proxy) === runner) expect(resource.DependsOn).toEqual(expect.arrayContaining([logicalId(proxy)]));
    else expect(runner.dependencies).toContain(Stack.of(proxy));
  });

  it('registers the api, sandbox, plugin daemon, SSRF proxy and LLM gateway in dify.internal, and nothing else', () => {
    const names = resources(dev.template, 'AWS::ServiceDiscovery::Service')
      .map(([, s]) => s.Properties?.Name)
      .sort();
    expect(names).toEqual(['api', 'llm-gateway', 'plugin-daemon', 'sandbox', 'ssrf-proxy']);
    dev.template.hasResourceProperties('AWS::ServiceDiscovery::PrivateDnsNamespace', { Name: 'dify.internal' });
  });

  it('turns Container Insights on for the cluster', () => {
    const [[, cluster]] = resources(dev.template, 'AWS::ECS::Cluster');
    expect(cluster.Properties?.ClusterSettings).toEqual([{ Name: 'containerInsights', Value: 'enhanced' }]);
  });

  it('outputs the log group names, service names and cluster, and no secret values', () => {
    const outputs = dev.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    for (const id of ['Api', 'Worker', 'Beat', 'Web', 'Sandbox', 'PluginDaemon', 'SsrfProxy', 'MigrationTask']) {
      expect(outputs[`${id}LogGroupName`]).toBeDefined();
    }
    for (const id of ['Api', 'Worker', 'Beat', 'Web', 'Sandbox', 'PluginDaemon', 'SsrfProxy']) {
      expect(outputs[`${id}ServiceName`]).toBeDefined();
    }
    expect(outputs.ClusterName).toBeDefined();
    expect(JSON.stringify(outputs)).not.toContain('resolve:secretsmanager');
  });
});

describe('INIT_PASSWORD', () => {
  it('is generated as its own secret of exactly the 30 characters Dify’s /install accepts, and read by the api alone', () => {
    const { template, stacks } = build({ profile: 'dev' });
    const secret = logicalId(stacks.secrets.initPassword);
    const [, resource] = resources(template, 'AWS::SecretsManager::Secret').find(([id]) => id === secret)!;
    expect(resource.Properties?.GenerateSecretString).toMatchObject({ PasswordLength: 30, ExcludePunctuation: true });
    const readers = resources(template, 'AWS::ECS::TaskDefinition').filter(([, task]) =>
      JSON.stringify(task.Properties?.ContainerDefinitions).includes(secret),
    );
    expect(readers).toHaveLength(1);
    expect(JSON.stringify(readers[0][1].Properties?.ContainerDefinitions)).toContain('"Name":"INIT_PASSWORD"');
  });
});
