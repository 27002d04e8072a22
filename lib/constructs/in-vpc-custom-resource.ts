import { CustomResource, type Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import type { LambdaBundleName } from '../../contracts/lambda-bundles';
import { acknowledge } from '../nag/acknowledge';
import { acknowledgeDeployTimeFunction } from '../nag/deploy-time-function';
import { FunctionRole } from './function-role';
import { BundledFunction } from './lambda-code';
import { encryptedLogGroup, type LogSettings } from './log-group';
import type { ExtraEndpoint, Network } from './network';

export interface InVpcCustomResourceProps {
  readonly network: Network;
  readonly logs: LogSettings;
  /** What the function is, for its security group: `<what>: <description>`. */
  readonly what: string;
  readonly securityGroupDescription: string;
  /** The interface endpoints it calls beyond the ones every task reaches. */
  readonly endpoints: readonly ExtraEndpoint[];
  /** The handler's bundle (contracts/lambda-bundles.ts). */
  readonly bundle: LambdaBundleName;
  readonly description: string;
  readonly timeout: Duration;
  /** Suffix of the function's log group; the provider's is `<suffix>-provider`. */
  readonly logGroupSuffix: string;
  readonly resourceType: `Custom::${string}`;
  /** ARNs and names only: CloudFormation echoes them in its events. */
  readonly properties: Record<string, unknown>;
  /** The function, in the provider role's acknowledgement: `the one <name>`. */
  readonly name: string;
}

export interface InVpcCustomResource {
  readonly securityGroup: ec2.SecurityGroup;
  readonly function: lambda.Function;
  readonly functionRole: FunctionRole;
  readonly resource: CustomResource;
}

/**
 * A custom resource whose handler runs inside the VPC, in private subnets, behind a security group
 * that reaches only the VPC endpoints it names and S3's gateway endpoint: the function (with its own
 * role and encrypted log group), the provider framework (likewise), and the resource. Everything is
 * a direct child of `scope`, so the construct that uses it keeps its ids.
 */
export function inVpcCustomResource(scope: Construct, props: InVpcCustomResourceProps): InVpcCustomResource {
  const { network } = props;
  const securityGroup = new ec2.SecurityGroup(scope, 'SecurityGroup', {
    vpc: network.vpc,
    description: props.securityGroupDescription,
    allowAllOutbound: false,
  });
  // Lambda for the provider framework's invoke, the named endpoints, and S3 (the gateway endpoint)
  // for the provider's response to CloudFormation's pre-signed URL: no internet route.
  network.allowAwsServices(securityGroup, props.what, props.endpoints);
  const functionLogGroup = encryptedLogGroup(scope, 'FunctionLogGroup', props.logs, { suffix: props.logGroupSuffix });
  const providerLogGroup = encryptedLogGroup(scope, 'ProviderLogGroup', props.logs, {
    suffix: `${props.logGroupSuffix}-provider`,
  });
  const functionRole = new FunctionRole(scope, 'FunctionRole', { logGroup: functionLogGroup, inVpc: true });
  const fn = new BundledFunction(scope, 'Function', {
    bundle: props.bundle,
    role: functionRole.role,
    timeout: props.timeout,
    description: props.description,
    vpc: network.vpc,
    vpcSubnets: network.privateSubnets,
    securityGroups: [securityGroup],
    logGroup: functionLogGroup,
  });
  const providerRole = new FunctionRole(scope, 'ProviderRole', { logGroup: providerLogGroup, inVpc: true });
  const provider = new cr.Provider(scope, 'Provider', {
    onEventHandler: fn,
    logGroup: providerLogGroup,
    frameworkOnEventRole: providerRole.role,
    vpc: network.vpc,
    vpcSubnets: network.privateSubnets,
    securityGroups: [securityGroup],
  });
  const resource = new CustomResource(scope, 'Resource', {
    serviceToken: provider.serviceToken,
    resourceType: props.resourceType,
    properties: props.properties,
  });

  for (const f of [fn, ...provider.node.findAll().filter((c): c is lambda.Function => c instanceof lambda.Function)]) {
    acknowledgeDeployTimeFunction(f.node.defaultChild!);
  }
  acknowledge(providerRole.role.node.findChild('DefaultPolicy').node.defaultChild!, {
    id: `AwsSolutions-IAM5[Resource::<${Stack.of(scope).getLogicalId(fn.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
    reason: `lambda:InvokeFunction on the versions and aliases of the one ${props.name} (the \`:*\` suffix), granted by the provider framework; no other function can be invoked.`,
  });
  return { securityGroup, function: fn, functionRole, resource };
}
