import { Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { GROUPS } from '../../../contracts/kubernetes';
import { deploymentStacks, OUTPUTS } from '../../../contracts/stack-outputs';
import { acknowledge, nistAndHipaa } from '../../nag/acknowledge';
import { BundledFunction } from '../lambda-code';
import { FunctionRole } from '../function-role';
import { encryptedLogGroup, type LogSettings } from '../log-group';
import type { Network } from '../network';
import { output } from '../outputs';
import { grantSecretRead } from '../secret-access';
import type { EksCluster } from './eks-cluster';

export interface ClusterResponderProps {
  readonly eks: EksCluster;
  readonly network: Network;
  readonly logs: LogSettings;
  /** The deployment's name: the responder role may read its stacks' outputs. */
  readonly deploymentName: string;
  /** Dify's own Valkey user, which `revoke-sessions` signs in as to delete the console refresh tokens. */
  readonly cache: {
    readonly host: string;
    readonly port: number;
    readonly secret: secretsmanager.ISecret;
    readonly connectable: ec2.IConnectable;
  };
}

/**
 * The operator CLI's path into the private Kubernetes API, without a bastion: a function in the
 * private subnets whose role an access entry maps to the `dify-responders` group, so it can do what
 * the incident-responder Role (kubernetes/rbac.ts) allows and nothing else. It accepts one request
 * of a closed set (contracts/cluster-responder.ts) per call. Only the incident-responder IAM role is
 * granted to invoke it (and to read the deployment's outputs, which the CLI starts from); its network
 * reaches the cluster's API, the Secrets Manager endpoint and Valkey, nothing more.
 */
export class ClusterResponder extends Construct {
  public readonly function: lambda.Function;
  public readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: ClusterResponderProps) {
    super(scope, id);
    const { cluster } = props.eks;
    const what = `EKS ${props.deploymentName} cluster responder`;
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.network.vpc,
      description: `${what}: the Kubernetes API, Secrets Manager and Valkey only`,
      allowAllOutbound: false,
    });
    // Written from the responder's side, so that the rules live in its (later) stack.
    this.securityGroup.connections.allowTo(cluster, ec2.Port.tcp(443), `${what} to the Kubernetes API`);
    this.securityGroup.connections.allowTo(
      props.cache.connectable,
      ec2.Port.tcp(props.cache.port),
      `${what} to Valkey (revoke-sessions)`,
    );
    props.network.allowEndpoints(this.securityGroup, what, ['SecretsManager']);

    const logGroup = encryptedLogGroup(this, 'LogGroup', props.logs, { suffix: 'eks/cluster-responder' });
    const role = new FunctionRole(this, 'Role', { logGroup, inVpc: true }).role;
    grantSecretRead(props.cache.secret, role);
    this.function = new BundledFunction(this, 'Function', {
      bundle: 'cluster-responder',
      role,
      timeout: Duration.seconds(60),
      // Two at once at most: an incident's few calls, and a bound on what a stolen invoke right can do.
      reservedConcurrentExecutions: 2,
      description: `${what}: incident steps on Dify's Deployments and pods, as the dify-responders group`,
      vpc: props.network.vpc,
      vpcSubnets: props.network.privateSubnets,
      securityGroups: [this.securityGroup],
      logGroup,
      environment: {
        CLUSTER_NAME: cluster.clusterName,
        CLUSTER_ENDPOINT: cluster.clusterEndpoint,
        CLUSTER_CA: cluster.clusterCertificateAuthorityData,
        CACHE_HOST: props.cache.host,
        CACHE_PORT: String(props.cache.port),
        CACHE_SECRET_ARN: props.cache.secret.secretArn,
      },
    });
    acknowledge(
      this.function.node.defaultChild!,
      ...nistAndHipaa(
        'LambdaDLQ',
        'Invoked synchronously by the operator CLI, which receives every answer and every error; there is no asynchronous event to keep.',
      ),
    );

    // The function acts as the dify-responders group: the same Roles as the human responder.
    new eks.CfnAccessEntry(this, 'Access', {
      clusterName: cluster.clusterName,
      principalArn: role.roleArn,
      type: 'STANDARD',
      kubernetesGroups: [GROUPS.responders],
    });

    // The human incident responder may call it, and read the outputs the CLI starts from.
    const responder = props.eks.responderRole;
    responder.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'InvokeTheClusterResponder',
        actions: ['lambda:InvokeFunction'],
        resources: [this.function.functionArn],
      }),
    );
    const stack = Stack.of(this);
    responder.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadTheDeploymentsOutputs',
        actions: ['cloudformation:DescribeStacks'],
        resources: deploymentStacks(props.deploymentName).map((name) =>
          stack.formatArn({ service: 'cloudformation', resource: 'stack', resourceName: `${name}/*` }),
        ),
      }),
    );
    const policy = responder.node.findChild('DefaultPolicy').node.defaultChild!;
    acknowledge(
      policy,
      ...deploymentStacks(props.deploymentName).map((name) => ({
        id: `AwsSolutions-IAM5[Resource::arn:aws:cloudformation:${stack.region}:<AWS::AccountId>:stack/${name}/*]`,
        reason: `cloudformation:DescribeStacks on the one stack named ${name}: the part after the slash is the id CloudFormation assigns when it creates the stack, unknown until then.`,
      })),
      ...nistAndHipaa(
        'IAMNoInlinePolicy',
        'The default policy CDK writes inline in the incident-responder role: it cannot be attached to any other principal, changes only with this stack, and names this deployment’s stacks and its one responder function.',
      ),
    );
    output(this, OUTPUTS.clusterResponderFunctionName, this.function.functionName);
  }
}
