import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';

export interface FunctionRoleProps {
  /** The function's own log group: the only one it may write to. */
  readonly logGroup: logs.ILogGroup;
  /** Whether the function runs in the VPC and so must manage its network interfaces. */
  readonly inVpc: boolean;
  /**
   * Read-only actions the function needs that support no resource-level permission, and why.
   * @default - none
   */
  readonly unscopedActions?: { readonly actions: string[]; readonly why: string };
}

/**
 * A Lambda execution role without AWS managed policies: `AWSLambdaBasicExecutionRole` would let the
 * function write to every log group of the account, so it writes only to its own, encrypted one.
 */
export class FunctionRole extends Construct {
  public readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: FunctionRoleProps) {
    super(scope, id);
    this.role = new iam.Role(this, 'Resource', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'OwnLogGroupOnly',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [props.logGroup.logGroupArn],
      }),
    );
    if (props.inVpc) {
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'VpcNetworkInterfaces',
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
      );
    }
    if (props.unscopedActions !== undefined) {
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'Unscoped', actions: props.unscopedActions.actions, resources: ['*'] }),
      );
    }
    const policy = this.role.node.findChild('DefaultPolicy').node.defaultChild!;
    const inline =
      'A policy inline in one role cannot be attached anywhere else and changes only with this stack; each statement is scoped to the resources this one function uses (its log group, and the grants of the resources it owns).';
    acknowledge(policy, ...nistAndHipaa('IAMNoInlinePolicy', inline));
    const unscoped = [
      ...(props.inVpc
        ? [
            'the EC2 network-interface actions Lambda needs to attach to the VPC, which do not support resource-level permissions (the same actions as AWSLambdaVPCAccessExecutionRole, without its log permissions)',
          ]
        : []),
      ...(props.unscopedActions ? [`${props.unscopedActions.actions.join(', ')}: ${props.unscopedActions.why}`] : []),
    ];
    if (unscoped.length > 0) {
      acknowledge(policy, { id: 'AwsSolutions-IAM5[Resource::*]', reason: `Only ${unscoped.join('; and ')}.` });
    }
  }
}
