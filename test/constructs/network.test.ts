import { MANAGED_THREAT_LISTS } from '../../lib/constructs/dns-firewall';
import { Match } from 'aws-cdk-lib/assertions';
import { build, VARIANTS } from '../helpers/synth';
import { ingressRulesOf, logicalId, references, resources } from '../helpers/template';

describe('Network', () => {
  const dev = build({ profile: 'dev' });
  const prod = build(VARIANTS.prod);

  it('spreads over 2 zones with 1 NAT gateway in dev, and 3 zones with a NAT gateway each in prod', () => {
    // Why: prod must survive the loss of a zone, including its egress; dev stays cheap.
    expect(dev.stacks.network.vpc.availabilityZones).toHaveLength(2);
    expect(prod.stacks.network.vpc.availabilityZones).toHaveLength(3);
    dev.template.resourceCountIs('AWS::EC2::NatGateway', 1);
    prod.template.resourceCountIs('AWS::EC2::NatGateway', 3);
    // Three tiers in each zone.
    dev.template.resourceCountIs('AWS::EC2::Subnet', 6);
    prod.template.resourceCountIs('AWS::EC2::Subnet', 9);
  });

  it('resolves zones at deploy time and never looks them up at synth, even with a concrete account and region', () => {
    const pinned = build(VARIANTS['prod-pinned']);
    for (const { template } of [dev, pinned]) {
      for (const [, subnet] of resources(template, 'AWS::EC2::Subnet')) {
        expect(JSON.stringify(subnet.Properties?.AvailabilityZone)).toContain('Fn::GetAZs');
      }
    }
    expect(pinned.app.node.tryGetContext('availability-zones:account=123456789012:region=eu-west-1')).toBeUndefined();
  });

  it('puts nothing but NAT gateways in a public subnet', () => {
    // Why: a public subnet is reachable from the internet; only the front door and NAT belong there.
    for (const { template, stacks } of [dev, prod]) {
      const publicSubnets = stacks.network.vpc.publicSubnets.map((subnet) => logicalId(subnet));
      const allowed = new Set(['AWS::EC2::NatGateway', 'AWS::EC2::SubnetRouteTableAssociation', 'AWS::EC2::Subnet']);
      const offenders = resources(template)
        .filter(([, resource]) => !allowed.has(resource.Type))
        .filter(([, resource]) => publicSubnets.some((id) => references(resource.Properties, id)))
        .map(([id, resource]) => `${id} (${resource.Type})`);
      expect(offenders).toEqual([]);
    }
  });

  it('never assigns public IPs on launch, even in public subnets', () => {
    for (const [, subnet] of resources(prod.template, 'AWS::EC2::Subnet')) {
      expect(subnet.Properties?.MapPublicIpOnLaunch).not.toBe(true);
    }
  });

  it('sends all flow logs to a KMS-encrypted log group with a retention', () => {
    dev.template.hasResourceProperties('AWS::EC2::FlowLog', {
      ResourceType: 'VPC',
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
    });
    const [[, flowLog]] = resources(dev.template, 'AWS::EC2::FlowLog');
    const [[, group]] = resources(dev.template, 'AWS::Logs::LogGroup').filter(([id]) =>
      references(flowLog.Properties?.LogGroupName, id),
    );
    expect(group.Properties?.KmsKeyId).toBeDefined();
    expect(group.Properties?.RetentionInDays).toBeGreaterThan(0);
  });

  it('strips every rule from the default security group', () => {
    // Why: anything attached to the default group could otherwise talk to everything else on it.
    dev.template.hasResourceProperties('Custom::VpcRestrictDefaultSG', {
      DefaultSecurityGroupId: { 'Fn::GetAtt': [logicalId(dev.stacks.network.vpc), 'DefaultSecurityGroup'] },
    });
  });

  it('always has an S3 gateway endpoint', () => {
    for (const { template } of [dev, prod]) {
      template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Gateway',
        ServiceName: Match.objectLike({
          'Fn::Join': Match.arrayWith([Match.arrayWith([Match.stringLikeRegexp('\\.s3$')])]),
        }),
      });
    }
  });

  const services = [
    'secretsmanager',
    'kms',
    'ecr.api',
    'ecr.dkr',
    'logs',
    'bedrock-runtime',
    'lambda',
    'ecs',
    'elasticache',
  ];
  const interfaceServices = (template: typeof dev.template) =>
    resources(template, 'AWS::EC2::VPCEndpoint')
      .filter(([, e]) => e.Properties?.VpcEndpointType === 'Interface')
      .map(([, e]) => JSON.stringify(e.Properties?.ServiceName));

  it('always has endpoints for what Fargate does on a task’s behalf, and KMS and Bedrock in prod or when asked', () => {
    // Why: Dify's tasks have no route to the internet (only the SSRF proxy has). Fargate pulls their
    // images, reads their secrets and ships their logs through each task's own interface, so without
    // these endpoints no task could start; with them, none of that traffic leaves the VPC.
    // Lambda, ECS and ElastiCache: the in-VPC functions (provider framework, migration runner, secret
    // rotation) have no internet route either.
    const core = ['secretsmanager', 'ecr.api', 'ecr.dkr', 'logs', 'lambda', 'ecs', 'elasticache'];
    const names = (template: typeof dev.template) =>
      interfaceServices(template)
        .map((name) => /com\.amazonaws\.[a-z0-9-]+\.(.+)"$/.exec(name)![1])
        .sort();
    expect(names(dev.template)).toEqual([...core].sort());
    expect(names(prod.template)).toEqual([...services].sort());
    expect(names(build({ profile: 'dev', vpcInterfaceEndpoints: 'true' }).template)).toEqual([...services].sort());
    // dev-options is a closed network (egress=none), which forces KMS's endpoint on as well.
    expect(names(build(VARIANTS['dev-options']).template)).toEqual(
      [...core, 'kms', 'bedrock-runtime', 'ssmmessages'].sort(),
    );
    for (const [, endpoint] of resources(prod.template, 'AWS::EC2::VPCEndpoint').filter(
      ([, e]) => e.Properties?.VpcEndpointType === 'Interface',
    )) {
      expect(endpoint.Properties?.PrivateDnsEnabled).toBe(true);
    }
  });

  it('gives every endpoint a policy that admits only this account’s principals, and this account’s resources where the calls name one', () => {
    // Why: an endpoint without a policy lets a workload push data to another account's secret, log
    // group, repository or bucket with credentials of that account.
    for (const variant of [prod, build(VARIANTS['dev-options'])]) {
      const endpoints = resources(variant.template, 'AWS::EC2::VPCEndpoint');
      for (const [, endpoint] of endpoints) {
        const document = endpoint.Properties?.PolicyDocument as { Statement: Array<Record<string, any>> } | undefined;
        expect(document).toBeDefined();
        const service = JSON.stringify(endpoint.Properties?.ServiceName);
        for (const statement of document!.Statement) {
          expect(statement.Effect).toBe('Allow');
          const equals = statement.Condition?.StringEquals ?? {};
          if (/\.s3"?/.test(service) && endpoint.Properties?.VpcEndpointType === 'Gateway') continue;
          expect(equals['aws:PrincipalAccount']).toEqual({ Ref: 'AWS::AccountId' });
          if (JSON.stringify(statement.Action) === '"*"') {
            expect(equals['aws:ResourceAccount']).toEqual({ Ref: 'AWS::AccountId' });
          }
        }
      }
    }
  });

  it('admits through the S3 gateway endpoint only the stack’s bucket, ECR’s layers and CloudFormation’s responses', () => {
    const [[, gateway]] = resources(prod.template, 'AWS::EC2::VPCEndpoint').filter(
      ([, e]) => e.Properties?.VpcEndpointType === 'Gateway',
    );
    const statements = (gateway.Properties?.PolicyDocument as { Statement: Array<Record<string, any>> }).Statement;
    expect(statements.map((s) => s.Sid)).toEqual([
      'StackBucketsOnlyFromThisAccount',
      'EcrImageLayers',
      'CloudFormationResponses',
    ]);
    for (const bucket of [prod.stacks.storage.bucket, prod.stacks.storage.pluginBucket]) {
      expect(references(statements[0].Resource, logicalId(bucket))).toBe(true);
    }
    expect(statements[0].Condition).toEqual({ StringEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } } });
    expect(statements[1]).toMatchObject({ Action: 's3:GetObject' });
    expect(JSON.stringify(statements[1].Resource)).toContain('-starport-layer-bucket/*');
    expect(statements[2]).toMatchObject({ Action: 's3:PutObject' });
    expect(JSON.stringify(statements[2].Resource)).toContain('cloudformation-custom-resource-response-*/*');
  });

  it('puts a network ACL on the isolated subnets that admits only the data ports from the VPC', () => {
    // Why: a second layer under the security groups; a security-group mistake cannot open another
    // port of Aurora or Valkey.
    const [[aclId]] = resources(prod.template, 'AWS::EC2::NetworkAcl');
    const associated = resources(prod.template, 'AWS::EC2::SubnetNetworkAclAssociation')
      .filter(([, a]) => references(a.Properties?.NetworkAclId, aclId))
      .map(([, a]) => (a.Properties?.SubnetId as { Ref: string }).Ref)
      .sort();
    expect(associated).toEqual(prod.stacks.network.vpc.isolatedSubnets.map((s) => logicalId(s)).sort());
    const isolated = prod.stacks.network.vpc.isolatedSubnets.map((s) => s.ipv4CidrBlock);
    const entries = resources(prod.template, 'AWS::EC2::NetworkAclEntry')
      .filter(([, e]) => references(e.Properties?.NetworkAclId, aclId))
      .map(([, e]) => e.Properties!)
      .map((e) => {
        const ports = e.PortRange as { From: number; To: number };
        return `${e.Egress ? 'out' : 'in'} ${e.RuleAction} ${e.Protocol} ${e.CidrBlock} ${ports.From}-${ports.To}`;
      })
      .sort();
    expect(entries).toEqual(
      [
        'in allow 6 10.0.0.0/16 5432-5432',
        'in allow 6 10.0.0.0/16 6379-6379',
        ...isolated.map((cidr) => `in allow 6 ${cidr} 32768-65535`),
        ...isolated.map((cidr) => `out allow 6 ${cidr} 6379-6379`),
        'out allow 6 10.0.0.0/16 1024-65535',
      ].sort(),
    );
  });

  it('lets only VPC Flow Logs acting for this account assume the flow-log role', () => {
    const [[, log]] = resources(prod.template, 'AWS::EC2::FlowLog');
    const roleId = (log.Properties?.DeliverLogsPermissionArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const [, role] = resources(prod.template, 'AWS::IAM::Role').find(([id]) => id === roleId)!;
    const [statement] = (role.Properties?.AssumeRolePolicyDocument as { Statement: Array<Record<string, any>> })
      .Statement;
    expect(statement.Principal).toEqual({ Service: 'vpc-flow-logs.amazonaws.com' });
    expect(statement.Condition.StringEquals).toEqual({ 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
    expect(JSON.stringify(statement.Condition.ArnLike['aws:SourceArn'])).toContain(':vpc-flow-log/*');
  });

  it('blocks AWS’s managed threat domain lists at the VPC’s resolver, with ids read at deploy time', () => {
    // Why: DNS is open to every task; the firewall stops malware downloads and command-and-control
    // lookups by name, and the ids come from a deploy-time lookup (synth looks nothing up).
    const [[groupId, group]] = resources(prod.template, 'AWS::Route53Resolver::FirewallRuleGroup');
    const [[lookupId]] = resources(prod.template, 'Custom::DifyFirewallDomainLists');
    const rules = group.Properties?.FirewallRules as Array<Record<string, any>>;
    expect(rules.map((r) => [r.Action, r.BlockResponse, r.FirewallDomainListId['Fn::GetAtt']])).toEqual(
      MANAGED_THREAT_LISTS.map((name) => ['BLOCK', 'NXDOMAIN', [lookupId, name]]),
    );
    const [[, association]] = resources(prod.template, 'AWS::Route53Resolver::FirewallRuleGroupAssociation');
    expect(references(association.Properties?.FirewallRuleGroupId, groupId)).toBe(true);
    expect(references(association.Properties?.VpcId, logicalId(prod.stacks.network.vpc))).toBe(true);
    const [[, lookup]] = resources(prod.template, 'Custom::DifyFirewallDomainLists');
    expect(lookup.Properties?.Names).toEqual(MANAGED_THREAT_LISTS);
  });

  it('logs every DNS query of the VPC to an encrypted log group with retention', () => {
    const [[configId, config]] = resources(prod.template, 'AWS::Route53Resolver::ResolverQueryLoggingConfig');
    const [[, association]] = resources(prod.template, 'AWS::Route53Resolver::ResolverQueryLoggingConfigAssociation');
    expect(references(association.Properties?.ResolverQueryLogConfigId, configId)).toBe(true);
    expect(references(association.Properties?.ResourceId, logicalId(prod.stacks.network.vpc))).toBe(true);
    const groupId = (config.Properties?.DestinationArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const [, group] = resources(prod.template, 'AWS::Logs::LogGroup').find(([id]) => id === groupId)!;
    expect(group.Properties?.KmsKeyId).toBeDefined();
    expect(group.Properties?.RetentionInDays).toBeGreaterThan(0);
  });

  it("admits 443 to each endpoint only from the app's own security groups, never from a CIDR", () => {
    // Why: an endpoint open to the VPC CIDR lets any workload, even one we never registered, use the
    // AWS APIs through it with whatever credentials it steals.
    const { stacks, template } = prod;
    const endpoints = Object.values(stacks.network.interfaceEndpoints);
    expect(endpoints).toHaveLength(services.length);
    for (const endpoint of endpoints) {
      for (const group of endpoint.connections.securityGroups) {
        const rules = ingressRulesOf(template, logicalId(group));
        expect(rules.length).toBeGreaterThan(0);
        for (const rule of rules) {
          expect(rule).toMatchObject({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443 });
          expect(rule.CidrIp ?? rule.CidrIpv6).toBeUndefined();
          expect(rule.SourceSecurityGroupId).toBeDefined();
        }
      }
    }
  });

  it('opens no security group of the app to a CIDR, but the internet-facing load balancer’s to the allow-list', () => {
    for (const { template, stacks } of [dev, prod, build(VARIANTS['alb-zone'])]) {
      const frontDoor = logicalId(stacks.edge.loadBalancer.connections.securityGroups[0]);
      for (const [id] of resources(template, 'AWS::EC2::SecurityGroup').filter(([id]) => id !== frontDoor)) {
        for (const rule of ingressRulesOf(template, id)) {
          expect({ id, cidr: rule.CidrIp ?? rule.CidrIpv6 }).toEqual({ id, cidr: undefined });
        }
      }
    }
  });
});
