import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Template } from 'aws-cdk-lib/assertions';
import { parseConfig } from '../../lib/config/load';
import { squidConfig } from '../../lib/constructs/dify/squid-config';
import { egressOf } from '../../lib/constructs/egress';
import { refusal } from '../helpers/config';
import { SQUID } from '../helpers/squid';
import { build, VARIANTS } from '../helpers/synth';
import { logicalId, references, resources } from '../helpers/template';

/**
 * egress=none, the closed network: no NAT gateway, no route out of the VPC from any private or
 * isolated subnet, and no security group that lets a task or function reach an address outside the
 * VPC, except the package mirror's and the gateway's private providers' networks on 443. AWS APIs
 * are reached through the endpoints. The variant dev-options is this closed network; dev is the same
 * profile with NAT, so that each assertion is seen to fail where the internet is reachable.
 */
const CLOSED = VARIANTS['dev-options'];
const MIRROR_NETWORK = CLOSED.mirrorPrivateCidrs;
const PROVIDER_NETWORK = CLOSED.gatewayProviderPrivateCidrs;

const closed = build(CLOSED);
const open = build(VARIANTS.dev);

interface EgressRule {
  readonly group: string;
  readonly CidrIp?: string;
  readonly CidrIpv6?: string;
  readonly FromPort?: number;
  readonly ToPort?: number;
  readonly IpProtocol?: string;
  readonly DestinationSecurityGroupId?: unknown;
  readonly DestinationPrefixListId?: unknown;
}

/** Every egress rule of every security group, inline or a resource of its own. */
function egressRules(template: Template): EgressRule[] {
  const inline = resources(template, 'AWS::EC2::SecurityGroup').flatMap(([id, group]) =>
    ((group.Properties?.SecurityGroupEgress as EgressRule[] | undefined) ?? []).map((rule) => ({ ...rule, group: id })),
  );
  const separate = resources(template, 'AWS::EC2::SecurityGroupEgress').map(([, rule]) => {
    const properties = rule.Properties as Record<string, unknown>;
    const group = JSON.stringify(properties.GroupId).match(/"(?:Ref|Fn::GetAtt)":\[?"([A-Za-z0-9]+)"/)?.[1] ?? '?';
    return { ...(properties as object), group } as EgressRule;
  });
  return [...inline, ...separate];
}

/** CDK's placeholder for a group that allows no egress at all: a rule that matches nothing. */
const NO_EGRESS = (rule: EgressRule) => rule.CidrIp === '255.255.255.255/32' && rule.IpProtocol === 'icmp';

function environmentOf(template: Template, container: string): Record<string, string> {
  const [, definition] = resources(template, 'AWS::ECS::TaskDefinition').find(
    ([, t]) => (t.Properties?.ContainerDefinitions as Array<{ Name: string }>)[0].Name === container,
  )!;
  const found = (definition.Properties?.ContainerDefinitions as Array<Record<string, any>>)[0];
  return Object.fromEntries(
    (found.Environment as Array<{ Name: string; Value: string }>).map((e) => [e.Name, e.Value]),
  );
}

function commandOf(template: Template, container: string): string {
  const [, definition] = resources(template, 'AWS::ECS::TaskDefinition').find(
    ([, t]) => (t.Properties?.ContainerDefinitions as Array<{ Name: string }>)[0].Name === container,
  )!;
  return JSON.stringify((definition.Properties?.ContainerDefinitions as Array<Record<string, any>>)[0].Command);
}

describe('a closed network (egress=none)', () => {
  it('has no NAT gateway and no Elastic IP', () => {
    // Why: a NAT gateway is the way from a private subnet to the internet; with none, a compromised
    // task has no address outside the VPC to send data to.
    expect(resources(closed.template, 'AWS::EC2::NatGateway')).toEqual([]);
    expect(resources(closed.template, 'AWS::EC2::EIP')).toEqual([]);
    expect(resources(open.template, 'AWS::EC2::NatGateway')).toHaveLength(1);
  });

  it('routes no private or isolated subnet to the internet: only the public subnets reach the internet gateway', () => {
    // Why: the internet gateway stays (the load balancer and CloudFront's VPC origin need it), so
    // the guarantee is that no route table a task or data store uses has a default route.
    const publicTables = closed.stacks.network.vpc.publicSubnets.map((subnet) =>
      logicalId(subnet.node.findChild('RouteTable')),
    );
    expect(publicTables.length).toBeGreaterThan(0);
    const routes = resources(closed.template, 'AWS::EC2::Route');
    const outward = routes.filter(
      ([, route]) =>
        route.Properties?.DestinationCidrBlock === '0.0.0.0/0' || route.Properties?.DestinationIpv6CidrBlock === '::/0',
    );
    for (const [id, route] of outward) {
      expect({ id, table: publicTables.some((table) => references(route.Properties?.RouteTableId, table)) }).toEqual({
        id,
        table: true,
      });
      expect(route.Properties?.NatGatewayId).toBeUndefined();
      expect(route.Properties?.EgressOnlyInternetGatewayId).toBeUndefined();
    }
    const privateTables = [
      ...closed.stacks.network.vpc.privateSubnets,
      ...closed.stacks.network.vpc.isolatedSubnets,
    ].map((subnet) => logicalId(subnet.node.findChild('RouteTable')));
    expect(privateTables.length).toBeGreaterThan(0);
    for (const [id, route] of routes) {
      const table = privateTables.find((t) => references(route.Properties?.RouteTableId, t));
      expect({ id, table }).toEqual({ id, table: undefined });
    }
    // The same check finds the NAT route of the open network.
    const natRoutes = resources(open.template, 'AWS::EC2::Route').filter(([, r]) => r.Properties?.NatGatewayId);
    expect(natRoutes.length).toBeGreaterThan(0);
  });

  it('lets no security group reach beyond the VPC, except the mirror and the private providers on 443', () => {
    // Why: without NAT a rule to 0.0.0.0/0 leads nowhere today, but would lead out the day someone
    // adds a route; every rule names a group in the VPC, S3's prefix list (the gateway endpoint) or
    // one of the two private networks the configuration names, from the one service that needs it.
    const proxy = logicalId(closed.stacks.platform.taskOf(closed.stacks.services.ssrf_proxy).securityGroup);
    const gateway = logicalId(closed.stacks.gateway.service.securityGroup);
    const s3PrefixList = logicalId(closed.stacks.network.node.findChild('S3PrefixList').node.findChild('Resource'));
    const outside: string[] = [];
    for (const rule of egressRules(closed.template)) {
      if (NO_EGRESS(rule) || rule.DestinationSecurityGroupId !== undefined) continue;
      if (rule.DestinationPrefixListId !== undefined) {
        expect(references(rule.DestinationPrefixListId, s3PrefixList)).toBe(true);
        expect([rule.FromPort, rule.ToPort]).toEqual([443, 443]);
        continue;
      }
      outside.push(`${rule.group} ${rule.CidrIp ?? rule.CidrIpv6} ${rule.FromPort}-${rule.ToPort}`);
    }
    expect(outside.sort()).toEqual(
      [`${proxy} ${MIRROR_NETWORK} 443-443`, `${gateway} ${PROVIDER_NETWORK} 443-443`].sort(),
    );
    // The open network's proxy and gateway reach any address: the check above sees them.
    const anywhere = egressRules(open.template).filter((rule) => rule.CidrIp === '0.0.0.0/0');
    expect(anywhere.length).toBeGreaterThan(0);
    expect(
      egressRules(closed.template).filter((rule) => rule.CidrIp === '0.0.0.0/0' || rule.CidrIpv6 === '::/0'),
    ).toEqual([]);
  });

  it('reaches every AWS service its tasks and functions call through an endpoint', () => {
    // Why: with no NAT, an AWS API without an endpoint is out of reach: Fargate could not pull an
    // image (ECR, S3), read a secret (Secrets Manager, KMS) or ship a log, the plugin daemon could
    // not call Bedrock, ECS Exec could not open its channel (SSM messages), and the in-VPC functions
    // could not call Lambda, ECS or ElastiCache.
    // Interface endpoints name their service in full; S3's gateway endpoint joins the region in.
    const names = resources(closed.template, 'AWS::EC2::VPCEndpoint').map(([, endpoint]) => {
      const name = JSON.stringify(endpoint.Properties?.ServiceName);
      return /com\.amazonaws\.[a-z0-9-]+\.([a-z0-9.-]+)"/.exec(name)?.[1] ?? (name.endsWith('".s3"]]}') ? 's3' : name);
    });
    expect(names.sort()).toEqual(
      [
        'bedrock-runtime',
        'ecr.api',
        'ecr.dkr',
        'ecs',
        'elasticache',
        'kms',
        'lambda',
        'logs',
        's3',
        'secretsmanager',
        'ssmmessages',
      ].sort(),
    );
    // KMS is forced on even in dev, where the open network leaves it to the NAT.
    expect(names).toContain('kms');
    expect(closed.stacks.sizing.network.interfaceEndpoints).toBe(true);
    expect(open.stacks.sizing.network.interfaceEndpoints).toBe(false);
  });

  it('tells Dify the marketplace and version check are off, and plugins and sandbox installs use the mirror', () => {
    // Why: with no internet the marketplace and updates.dify.ai would fail on every console page;
    // plugins come as uploaded packages, their dependencies from the mirror.
    for (const container of ['api', 'worker', 'beat', 'migration']) {
      const environment = environmentOf(closed.template, container);
      expect({ container, marketplace: environment.MARKETPLACE_ENABLED, update: environment.CHECK_UPDATE_URL }).toEqual(
        {
          container,
          marketplace: 'false',
          update: '',
        },
      );
      expect(environmentOf(open.template, container).MARKETPLACE_ENABLED).toBeUndefined();
    }
    for (const container of ['plugin-daemon', 'sandbox']) {
      expect(environmentOf(closed.template, container).PIP_MIRROR_URL).toBe(CLOSED.pipMirrorUrl);
    }
    // Model plugins reach Bedrock's endpoint directly: through the proxy its in-VPC address is refused.
    expect(environmentOf(closed.template, 'plugin-daemon').NO_PROXY.split(',')).toContain(
      'bedrock-runtime.us-east-1.amazonaws.com',
    );
    expect(environmentOf(open.template, 'plugin-daemon').NO_PROXY).not.toContain('bedrock-runtime');
  });

  it('lets the SSRF proxy connect to the mirror’s host in the mirror’s network only, and to no public address', () => {
    // Why: the proxy is the one way out for Dify's HTTP; in a closed network it must refuse a
    // public address at once (not time out) and open nothing private but the mirror.
    const command = commandOf(closed.template, 'ssrf-proxy');
    expect(command).toContain('acl mirror_host dstdomain pypi.example.com');
    expect(command).toContain(`acl to_mirror dst ${MIRROR_NETWORK}`);
    expect(command).toContain('http_access allow CONNECT dify_clients mirror_host to_mirror');
    expect(command).not.toContain('http_access allow dify_clients\\n');
    expect(commandOf(open.template, 'ssrf-proxy')).toContain('http_access allow dify_clients\\n');
  });

  it('has the LLM gateway send provider keys only into the private networks the configuration names', () => {
    // Why: a public provider can never answer here; the gateway refuses it at once, naming the host
    // (gateway/test/policy.test.ts), instead of waiting on a connection that cannot open.
    const environment = environmentOf(closed.template, 'llm-gateway');
    expect(environment.PROVIDER_ALLOWED_PRIVATE_CIDRS).toBe(PROVIDER_NETWORK);
    expect(environment.PROVIDER_PUBLIC_ADDRESSES).toBe('refuse');
    expect(environmentOf(open.template, 'llm-gateway').PROVIDER_PUBLIC_ADDRESSES).toBeUndefined();
  });
});

describe('the SSRF proxy configuration of a closed network', () => {
  const egress = egressOf(parseConfig(CLOSED));
  const config = squidConfig({ vpcCidr: '10.0.0.0/16', port: 3128, runDirectory: '/var/run/squid', egress });
  const lines = config.split('\n');
  const index = (line: string) => lines.indexOf(line);

  it('allows the mirror after the metadata, link-local and loopback denies, and nothing after the private ones', () => {
    const mirror = index('http_access allow CONNECT dify_clients mirror_host to_mirror');
    expect(mirror).toBeGreaterThan(0);
    for (const acl of ['to_metadata', 'to_link_local', 'to_loopback', 'CONNECT !tls_ports', '!safe_ports']) {
      expect({ acl, before: index(`http_access deny ${acl}`) < mirror }).toEqual({ acl, before: true });
    }
    expect(index('http_access deny to_private')).toBe(mirror + 1);
    expect(lines.filter((line) => line.startsWith('http_access allow'))).toEqual([lines[mirror]]);
    expect(index('http_access deny all')).toBe(index('http_access deny to_vpc') + 1);
  });

  const squid = SQUID;
  it('parses as valid squid configuration (squid -k parse)', () => {
    if (squid === undefined) throw new Error('squid is not installed (apt-get install -y squid; .ci/run installs it)');
    const dir = mkdtempSync(join(tmpdir(), 'squid-closed-'));
    try {
      const file = join(dir, 'squid.conf');
      writeFileSync(file, squidConfig({ vpcCidr: '10.0.0.0/16', port: 3128, runDirectory: dir, egress }));
      expect(() => execFileSync(squid, ['-k', 'parse', '-f', file], { stdio: 'pipe' })).not.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('egress=none is refused where a setting needs the internet, naming the key, the value and why', () => {
  /** The closed variant's context with some keys changed (undefined: removed). */
  const closedWith = (changes: Record<string, string | undefined>) =>
    Object.fromEntries(
      Object.entries({ ...CLOSED, ...changes }).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );

  const cases: Array<[string, Record<string, string | undefined>, string[]]> = [
    [
      'EKS, whose Auto Mode nodes and add-ons call AWS APIs without an endpoint here',
      { platform: 'eks', enableExec: undefined, fargateSpotWorker: undefined, mirrorPrivateCidrs: undefined },
      ["context key 'egress'", "'none' is refused with platform=eks", 'use platform=ecs or egress=nat'],
    ],
    [
      'interface endpoints turned off',
      { vpcInterfaceEndpoints: 'false' },
      ["context key 'vpcInterfaceEndpoints'", 'cannot be false with egress=none', 'KMS and Bedrock'],
    ],
    [
      'no package mirror',
      { pipMirrorUrl: undefined, mirrorPrivateCidrs: undefined },
      ["context key 'pipMirrorUrl'", 'required with egress=none', 'PyPI is out of reach'],
    ],
    [
      'a mirror with no private network to reach it in',
      { mirrorPrivateCidrs: undefined },
      ["context key 'mirrorPrivateCidrs'", 'required with egress=none', 'Transit Gateway'],
    ],
    [
      'no way to a model: no Bedrock model and no private provider network for the gateway',
      { bedrockModels: undefined, gatewayProviderPrivateCidrs: undefined },
      ["context key 'egress'", "'none' needs a way to a model", 'bedrockModels', 'gatewayProviderPrivateCidrs'],
    ],
  ];
  it.each(cases)('%s', (_, changes, fragments) => {
    const message = refusal(closedWith(changes));
    for (const fragment of fragments) expect(message).toContain(fragment);
  });

  it('refuses a mirror network inside the VPC, a public one, or one without a mirror URL', () => {
    expect(refusal(closedWith({ mirrorPrivateCidrs: '10.0.128.0/24' }))).toContain(
      "context key 'mirrorPrivateCidrs': '10.0.128.0/24' overlaps vpcCidr 10.0.0.0/16",
    );
    expect(refusal(closedWith({ mirrorPrivateCidrs: '198.51.100.0/24' }))).toContain(
      "'198.51.100.0/24' is not a private network",
    );
    expect(refusal({ mirrorPrivateCidrs: '10.30.0.0/24' })).toContain(
      "context key 'pipMirrorUrl': required when mirrorPrivateCidrs is set",
    );
    expect(
      refusal({ platform: 'eks', pipMirrorUrl: 'https://pypi.example.com/simple', mirrorPrivateCidrs: '10.30.0.0/24' }),
    ).toContain("context key 'mirrorPrivateCidrs': applies to platform=ecs only");
  });

  it('refuses an egress it does not know, naming the value and listing the ones it does', () => {
    const message = refusal({ egress: 'off' });
    for (const fragment of ["context key 'egress'", '"off"', "'nat', 'none'"]) expect(message).toContain(fragment);
  });

  it('accepts every edge mode, ECS Exec, Fargate Spot and Bedrock alone: none of them needs the internet from a task', () => {
    // The front door only answers; ECS Exec has its SSM messages endpoint; Spot changes no network.
    for (const edge of [
      {},
      {
        edge: 'alb',
        domainName: 'dify.example.com',
        hostedZoneId: 'Z0123456789ABCDEFGHIJ',
        hostedZoneName: 'example.com',
      },
      {
        edge: 'internal',
        domainName: 'dify.example.com',
        certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012',
      },
    ]) {
      expect(parseConfig({ ...CLOSED, ...edge }).egress).toBe('none');
    }
    expect(parseConfig(closedWith({ gatewayProviderPrivateCidrs: undefined })).bedrockModels).toHaveLength(2);
    expect(parseConfig(closedWith({ bedrockModels: undefined })).gatewayProviderPrivateCidrs).toEqual([
      PROVIDER_NETWORK,
    ]);
  });
});
