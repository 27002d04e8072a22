import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '../../lib/paths';
import { costEstimates, parseCostArgs, readmeCostSection } from '../../scripts/cost';
import { estimate, type Estimate, packPods } from '../../scripts/cost-estimate';
import { COST_END, COST_START, costJson, costMarkdown } from '../../scripts/cost-report';
import { cpuOf, memoryOf, readInventory, type TemplateJson } from '../../scripts/cost-inventory';
import { loadPriceTable, parsePriceTable, regionPrices } from '../../scripts/cost-prices';

const table = loadPriceTable();
const useast = regionPrices(table, 'us-east-1');
const tokyo = regionPrices(table, 'ap-northeast-1');

/** A deployment of one stack holding the given resources. */
const deployment = (resources: Record<string, unknown>): Record<string, TemplateJson> => ({
  Stack: { Resources: resources },
});

const line = (result: Estimate, item: string) => {
  const found = result.lines.find((candidate) => candidate.item === item);
  if (found === undefined) throw new Error(`no line "${item}" in ${result.lines.map((l) => l.item).join(', ')}`);
  return found;
};

const nat = (n: number) =>
  Object.fromEntries(
    Array.from({ length: n }, (_, i) => [
      `Nat${i}`,
      { Type: 'AWS::EC2::NatGateway', Properties: { SubnetId: 'subnet' } },
    ]),
  );

const fargateService = (cpu: string, memory: string, desired: number, extra: Record<string, unknown> = {}) => ({
  Task: {
    Type: 'AWS::ECS::TaskDefinition',
    Properties: { Family: 'app', Cpu: cpu, Memory: memory, RuntimePlatform: { CpuArchitecture: 'ARM64' } },
  },
  Service: {
    Type: 'AWS::ECS::Service',
    Properties: { LaunchType: 'FARGATE', DesiredCount: desired, TaskDefinition: { Ref: 'Task' }, ...extra },
  },
});

describe('the cost readers', () => {
  // Twice the gateways, twice the hours: the NAT line scales with what the template creates.
  it('prices two NAT gateways at twice the hourly line of one', () => {
    const one = estimate(readInventory(deployment(nat(1))), useast, 'dev', 'ecs');
    const two = estimate(readInventory(deployment(nat(2))), useast, 'dev', 'ecs');
    expect(line(one, 'NAT gateways').usd).toBeCloseTo(730 * 0.045, 2);
    expect(line(two, 'NAT gateways').usd).toBeCloseTo(2 * line(one, 'NAT gateways').usd, 2);
    expect(line(two, 'NAT gateways').quantity).toBe('2');
  });

  it('prices a region with its own table: a NAT gateway in Tokyo at its Tokyo rate', () => {
    const result = estimate(readInventory(deployment(nat(1))), tokyo, 'dev', 'ecs');
    expect(line(result, 'NAT gateways').usd).toBeCloseTo(730 * tokyo.prices['nat.hour'].usd, 2);
    expect(tokyo.prices['nat.hour'].usd).not.toBe(useast.prices['nat.hour'].usd);
  });

  it('no NAT gateway (a closed network): no NAT lines at all', () => {
    const result = estimate(readInventory(deployment({})), useast, 'dev', 'ecs');
    expect(result.lines.map((l) => l.item)).not.toContain('NAT gateways');
    expect(result.lines.map((l) => l.item)).not.toContain('NAT data processing');
  });

  // A task definition of 1 vCPU and 2 GB, two tasks: 1,460 vCPU-hours and 2,920 GB-hours a month.
  it('reads Fargate hours from the task definition and the desired count', () => {
    const inventory = readInventory(deployment(fargateService('1024', '2048', 2)));
    expect(inventory.fargate).toEqual([
      expect.objectContaining({ vcpu: 1, memoryGiB: 2, tasks: 2, architecture: 'arm64', spot: false }),
    ]);
    const fargate = line(estimate(inventory, useast, 'dev', 'ecs'), 'Fargate arm64');
    expect(fargate.basis).toContain('1460 vCPU-h');
    expect(fargate.basis).toContain('2920 GB-h');
    const perVcpu = useast.prices['fargate.arm64.vcpuHour'].usd;
    const perGb = useast.prices['fargate.arm64.gbHour'].usd;
    expect(fargate.usd).toBeCloseTo(1460 * perVcpu + 2920 * perGb, 2);
  });

  it('prices a Fargate Spot service at the stated discount', () => {
    const spot = fargateService('1024', '2048', 2, {
      CapacityProviderStrategy: [{ CapacityProvider: 'FARGATE_SPOT', Weight: 1 }],
    });
    delete (spot.Service.Properties as Record<string, unknown>).LaunchType;
    const onDemand = line(
      estimate(readInventory(deployment(fargateService('1024', '2048', 2))), useast, 'dev', 'ecs'),
      'Fargate arm64',
    );
    const result = line(estimate(readInventory(deployment(spot)), useast, 'dev', 'ecs'), 'Fargate arm64 Spot');
    expect(result.usd).toBeCloseTo(onDemand.usd * 0.3, 1);
  });

  it('a task definition no service runs is named as run once, not priced', () => {
    const inventory = readInventory(deployment({ Task: fargateService('1024', '2048', 1).Task }));
    expect(inventory.oneOffTasks).toEqual(['app']);
    expect(inventory.fargate).toEqual([]);
  });

  // A new resource type must not vanish from the estimate: it is listed, with the reason.
  it('reports a resource type it does not know instead of ignoring it', () => {
    const inventory = readInventory(
      deployment({ ...nat(1), Broker: { Type: 'AWS::AmazonMQ::Broker', Properties: {} } }),
    );
    expect(inventory.unpriced).toEqual([
      { what: 'AWS::AmazonMQ::Broker', count: 1, why: 'a resource type the cost reader does not know' },
    ]);
    const markdown = costMarkdown([estimate(inventory, useast, 'dev', 'ecs')], useast);
    expect(markdown).toContain('**Not priced (the estimate is low by these):** AWS::AmazonMQ::Broker × 1');
  });

  it('reports a setting of a known type it cannot price: a node type missing from the table, a provisioned instance', () => {
    const inventory = readInventory(
      deployment({
        Cache: {
          Type: 'AWS::ElastiCache::ReplicationGroup',
          Properties: { CacheNodeType: 'cache.m5.24xlarge', Engine: 'valkey', NumCacheClusters: 2 },
        },
        Cluster: { Type: 'AWS::RDS::DBCluster', Properties: {} },
        Instance: {
          Type: 'AWS::RDS::DBInstance',
          Properties: { DBClusterIdentifier: { Ref: 'Cluster' }, DBInstanceClass: 'db.r7g.large' },
        },
      }),
    );
    const result = estimate(inventory, useast, 'prod', 'ecs');
    expect(result.unpriced).toEqual(
      expect.arrayContaining([
        { what: 'RDS instance Instance', count: 1, why: 'class db.r7g.large (only Serverless v2 is priced)' },
        {
          what: 'ElastiCache valkey cache.m5.24xlarge',
          count: 2,
          why: 'scripts/prices.json has no "elasticache.valkey.cache.m5.24xlarge.hour"',
        },
      ]),
    );
  });

  it('prices Aurora Serverless v2 per instance at the minimum plus the stated share of its range', () => {
    const inventory = readInventory(
      deployment({
        Cluster: {
          Type: 'AWS::RDS::DBCluster',
          Properties: { ServerlessV2ScalingConfiguration: { MinCapacity: 1, MaxCapacity: 16 } },
        },
        Writer: {
          Type: 'AWS::RDS::DBInstance',
          Properties: { DBClusterIdentifier: { Ref: 'Cluster' }, DBInstanceClass: 'db.serverless' },
        },
        Reader: {
          Type: 'AWS::RDS::DBInstance',
          Properties: { DBClusterIdentifier: { Ref: 'Cluster' }, DBInstanceClass: 'db.serverless' },
        },
      }),
    );
    const aurora = line(estimate(inventory, useast, 'prod', 'ecs'), 'Aurora Serverless v2');
    // 2 instances × (1 + 5 % of 15) ACU × 730 h.
    expect(aurora.basis).toContain('2555 ACU-h');
    expect(aurora.usd).toBeCloseTo(2555 * useast.prices['aurora.acuHour'].usd, 2);
  });

  it('a gateway endpoint costs nothing; an endpoint kind it does not model is reported', () => {
    const inventory = readInventory(
      deployment({
        S3: { Type: 'AWS::EC2::VPCEndpoint', Properties: { VpcEndpointType: 'Gateway' } },
        Inspection: { Type: 'AWS::EC2::VPCEndpoint', Properties: { VpcEndpointType: 'GatewayLoadBalancer' } },
      }),
    );
    expect(inventory.interfaceEndpoints).toEqual([]);
    expect(inventory.unpriced).toEqual([
      { what: 'VPC endpoint Inspection', count: 1, why: 'type GatewayLoadBalancer is not modelled' },
    ]);
  });

  it('counts an interface endpoint once per zone it sits in', () => {
    const endpoint = (zones: number) => ({
      Type: 'AWS::EC2::VPCEndpoint',
      Properties: {
        VpcEndpointType: 'Interface',
        ServiceName: 'com.amazonaws.us-east-1.logs',
        SubnetIds: Array(zones).fill('s'),
      },
    });
    const result = estimate(readInventory(deployment({ A: endpoint(3), B: endpoint(3) })), useast, 'prod', 'ecs');
    expect(line(result, 'VPC interface endpoints').basis).toContain('4380 endpoint-zone-h');
  });

  it('reads EKS pods from the manifests and packs each node pool onto nodes', () => {
    const manifest = JSON.stringify([
      {
        apiVersion: 'karpenter.sh/v1',
        kind: 'NodePool',
        metadata: { name: 'apps' },
        spec: {
          template: {
            metadata: { labels: { pool: 'apps' } },
            spec: { requirements: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['arm64'] }] },
          },
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'api' },
        spec: {
          replicas: 3,
          template: {
            spec: {
              nodeSelector: { pool: 'apps' },
              containers: [{ resources: { requests: { cpu: '1', memory: '3Gi' } } }],
            },
          },
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'stray' },
        spec: {
          template: {
            spec: { nodeSelector: { pool: 'gpu' }, containers: [{ resources: { requests: { cpu: '1' } } }] },
          },
        },
      },
    ]);
    const inventory = readInventory(
      deployment({
        Cluster: {
          Type: 'AWS::EKS::Cluster',
          Properties: { Logging: { ClusterLogging: { EnabledTypes: [{ Type: 'api' }, { Type: 'audit' }] } } },
        },
        Manifest: { Type: 'Custom::AWSCDK-EKS-KubernetesResource', Properties: { Manifest: manifest } },
      }),
    );
    expect(inventory.pods).toEqual([{ name: 'api', pool: 'apps', vcpu: 1, memoryGiB: 3, replicas: 3 }]);
    expect(inventory.unpriced).toEqual([
      { what: 'pod stray', count: 1, why: 'it selects no node pool of the manifests' },
    ]);
    const result = estimate(inventory, useast, 'dev', 'eks');
    expect(line(result, 'EKS cluster').usd).toBeCloseTo(73, 2);
    // The control plane's logs are vended logs, at the profile's assumed volume.
    const logs = line(result, 'Vended logs (flow, WAF, EKS control plane)');
    expect(logs.quantity).toContain('2 EKS control-plane log types');
    expect(logs.basis).toBe('5 GB (flow 0, WAF 0, EKS 5) × $0.5 (vended)');
    expect(line(result, 'EKS Auto Mode nodes, pool apps').quantity).toBe(
      '3 pods request 3 vCPU, 9 GiB: 1 × m7g.xlarge',
    );
  });

  it('packs pods first-fit and refuses a shape a pod does not fit', () => {
    const reserve = { vcpu: 0.2, memoryGiB: 1 };
    // 1.8 vCPU free per 2-vCPU node: one 1-vCPU pod each.
    expect(packPods([{ vcpu: 1, memoryGiB: 3, replicas: 3 }], { vcpu: 2, memoryGiB: 8 }, reserve)).toBe(3);
    expect(packPods([{ vcpu: 0.5, memoryGiB: 1, replicas: 6 }], { vcpu: 4, memoryGiB: 16 }, reserve)).toBe(1);
    expect(packPods([{ vcpu: 4, memoryGiB: 1, replicas: 1 }], { vcpu: 2, memoryGiB: 8 }, reserve)).toBeUndefined();
  });

  it('reads Kubernetes quantities', () => {
    expect(cpuOf('250m')).toBe(0.25);
    expect(cpuOf('2')).toBe(2);
    expect(memoryOf('512Mi')).toBe(0.5);
    expect(memoryOf('4Gi')).toBe(4);
    expect(() => cpuOf('lots')).toThrow('not a CPU quantity: "lots" (expected such as 250m or 1)');
    expect(() => memoryOf('4GB')).toThrow('not a memory quantity: "4GB" (expected such as 512Mi or 4Gi)');
  });
});

describe('the price table', () => {
  it('dates itself and gives every price a source or a note, in every region', () => {
    expect(table.asOf).toMatch(/^2026-\d{2}-\d{2}$/);
    expect(Object.keys(table.regions)).toEqual(expect.arrayContaining(['us-east-1', 'ap-northeast-1']));
    for (const region of Object.values(table.regions)) {
      for (const entry of Object.values(region.prices)) expect(entry.source ?? entry.note).toEqual(expect.any(String));
    }
  });

  it('refuses an entry that says neither where it came from nor that it is unverified', () => {
    const bad = {
      asOf: '2026-12-03',
      currency: 'USD',
      hoursPerMonth: 730,
      note: '',
      regions: { 'us-east-1': { name: 'x', prices: { 'nat.hour': { usd: 0.045 } } } },
    };
    expect(() => parsePriceTable(bad, 'prices.json')).toThrow(
      'prices.json is not a valid price table:\n  regions.us-east-1.prices.nat.hour: needs a "source"',
    );
  });

  it('refuses regions with different prices, naming the gap', () => {
    const entry = { usd: 1, source: 's' };
    const uneven = {
      asOf: '2026-12-03',
      currency: 'USD',
      hoursPerMonth: 730,
      note: '',
      regions: {
        'us-east-1': { name: 'a', prices: { a: entry, b: entry } },
        'eu-west-1': { name: 'b', prices: { a: entry } },
      },
    };
    expect(() => parsePriceTable(uneven, 'prices.json')).toThrow(
      'every region needs the same prices; eu-west-1 has no "b"',
    );
  });
});

describe('npm run cost arguments', () => {
  it('refuses an unknown region, listing the known ones', () => {
    expect(() => parseCostArgs(['--region', 'eu-west-9'], table)).toThrow(
      'no prices for region "eu-west-9"; scripts/prices.json has us-east-1, ap-northeast-1',
    );
  });

  it('takes --region in either form, and --json', () => {
    expect(parseCostArgs(['--region=ap-northeast-1', '--json'], table)).toEqual({
      region: 'ap-northeast-1',
      json: true,
      help: false,
    });
    expect(parseCostArgs([], table)).toEqual({ region: 'us-east-1', json: false, help: false });
  });

  it('refuses an unknown argument and a --region without a value', () => {
    expect(() => parseCostArgs(['--regoin', 'x'], table)).toThrow(
      'unknown argument "--regoin"; expected --region REGION, --json or --help',
    );
    expect(() => parseCostArgs(['--region'], table)).toThrow('--region needs a value, such as --region ap-northeast-1');
  });
});

describe('the estimate of the synthesized deployments', () => {
  // Synthesis stages assets in CDK_OUTDIR: a folder of this suite's own, removed at the end.
  let outdir: string;
  const previous = process.env.CDK_OUTDIR;
  let estimates: Estimate[];
  let generated: string;
  beforeAll(() => {
    outdir = mkdtempSync(join(tmpdir(), 'cost-test-'));
    process.env.CDK_OUTDIR = outdir;
    estimates = costEstimates(table, 'us-east-1');
    generated = readmeCostSection();
  }, 600_000);
  afterAll(() => {
    if (previous === undefined) delete process.env.CDK_OUTDIR;
    else process.env.CDK_OUTDIR = previous;
    rmSync(outdir, { recursive: true, force: true });
  });

  it('prices every resource the four deployments create', () => {
    for (const e of estimates)
      expect({ deployment: `${e.profile}/${e.platform}`, unpriced: e.unpriced }).toEqual({
        deployment: `${e.profile}/${e.platform}`,
        unpriced: [],
      });
  });

  it('reads what each profile and platform creates', () => {
    const of = (profile: string, platform: string) =>
      estimates.find((e) => e.profile === profile && e.platform === platform)!;
    expect(line(of('dev', 'ecs'), 'NAT gateways').quantity).toBe('1');
    expect(line(of('prod', 'ecs'), 'NAT gateways').quantity).toBe('3');
    expect(line(of('dev', 'ecs'), 'Aurora Serverless v2').quantity).toBe('1 instance(s), 0–4 ACU');
    expect(line(of('prod', 'ecs'), 'Aurora Serverless v2').quantity).toBe('2 instance(s), 1–16 ACU');
    expect(line(of('prod', 'ecs'), 'ElastiCache (valkey)').quantity).toBe('2 × cache.r7g.large');
    expect(line(of('dev', 'eks'), 'EKS cluster').quantity).toBe('1');
    expect(of('dev', 'ecs').lines.map((l) => l.item)).not.toContain('EKS cluster');
    expect(of('prod', 'ecs').totalUsd).toBeGreaterThan(of('dev', 'ecs').totalUsd);
  });

  it('--json carries the date, the assumptions and every line of every deployment', () => {
    const json = JSON.parse(JSON.stringify(costJson(estimates, useast)));
    expect(json).toMatchObject({ region: 'us-east-1', asOf: table.asOf, hoursPerMonth: 730 });
    expect(json.assumptions.prod.natGb).toEqual(expect.any(Number));
    expect(json.estimates.map((e: Estimate) => `${e.profile}/${e.platform}`)).toEqual([
      'dev/ecs',
      'dev/eks',
      'prod/ecs',
      'prod/eks',
    ]);
    for (const e of json.estimates as Estimate[]) {
      const sum = e.lines.reduce((total, l) => total + l.usd, 0);
      expect(e.totalUsd).toBeCloseTo(sum, 2);
    }
  });

  it("the README's cost section is the script's output (run `npm run docs` when it is not)", () => {
    const readme = readFileSync(repoPath('README.md'), 'utf8');
    const start = readme.indexOf(COST_START);
    const end = readme.indexOf(COST_END);
    if (start < 0 || end < start) throw new Error(`README.md needs the markers ${COST_START} and ${COST_END}`);
    const section = readme.slice(start + COST_START.length, end).trim();
    if (section !== generated.trim()) {
      const ours = section.split('\n');
      const theirs = generated.trim().split('\n');
      const at = ours.findIndex((text, i) => text !== theirs[i]);
      const index = at < 0 ? ours.length : at;
      throw new Error(
        `README.md's cost section is stale: run \`npm run docs\`. First difference at its line ${index + 1}:\n` +
          `  README: ${ours[index] ?? '(end)'}\n  script: ${theirs[index] ?? '(end)'}`,
      );
    }
  });
});
