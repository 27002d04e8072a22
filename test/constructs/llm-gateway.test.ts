import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  clientsDocumentSchema,
  EMPTY_CLIENTS_DOCUMENT,
  EMPTY_PROVIDER_POOL,
  EMPTY_REHASH_DOCUMENT,
  providerPoolSchema,
  rehashDocumentSchema,
  storedDocument,
  UNINITIALIZED_TEMPLATE,
} from '../../contracts/gateway-documents';
import { repoPath } from '../../lib/paths';
import { build, task, type Built, VARIANTS } from '../helpers/synth';
import { ingressRulesOf, logicalId, references, resources } from '../helpers/template';

/**
 * The LLM gateway's deployment: who can reach it, what it can read, and how its container runs.
 * Its runtime behaviour is tested in gateway/test against real servers.
 */
describe('LLM gateway on ECS', () => {
  const dev = build({ profile: 'dev' });
  const prod = build(VARIANTS.prod);
  const { gateway, edge } = dev.stacks;
  const json = dev.template.toJSON();
  const taskDefinition = () => {
    const found = resources(dev.template, 'AWS::ECS::TaskDefinition').find(
      ([, t]) => (t.Properties?.ContainerDefinitions as Array<{ Name: string }>)[0].Name === 'llm-gateway',
    );
    return found![1].Properties as Record<string, any>;
  };
  const container = () => taskDefinition().ContainerDefinitions[0] as Record<string, any>;

  it('is reachable on 8080 from Dify’s api, worker and plugin daemon only, never from the load balancer', () => {
    // Why: the gateway spends provider money on behalf of whoever calls it; only Dify's services may.
    const sources = ingressRulesOf(dev.template, logicalId(gateway.service.securityGroup)).map((rule) => [
      (rule.SourceSecurityGroupId as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0],
      rule.FromPort,
      rule.ToPort,
    ]);
    const expected = [task(dev, 'api'), task(dev, 'worker'), task(dev, 'plugin_daemon')].map((s) => [
      logicalId(s.securityGroup),
      8080,
      8080,
    ]);
    expect(sources.sort()).toEqual(expected.sort());
    const lb = logicalId(edge.loadBalancer.connections.securityGroups[0]);
    expect(sources.some(([source]) => source === lb)).toBe(false);
    for (const [, group] of resources(dev.template, 'AWS::ElasticLoadBalancingV2::TargetGroup')) {
      expect(group.Properties?.Port).not.toBe(8080);
    }
  });

  it('runs in the private subnets with no public address', () => {
    const [, service] = resources(dev.template, 'AWS::ECS::Service').find(([id]) =>
      id.startsWith('LlmGatewayService'),
    )!;
    const network = (service.Properties?.NetworkConfiguration as any).AwsvpcConfiguration;
    expect(network.AssignPublicIp).toBe('DISABLED');
    const privateSubnets = dev.stacks.network.vpc.privateSubnets.map((s) => logicalId(s));
    for (const subnet of network.Subnets) expect(privateSubnets).toContain(subnet.Ref);
  });

  const secretsBy = (built: Built, roleId: string, action = 'secretsmanager:') =>
    resources(built.template, 'AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties?.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
      .flatMap(
        ([, p]) => (p.Properties?.PolicyDocument as any).Statement as Array<{ Action: unknown; Resource: unknown }>,
      )
      .filter((s) => JSON.stringify(s.Action).includes(action))
      .flatMap((s) => [...JSON.stringify(s.Resource).matchAll(/"Ref":"([A-Za-z0-9]+)"/g)].map((m) => m[1]))
      .sort();
  const readableSecrets = (built: Built, roleId: string) => secretsBy(built, roleId);

  // Changed with the pepper's rotation: the gateway reads the pepper's current and previous versions
  // itself (no restart on rotation), so the pepper moved from the execution role to the task role.
  it('lets its task role read only its own documents and the pepper, and write only its rehashes; its execution role only its Valkey user', () => {
    const taskRole = taskDefinition().TaskRoleArn['Fn::GetAtt'][0];
    const executionRole = taskDefinition().ExecutionRoleArn['Fn::GetAtt'][0];
    expect([...new Set(readableSecrets(dev, taskRole))]).toEqual(
      [
        logicalId(gateway.clients),
        logicalId(gateway.providerKeys),
        logicalId(gateway.pepper),
        logicalId(gateway.rehash),
      ].sort(),
    );
    expect([...new Set(secretsBy(dev, taskRole, 'secretsmanager:PutSecretValue'))]).toEqual([
      logicalId(gateway.rehash),
    ]);
    expect([...new Set(readableSecrets(dev, executionRole))]).toEqual([
      logicalId(dev.stacks.cache.users.gateway.secret),
    ]);
  });

  it('is told where its documents and its pepper are by ARN; only its Valkey user arrives through ECS secret injection', () => {
    const environment = Object.fromEntries(
      (container().Environment as Array<{ Name: string; Value: unknown }>).map((e) => [e.Name, e.Value]),
    );
    expect(references(environment.PROVIDER_KEYS_SECRET_ID, logicalId(gateway.providerKeys))).toBe(true);
    expect(references(environment.CLIENTS_SECRET_ID, logicalId(gateway.clients))).toBe(true);
    expect(references(environment.PEPPER_SECRET_ID, logicalId(gateway.pepper))).toBe(true);
    expect(references(environment.REHASH_SECRET_ID, logicalId(gateway.rehash))).toBe(true);
    expect(environment).toMatchObject({ PORT: '8080', REDIS_TLS: 'true' });
    expect(Object.keys(environment)).not.toEqual(expect.arrayContaining(['CLIENT_KEY_PEPPER']));
    // Provider keys go to public addresses only, unless the deployment names a private network.
    expect(environment.PROVIDER_ALLOWED_PRIVATE_CIDRS).toBeUndefined();
    const secrets = (container().Secrets as Array<{ Name: string; ValueFrom: unknown }>).map((s) => s.Name).sort();
    // Its own ElastiCache user: name and password, both from its secret.
    expect(secrets).toEqual(['REDIS_PASSWORD', 'REDIS_USERNAME']);
  });

  it('may send provider keys into the private networks the deployment names, and no others', () => {
    const options = build(VARIANTS['dev-options']);
    const [, definition] = resources(options.template, 'AWS::ECS::TaskDefinition').find(
      ([, t]) => (t.Properties?.ContainerDefinitions as Array<{ Name: string }>)[0].Name === 'llm-gateway',
    )!;
    const environment = (definition.Properties?.ContainerDefinitions as any)[0].Environment as Array<{
      Name: string;
      Value: unknown;
    }>;
    expect(environment.find((e) => e.Name === 'PROVIDER_ALLOWED_PRIVATE_CIDRS')?.Value).toBe('10.20.0.0/16');
  });

  it('creates its documents once as a placeholder that the gateway reads as empty, so the template owns no document', () => {
    // Why: the template is readable by anyone who can read the stack, and a document value in it
    // would be written over the live key pool and client records whenever it changed. Provider
    // keys and client hashes are written by the operator CLI, never at synth.
    for (const [secret, schema, empty] of [
      [gateway.providerKeys, providerPoolSchema, EMPTY_PROVIDER_POOL],
      [gateway.clients, clientsDocumentSchema, EMPTY_CLIENTS_DOCUMENT],
      [gateway.rehash, rehashDocumentSchema, EMPTY_REHASH_DOCUMENT],
    ] as const) {
      const properties = json.Resources[logicalId(secret)].Properties;
      expect(properties.SecretString).toBeUndefined();
      const generate = properties.GenerateSecretString;
      expect(generate).toMatchObject({
        SecretStringTemplate: UNINITIALIZED_TEMPLATE,
        GenerateStringKey: 'placeholder',
      });
      // What CloudFormation would store, read the way the gateway and the CLI read it.
      const placeholder = { ...JSON.parse(generate.SecretStringTemplate), placeholder: 'GeneratedByCfn0' };
      expect((schema as typeof providerPoolSchema).parse(storedDocument(placeholder, empty))).toEqual(empty);
    }
    expect(json.Resources[logicalId(gateway.pepper)].Properties.GenerateSecretString.PasswordLength).toBe(64);
  });

  it('runs its own image as uid 1000 with a read-only root filesystem and no capabilities', () => {
    const c = container();
    expect(c.User).toBe('1000');
    expect(c.ReadonlyRootFilesystem).toBe(true);
    expect(c.Privileged).toBe(false);
    expect(c.LinuxParameters.Capabilities.Drop).toEqual(['ALL']);
    expect(JSON.stringify(c.Image)).toContain('.dkr.ecr.');
    expect(c.HealthCheck.Command.join(' ')).toContain('/healthz');
    expect(taskDefinition().RuntimePlatform.CpuArchitecture).toBe('ARM64');
  });

  it('is built by a multi-stage Dockerfile from images pinned by tag and digest, ending as a non-root user', () => {
    const dockerfile = readFileSync(repoPath('gateway/Dockerfile'), 'utf8');
    const from = [...dockerfile.matchAll(/^FROM\s+(?:--platform=\S+\s+)?(\S+)/gm)].map((m) => m[1]);
    expect(from.length).toBeGreaterThanOrEqual(2);
    // The tag for humans, the index digest for the registry: a moved tag cannot change the build.
    for (const image of from) expect(image).toMatch(/:\d+\.\d+\.\d+[^@]*@sha256:[0-9a-f]{64}$/);
    const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    expect(dockerfile.lastIndexOf('USER')).toBeGreaterThan(dockerfile.lastIndexOf('FROM'));
  });

  it('bundles from exactly what the Docker build context holds (/.dockerignore), as the Dockerfile runs it', () => {
    // Why: the image is built only at deploy time, on the operator's machine; a build that reaches for
    // a file the context excludes would fail there, long after CI passed.
    const rules = readFileSync(repoPath('.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const included = (path: string) => {
      let keep = true;
      for (const rule of rules) {
        const negated = rule.startsWith('!');
        const pattern = (negated ? rule.slice(1) : rule).replace(/\/$/, '');
        if (pattern === '*' || path === pattern || path.startsWith(`${pattern}/`)) keep = negated;
      }
      return keep;
    };
    const context = mkdtempSync(join(tmpdir(), 'gateway-context-'));
    try {
      const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], {
        cwd: repoPath('.'),
        encoding: 'utf8',
      })
        .split('\n')
        .filter((f) => f !== '' && included(f));
      expect(files).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'gateway/src/main.ts']));
      expect(files.some((f) => f.startsWith('gateway/test/') || f.startsWith('test/') || f.startsWith('lib/'))).toBe(
        false,
      );
      for (const file of files) {
        mkdirSync(dirname(join(context, file)), { recursive: true });
        copyFileSync(repoPath(file), join(context, file));
      }
      // The image runs `npm ci` first; the repository's node_modules stands in for it here.
      symlinkSync(repoPath('node_modules'), join(context, 'node_modules'));
      const command = /^RUN (node gateway\/build\.mjs.*)$/m
        .exec(readFileSync(repoPath('gateway/Dockerfile'), 'utf8'))![1]
        .split(' ');
      execFileSync(process.execPath, command.slice(1), { cwd: context, stdio: 'pipe' });
      expect(statSync(join(context, 'gateway/dist/main.js')).size).toBeGreaterThan(100_000);
      // The screening worker's bundle, which the Dockerfile copies beside main.js.
      expect(statSync(join(context, 'gateway/dist/screen-worker.js')).size).toBeGreaterThan(10_000);
    } finally {
      rmSync(context, { recursive: true, force: true });
    }
  });

  it('scales on CPU, with two tasks at least in prod', () => {
    const target = resources(prod.template, 'AWS::ApplicationAutoScaling::ScalableTarget').find(([, t]) =>
      JSON.stringify(t.Properties?.ResourceId).includes('LlmGatewayService'),
    );
    expect(target![1].Properties?.MinCapacity).toBeGreaterThanOrEqual(2);
  });

  it('outputs its internal URL, secret ARNs and log group, never a secret value', () => {
    const outputs = json.Outputs as Record<string, { Value: unknown }>;
    expect(outputs.GatewayUrl.Value).toBe('http://llm-gateway.dify.internal:8080/v1');
    for (const id of ['GatewayProviderKeysSecretArn', 'GatewayClientsSecretArn', 'GatewayPepperSecretArn']) {
      expect(JSON.stringify(outputs[id].Value)).toMatch(/"Ref":"LlmGateway/);
    }
    expect(outputs.GatewayLogGroupName).toBeDefined();
  });
});
