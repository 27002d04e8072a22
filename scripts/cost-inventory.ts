// What `npm run cost` prices, read from the synthesized templates: task sizes and counts, the EKS
// cluster and its pods' requests, ACU ranges, cache nodes, NAT gateways, endpoints, the load
// balancer, CloudFront, WAF rules, keys, secrets, alarms, log groups. Every resource type is either
// read here, known to cost nothing by itself, billed only by use (named in the output), or reported
// as unpriced: nothing is dropped without a word.
import { Template } from 'aws-cdk-lib/assertions';
import { appliedManifests } from '../test/helpers/kubernetes';

/** A CloudFormation template as JSON. */
export type TemplateJson = { Resources?: Record<string, unknown> } & Record<string, unknown>;

/** Template JSON, read loosely: CloudFormation's properties are untyped, a missing one reads as undefined. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- as the tests read templates (eslint.config.mjs)
type Json = any;

interface Resource {
  readonly Type: string;
  readonly Properties?: Record<string, Json>;
}

/** An ECS service on Fargate at its desired count. */
export interface FargateService {
  readonly name: string;
  readonly vcpu: number;
  readonly memoryGiB: number;
  /** Ephemeral storage configured for the task; Fargate includes 20 GiB. */
  readonly ephemeralGiB: number;
  readonly tasks: number;
  readonly architecture: 'arm64' | 'x86_64';
  readonly spot: boolean;
  /** Tasks registered in Cloud Map (service discovery). */
  readonly registered: boolean;
}

/** A Kubernetes workload's pods and what each requests. */
export interface Pod {
  readonly name: string;
  /** The node pool its node selector picks (the NodePool whose labels it selects). */
  readonly pool: string;
  readonly vcpu: number;
  readonly memoryGiB: number;
  readonly replicas: number;
}

/** An Auto Mode node pool Dify's manifests define. */
export interface NodePool {
  readonly name: string;
  readonly architectures: string[];
  readonly capacityTypes: string[];
}

export interface Alarms {
  readonly alarms: number;
  /** Metrics of standard-resolution alarms (an anomaly-detection alarm's metric counts three). */
  readonly standardMetrics: number;
  /** Anomaly-detection alarms among them: billed for the metric and the band's two edges. */
  readonly anomalyAlarms: number;
  readonly highResolutionMetrics: number;
  readonly composite: number;
}

/** Everything with a price, counted across every stack of a deployment. */
export interface Inventory {
  readonly fargate: FargateService[];
  /** Task definitions no service runs (the migration, started once per deploy). */
  readonly oneOffTasks: string[];
  readonly eksClusters: number;
  /** Control-plane log types the clusters send to CloudWatch Logs (api, audit, ...). */
  readonly eksLogTypes: number;
  readonly nodePools: NodePool[];
  readonly pods: Pod[];
  /** Per-node reservation of DaemonSets in the manifests (vCPU, GiB). */
  readonly daemonSet: { readonly vcpu: number; readonly memoryGiB: number };
  /** GiB of each Auto Mode node's volume (the NodeClass's, or Auto Mode's default). */
  readonly nodeVolumeGiB: number;
  /** One entry per Aurora Serverless v2 instance. */
  readonly auroraInstances: Array<{ readonly minAcu: number; readonly maxAcu: number }>;
  readonly auroraClusters: number;
  readonly cacheNodes: Array<{ readonly nodeType: string; readonly engine: string; readonly count: number }>;
  readonly natGateways: number;
  readonly publicIpv4: number;
  /** Interface endpoints, each with the zones (subnets) it has a network interface in. */
  readonly interfaceEndpoints: Array<{ readonly service: string; readonly zones: number }>;
  readonly loadBalancers: Array<{ readonly type: string; readonly scheme: string; readonly zones: number }>;
  readonly distributions: number;
  readonly cloudFrontFunctions: number;
  readonly webAcls: Array<{ readonly scope: string; readonly rules: number; readonly logged: boolean }>;
  readonly kmsKeys: number;
  readonly secrets: number;
  readonly alarms: Alarms;
  readonly dashboards: number;
  /** Custom metrics the metric filters publish. */
  readonly filterMetrics: number;
  readonly insightRules: number;
  readonly logGroups: number;
  /** The retention most log groups have, in days (undefined: never expire). */
  readonly logRetentionDays: number | undefined;
  readonly flowLogs: Array<{ readonly destination: string }>;
  readonly dnsQueryLogs: number;
  readonly dnsFirewallAssociations: number;
  readonly buckets: number;
  readonly s3DataEventTrails: number;
  readonly privateDnsNamespaces: number;
  /** Types billed only by use, below any level worth a line (named in the output). */
  readonly usageOnly: Record<string, number>;
  /** Resources this reader cannot price: a new type, or a setting it does not model. */
  readonly unpriced: Array<{ readonly what: string; readonly count: number; readonly why: string }>;
}

/** Types that cost nothing by themselves (what they configure is priced where it is billed). */
export const FREE_TYPES: ReadonlySet<string> = new Set([
  'AWS::ApplicationAutoScaling::ScalableTarget',
  'AWS::ApplicationAutoScaling::ScalingPolicy',
  'AWS::CDK::Metadata',
  'AWS::CertificateManager::Certificate',
  'AWS::CloudFront::ResponseHeadersPolicy',
  'AWS::CloudFront::VpcOrigin',
  'AWS::EC2::InternetGateway',
  'AWS::EC2::NetworkAcl',
  'AWS::EC2::NetworkAclEntry',
  'AWS::EC2::Route',
  'AWS::EC2::RouteTable',
  'AWS::EC2::SecurityGroup',
  'AWS::EC2::SecurityGroupEgress',
  'AWS::EC2::SecurityGroupIngress',
  'AWS::EC2::Subnet',
  'AWS::EC2::SubnetNetworkAclAssociation',
  'AWS::EC2::SubnetRouteTableAssociation',
  'AWS::EC2::VPC',
  'AWS::EC2::VPCGatewayAttachment',
  'AWS::ECS::Cluster',
  'AWS::ECS::ClusterCapacityProviderAssociations',
  'AWS::EKS::AccessEntry',
  'AWS::EKS::Addon',
  'AWS::EKS::PodIdentityAssociation',
  'AWS::ElastiCache::SubnetGroup',
  'AWS::ElastiCache::User',
  'AWS::ElastiCache::UserGroup',
  'AWS::ElasticLoadBalancingV2::Listener',
  'AWS::ElasticLoadBalancingV2::ListenerCertificate',
  'AWS::ElasticLoadBalancingV2::ListenerRule',
  'AWS::ElasticLoadBalancingV2::TargetGroup',
  'AWS::Events::Rule',
  'AWS::IAM::AccessKey',
  'AWS::IAM::ManagedPolicy',
  'AWS::IAM::Policy',
  'AWS::IAM::Role',
  'AWS::IAM::User',
  'AWS::KMS::Alias',
  'AWS::Lambda::LayerVersion',
  'AWS::Lambda::Permission',
  'AWS::Logs::ResourcePolicy',
  'AWS::RDS::DBClusterParameterGroup',
  'AWS::RDS::DBSubnetGroup',
  'AWS::Route53::RecordSet',
  'AWS::Route53Resolver::FirewallRuleGroup',
  'AWS::Route53Resolver::ResolverQueryLoggingConfigAssociation',
  'AWS::S3::BucketPolicy',
  'AWS::SNS::TopicPolicy',
  'AWS::SES::ConfigurationSet',
  'AWS::SSM::Parameter',
  'AWS::SecretsManager::ResourcePolicy',
  'AWS::SecretsManager::RotationSchedule',
  'AWS::SecretsManager::SecretTargetAttachment',
  'AWS::ServiceDiscovery::Service',
  'AWS::WAFv2::IPSet',
  'AWS::WAFv2::RegexPatternSet',
]);

/** Types billed only per use, at volumes this deployment keeps within free tiers or cents. */
export const USAGE_ONLY_TYPES: Readonly<Record<string, string>> = {
  'AWS::Lambda::Function': 'Lambda functions (rotation, deploy-time providers, responders: run on events)',
  'AWS::SNS::Topic': 'SNS topics (e-mail notifications within the free thousand)',
  'AWS::SNS::Subscription': 'SNS subscriptions',
  'AWS::SES::EmailIdentity': 'SES identities ($0.10 per 1,000 e-mails: invitations and password resets)',
};

/** Types read below, into the inventory. */
const READ_TYPES = new Set([
  'AWS::CloudFront::Distribution',
  'AWS::CloudFront::Function',
  'AWS::CloudTrail::Trail',
  'AWS::CloudWatch::Alarm',
  'AWS::CloudWatch::CompositeAlarm',
  'AWS::CloudWatch::Dashboard',
  'AWS::CloudWatch::InsightRule',
  'AWS::EC2::EIP',
  'AWS::EC2::FlowLog',
  'AWS::EC2::NatGateway',
  'AWS::EC2::VPCEndpoint',
  'AWS::ECS::Service',
  'AWS::ECS::TaskDefinition',
  'AWS::EKS::Cluster',
  'AWS::ElastiCache::ReplicationGroup',
  'AWS::ElasticLoadBalancingV2::LoadBalancer',
  'AWS::KMS::Key',
  'AWS::Logs::LogGroup',
  'AWS::Logs::MetricFilter',
  'AWS::RDS::DBCluster',
  'AWS::RDS::DBInstance',
  'AWS::Route53Resolver::FirewallRuleGroupAssociation',
  'AWS::Route53Resolver::ResolverQueryLoggingConfig',
  'AWS::S3::Bucket',
  'AWS::SecretsManager::Secret',
  'AWS::ServiceDiscovery::PrivateDnsNamespace',
  'AWS::WAFv2::LoggingConfiguration',
  'AWS::WAFv2::WebACL',
]);

/** WAF managed rule groups with a subscription fee of their own, which the table does not price. */
const PAID_RULE_GROUPS = new Set([
  'AWSManagedRulesBotControlRuleSet',
  'AWSManagedRulesATPRuleSet',
  'AWSManagedRulesACFPRuleSet',
  'AWSManagedRulesAntiDDoSRuleSet',
]);

/** Auto Mode gives each node an 80 GiB volume unless the NodeClass sets `ephemeralStorage.size`. */
const AUTO_MODE_NODE_VOLUME_GIB = 80;

/** A logical id a value refers to with Ref (or Fn::GetAtt), if it is a plain reference. */
function refOf(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const ref = (value as { Ref?: unknown }).Ref;
  if (typeof ref === 'string') return ref;
  const getAtt = (value as { 'Fn::GetAtt'?: unknown })['Fn::GetAtt'];
  return Array.isArray(getAtt) && typeof getAtt[0] === 'string' ? getAtt[0] : undefined;
}

/** A Kubernetes CPU quantity in vCPU ("250m", "1"). */
export function cpuOf(quantity: string | number): number {
  const text = String(quantity);
  if (text.endsWith('m')) return Number(text.slice(0, -1)) / 1000;
  const value = Number(text);
  if (Number.isNaN(value)) throw new Error(`not a CPU quantity: "${text}" (expected such as 250m or 1)`);
  return value;
}

/** A Kubernetes memory quantity in GiB ("512Mi", "4Gi", "1G"). */
export function memoryOf(quantity: string | number): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(quantity));
  if (match === null) throw new Error(`not a memory quantity: "${quantity}" (expected such as 512Mi or 4Gi)`);
  const factor: Record<string, number> = {
    '': 1,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return (Number(match[1]) * factor[match[2] ?? '']) / 1024 ** 3;
}

function mode(values: Array<number | undefined>): number | undefined {
  const counts = new Map<number | undefined, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  let best: number | undefined;
  let bestCount = 0;
  for (const [value, count] of counts) {
    if (count > bestCount || (count === bestCount && (value ?? Infinity) > (best ?? Infinity))) {
      best = value;
      bestCount = count;
    }
  }
  return best;
}

/** The metrics an alarm is billed for, and whether they are high resolution. */
function alarmMetrics(properties: Record<string, Json>): {
  metrics: number;
  highResolution: boolean;
  anomaly: boolean;
} {
  if (properties.MetricName !== undefined) {
    return { metrics: 1, highResolution: Number(properties.Period ?? 60) < 60, anomaly: false };
  }
  const queries = (properties.Metrics ?? []) as Array<Record<string, Json>>;
  const stats = queries.filter((query) => query.MetricStat !== undefined);
  const expressions = queries.map((query) => String(query.Expression ?? ''));
  // An anomaly-detection alarm is billed as three metrics: the metric and the band's two edges.
  const anomaly = expressions.some((expression) => expression.includes('ANOMALY_DETECTION_BAND'));
  const insight = expressions.filter((expression) => expression.includes('INSIGHT_RULE_METRIC')).length;
  const highResolution = stats.some((query) => Number(query.MetricStat.Period) < 60);
  return { metrics: (stats.length + insight) * (anomaly ? 3 : 1), highResolution, anomaly };
}

/** Reads what costs money from every stack's template of one deployment. */
export function readInventory(templates: Record<string, TemplateJson>): Inventory {
  const all: Array<[string, Resource]> = Object.values(templates).flatMap((template) =>
    Object.entries((template.Resources ?? {}) as Record<string, Resource>),
  );
  const byType = (type: string) => all.filter(([, resource]) => resource.Type === type);
  const props = (resource: Resource) => resource.Properties ?? {};
  const unpriced: Array<{ what: string; count: number; why: string }> = [];
  const usageOnly: Record<string, number> = {};

  const typeCounts = new Map<string, number>();
  for (const [, resource] of all) typeCounts.set(resource.Type, (typeCounts.get(resource.Type) ?? 0) + 1);
  for (const [type, count] of [...typeCounts].sort(([a], [b]) => a.localeCompare(b))) {
    if (READ_TYPES.has(type) || FREE_TYPES.has(type)) continue;
    // Custom resources run a Lambda function at deploy time only.
    if (type.startsWith('Custom::') || type === 'AWS::CloudFormation::CustomResource') continue;
    if (type in USAGE_ONLY_TYPES) usageOnly[type] = count;
    else unpriced.push({ what: type, count, why: 'a resource type the cost reader does not know' });
  }

  // ECS: each service at its desired count, sized by its task definition.
  const taskDefinitions = new Map(byType('AWS::ECS::TaskDefinition'));
  const runByService = new Set<string>();
  const fargate: FargateService[] = [];
  for (const [id, service] of byType('AWS::ECS::Service')) {
    const p = props(service);
    const taskId = refOf(p.TaskDefinition);
    const task = taskId === undefined ? undefined : taskDefinitions.get(taskId);
    if (taskId === undefined || task === undefined) {
      unpriced.push({ what: `ECS service ${id}`, count: 1, why: 'its task definition is not in these templates' });
      continue;
    }
    runByService.add(taskId);
    const t = props(task);
    const providers = (p.CapacityProviderStrategy ?? []) as Array<{ CapacityProvider: string; Weight?: number }>;
    const launchType = p.LaunchType ?? (providers.length > 0 ? 'FARGATE' : undefined);
    if (launchType !== 'FARGATE') {
      unpriced.push({ what: `ECS service ${id}`, count: 1, why: `launch type ${String(launchType)} is not Fargate` });
      continue;
    }
    const spotWeight = providers.find((provider) => provider.CapacityProvider === 'FARGATE_SPOT')?.Weight ?? 0;
    const totalWeight = providers.reduce((sum, provider) => sum + (provider.Weight ?? 0), 0);
    fargate.push({
      name: String(t.Family ?? taskId),
      vcpu: Number(t.Cpu) / 1024,
      memoryGiB: Number(t.Memory) / 1024,
      ephemeralGiB: Number(t.EphemeralStorage?.SizeInGiB ?? 20),
      tasks: Number(p.DesiredCount ?? 1),
      architecture: t.RuntimePlatform?.CpuArchitecture === 'ARM64' ? 'arm64' : 'x86_64',
      spot: totalWeight > 0 && spotWeight === totalWeight,
      registered: ((p.ServiceRegistries ?? []) as unknown[]).length > 0,
    });
  }
  const oneOffTasks = [...taskDefinitions]
    .filter(([id]) => !runByService.has(id))
    .map(([id, task]) => String(props(task).Family ?? id));

  // EKS: the node pools and the pods Dify's manifests run; Jobs run once per deploy.
  const nodePools: NodePool[] = [];
  const pods: Pod[] = [];
  const poolLabels: Array<{ name: string; labels: Record<string, string> }> = [];
  const workloads: Array<{
    name: string;
    selector: Record<string, string>;
    vcpu: number;
    memoryGiB: number;
    replicas: number;
  }> = [];
  const daemonSet = { vcpu: 0, memoryGiB: 0 };
  let nodeVolumeGiB = AUTO_MODE_NODE_VOLUME_GIB;
  for (const template of Object.values(templates)) {
    const resources = (template.Resources ?? {}) as Record<string, Resource>;
    if (!Object.values(resources).some((resource) => resource.Type === 'Custom::AWSCDK-EKS-KubernetesResource'))
      continue;
    for (const manifest of appliedManifests(Template.fromJSON(template))) {
      for (const object of manifest.objects) {
        if (object.kind === 'NodePool') {
          const requirements = (object.spec?.template?.spec?.requirements ?? []) as Array<{
            key: string;
            values: string[];
          }>;
          const valuesOf = (key: string) => requirements.find((requirement) => requirement.key === key)?.values ?? [];
          nodePools.push({
            name: String(object.metadata?.name),
            architectures: valuesOf('kubernetes.io/arch'),
            capacityTypes: valuesOf('karpenter.sh/capacity-type'),
          });
          poolLabels.push({
            name: String(object.metadata?.name),
            labels: object.spec?.template?.metadata?.labels ?? {},
          });
        }
        if (object.kind === 'NodeClass' && object.spec?.ephemeralStorage?.size !== undefined) {
          nodeVolumeGiB = memoryOf(object.spec.ephemeralStorage.size);
        }
        if (!['Deployment', 'StatefulSet', 'DaemonSet'].includes(object.kind)) continue;
        const pod = object.spec?.template?.spec ?? {};
        const containers = (pod.containers ?? []) as Array<{ resources?: { requests?: Record<string, string> } }>;
        const vcpu = containers.reduce((sum, c) => sum + cpuOf(c.resources?.requests?.cpu ?? '0'), 0);
        const memoryGiB = containers.reduce((sum, c) => sum + memoryOf(c.resources?.requests?.memory ?? '0'), 0);
        if (object.kind === 'DaemonSet') {
          daemonSet.vcpu += vcpu;
          daemonSet.memoryGiB += memoryGiB;
          continue;
        }
        workloads.push({
          name: String(object.metadata?.name),
          selector: pod.nodeSelector ?? {},
          vcpu,
          memoryGiB,
          replicas: Number(object.spec?.replicas ?? 1),
        });
      }
    }
  }
  for (const workload of workloads) {
    const pool = poolLabels.find(
      (candidate) =>
        Object.keys(candidate.labels).length > 0 &&
        Object.entries(candidate.labels).every(([key, value]) => workload.selector[key] === value),
    );
    if (pool === undefined) {
      unpriced.push({
        what: `pod ${workload.name}`,
        count: workload.replicas,
        why: 'it selects no node pool of the manifests',
      });
      continue;
    }
    pods.push({
      name: workload.name,
      pool: pool.name,
      vcpu: workload.vcpu,
      memoryGiB: workload.memoryGiB,
      replicas: workload.replicas,
    });
  }

  // Aurora Serverless v2: each instance between the cluster's minimum and maximum ACU.
  const clusters = new Map(byType('AWS::RDS::DBCluster'));
  const auroraInstances: Array<{ minAcu: number; maxAcu: number }> = [];
  for (const [id, instance] of byType('AWS::RDS::DBInstance')) {
    const p = props(instance);
    const clusterId = refOf(p.DBClusterIdentifier);
    const cluster = clusterId === undefined ? undefined : clusters.get(clusterId);
    const scaling = cluster === undefined ? undefined : props(cluster).ServerlessV2ScalingConfiguration;
    if (p.DBInstanceClass !== 'db.serverless' || scaling === undefined) {
      unpriced.push({
        what: `RDS instance ${id}`,
        count: 1,
        why: `class ${String(p.DBInstanceClass)} (only Serverless v2 is priced)`,
      });
      continue;
    }
    auroraInstances.push({ minAcu: Number(scaling.MinCapacity), maxAcu: Number(scaling.MaxCapacity) });
  }
  for (const [id, cluster] of clusters) {
    if (props(cluster).StorageType !== undefined && props(cluster).StorageType !== 'aurora') {
      unpriced.push({
        what: `Aurora cluster ${id}`,
        count: 1,
        why: `storage type ${props(cluster).StorageType} (only Aurora Standard is priced)`,
      });
    }
  }

  const cacheNodes = byType('AWS::ElastiCache::ReplicationGroup').map(([, group]) => {
    const p = props(group);
    const shards = Number(p.NumNodeGroups ?? 1);
    const perShard =
      p.NumCacheClusters !== undefined ? Number(p.NumCacheClusters) : 1 + Number(p.ReplicasPerNodeGroup ?? 0);
    return { nodeType: String(p.CacheNodeType), engine: String(p.Engine ?? 'redis'), count: shards * perShard };
  });
  for (const type of ['AWS::ElastiCache::ServerlessCache', 'AWS::ElastiCache::CacheCluster']) {
    const found = byType(type);
    if (found.length > 0) unpriced.push({ what: type, count: found.length, why: 'not modelled' });
  }

  const loadBalancers = byType('AWS::ElasticLoadBalancingV2::LoadBalancer').map(([, lb]) => {
    const p = props(lb);
    const zones = ((p.Subnets ?? p.SubnetMappings ?? []) as unknown[]).length;
    return { type: String(p.Type ?? 'application'), scheme: String(p.Scheme ?? 'internet-facing'), zones };
  });
  for (const lb of loadBalancers.filter((candidate) => candidate.type !== 'application')) {
    unpriced.push({ what: `${lb.type} load balancer`, count: 1, why: 'only Application Load Balancers are priced' });
  }

  for (const [id, endpoint] of byType('AWS::EC2::VPCEndpoint')) {
    const type = props(endpoint).VpcEndpointType ?? 'Gateway';
    // Gateway endpoints (S3, DynamoDB) cost nothing; other kinds are not modelled.
    if (type !== 'Interface' && type !== 'Gateway') {
      unpriced.push({ what: `VPC endpoint ${id}`, count: 1, why: `type ${String(type)} is not modelled` });
    }
  }
  const interfaceEndpoints = byType('AWS::EC2::VPCEndpoint')
    .filter(([, endpoint]) => props(endpoint).VpcEndpointType === 'Interface')
    .map(([id, endpoint]) => {
      const name = props(endpoint).ServiceName;
      const service = typeof name === 'string' ? name.split('.').slice(3).join('.') || name : id;
      return { service, zones: ((props(endpoint).SubnetIds ?? []) as unknown[]).length };
    });

  const loggedAcls = new Set(
    byType('AWS::WAFv2::LoggingConfiguration').map(([, config]) => refOf(props(config).ResourceArn)),
  );
  const webAcls = byType('AWS::WAFv2::WebACL').map(([id, acl]) => {
    const rules = (props(acl).Rules ?? []) as Array<{ Name: string; Statement: Record<string, Json> }>;
    for (const rule of rules) {
      const group = rule.Statement.ManagedRuleGroupStatement?.Name;
      if (PAID_RULE_GROUPS.has(group))
        unpriced.push({ what: `WAF rule group ${group}`, count: 1, why: 'it has a subscription fee of its own' });
    }
    return { scope: String(props(acl).Scope), rules: rules.length, logged: loggedAcls.has(id) };
  });

  const alarms = byType('AWS::CloudWatch::Alarm').reduce(
    (sum, [, alarm]) => {
      const { metrics, highResolution, anomaly } = alarmMetrics(props(alarm));
      return {
        alarms: sum.alarms + 1,
        anomalyAlarms: sum.anomalyAlarms + (anomaly ? 1 : 0),
        standardMetrics: sum.standardMetrics + (highResolution ? 0 : metrics),
        highResolutionMetrics: sum.highResolutionMetrics + (highResolution ? metrics : 0),
        composite: sum.composite,
      };
    },
    {
      alarms: 0,
      anomalyAlarms: 0,
      standardMetrics: 0,
      highResolutionMetrics: 0,
      composite: byType('AWS::CloudWatch::CompositeAlarm').length,
    },
  );

  const flowLogs = byType('AWS::EC2::FlowLog').map(([, flowLog]) => ({
    destination: String(props(flowLog).LogDestinationType ?? 'cloud-watch-logs'),
  }));
  for (const flowLog of flowLogs.filter((candidate) => candidate.destination !== 'cloud-watch-logs')) {
    unpriced.push({
      what: `flow log to ${flowLog.destination}`,
      count: 1,
      why: 'only delivery to CloudWatch Logs is priced',
    });
  }

  const s3DataEventTrails = byType('AWS::CloudTrail::Trail').filter(([, trail]) =>
    ((props(trail).EventSelectors ?? []) as Array<{ DataResources?: Array<{ Type: string }> }>).some((selector) =>
      (selector.DataResources ?? []).some((resource) => resource.Type === 'AWS::S3::Object'),
    ),
  ).length;
  const otherTrails = byType('AWS::CloudTrail::Trail').length - s3DataEventTrails;
  if (otherTrails > 0)
    unpriced.push({ what: 'CloudTrail trail without S3 data events', count: otherTrails, why: 'not modelled' });

  const eips = byType('AWS::EC2::EIP').length;
  const publicLbAddresses = loadBalancers
    .filter((lb) => lb.scheme === 'internet-facing')
    .reduce((sum, lb) => sum + lb.zones, 0);

  return {
    fargate,
    oneOffTasks,
    eksClusters: byType('AWS::EKS::Cluster').length,
    eksLogTypes: byType('AWS::EKS::Cluster').reduce(
      (sum, [, cluster]) => sum + ((props(cluster).Logging?.ClusterLogging?.EnabledTypes ?? []) as unknown[]).length,
      0,
    ),
    nodePools,
    pods,
    daemonSet,
    nodeVolumeGiB,
    auroraInstances,
    auroraClusters: clusters.size,
    cacheNodes,
    natGateways: byType('AWS::EC2::NatGateway').length,
    publicIpv4: eips + publicLbAddresses,
    interfaceEndpoints,
    loadBalancers: loadBalancers.filter((lb) => lb.type === 'application'),
    distributions: byType('AWS::CloudFront::Distribution').length,
    cloudFrontFunctions: byType('AWS::CloudFront::Function').length,
    webAcls,
    kmsKeys: byType('AWS::KMS::Key').length,
    secrets: byType('AWS::SecretsManager::Secret').length,
    alarms,
    dashboards: byType('AWS::CloudWatch::Dashboard').length,
    filterMetrics: byType('AWS::Logs::MetricFilter').reduce(
      (sum, [, filter]) => sum + ((props(filter).MetricTransformations ?? []) as unknown[]).length,
      0,
    ),
    insightRules: byType('AWS::CloudWatch::InsightRule').length,
    logGroups: byType('AWS::Logs::LogGroup').length,
    logRetentionDays: mode(
      byType('AWS::Logs::LogGroup').map(([, group]) => props(group).RetentionInDays as number | undefined),
    ),
    flowLogs,
    dnsQueryLogs: byType('AWS::Route53Resolver::ResolverQueryLoggingConfig').length,
    dnsFirewallAssociations: byType('AWS::Route53Resolver::FirewallRuleGroupAssociation').length,
    buckets: byType('AWS::S3::Bucket').length,
    s3DataEventTrails,
    privateDnsNamespaces: byType('AWS::ServiceDiscovery::PrivateDnsNamespace').length,
    usageOnly,
    unpriced,
  };
}
