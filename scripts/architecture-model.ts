// What the architecture diagrams show, read from a synthesized app: its stacks' templates and the
// construct paths of their resources. Nothing here is configuration or assumption: a resource that
// disappears from the templates disappears from the diagram.
import { CfnResource, Stack } from 'aws-cdk-lib';
import { FLOWS, type DifyServiceName, SERVICE_ROWS } from '../lib/constructs/dify/catalog';
import { appliedManifests } from '../test/helpers/kubernetes';
import type { Built } from '../test/helpers/synth';

/** A template as JSON: resources by logical id. */
type Json = Record<string, unknown>;
interface Resource {
  readonly Type: string;
  readonly Properties?: Json;
}

/** One stack of the app, in deploy order. */
export interface StackSummary {
  readonly name: string;
  readonly region: string;
  readonly resources: number;
}

/** A Dify service, or the LLM gateway, as the platform runs it. */
export interface Workload {
  /** The catalogue's short name (`api`, `ssrf-proxy`, ...) or `llm-gateway`. */
  readonly name: string;
  readonly stack: string;
  /** `service`: long-running (ECS service or Deployment); `one-off`: run per deploy (ECS task or Job). */
  readonly kind: 'service' | 'one-off';
  /** Tasks or replicas at deploy; undefined for a one-off. */
  readonly count?: number;
  /** ECS Fargate, or a Kubernetes Deployment/Job in a namespace of the EKS cluster. */
  readonly platform: 'ecs' | 'eks';
  /** Kubernetes namespace (EKS only). */
  readonly namespace?: string;
  /** Kubernetes runtime class, e.g. a VM per pod (EKS only). */
  readonly runtimeClass?: string;
  /** The port it serves on, if any. */
  readonly port?: number;
  /** Routed by the load balancer, on this container port. */
  readonly routedPort?: number;
  /** TCP ports this workload may open to any public address (its egress through NAT). */
  readonly internetPorts: readonly number[];
}

/** A flow of the catalogue between two things the diagram shows. */
export interface DiagramFlow {
  readonly from: string;
  readonly to: string;
}

export interface ArchitectureModel {
  readonly stacks: readonly StackSummary[];
  readonly mainStack: string;
  /** The stacks CloudFront needs in us-east-1 (its web ACL and certificate, its alarms). */
  readonly globalStacks: readonly string[];
  readonly platform: 'ecs' | 'eks';
  readonly network: {
    readonly vpcCidr: string;
    readonly availabilityZones: number;
    readonly subnets: { readonly public: number; readonly private: number; readonly isolated: number };
    readonly natGateways: number;
    readonly internetGateway: boolean;
    readonly interfaceEndpoints: readonly string[];
    readonly gatewayEndpoints: readonly string[];
    readonly flowLogs: boolean;
  };
  readonly edge: {
    readonly cloudFront?: { readonly stack: string; readonly vpcOrigin: boolean; readonly functions: number };
    readonly webAcls: ReadonlyArray<{ readonly stack: string; readonly scope: string; readonly rules: number }>;
    readonly loadBalancer: {
      readonly stack: string;
      readonly scheme: 'internal' | 'internet-facing';
      readonly listeners: readonly string[];
    };
    /** ACM certificates the app creates, by stack; plus load balancer certificates passed in by ARN. */
    readonly certificates: ReadonlyArray<{ readonly stack: string; readonly created: boolean }>;
    readonly dnsRecords: number;
    /** WAF IP sets: the allow-lists. */
    readonly ipSets: number;
  };
  readonly eks?: {
    readonly stack: string;
    readonly privateEndpointOnly: boolean;
    readonly nodePools: readonly string[];
    readonly namespaces: readonly string[];
    readonly networkPolicies: number;
    readonly podIdentities: number;
  };
  readonly ecsClusters: number;
  readonly workloads: readonly Workload[];
  readonly data: {
    readonly aurora?: {
      readonly stack: string;
      readonly engine: string;
      readonly version: string;
      readonly instances: number;
      readonly port?: number;
      readonly kmsEncrypted: boolean;
      readonly minAcu?: number;
      readonly maxAcu?: number;
    };
    readonly cache?: {
      readonly stack: string;
      readonly engine: string;
      readonly version: string;
      readonly port?: number;
      readonly tls: boolean;
      readonly kmsEncrypted: boolean;
      readonly nodeType: string;
      readonly nodes: number;
    };
    readonly buckets: ReadonlyArray<{ readonly stack: string; readonly name: string }>;
  };
  readonly keys: ReadonlyArray<{ readonly stack: string; readonly name: string }>;
  readonly secrets: ReadonlyArray<{ readonly stack: string; readonly count: number }>;
  readonly alarms: ReadonlyArray<{ readonly stack: string; readonly count: number }>;
  readonly alarmTopics: number;
  readonly flows: readonly DiagramFlow[];
}

/** The resource paths of every stack, by stack name and logical id. */
function constructPaths(built: Built): Map<string, Map<string, string>> {
  const paths = new Map<string, Map<string, string>>();
  for (const construct of built.app.node.findAll()) {
    if (!CfnResource.isCfnResource(construct)) continue;
    const stack = Stack.of(construct);
    const byId = paths.get(stack.stackName) ?? new Map<string, string>();
    byId.set(stack.resolve(construct.logicalId) as string, construct.node.path);
    paths.set(stack.stackName, byId);
  }
  return paths;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The last two parts of a construct path below its stack that name a component:
 * `Dify-Foundation/Keys/Data/Resource` -> `Keys/Data`, `Dify-Runtime/Dify/Eks/Eks/Key/Resource` -> `Eks/Key`.
 */
function componentName(path: string): string {
  const parts = path
    .split('/')
    .slice(1)
    .filter((part, index, all) => part !== 'Resource' && part !== 'Default' && part !== all[index - 1]);
  return parts.slice(-2).join('/');
}

/** `com.amazonaws.<region>.ecr.api`, plain or as an Fn::Join: `ecr.api`. */
function endpointService(serviceName: unknown): string {
  const join = (serviceName as { 'Fn::Join'?: [string, unknown[]] })?.['Fn::Join'];
  const text = join ? join[1].map((part) => (typeof part === 'string' ? part : '<region>')).join(join[0]) : serviceName;
  if (typeof text !== 'string') throw new Error(`VPC endpoint service name not understood: ${JSON.stringify(text)}`);
  return text.replace(/^com\.amazonaws\.[^.]+\./, '');
}

/** The short catalogue name a workload's container, Deployment or Job carries. */
function workloadName(name: string): string | undefined {
  if (name === 'llm-gateway') return name;
  const row = SERVICE_ROWS.find((candidate) => candidate.name === name || name.startsWith(`${candidate.name}-`));
  return row?.name;
}

/** Reads the diagram's content from a built app (test/helpers/synth build()). */
export function architectureOf(built: Built): ArchitectureModel {
  const paths = constructPaths(built);
  const stacks = built.stacks.stacks.map((stack) => stack.stackName);
  const mainStack = built.stacks.main.stackName;
  const templates = Object.fromEntries(
    stacks.map((name) => [name, (built.templates[name].toJSON().Resources ?? {}) as Record<string, Resource>]),
  );
  const all = (type: string): Array<{ stack: string; id: string; properties: Json; path: string }> =>
    stacks.flatMap((stack) =>
      Object.entries(templates[stack])
        .filter(([, resource]) => resource.Type === type)
        .sort(([a], [b]) => byName(a, b))
        .map(([id, resource]) => ({
          stack,
          id,
          properties: resource.Properties ?? {},
          path: paths.get(stack)?.get(id) ?? `${stack}/${id}`,
        })),
    );
  const one = (type: string) => {
    const found = all(type);
    if (found.length !== 1) throw new Error(`expected one ${type} in the app, found ${found.length}`);
    return found[0];
  };

  const subnets = all('AWS::EC2::Subnet').map((subnet) => {
    const tags = (subnet.properties.Tags ?? []) as Array<{ Key: string; Value: string }>;
    return {
      type: tags.find((tag) => tag.Key === 'aws-cdk:subnet-type')?.Value ?? 'unknown',
      zone: JSON.stringify(subnet.properties.AvailabilityZone),
    };
  });
  const subnetCount = (type: string) => subnets.filter((subnet) => subnet.type === type).length;
  const endpoints = all('AWS::EC2::VPCEndpoint').map((endpoint) => ({
    type: endpoint.properties.VpcEndpointType,
    service: endpointService(endpoint.properties.ServiceName),
  }));
  const endpointsOf = (type: string) =>
    endpoints
      .filter((endpoint) => endpoint.type === type)
      .map((endpoint) => endpoint.service)
      .sort(byName);

  const distributions = all('AWS::CloudFront::Distribution');
  const loadBalancer = one('AWS::ElasticLoadBalancingV2::LoadBalancer');
  const listeners = all('AWS::ElasticLoadBalancingV2::Listener');
  const certificates = [
    ...all('AWS::CertificateManager::Certificate').map((certificate) => ({ stack: certificate.stack, created: true })),
    ...listeners.flatMap((listener) =>
      ((listener.properties.Certificates ?? []) as Array<{ CertificateArn: unknown }>)
        .filter((certificate) => typeof certificate.CertificateArn === 'string')
        .map(() => ({ stack: listener.stack, created: false })),
    ),
  ];

  // Internet egress: ECS security-group rules to any IPv4 address, and Kubernetes network policies
  // that open 0.0.0.0/0 to a workload's pods.
  const internetPorts = new Map<string, Set<number>>();
  const addInternet = (name: string | undefined, port: unknown) => {
    if (name === undefined || typeof port !== 'number') return;
    internetPorts.set(name, (internetPorts.get(name) ?? new Set()).add(port));
  };
  const ownerOf = (path: string) =>
    path.includes('/LlmGateway/') ? 'llm-gateway' : SERVICE_ROWS.find((row) => path.split('/').includes(row.id))?.name;
  for (const group of all('AWS::EC2::SecurityGroup')) {
    for (const rule of (group.properties.SecurityGroupEgress ?? []) as Json[]) {
      if (rule.CidrIp === '0.0.0.0/0' && rule.IpProtocol === 'tcp') addInternet(ownerOf(group.path), rule.FromPort);
    }
  }
  for (const rule of all('AWS::EC2::SecurityGroupEgress')) {
    if (rule.properties.CidrIp === '0.0.0.0/0') addInternet(ownerOf(rule.path), rule.properties.FromPort);
  }

  const manifests = stacks.flatMap((stack) =>
    appliedManifests(built.templates[stack]).flatMap((manifest) =>
      manifest.objects.map((object) => ({ stack, object: object as Json & { kind?: string; metadata?: Json } })),
    ),
  );
  const objects = (kind: string) => manifests.filter(({ object }) => object.kind === kind);
  for (const { object } of objects('NetworkPolicy')) {
    const spec = (object.spec ?? {}) as Json;
    const selected = ((spec.podSelector as Json | undefined)?.matchLabels as Json | undefined)?.[
      'app.kubernetes.io/name'
    ];
    for (const rule of (spec.egress ?? []) as Json[]) {
      const anywhere = ((rule.to ?? []) as Json[]).some(
        (peer) => (peer.ipBlock as Json | undefined)?.cidr === '0.0.0.0/0',
      );
      if (!anywhere || typeof selected !== 'string') continue;
      for (const port of (rule.ports ?? []) as Json[]) addInternet(workloadName(selected), port.port);
    }
  }

  const workloads: Workload[] = [];
  const ecsServices = all('AWS::ECS::Service');
  for (const definition of all('AWS::ECS::TaskDefinition')) {
    const containers = (definition.properties.ContainerDefinitions ?? []) as Json[];
    const name = workloadName(String(containers[0]?.Name));
    if (name === undefined) continue;
    const service = ecsServices.find(
      (candidate) =>
        candidate.stack === definition.stack &&
        JSON.stringify(candidate.properties.TaskDefinition) === JSON.stringify({ Ref: definition.id }),
    );
    const routed = ((service?.properties.LoadBalancers ?? []) as Json[])[0]?.ContainerPort;
    const port = ((containers[0]?.PortMappings ?? []) as Json[])[0]?.ContainerPort;
    workloads.push({
      port: typeof port === 'number' ? port : undefined,
      name,
      stack: definition.stack,
      kind: service === undefined ? 'one-off' : 'service',
      count: service === undefined ? undefined : Number(service.properties.DesiredCount),
      platform: 'ecs',
      routedPort: typeof routed === 'number' ? routed : undefined,
      internetPorts: [],
    });
  }
  const bindings = objects('TargetGroupBinding').map(({ object }) => (object.spec as Json).serviceRef as Json);
  for (const { stack, object } of [...objects('Deployment'), ...objects('Job')]) {
    const name = workloadName(String(object.metadata?.name));
    if (name === undefined) continue;
    const spec = (object.spec ?? {}) as Json;
    const pod = ((spec.template as Json | undefined)?.spec ?? {}) as Json;
    const routed = bindings.find((binding) => binding.name === name)?.port;
    const container = ((pod.containers ?? []) as Json[]).find((candidate) => candidate.name === name);
    const port = ((container?.ports ?? []) as Json[])[0]?.containerPort;
    workloads.push({
      port: typeof port === 'number' ? port : undefined,
      name,
      stack,
      kind: object.kind === 'Job' ? 'one-off' : 'service',
      count: object.kind === 'Job' ? undefined : Number(spec.replicas ?? 1),
      platform: 'eks',
      namespace: typeof object.metadata?.namespace === 'string' ? object.metadata.namespace : undefined,
      runtimeClass: typeof pod.runtimeClassName === 'string' ? pod.runtimeClassName : undefined,
      routedPort: typeof routed === 'number' ? routed : undefined,
      internetPorts: [],
    });
  }
  const order = (name: string) => {
    const index = SERVICE_ROWS.findIndex((row) => row.name === name);
    return index < 0 ? SERVICE_ROWS.length : index;
  };
  const sortedWorkloads = workloads
    .map((workload) => ({
      ...workload,
      internetPorts: [...(internetPorts.get(workload.name) ?? [])].sort((a, b) => a - b),
    }))
    .sort((a, b) => order(a.name) - order(b.name) || byName(a.name, b.name));

  // The catalogue's flows between ends the diagram shows (a service flow needs both services).
  const shown = new Set<string>(sortedWorkloads.map((workload) => workload.name));
  const nameOf = (end: string) =>
    end === 'llm_gateway'
      ? 'llm-gateway'
      : (SERVICE_ROWS.find((row) => row.service === (end as DifyServiceName))?.name ?? end);
  const peers: Record<string, boolean> = {
    database: all('AWS::RDS::DBCluster').length > 0,
    cache: all('AWS::ElastiCache::ReplicationGroup').length > 0,
    llm_gateway: shown.has('llm-gateway'),
    edge: true,
    bedrock: endpointsOf('Interface').includes('bedrock-runtime'),
    internet: all('AWS::EC2::NatGateway').length > 0,
  };
  const present = (end: string) => peers[end] ?? shown.has(nameOf(end));
  const flows = FLOWS.filter((flow) => present(flow.from) && present(flow.to)).map((flow) => ({
    from: nameOf(flow.from),
    to: nameOf(flow.to),
  }));

  const cluster = all('AWS::RDS::DBCluster')[0];
  const scaling = cluster?.properties.ServerlessV2ScalingConfiguration as Json | undefined;
  const cache = all('AWS::ElastiCache::ReplicationGroup')[0];
  const eksCluster = all('AWS::EKS::Cluster')[0];
  const vpcAccess = eksCluster?.properties.ResourcesVpcConfig as Json | undefined;
  const countBy = (type: string) =>
    stacks
      .map((stack) => ({ stack, count: all(type).filter((resource) => resource.stack === stack).length }))
      .filter((entry) => entry.count > 0);

  return {
    stacks: built.stacks.stacks.map((stack) => ({
      name: stack.stackName,
      region: stack.region,
      resources: Object.keys(templates[stack.stackName]).length,
    })),
    mainStack,
    globalStacks: [built.stacks.global, built.stacks.globalAlarms].flatMap((stack) => (stack ? [stack.stackName] : [])),
    platform: eksCluster === undefined ? 'ecs' : 'eks',
    network: {
      vpcCidr: String(one('AWS::EC2::VPC').properties.CidrBlock),
      availabilityZones: new Set(subnets.map((subnet) => subnet.zone)).size,
      subnets: { public: subnetCount('Public'), private: subnetCount('Private'), isolated: subnetCount('Isolated') },
      natGateways: all('AWS::EC2::NatGateway').length,
      internetGateway: all('AWS::EC2::InternetGateway').length > 0,
      interfaceEndpoints: endpointsOf('Interface'),
      gatewayEndpoints: endpointsOf('Gateway'),
      flowLogs: all('AWS::EC2::FlowLog').length > 0,
    },
    edge: {
      cloudFront:
        distributions.length === 0
          ? undefined
          : {
              stack: distributions[0].stack,
              vpcOrigin: all('AWS::CloudFront::VpcOrigin').length > 0,
              functions: all('AWS::CloudFront::Function').length,
            },
      webAcls: all('AWS::WAFv2::WebACL').map((acl) => ({
        stack: acl.stack,
        scope: String(acl.properties.Scope),
        rules: ((acl.properties.Rules ?? []) as unknown[]).length,
      })),
      loadBalancer: {
        stack: loadBalancer.stack,
        scheme: loadBalancer.properties.Scheme === 'internet-facing' ? 'internet-facing' : 'internal',
        listeners: listeners.map((listener) => `${listener.properties.Protocol} ${listener.properties.Port}`),
      },
      certificates,
      dnsRecords: all('AWS::Route53::RecordSet').length,
      ipSets: all('AWS::WAFv2::IPSet').length,
    },
    eks:
      eksCluster === undefined
        ? undefined
        : {
            stack: eksCluster.stack,
            privateEndpointOnly: vpcAccess?.EndpointPublicAccess === false,
            nodePools: objects('NodePool')
              .map(({ object }) => String(object.metadata?.name))
              .sort(byName),
            namespaces: objects('Namespace')
              .map(({ object }) => String(object.metadata?.name))
              .sort(byName),
            networkPolicies: objects('NetworkPolicy').length + objects('ApplicationNetworkPolicy').length,
            podIdentities: all('AWS::EKS::PodIdentityAssociation').length,
          },
    ecsClusters: all('AWS::ECS::Cluster').length,
    workloads: sortedWorkloads,
    data: {
      aurora:
        cluster === undefined
          ? undefined
          : {
              stack: cluster.stack,
              engine: String(cluster.properties.Engine),
              version: String(cluster.properties.EngineVersion),
              instances: all('AWS::RDS::DBInstance').length,
              port: typeof cluster.properties.Port === 'number' ? cluster.properties.Port : undefined,
              kmsEncrypted: cluster.properties.StorageEncrypted === true && cluster.properties.KmsKeyId !== undefined,
              minAcu: scaling?.MinCapacity as number | undefined,
              maxAcu: scaling?.MaxCapacity as number | undefined,
            },
      cache:
        cache === undefined
          ? undefined
          : {
              stack: cache.stack,
              engine: String(cache.properties.Engine),
              version: String(cache.properties.EngineVersion),
              nodeType: String(cache.properties.CacheNodeType),
              port: typeof cache.properties.Port === 'number' ? cache.properties.Port : undefined,
              tls: cache.properties.TransitEncryptionEnabled === true,
              kmsEncrypted:
                cache.properties.AtRestEncryptionEnabled === true && cache.properties.KmsKeyId !== undefined,
              nodes: Number(cache.properties.NumCacheClusters ?? 1),
            },
      buckets: all('AWS::S3::Bucket').map((bucket) => ({ stack: bucket.stack, name: componentName(bucket.path) })),
    },
    keys: all('AWS::KMS::Key').map((key) => ({ stack: key.stack, name: componentName(key.path) })),
    secrets: countBy('AWS::SecretsManager::Secret'),
    alarms: stacks
      .map((stack) => ({
        stack,
        count: [...all('AWS::CloudWatch::Alarm'), ...all('AWS::CloudWatch::CompositeAlarm')].filter(
          (alarm) => alarm.stack === stack,
        ).length,
      }))
      .filter((entry) => entry.count > 0),
    alarmTopics: all('AWS::SNS::Topic').length,
    flows,
  };
}
