import { Aws, Duration, Fn } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as route53resolver from 'aws-cdk-lib/aws-route53resolver';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { NetworkSizing } from '../config/sizing';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { DnsFirewall } from './dns-firewall';
import { encryptedLogGroup, type LogSettings } from './log-group';
import type { Observability } from './observability';
import { CLOUDFRONT_ORIGIN_FACING, ManagedPrefixList } from './managed-prefix-list';
import { OUTPUTS } from '../../contracts/stack-outputs';
import { output } from './outputs';

export interface NetworkProps {
  /** IPv4 range of the VPC (RFC 1918, /18 or larger). */
  readonly cidr: string;
  readonly sizing: NetworkSizing;
  readonly logs: LogSettings;
  /**
   * A Bedrock runtime endpoint, because the plugin daemon may invoke models (`bedrockModels`).
   * @default false - only when `sizing.interfaceEndpoints` is on
   */
  readonly bedrock?: boolean;
  /**
   * An SSM messages endpoint, because ECS Exec is on (`enableExec`).
   * @default false - no ECS Exec channel
   */
  readonly exec?: boolean;
  /**
   * The endpoints a private EKS cluster's nodes and kubectl function need: EKS, EKS Auth (Pod
   * Identity) and STS.
   * @default false - no EKS cluster
   */
  readonly eks?: boolean;
  /**
   * GuardDuty Runtime Monitoring (`guardDuty`): its agent runs in every Fargate task and sends to
   * the `guardduty-data` endpoint GuardDuty itself creates in this VPC, so tasks may reach 443 inside
   * the VPC (`allowRuntimeMonitoringAgent`), and the ECR endpoints let images of AWS's own accounts
   * be pulled (its agent's).
   * @default false
   */
  readonly runtimeMonitoring?: boolean;
}

/** Endpoints of a private EKS cluster (platform=eks): its API, Pod Identity's credentials, tokens. */
export const EKS_ENDPOINTS = {
  Eks: ec2.InterfaceVpcEndpointAwsService.EKS,
  EksAuth: ec2.InterfaceVpcEndpointAwsService.EKS_AUTH,
  Sts: ec2.InterfaceVpcEndpointAwsService.STS,
} as const;

/**
 * Interface endpoints every profile has. Dify's tasks have no route to the internet except through
 * the SSRF proxy, yet Fargate pulls their images, reads their secrets and ships their logs through
 * each task's own network interface: these endpoints (and S3's gateway endpoint, for image layers)
 * are how it does so.
 */
const TASK_ENDPOINTS = {
  SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
  EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
  Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
} as const;

/**
 * Interface endpoints of our in-VPC functions, which have no internet route either: Lambda (the
 * provider framework invokes its handler), ECS (the migration runner's RunTask, the secret rotation's
 * restarts) and ElastiCache (the secret rotation's ModifyUser). Only the functions that need one may
 * reach it.
 */
const FUNCTION_ENDPOINTS = {
  Lambda: ec2.InterfaceVpcEndpointAwsService.LAMBDA,
  Ecs: ec2.InterfaceVpcEndpointAwsService.ECS,
  ElastiCache: ec2.InterfaceVpcEndpointAwsService.ELASTICACHE,
} as const;

/** Endpoints a client asks for by name beyond the ones every Fargate task needs. */
export type ExtraEndpoint = keyof typeof FUNCTION_ENDPOINTS | 'BedrockRuntime';

/**
 * Endpoints whose calls name no resource of this account (an AWS-owned Bedrock model, an ECR
 * authorization token, an SSM session channel): their policies can hold the principal to this
 * account, but not the resource.
 */
const PRINCIPAL_ONLY: Partial<Record<string, string[]>> = {
  BedrockRuntime: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'],
  SsmMessages: ['ssmmessages:*'],
  EcrApi: ['ecr:GetAuthorizationToken'],
  // Who am I: names no resource; `aws eks get-token` signs it for the cluster to check.
  Sts: ['sts:GetCallerIdentity'],
};

/**
 * The VPC: public subnets for the load balancer and NAT only, private subnets with egress for tasks,
 * isolated subnets for Aurora and ElastiCache. With no NAT gateway (egress=none) the private subnets
 * have no route out of the VPC: only the routes an operator adds (a Transit Gateway or VPN route to
 * a private mirror or model server) lead anywhere. Flow logs go to an encrypted log group, the default
 * security group is stripped of its rules, and S3, ECR, CloudWatch Logs and Secrets Manager (always),
 * KMS (in prod) and Bedrock (when models are listed) are reached through endpoints.
 *
 * Interface endpoints admit HTTPS only from the security groups passed to `allowAppAccess`, never
 * from the VPC's CIDR, so a compromised workload that we did not register cannot use them.
 */
export class Network extends Construct {
  public readonly vpc: ec2.Vpc;
  /** Interface endpoints by name. */
  public readonly interfaceEndpoints: Readonly<Record<string, ec2.InterfaceVpcEndpoint>>;
  /** Route 53 Resolver DNS Firewall: AWS's managed threat domains answer NXDOMAIN. */
  public readonly dnsFirewall: DnsFirewall;
  /** S3's gateway endpoint; its policy is set by `restrictS3Endpoint` once the buckets exist. */
  public readonly s3Endpoint: ec2.GatewayVpcEndpoint;
  private readonly props: NetworkProps;
  private s3Prefixes?: ManagedPrefixList;
  private cloudFrontPrefixes?: ManagedPrefixList;

  /**
   * Bytes out through each NAT gateway per hour, against the profile's threshold: the one path out of
   * the VPC besides the endpoints, so a large upload from a compromised task shows here first.
   */
  public watchEgress(alarms: Observability): void {
    const limit = this.props.sizing.natBytesOutPerHourAlarm;
    this.vpc.publicSubnets.forEach((subnet, index) => {
      const nat = subnet.node.tryFindChild('NATGateway') as ec2.CfnNatGateway | undefined;
      if (nat === undefined) return;
      alarms.watch(this, `NatBytesOut${index + 1}`, {
        signal: 'egress.nat-bytes-out',
        title: `NAT gateway ${index + 1}: bytes out per hour`,
        metric: new cloudwatch.Metric({
          namespace: 'AWS/NATGateway',
          metricName: 'BytesOutToDestination',
          dimensionsMap: { NatGatewayId: nat.ref },
          statistic: 'Sum',
          period: Duration.hours(1),
        }),
        threshold: limit,
        periods: 1,
        description: `NAT gateway ${index + 1} sent ${limit / 1024 ** 3} GiB or more to the internet in an hour, more than Dify's LLM calls and downloads need: possibly data leaving through a compromised task. Check first the VPC flow log (log group ${this.props.logs.prefix}vpc-flow-logs) for the source addresses and destinations with the most bytes, then which task holds those addresses.`,
      });
    });
  }

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.props = props;
    const flowLogGroup = encryptedLogGroup(this, 'FlowLogGroup', props.logs, { suffix: 'vpc-flow-logs' });
    // VPC Flow Logs may assume this role only on behalf of this account's own flow logs (the
    // confused-deputy conditions AWS documents for the service).
    const flowLogRole = new iam.Role(this, 'FlowLogRole', {
      description: 'VPC flow logs delivery to the encrypted flow-log group',
      assumedBy: new iam.ServicePrincipal('vpc-flow-logs.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:vpc-flow-log/*` },
      }),
    });

    this.vpc = new ec2.Vpc(this, 'Resource', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr),
      maxAzs: props.sizing.azCount,
      natGateways: props.sizing.natGateways,
      // The default security group would let anything attached to it talk to everything else attached
      // to it; nothing should use it, so it keeps no rules at all.
      restrictDefaultSecurityGroup: true,
      subnetConfiguration: [
        { name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 22, mapPublicIpOnLaunch: false },
        { name: 'Private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 },
      ],
      flowLogs: {
        All: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup, flowLogRole),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });

    const wanted: Record<string, ec2.InterfaceVpcEndpointAwsService> = { ...TASK_ENDPOINTS, ...FUNCTION_ENDPOINTS };
    if (props.sizing.interfaceEndpoints) wanted.Kms = ec2.InterfaceVpcEndpointAwsService.KMS;
    if (props.sizing.interfaceEndpoints || props.bedrock === true) {
      wanted.BedrockRuntime = ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME;
    }
    if (props.exec === true) wanted.SsmMessages = ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES;
    if (props.eks === true) Object.assign(wanted, EKS_ENDPOINTS);
    const endpoints: Record<string, ec2.InterfaceVpcEndpoint> = {};
    for (const [name, service] of Object.entries(wanted)) {
      const securityGroup = new ec2.SecurityGroup(this, `${name}EndpointSecurityGroup`, {
        vpc: this.vpc,
        description: `${name} interface endpoint: HTTPS from the app security groups only`,
        allowAllOutbound: false,
      });
      endpoints[name] = this.vpc.addInterfaceEndpoint(`${name}Endpoint`, {
        service,
        privateDnsEnabled: true,
        open: false,
        securityGroups: [securityGroup],
        subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      });
      // AWS's own images (the EKS add-ons', GuardDuty's agent) come from AWS's accounts.
      const awsImages = props.eks === true || props.runtimeMonitoring === true;
      for (const statement of endpointPolicy(name, awsImages)) endpoints[name].addToPolicy(statement);
    }
    this.interfaceEndpoints = endpoints;
    this.s3Endpoint = this.vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    this.logDnsQueries(props.logs);
    this.dnsFirewall = new DnsFirewall(this, 'DnsFirewall', { vpc: this.vpc, logs: props.logs });
    this.restrictIsolatedSubnets();
    this.acknowledgeFindings(flowLogRole);
    output(this, OUTPUTS.vpcId, this.vpc.vpcId);
    output(this, OUTPUTS.privateSubnetIds, Fn.join(',', this.vpc.selectSubnets(this.privateSubnets).subnetIds));
  }

  /**
   * Route 53 Resolver query logging for the VPC: every name any workload resolves, to an encrypted
   * log group with the stack's retention, so that DNS used as a tunnel or a lookup of a threat
   * domain leaves a trace.
   */
  private logDnsQueries(logs: LogSettings): void {
    const queryLogGroup = encryptedLogGroup(this, 'DnsQueryLogGroup', logs, { suffix: 'vpc-dns-queries' });
    const config = new route53resolver.CfnResolverQueryLoggingConfig(this, 'DnsQueryLogging', {
      destinationArn: queryLogGroup.logGroupArn,
    });
    new route53resolver.CfnResolverQueryLoggingConfigAssociation(this, 'DnsQueryLoggingAssociation', {
      resolverQueryLogConfigId: config.attrId,
      resourceId: this.vpc.vpcId,
    });
  }

  /**
   * Admits through the S3 gateway endpoint only this account's principals to the stack's own
   * buckets, plus what the platform itself needs: ECR's image layers (AWS's regional layer bucket)
   * and the deploy-time functions' answers to CloudFormation's pre-signed response URLs. Anything
   * else through it, another account's bucket above all, is denied.
   */
  public restrictS3Endpoint(buckets: s3.IBucket[]): void {
    this.s3Endpoint.addToPolicy(
      new iam.PolicyStatement({
        sid: 'StackBucketsOnlyFromThisAccount',
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:*'],
        resources: buckets.flatMap((bucket) => [bucket.bucketArn, bucket.arnForObjects('*')]),
        conditions: { StringEquals: { 'aws:PrincipalAccount': Aws.ACCOUNT_ID } },
      }),
    );
    this.s3Endpoint.addToPolicy(
      new iam.PolicyStatement({
        sid: 'EcrImageLayers',
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:GetObject'],
        resources: [`arn:${Aws.PARTITION}:s3:::prod-${Aws.REGION}-starport-layer-bucket/*`],
      }),
    );
    this.s3Endpoint.addToPolicy(
      new iam.PolicyStatement({
        sid: 'CloudFormationResponses',
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [`arn:${Aws.PARTITION}:s3:::cloudformation-custom-resource-response-*/*`],
      }),
    );
  }

  /**
   * A network ACL on the isolated subnets, under the security groups: in, only PostgreSQL and Valkey
   * from the VPC, and the replies to the nodes' own replication between the isolated subnets; out,
   * only replies to the VPC and that replication. Even a security-group mistake cannot open another
   * port on a data store. (Traffic to the Amazon DNS server and time service is not subject to ACLs.)
   */
  private restrictIsolatedSubnets(): void {
    const acl = new ec2.NetworkAcl(this, 'IsolatedAcl', {
      vpc: this.vpc,
      subnetSelection: this.isolatedSubnets,
    });
    const vpcCidr = ec2.AclCidr.ipv4(this.props.cidr);
    const isolated = this.vpc.isolatedSubnets.map((subnet) => ec2.AclCidr.ipv4(subnet.ipv4CidrBlock));
    const why =
      'A deliberate second layer under the security groups, which stay the primary control: the isolated subnets admit only the two data ports from the VPC and the data stores’ own replication, so a security-group mistake cannot expose another port of a data store. Every entry is listed and tested (test/constructs/network.test.ts).';
    acknowledge(acl.node.defaultChild!, { id: 'AwsSolutions-VPC3', reason: why });
    let rule = 100;
    const entry = (direction: ec2.TrafficDirection, cidr: ec2.AclCidr, traffic: ec2.AclTraffic, name: string) => {
      // Ids name the entry, not its number, so they read the same whatever the zone count.
      const added = acl.addEntry(name, {
        ruleNumber: rule,
        cidr,
        traffic,
        direction,
        ruleAction: ec2.Action.ALLOW,
      });
      acknowledge(added.node.defaultChild!, { id: 'AwsSolutions-VPC3', reason: why });
      rule += 10;
    };
    for (const port of [5432, 6379]) {
      entry(ec2.TrafficDirection.INGRESS, vpcCidr, ec2.AclTraffic.tcpPort(port), `In${port}`);
    }
    isolated.forEach((cidr, index) => {
      // Valkey's replica connects to its primary on 6379; the reply comes back to an ephemeral port.
      const zone = index + 1;
      entry(ec2.TrafficDirection.INGRESS, cidr, ec2.AclTraffic.tcpPortRange(32768, 65535), `InReplication${zone}`);
      entry(ec2.TrafficDirection.EGRESS, cidr, ec2.AclTraffic.tcpPort(6379), `OutReplication${zone}`);
    });
    // Replies to the clients in the VPC, whose ports are ephemeral.
    entry(ec2.TrafficDirection.EGRESS, vpcCidr, ec2.AclTraffic.tcpPortRange(1024, 65535), 'OutReplies');
  }

  private acknowledgeFindings(flowLogRole: iam.Role): void {
    const igw =
      this.props.sizing.natGateways === 0
        ? 'Only the public subnets route to the internet gateway, and only the load balancer is placed in them (egress=none: no NAT gateway); tasks run in private subnets with no route out of the VPC, and data stores in isolated subnets with no route out.'
        : 'Only the public subnets route to the internet gateway, and only the load balancer and the NAT gateways are placed in them; tasks run in private subnets that egress through NAT, and data stores in isolated subnets with no route out.';
    for (const subnet of this.vpc.publicSubnets) {
      acknowledge(subnet.node.findChild('DefaultRoute'), ...nistAndHipaa('VPCNoUnrestrictedRouteToIGW', igw));
    }
    const flowLogPolicy = flowLogRole.node.findChild('DefaultPolicy').node.defaultChild!;
    const inline =
      'The flow-log delivery role: its inline policy allows writing to the one flow-log group only, cannot be attached to any other principal, and only VPC Flow Logs acting for this account may assume the role.';
    acknowledge(flowLogPolicy, ...nistAndHipaa('IAMNoInlinePolicy', inline));
  }

  /** Subnets for Dify's tasks and our in-VPC functions: private, egress through NAT only (none with egress=none). */
  public get privateSubnets(): ec2.SubnetSelection {
    return { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
  }

  /** Subnets for data stores: isolated, no route to or from the internet. */
  public get isolatedSubnets(): ec2.SubnetSelection {
    return { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  }

  /** Lets a workload reach the named interface endpoints on 443 (those that exist in this variant). */
  public allowEndpoints(client: ec2.IConnectable, description: string, names: readonly string[]): void {
    // Written from the client's side, so that the rules live with the client (in a later stack).
    for (const name of names) {
      const endpoint = this.interfaceEndpoints[name];
      if (endpoint !== undefined)
        client.connections.allowToDefaultPort(endpoint, `${description} to the ${name} endpoint`);
    }
  }

  /**
   * Lets a task with no internet route reach what Fargate needs on its behalf: the Secrets Manager,
   * ECR, Logs (and, where they exist, KMS and SSM messages) endpoints, any `extra` endpoint it
   * names, and S3 through the gateway endpoint (image layers, and the stack's buckets) by S3's
   * regional prefix list. Nothing else leaves the VPC.
   */
  public allowAwsServices(client: ec2.IConnectable, description: string, extra: readonly ExtraEndpoint[] = []): void {
    this.allowEndpoints(client, description, [...Object.keys(TASK_ENDPOINTS), 'Kms', 'SsmMessages', ...extra]);
    client.connections.allowTo(
      ec2.Peer.prefixList(this.s3PrefixListId),
      ec2.Port.tcp(443),
      `${description} to S3 through the gateway endpoint`,
    );
  }

  /**
   * With GuardDuty Runtime Monitoring, lets a Fargate task's GuardDuty agent reach the `guardduty-data`
   * endpoint: GuardDuty creates it in this VPC with its own security group, which admits 443 from the
   * VPC's range, so its addresses are known only after the deploy. Only resources whose own groups
   * admit this task are reachable: in this VPC, that endpoint and nothing else of ours, since every
   * endpoint and service here admits named security groups only.
   */
  public allowRuntimeMonitoringAgent(client: ec2.IConnectable, description: string): void {
    if (this.props.runtimeMonitoring !== true) return;
    client.connections.allowTo(
      ec2.Peer.ipv4(this.vpc.vpcCidrBlock),
      ec2.Port.tcp(443),
      `${description}: GuardDuty's runtime agent to the guardduty-data endpoint GuardDuty creates in the VPC`,
    );
  }

  /** Whether GuardDuty Runtime Monitoring's agent runs in the tasks (`runtimeMonitoring`). */
  public get runtimeMonitoring(): boolean {
    return this.props.runtimeMonitoring === true;
  }

  /** The id of S3's regional prefix list (what the gateway endpoint routes), read at deploy time. */
  public get s3PrefixListId(): string {
    this.s3Prefixes ??= new ManagedPrefixList(this, 'S3PrefixList', {
      name: Fn.join('.', ['com.amazonaws', Aws.REGION, 's3']),
      logGroupSuffix: 's3-prefix-list',
      logs: this.props.logs,
    });
    return this.s3Prefixes.prefixListId;
  }

  /** The id of CloudFront's origin-facing prefix list, read at deploy time: who may reach an origin. */
  public get cloudFrontOriginPrefixListId(): string {
    this.cloudFrontPrefixes ??= new ManagedPrefixList(this, 'CloudFrontPrefixList', {
      name: CLOUDFRONT_ORIGIN_FACING,
      logGroupSuffix: 'cloudfront-prefix-list',
      logs: this.props.logs,
    });
    return this.cloudFrontPrefixes.prefixListId;
  }
}

/**
 * An interface endpoint's policy: only this account's principals, and (where the calls name a
 * resource) only this account's resources, so a workload cannot push data through the endpoint to
 * another account's secret, log group, repository or function.
 */
function endpointPolicy(name: string, awsImages: boolean): iam.PolicyStatement[] {
  const account = { 'aws:PrincipalAccount': Aws.ACCOUNT_ID };
  const principalOnly = PRINCIPAL_ONLY[name];
  const statements = [];
  if (principalOnly !== undefined) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'ThisAccountsPrincipals',
        principals: [new iam.AnyPrincipal()],
        actions: principalOnly,
        resources: ['*'],
        conditions: { StringEquals: account },
      }),
    );
  }
  if (name !== 'BedrockRuntime' && name !== 'SsmMessages') {
    statements.push(
      new iam.PolicyStatement({
        sid: 'ThisAccountsPrincipalsAndResources',
        principals: [new iam.AnyPrincipal()],
        actions: ['*'],
        resources: ['*'],
        conditions: { StringEquals: { ...account, 'aws:ResourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
  }
  if (awsImages && (name === 'EcrApi' || name === 'EcrDocker')) {
    // Pulls only, by this account's principals, from any account's repository: the EKS add-ons' and
    // GuardDuty's images live in AWS's accounts (a different one per region). Pushing, and every
    // other call, still names this account's resources only.
    statements.push(
      new iam.PolicyStatement({
        sid: 'PullAwsImages',
        principals: [new iam.AnyPrincipal()],
        actions: [...ECR_PULL],
        resources: ['*'],
        conditions: { StringEquals: account },
      }),
    );
  }
  return statements;
}

/** What pulling an image takes from ECR, besides the authorization token. */
export const ECR_PULL = ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'] as const;
