import { CfnResource, Duration, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import { acknowledge, type Acknowledgement, nistAndHipaa } from '../../nag/acknowledge';
import { acknowledgeDeployTimeFunction } from '../../nag/deploy-time-function';
import { encryptedLogGroup, type LogSettings } from '../log-group';
import { EKS_ENDPOINTS, type Network } from '../network';
import type { Observability } from '../observability';
import { OUTPUTS } from '../../../contracts/stack-outputs';
import { output } from '../outputs';
import { GROUPS } from './kubernetes/rbac';

/** The Kubernetes version of the cluster, and of the Pod Security labels and the kubectl layer. */
export const KUBERNETES_VERSION = eks.KubernetesVersion.V1_36;

/** Every control-plane log type: API, audit, authenticator, controller manager and scheduler. */
export const CONTROL_PLANE_LOGS: readonly eks.ClusterLoggingTypes[] = [
  eks.ClusterLoggingTypes.API,
  eks.ClusterLoggingTypes.AUDIT,
  eks.ClusterLoggingTypes.AUTHENTICATOR,
  eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
  eks.ClusterLoggingTypes.SCHEDULER,
];

export interface EksClusterProps {
  /** The cluster's name; its control-plane log group is `/aws/eks/<name>/cluster`. */
  readonly clusterName: string;
  readonly network: Network;
  /** Settings for the control-plane log group (KMS key, retention). */
  readonly logs: LogSettings;
  /** kubectl and helm for the in-VPC function that applies the manifests. */
  readonly kubectlLayer: lambda.ILayerVersion;
  /** @default - the AWS CLI layer aws-cdk-lib ships */
  readonly awscliLayer?: lambda.ILayerVersion;
  readonly removalPolicy: RemovalPolicy;
  /** Where the audit-log alarms notify. */
  readonly alarms: Observability;
}

/**
 * What the Kubernetes audit log (in the control-plane log group) must never show unnoticed, as
 * CloudWatch Logs metric filters over its JSON events, each with an alarm on the alarm topic:
 * anyone but the control plane's own components reading a Secret (this deployment keeps none in the
 * cluster, so any read is someone looking), anyone opening a shell, attaching or forwarding a port
 * into a pod, and a burst of refused requests (RBAC, Pod Security or an admission policy saying no:
 * someone probing, or a workload misbehaving).
 */
export const AUDIT_ALARMS = {
  SecretRead: {
    pattern:
      '{ ($.objectRef.resource = "secrets") && (($.verb = "get") || ($.verb = "list") || ($.verb = "watch")) && ($.user.username != "system:*") && ($.user.username != "eks:*") }',
    threshold: 1,
    signal: 'eks.secret-access',
    title: 'Kubernetes Secrets read',
    description: 'someone other than the control plane read a Kubernetes Secret (this deployment keeps none)',
  },
  PodShell: {
    pattern:
      '{ ($.objectRef.resource = "pods") && (($.objectRef.subresource = "exec") || ($.objectRef.subresource = "attach") || ($.objectRef.subresource = "portforward")) }',
    threshold: 1,
    signal: 'eks.pod-exec',
    title: 'shells, attaches and port-forwards into pods',
    description: 'someone opened a shell, attached to or forwarded a port into a pod',
  },
  PolicyChange: {
    // Successful writes to RBAC, NetworkPolicies and admission webhooks or policies, by anyone but the
    // control plane. A deploy of this stack makes some (as its kubectl role): confirm it was one.
    pattern:
      '{ (($.objectRef.apiGroup = "rbac.authorization.k8s.io") || ($.objectRef.resource = "networkpolicies") || ($.objectRef.apiGroup = "admissionregistration.k8s.io")) && (($.verb = "create") || ($.verb = "update") || ($.verb = "patch") || ($.verb = "delete") || ($.verb = "deletecollection")) && ($.stage = "ResponseComplete") && ($.responseStatus.code < 400) && ($.user.username != "system:*") && ($.user.username != "eks:*") }',
    threshold: 1,
    signal: 'eks.policy-change',
    title: 'RBAC, NetworkPolicy and admission changes',
    description:
      'someone changed RBAC, a NetworkPolicy or an admission webhook or policy. If it was not a deploy of this stack (user.username is its kubectl role), treat it as an attempt to widen access',
  },
  PodSecurity: {
    // Pod Security admission writes "violates PodSecurity" in the refusal (enforce) and "would violate
    // PodSecurity" in the audit annotation and warning (audit, warn).
    pattern: '?"violates PodSecurity" ?"would violate PodSecurity"',
    threshold: 1,
    signal: 'eks.pod-security-violation',
    title: 'Pod Security violations',
    description:
      "a pod that breaks the namespace's Pod Security level (privileged, host access, root, added capabilities) was refused or flagged. Check first who created it (user.username) and the workload (objectRef)",
  },
  Refused: {
    pattern: '{ $.responseStatus.code = 403 }',
    threshold: 20,
    signal: 'eks.refused-requests',
    title: 'Kubernetes API requests refused',
    description: 'twenty or more Kubernetes API requests refused in five minutes (RBAC, Pod Security or admission)',
  },
} as const;

/**
 * A private EKS Auto Mode cluster: no public API endpoint, every Kubernetes object envelope-encrypted
 * with a key of its own, all five control-plane logs in a KMS-encrypted group with retention, and
 * access through access entries only: the deployer is no admin; a named break-glass role is, and
 * the operator and incident-responder roles reach only the groups the RBAC binds (kubernetes/rbac.ts).
 */
export class EksCluster extends Construct {
  public readonly cluster: eks.Cluster;
  /** Encrypts the Kubernetes API's data at rest (envelope encryption's key-encryption key). */
  public readonly key: kms.Key;
  /** Cluster admin for emergencies only (MFA, one-hour sessions). */
  public readonly breakGlassRole: iam.Role;
  /** The guide's dify-operator: read pods, services, config maps; update deployments. */
  public readonly operatorRole: iam.Role;
  /** What the incident steps need: scale, restart, quarantine, logs, delete a pod. */
  public readonly responderRole: iam.Role;
  /** The role Auto Mode's nodes run as. */
  public readonly nodeRole: iam.Role;

  constructor(scope: Construct, id: string, props: EksClusterProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: `EKS ${props.clusterName}: envelope encryption of the Kubernetes API's data`,
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
    });
    const logGroup = encryptedLogGroup(this, 'ControlPlaneLogs', props.logs, {
      exact: `/aws/eks/${props.clusterName}/cluster`,
    });
    const human = (name: string, description: string) =>
      new iam.Role(this, name, {
        assumedBy: new iam.AccountRootPrincipal().withConditions({ Bool: { 'aws:MultiFactorAuthPresent': 'true' } }),
        description,
        maxSessionDuration: Duration.hours(1),
      });
    this.breakGlassRole = human('BreakGlassRole', `EKS ${props.clusterName}: cluster admin, for emergencies only`);
    this.operatorRole = human('OperatorRole', `EKS ${props.clusterName}: Dify's dify-operator RBAC group`);
    this.responderRole = human('ResponderRole', `EKS ${props.clusterName}: Dify's incident-responder RBAC group`);
    this.nodeRole = new iam.Role(this, 'NodeRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `EKS ${props.clusterName}: Auto Mode nodes`,
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonEKSWorkerNodeMinimalPolicy'),
        iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonEC2ContainerRegistryPullOnly'),
      ],
    });

    this.cluster = new eks.Cluster(this, 'Cluster', {
      clusterName: props.clusterName,
      version: KUBERNETES_VERSION,
      vpc: props.network.vpc,
      // Nodes and the API's network interfaces in the private subnets only: Auto Mode's built-in
      // node class takes the control plane's subnets.
      vpcSubnets: [{ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }],
      endpointAccess: eks.EndpointAccess.PRIVATE,
      secretsEncryptionKey: this.key,
      clusterLogging: [...CONTROL_PLANE_LOGS],
      bootstrapClusterCreatorAdminPermissions: false,
      mastersRole: this.breakGlassRole,
      compute: { nodePools: ['system'], nodeRole: this.nodeRole },
      kubectlProviderOptions: { kubectlLayer: props.kubectlLayer, awscliLayer: props.awscliLayer },
      removalPolicy: props.removalPolicy,
    });
    // EKS creates the group itself if it does not exist yet, unencrypted and kept forever.
    this.cluster.node.addDependency(logGroup);
    for (const [name, alarm] of Object.entries(AUDIT_ALARMS)) {
      const filter = new logs.MetricFilter(this, `Audit${name}`, {
        logGroup,
        filterPattern: logs.FilterPattern.literal(alarm.pattern),
        metricNamespace: `Dify/EKS/${props.clusterName}`,
        metricName: `Audit${name}`,
        metricValue: '1',
        defaultValue: 0,
      });
      props.alarms.watch(this, `Audit${name}Alarm`, {
        signal: alarm.signal,
        title: `EKS: ${alarm.title}`,
        metric: filter.metric({ statistic: 'Sum', period: Duration.minutes(5) }),
        threshold: alarm.threshold,
        periods: 1,
        description: `EKS ${props.clusterName}: ${alarm.description}. Read the audit log (log group /aws/eks/${props.clusterName}/cluster) and follow the incident steps in the README.`,
      });
    }
    // Nodes pull images, read secrets (the CSI driver) and ship logs through the endpoints, and the
    // kubectl function reaches the API, STS and Lambda: the cluster security group admits both.
    props.network.allowAwsServices(this.cluster, `EKS ${props.clusterName}`, ['Lambda']);
    props.network.allowEndpoints(this.cluster, `EKS ${props.clusterName}`, Object.keys(EKS_ENDPOINTS));

    this.hardenKubectlProvider(props.logs);
    this.acknowledgeManagedPolicies();
    // CDK's own template validation (not a cdk-nag pack), acknowledged through its own API.
    Validations.of(this.cluster.node.defaultChild!).acknowledge({
      id: 'CloudFormation-Validate::W9009',
      reason:
        'EKS 1.28+ envelope-encrypts every Kubernetes API object; EncryptionConfig.Resources ["secrets"] is how CloudFormation still names that, and the key given makes this stack’s key the key-encryption key for all of them.',
    });

    output(this, OUTPUTS.eksClusterName, this.cluster.clusterName);
    output(this, OUTPUTS.breakGlassRoleArn, this.breakGlassRole.roleArn);
    output(this, OUTPUTS.operatorRoleArn, this.operatorRole.roleArn);
    output(this, OUTPUTS.responderRoleArn, this.responderRole.roleArn);

    // L2 access entries cannot name Kubernetes groups; these bind only through the RBAC's RoleBindings.
    for (const [name, role, group] of [
      ['OperatorAccess', this.operatorRole, GROUPS.operators],
      ['ResponderAccess', this.responderRole, GROUPS.responders],
    ] as const) {
      new eks.CfnAccessEntry(this, name, {
        clusterName: this.cluster.clusterName,
        principalArn: role.roleArn,
        type: 'STANDARD',
        kubernetesGroups: [group],
      });
    }
  }

  /**
   * The function that applies manifests (CDK's kubectl provider, in the private subnets with the
   * cluster's security group): its logs go to an encrypted group of ours with our retention, and
   * the findings it shares with every deploy-time function are acknowledged on it.
   */
  private hardenKubectlProvider(settings: LogSettings): void {
    const provider = this.cluster.node.tryFindChild('KubectlProvider');
    if (provider === undefined)
      throw new Error('EksCluster: no KubectlProvider; CDK changed aws-eks-v2, review eks-cluster.ts');
    const functions: Array<[string, string]> = [
      ['Handler', 'eks/kubectl'],
      ['Provider/framework-onEvent', 'eks/kubectl-provider'],
    ];
    for (const [path, suffix] of functions) {
      const fn = cfn(provider, `${path}/Resource`, 'AWS::Lambda::Function');
      const group = cfn(provider, `${path}/LogGroup/Resource`, 'AWS::Logs::LogGroup') as logs.CfnLogGroup;
      const name = `${settings.prefix}${suffix}`;
      group.logGroupName = name;
      group.kmsKeyId = settings.key.keyArn;
      group.retentionInDays = settings.retention;
      fn.addPropertyOverride('LoggingConfig.LogGroup', name);
      acknowledgeDeployTimeFunction(fn);
      const role = cfn(provider, `${path}/ServiceRole/Resource`, 'AWS::IAM::Role');
      acknowledge(role, ...managed(role, KUBECTL_MANAGED_POLICIES));
      const policy = cfn(provider, `${path}/ServiceRole/DefaultPolicy/Resource`, 'AWS::IAM::Policy');
      acknowledge(
        policy,
        ...nistAndHipaa(
          'IAMNoInlinePolicy',
          'CDK’s kubectl provider writes its grants inline in its own role: they cannot be attached elsewhere and change only with this stack.',
        ),
      );
      if (path.startsWith('Provider')) {
        acknowledge(policy, {
          id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(cfn(provider, 'Handler/Resource', 'AWS::Lambda::Function'))}.Arn>:*]`,
          reason:
            'The provider framework invokes every version of the one kubectl handler it fronts, and nothing else.',
        });
      } else {
        acknowledge(fn, {
          id: 'AwsSolutions-L1',
          reason:
            'CDK picks the kubectl handler’s Python runtime (the newest it knows, python3.13 in aws-cdk-lib 2.276) to match the kubectl layer; it runs only at deploy time.',
        });
      }
    }
  }

  private acknowledgeManagedPolicies(): void {
    const role = this.cluster.role.node.defaultChild as CfnResource;
    acknowledge(role, ...managed(role, CLUSTER_MANAGED_POLICIES));
    const node = this.nodeRole.node.defaultChild as CfnResource;
    acknowledge(node, ...managed(node, NODE_MANAGED_POLICIES));
  }
}

/** A CloudFormation resource of CDK's under `scope`, which must be where CDK puts it. */
function cfn(scope: IConstruct, path: string, type: string): CfnResource {
  let node: IConstruct | undefined = scope;
  for (const id of path.split('/')) node = node?.node.tryFindChild(id);
  if (!CfnResource.isCfnResource(node) || node.cfnResourceType !== type) {
    throw new Error(`${scope.node.path}/${path}: expected a ${type}; CDK changed aws-eks-v2, review eks-cluster.ts`);
  }
  return node;
}

const CLUSTER_MANAGED_POLICIES: Record<string, string> = {
  AmazonEKSClusterPolicy:
    'what the EKS control plane needs to manage the cluster’s network interfaces and load balancers',
  AmazonEKSComputePolicy: 'what EKS Auto Mode needs to launch and stop the nodes it manages',
  AmazonEKSBlockStoragePolicy: 'what EKS Auto Mode needs to attach volumes to the nodes it manages',
  AmazonEKSLoadBalancingPolicy:
    'what EKS Auto Mode needs to register pods in target groups, limited by AWS to those tagged with this cluster’s name',
  AmazonEKSNetworkingPolicy: 'what EKS Auto Mode needs to give pods and nodes their network interfaces',
};
const NODE_MANAGED_POLICIES: Record<string, string> = {
  AmazonEKSWorkerNodeMinimalPolicy: 'the least an Auto Mode node needs to join this cluster',
  AmazonEC2ContainerRegistryPullOnly: 'image pulls only (no push, no repository changes)',
};
const KUBECTL_MANAGED_POLICIES: Record<string, string> = {
  AWSLambdaBasicExecutionRole: 'log delivery of this one deploy-time function',
  AWSLambdaVPCAccessExecutionRole: 'the network interfaces of a function inside the VPC',
  AmazonEC2ContainerRegistryReadOnly:
    'CDK’s kubectl handler may pull Helm charts from ECR; it is given nothing to push',
  AmazonElasticContainerRegistryPublicReadOnly:
    'the same, from ECR Public, only in regions that have it (a condition in the template)',
};

/**
 * IAM4 acknowledgements for the AWS managed policies a role has, each with its reason. Throws on a
 * managed policy without a reason, so that a new one CDK adds is reviewed, not waved through.
 */
function managed(role: CfnResource, reasons: Record<string, string>): Acknowledgement[] {
  const arns = (Stack.of(role).resolve((role as unknown as { managedPolicyArns?: unknown }).managedPolicyArns) ??
    []) as unknown[];
  return arns.map((arn) => {
    const text = JSON.stringify(arn);
    const name = Object.keys(reasons).find((policy) => text.includes(`/${policy}"`));
    if (name === undefined) throw new Error(`${role.node.path}: no reason recorded for the managed policy ${text}`);
    const rendered =
      typeof arn === 'object' && arn !== null && 'Fn::If' in arn
        ? text
        : `arn:<AWS::Partition>:iam::aws:policy/${text.includes('/service-role/') ? 'service-role/' : ''}${name}`;
    return {
      id: `AwsSolutions-IAM4[Policy::${rendered}]`,
      reason: `AWS maintains this policy for exactly this use: ${reasons[name]}.`,
    };
  });
}
