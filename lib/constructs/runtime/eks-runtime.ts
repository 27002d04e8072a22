import { createHash } from 'node:crypto';
import { Duration, Lazy, type RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct, type IDependable } from 'constructs';
import type { TaskSizing } from '../../config/sizing';
import { acknowledge, nistAndHipaa } from '../../nag/acknowledge';
import { type DifyServiceName, type DifyServiceRow, FLOWS, SERVICE_ROWS } from '../dify/catalog';
import { CACHE_PORT } from '../cache';
import { DATABASE_PORT } from '../database';
import type { Edge } from '../edge';
import type { LogSettings } from '../log-group';
import type { Network } from '../network';
import type { Observability } from '../observability';
import { allowSecretsDecrypt } from '../secret-access';
import { addRowTarget } from './edge-target';
import { EksCluster } from './eks-cluster';
import { EksInsights } from './eks-insights';
import { admissionObjects } from './kubernetes/admission';
import { networkPolicies, type NetworkPolicyProps } from './kubernetes/network-policies';
import type { KubernetesObject } from './kubernetes/objects';
import { namespaceObjects, namespaceOf, UNTRUSTED_TAINT } from './kubernetes/placement';
import { NAMESPACES } from '../../../contracts/kubernetes';
import { rbacObjects } from './kubernetes/rbac';
import { workloadObjects } from './kubernetes/workloads';
import type { DifyRuntime, RunningService, RunSpec, SecretSource } from './runtime';

/** The EKS Pod Identity agent's address on every node (kept off the proxy; reached by the pods with a role). */
export const POD_IDENTITY_ADDRESS = '169.254.170.23';

/**
 * The services that call AWS APIs with their own role (S3, and Bedrock for the plugin daemon), as
 * the grants in dify/dify-services.ts make them; only these reach the Pod Identity agent and S3.
 */
export const AWS_CALLERS: readonly DifyServiceName[] = ['api', 'worker', 'plugin_daemon'];

export interface EksRuntimeProps {
  readonly clusterName: string;
  readonly network: Network;
  /** The VPC's IPv4 range, as configured (the policies' internet excludes it). */
  readonly vpcCidr: string;
  readonly logs: LogSettings;
  readonly kubectlLayer: lambda.ILayerVersion;
  /** @default - the AWS CLI layer aws-cdk-lib ships */
  readonly awscliLayer?: lambda.ILayerVersion;
  readonly removalPolicy: RemovalPolicy;
  /** Where the cluster's audit-log alarms notify. */
  readonly alarms: Observability;
  /** The subnets the load balancer's nodes are in: the only addresses the routed pods admit. */
  readonly edgeSubnets: readonly ec2.ISubnet[];
  /** Where the LLM gateway runs (it stays on Fargate beside the cluster) and its port. */
  readonly gateway: { readonly subnets: readonly ec2.ISubnet[]; readonly port: number };
  /**
   * Run the sandbox and the plugin daemon in a VM per pod (EKS Nitro Sandboxes, `isolated-sandbox`).
   * @default false - a dedicated tainted node pool only
   */
  readonly isolatedSandbox?: boolean;
  /**
   * The port of SES's SMTP endpoint in the private subnets, which the api and worker pods send mail
   * through (configuration key email).
   * @default - no e-mail: no pod may reach it
   */
  readonly smtpPort?: number;
}

interface Rendered {
  readonly running: RunningService;
  readonly role: iam.Role;
  readonly spec: RunSpec;
  /** The manifest that applies the row's objects (none yet for a one-off row: runAtDeploy applies its Job). */
  manifest?: eks.KubernetesManifest;
}

/**
 * Dify's services on a private EKS Auto Mode cluster, rendered from the same catalogue rows as on
 * ECS (kubernetes/): namespaces under Pod Security labels, pods hardened from the rows, one IAM role
 * per service account through EKS Pod Identity, secrets as files from Secrets Manager (no Kubernetes
 * Secret anywhere), NetworkPolicies from the flow table, the migration as a Job that must succeed
 * before api, worker and beat roll, and the edge's target groups bound to the Services.
 */
export class EksRuntime extends Construct implements DifyRuntime {
  public readonly serviceDomain = 'svc.cluster.local';
  public readonly credentialsAddress = POD_IDENTITY_ADDRESS;
  public readonly eks: EksCluster;
  /** Container Insights: the containers' logs and the pods' metrics the alarms read. */
  public readonly insights: EksInsights;
  /** The namespaces, RBAC, node pools and NetworkPolicies: every workload applies after it. */
  public readonly platform: eks.KubernetesManifest;
  private readonly rendered = new Map<RunningService, Rendered>();
  private readonly untrustedRuntimeClass?: string;
  /** The registry the images are mirrored to (the deployment's asset repository), from the first row run. */
  private registry?: string;

  constructor(scope: Construct, id: string, props: EksRuntimeProps) {
    super(scope, id);
    this.eks = new EksCluster(this, 'Eks', {
      clusterName: props.clusterName,
      network: props.network,
      logs: props.logs,
      kubectlLayer: props.kubectlLayer,
      awscliLayer: props.awscliLayer,
      removalPolicy: props.removalPolicy,
      alarms: props.alarms,
    });
    this.untrustedRuntimeClass = props.isolatedSandbox === true ? 'isolated-sandbox' : undefined;
    const cluster = this.eks.cluster;
    this.insights = new EksInsights(this, 'Insights', {
      cluster,
      clusterName: props.clusterName,
      logs: props.logs,
      alarms: props.alarms,
      vpcCidr: props.vpcCidr,
    });
    this.insights.watchNamespaces(Object.values(NAMESPACES).map((namespace) => namespace.name));
    // Secrets Store CSI driver with the AWS provider: secrets mount as files, read with the pod's own role.
    const csi = new eks.Addon(this, 'SecretsStoreCsi', {
      cluster,
      addonName: 'aws-secrets-store-csi-driver-provider',
      configurationValues: { 'secrets-store-csi-driver': { syncSecret: { enabled: false } } },
    });

    const cidrs = (subnets: readonly ec2.ISubnet[]) => subnets.map((s) => s.ipv4CidrBlock);
    const vpc = props.network.vpc;
    const peers: NetworkPolicyProps['peers'] = {
      database: { cidrs: cidrs(vpc.isolatedSubnets), ports: [] },
      cache: { cidrs: cidrs(vpc.isolatedSubnets), ports: [] },
      llm_gateway: { cidrs: cidrs(props.gateway.subnets), ports: [props.gateway.port] },
      edge: { cidrs: cidrs(props.edgeSubnets), ports: [] },
      bedrock: { cidrs: cidrs(vpc.privateSubnets), ports: [443] },
    };
    const platformEgress: NetworkPolicyProps['platformEgress'] = Object.fromEntries(
      AWS_CALLERS.map((service) => [
        service,
        [
          { cidrs: [`${POD_IDENTITY_ADDRESS}/32`], ports: [80], description: 'EKS Pod Identity agent' },
          // The services environment.ts gives the SMTP settings to (an interface endpoint: private addresses).
          ...(props.smtpPort !== undefined && (service === 'api' || service === 'worker')
            ? [{ cidrs: cidrs(vpc.privateSubnets), ports: [props.smtpPort], description: 'SES SMTP endpoint' }]
            : []),
        ],
      ]),
    );
    const policies = networkPolicies(
      FLOWS.map((flow) =>
        // The data tier's ports come from its own constructs on ECS; here they are the flow's peer.
        flow.to === 'database'
          ? { ...flow, ports: [DATABASE_PORT] }
          : flow.to === 'cache'
            ? { ...flow, ports: [CACHE_PORT] }
            : flow,
      ),
      SERVICE_ROWS.map((row) => row.service),
      { vpcCidr: props.vpcCidr, peers, platformEgress },
    );
    const region = Stack.of(this).region;
    const s3 = AWS_CALLERS.map((service) => s3EgressPolicy(service, region));
    const admission = admissionObjects({
      registry: Lazy.string({
        produce: () => {
          if (this.registry === undefined) throw new Error('EksRuntime: no service was run, so no registry is known');
          return this.registry;
        },
      }),
      untrustedRuntimeClass: this.untrustedRuntimeClass,
    });
    this.platform = new eks.KubernetesManifest(this, 'Platform', {
      cluster,
      manifest: [
        ...namespaceObjects(),
        ...nodeObjects(this.eks.nodeRole.roleName),
        ...rbacObjects(),
        ...admission,
        ...policies,
        ...s3,
      ],
      // Objects removed from the manifest are removed from the cluster.
      prune: true,
    });
    this.platform.node.addDependency(csi);
  }

  /** `<name>.<namespace>.svc.cluster.local`: the Service in front of the row's pods. */
  public hostOf(row: DifyServiceRow): string {
    return `${row.name}.${namespaceOf(row.service)}.${this.serviceDomain}`;
  }

  public run(scope: Construct, row: DifyServiceRow, spec: RunSpec): RunningService {
    this.registry ??= spec.image.repository.repositoryUri;
    const holder = new Construct(scope, row.id);
    const role = new iam.Role(holder, 'Role', {
      assumedBy: new iam.SessionTagsPrincipal(new iam.ServicePrincipal('pods.eks.amazonaws.com')),
      description: `Dify ${row.name} pods: what the application and its secrets mount may call`,
    });
    new eks.CfnPodIdentityAssociation(holder, 'PodIdentity', {
      clusterName: this.eks.cluster.clusterName,
      namespace: namespaceOf(row.service),
      serviceAccount: row.name,
      roleArn: role.roleArn,
    });
    const secrets = Object.values(spec.secrets).map((source) => source.secret);
    for (const secret of new Set(secrets)) secret.grantRead(role);
    allowSecretsDecrypt(role, secrets);
    const running: RunningService = { row, connections: this.eks.cluster.connections, grantPrincipal: role };
    const entry: Rendered = { running, role, spec };
    this.rendered.set(running, entry);
    if (row.deployment !== 'one-off') {
      this.insights.watchService(holder, row);
      entry.manifest = new eks.KubernetesManifest(holder, 'Workload', {
        cluster: this.eks.cluster,
        manifest: this.objectsOf(row, spec),
        prune: true,
      });
      entry.manifest.node.addDependency(this.platform);
    }
    return running;
  }

  public route(edge: Edge, service: RunningService, _sizing: TaskSizing): void {
    const { row } = service;
    const { group, port } = addRowTarget(edge, row);
    // EKS Auto Mode registers pods only in target groups tagged with its cluster's name.
    Tags.of(group).add('eks:eks-cluster-name', this.eks.cluster.clusterName);
    const binding = new eks.KubernetesManifest(edge, `${row.id}Binding`, {
      cluster: this.eks.cluster,
      manifest: [
        {
          apiVersion: 'eks.amazonaws.com/v1',
          kind: 'TargetGroupBinding',
          metadata: { name: row.name, namespace: namespaceOf(row.service) },
          spec: {
            serviceRef: { name: row.name, port },
            targetGroupARN: group.targetGroupArn,
            targetType: 'ip',
          },
        },
      ],
    });
    binding.node.addDependency(this.entryOf(service).manifest ?? this.platform);
  }

  public runAtDeploy(
    scope: Construct,
    id: string,
    task: RunningService,
    after: ReadonlyArray<IDependable | RunningService>,
  ): IDependable {
    const entry = this.entryOf(task);
    const objects = this.objectsOf(task.row, entry.spec);
    // A Job's template cannot change: each new image or environment is a new Job, named by its hash.
    const digest = createHash('sha256')
      .update(JSON.stringify(Stack.of(scope).resolve(objects)))
      .digest('hex')
      .slice(0, 10);
    const named = objects.map((o) =>
      o.kind === 'Job' ? { ...o, metadata: { ...o.metadata, name: `${o.metadata.name}-${digest}` } } : o,
    );
    const holder = new Construct(scope, id);
    const job = new eks.KubernetesManifest(holder, 'Job', { cluster: this.eks.cluster, manifest: named, prune: true });
    job.node.addDependency(this.platform, ...after.map((d) => this.dependable(d)));
    // Waits for the Job to report a success; a failed migration times out and fails the deploy.
    const succeeded = new eks.KubernetesObjectValue(holder, 'Succeeded', {
      cluster: this.eks.cluster,
      objectType: 'job',
      objectName: `${task.row.name}-${digest}`,
      objectNamespace: namespaceOf(task.row.service),
      jsonPath: '.status.succeeded',
      timeout: Duration.minutes(14),
    });
    succeeded.node.addDependency(job);
    return succeeded;
  }

  public startAfter(service: RunningService, ...dependencies: Array<IDependable | RunningService>): void {
    const manifest = this.entryOf(service).manifest;
    if (manifest === undefined) throw new Error(`${service.row.service} is a one-off task, not a service`);
    manifest.node.addDependency(...dependencies.map((d) => this.dependable(d)));
  }

  public seal(scope: Construct): void {
    for (const { role } of this.rendered.values()) {
      if (!role.node.scopes.includes(scope)) continue;
      const policy = role.node.tryFindChild('DefaultPolicy')?.node.defaultChild;
      if (policy !== undefined) {
        acknowledge(
          policy,
          ...nistAndHipaa(
            'IAMNoInlinePolicy',
            'The default policy CDK writes inline in this one pod role: it cannot be attached to any other principal, changes only with this stack, and each statement names the resources of this one service (its secrets, bucket, models).',
          ),
        );
      }
    }
  }

  /** The IAM role a service's pods run with (EKS Pod Identity). */
  public roleOf(service: RunningService): iam.Role {
    return this.entryOf(service).role;
  }

  private entryOf(service: RunningService): Rendered {
    const entry = this.rendered.get(service);
    if (entry === undefined) throw new Error(`${service.row.service} was not rendered by this runtime`);
    return entry;
  }

  private objectsOf(row: DifyServiceRow, spec: RunSpec): KubernetesObject[] {
    const variables = Object.keys(spec.secrets);
    return [
      ...(variables.length === 0 ? [] : [secretProviderClass(row, spec.secrets)]),
      ...workloadObjects(row, {
        image: spec.image.imageUri,
        start: spec.start,
        environment: spec.environment,
        secrets: variables.length === 0 ? undefined : { providerClass: row.name, variables },
        sizing: spec.sizing,
        untrustedRuntimeClass: this.untrustedRuntimeClass,
      }),
    ];
  }

  private dependable(dependency: IDependable | RunningService): IDependable {
    const entry = this.rendered.get(dependency as RunningService);
    if (entry === undefined) return dependency as IDependable;
    return entry.manifest ?? entry.role;
  }
}

/**
 * The Secrets Store CSI driver's instructions for one pod: each variable's secret (or one JSON
 * field of it), read with the pod's own role, mounted as a file named after the variable.
 */
function secretProviderClass(row: DifyServiceRow, secrets: Readonly<Record<string, SecretSource>>): KubernetesObject {
  const bySecret = new Map<string, { whole: string[]; fields: Array<{ path: string; objectAlias: string }> }>();
  for (const [variable, source] of Object.entries(secrets)) {
    const arn = source.secret.secretArn;
    const entry = bySecret.get(arn) ?? { whole: [], fields: [] };
    if (source.field === undefined) entry.whole.push(variable);
    else entry.fields.push({ path: source.field, objectAlias: variable });
    bySecret.set(arn, entry);
  }
  const objects = [...bySecret.entries()].flatMap(([arn, { whole, fields }]) => [
    ...whole.map((variable) => ({ objectName: arn, objectType: 'secretsmanager', objectAlias: variable })),
    ...(fields.length === 0 ? [] : [{ objectName: arn, objectType: 'secretsmanager', jmesPath: fields }]),
  ]);
  return {
    apiVersion: 'secrets-store.csi.x-k8s.io/v1',
    kind: 'SecretProviderClass',
    metadata: { name: row.name, namespace: namespaceOf(row.service) },
    spec: {
      provider: 'aws',
      // The provider's `objects` parameter is YAML; JSON is YAML.
      parameters: { usePodIdentity: 'true', objects: JSON.stringify(objects) },
    },
  };
}

/** S3 in the region for a service that stores files: by name, as the addresses behind it are AWS's. */
function s3EgressPolicy(service: DifyServiceName, region: string): KubernetesObject {
  const name = SERVICE_ROWS.find((row) => row.service === service)!.name;
  return {
    apiVersion: 'networking.k8s.aws/v1alpha1',
    kind: 'ApplicationNetworkPolicy',
    metadata: { name: `${name}-s3`, namespace: namespaceOf(service) },
    spec: {
      podSelector: { matchLabels: { 'app.kubernetes.io/name': name } },
      policyTypes: ['Egress'],
      egress: [
        {
          to: [{ domainNames: [`s3.${region}.amazonaws.com`, `*.s3.${region}.amazonaws.com`] }],
          ports: [{ protocol: 'TCP', port: 443 }],
        },
      ],
    },
  };
}

/**
 * Auto Mode's node class (private subnets, network policies enforced, default deny) and the two node
 * pools: `apps`, and `untrusted`, tainted, for the pods that run others' code.
 */
function nodeObjects(nodeRoleName: string): KubernetesObject[] {
  const pool = (name: 'apps' | 'untrusted'): KubernetesObject => ({
    apiVersion: 'karpenter.sh/v1',
    kind: 'NodePool',
    metadata: { name: `dify-${name}` },
    spec: {
      template: {
        metadata: { labels: { 'dify.ai/pool': name } },
        spec: {
          nodeClassRef: { group: 'eks.amazonaws.com', kind: 'NodeClass', name: 'dify' },
          requirements: [
            { key: 'kubernetes.io/arch', operator: 'In', values: ['arm64'] },
            { key: 'karpenter.sh/capacity-type', operator: 'In', values: ['on-demand'] },
          ],
          ...(name === 'untrusted' ? { taints: [UNTRUSTED_TAINT] } : {}),
        },
      },
    },
  });
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'amazon-vpc-cni', namespace: 'kube-system' },
      data: { 'enable-network-policy-controller': 'true' },
    },
    {
      apiVersion: 'eks.amazonaws.com/v1',
      kind: 'NodeClass',
      metadata: { name: 'dify' },
      spec: {
        role: nodeRoleName,
        subnetSelectorTerms: [{ tags: { 'aws-cdk:subnet-type': 'Private' } }],
        networkPolicy: 'DefaultDeny',
        networkPolicyEventLogs: 'Enabled',
      },
    },
    pool('apps'),
    pool('untrusted'),
  ];
}
