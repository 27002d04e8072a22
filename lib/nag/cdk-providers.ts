import { CfnResource, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { IConstruct } from 'constructs';
import { type Acknowledgement, acknowledge, nistAndHipaa } from './acknowledge';

/**
 * A stack-level singleton that CDK creates for one of its own custom resources. These are plain
 * `CfnResource`s (an `AWS::IAM::Role` named `Role` and an `AWS::Lambda::Function` named `Handler`),
 * not L2 constructs, so cdk-nag's rules (which match `CfnRole`, `CfnFunction`) pass over them in the
 * app and report them only when the synthesized template is read back. CDK exposes no property
 * of these singletons (no VPC, dead-letter queue, reserved concurrency or role), so they are
 * acknowledged, not fixed.
 */
interface CdkProvider {
  /** The singleton's construct id, directly under the stack. */
  readonly id: string;
  /** The custom resource type it serves: the provider must exist exactly when the stack has one. */
  readonly serves: string;
  readonly role: Acknowledgement[];
  readonly handler: Acknowledgement[];
}

const BASIC_EXECUTION_ROLE =
  'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]';

const PROVIDERS: readonly CdkProvider[] = [
  {
    // From `restrictDefaultSecurityGroup: true` on the VPC (lib/constructs/network.ts).
    id: 'Custom::VpcRestrictDefaultSGCustomResourceProvider',
    serves: 'Custom::VpcRestrictDefaultSG',
    role: [
      {
        id: BASIC_EXECUTION_ROLE,
        reason:
          "CDK's default-security-group stripper: AWSLambdaBasicExecutionRole only lets it write its own CloudWatch Logs and reads no data; the role trusts only the Lambda service and CDK offers no way to replace it. Its one other permission is the inline statement on this VPC's default security group.",
      },
      ...nistAndHipaa(
        'IAMNoInlinePolicy',
        "The inline policy of CDK's default-security-group stripper allows only ec2:Authorize/RevokeSecurityGroupIngress/Egress on the one ARN of this VPC's default security group; it cannot reach any other group and, being inline, cannot be attached to another principal.",
      ),
    ],
    handler: [
      ...nistAndHipaa(
        'LambdaDLQ',
        'Invoked only by CloudFormation, synchronously, when the Custom::VpcRestrictDefaultSG resource is created or updated; a failed run fails the deploy and CloudFormation rolls back, so a dead-letter queue would hold nothing actionable.',
      ),
      ...nistAndHipaa(
        'LambdaConcurrency',
        'Runs a few seconds per create or update of the Custom::VpcRestrictDefaultSG resource; it has no resource policy, so no other service or account can invoke it, and reserving concurrency would take capacity from the account for no protection.',
      ),
      ...nistAndHipaa(
        'LambdaInsideVPC',
        "It only calls the EC2 API to revoke the rules of this VPC's default security group and needs no path into the VPC; inside it, it would need a NAT route or an EC2 endpoint to do so. It holds no data, and IAM bounds it to that one group.",
      ),
    ],
  },
  {
    // From `autoDeleteObjects` on the buckets that `cdk destroy` removes (dev profile; lib/constructs/storage.ts).
    id: 'Custom::S3AutoDeleteObjectsCustomResourceProvider',
    serves: 'Custom::S3AutoDeleteObjects',
    role: [
      {
        id: BASIC_EXECUTION_ROLE,
        reason:
          "CDK's S3 auto-delete function: AWSLambdaBasicExecutionRole only lets it write its own CloudWatch Logs and is its only identity policy. It can delete objects only in the buckets whose bucket policy names this role (this stack's autoDeleteObjects buckets, dev profile only); the role trusts only the Lambda service.",
      },
    ],
    handler: [
      ...nistAndHipaa(
        'LambdaDLQ',
        "Invoked only by CloudFormation, synchronously, when a bucket's Custom::S3AutoDeleteObjects resource is deleted (cdk destroy of the dev profile); a failed run fails the deletion and keeps the bucket, so a dead-letter queue would hold nothing actionable.",
      ),
      ...nistAndHipaa(
        'LambdaConcurrency',
        'Runs only when CloudFormation deletes a bucket created with autoDeleteObjects (dev profile, on cdk destroy); it has no resource policy, so no other service or account can invoke it, and reserving concurrency would take capacity from the account for no protection.',
      ),
      ...nistAndHipaa(
        'LambdaInsideVPC',
        'It only calls the S3 API, at stack deletion, to empty buckets tagged aws-cdk:auto-delete-objects whose policy names its role; network interfaces in the VPC being deleted alongside would delay or block that deletion. IAM, not the network, bounds what it can reach.',
      ),
    ],
  },
];

const DEFAULT_SG_CLOSED =
  "The stack's Custom::VpcRestrictDefaultSG resource (restrictDefaultSecurityGroup) revokes every ingress and egress rule of this VPC's default security group on deploy. cdk-nag recognises it only in the construct tree, so a reader of the template needs this acknowledgement.";

/** One resource of CDK's and the acknowledgements it needs. */
export interface CdkProviderAcknowledgement {
  readonly resource: CfnResource;
  readonly acknowledgements: readonly Acknowledgement[];
}

function resourceOf(provider: IConstruct, id: string, type: string): CfnResource {
  const child = provider.node.tryFindChild(id);
  if (!CfnResource.isCfnResource(child) || child.cfnResourceType !== type) {
    throw new Error(
      `${provider.node.path}: expected a child '${id}' of type ${type}; CDK changed its provider, so review lib/nag/cdk-providers.ts`,
    );
  }
  return child;
}

/**
 * The acknowledgements CDK's own resources in `stack` need, found but not applied (a test reads
 * them to prove that each answers a finding). Throws when a custom resource of CDK's is in the
 * stack but its provider is not where CDK put it, so that a CDK upgrade cannot leave a finding
 * unacknowledged, or an acknowledgement on nothing, without notice.
 */
export function cdkProviderAcknowledgements(stack: Stack): CdkProviderAcknowledgement[] {
  const resources = stack.node
    .findAll()
    .filter((construct): construct is CfnResource => CfnResource.isCfnResource(construct))
    .filter((resource) => Stack.of(resource) === stack);
  const found: CdkProviderAcknowledgement[] = [];
  for (const provider of PROVIDERS) {
    const construct = stack.node.tryFindChild(provider.id);
    if (construct === undefined) {
      if (resources.some((resource) => resource.cfnResourceType === provider.serves)) {
        throw new Error(
          `${stack.node.path} has ${provider.serves} resources but no provider '${provider.id}'; CDK renamed it, so review lib/nag/cdk-providers.ts`,
        );
      }
      continue;
    }
    found.push(
      { resource: resourceOf(construct, 'Role', 'AWS::IAM::Role'), acknowledgements: provider.role },
      { resource: resourceOf(construct, 'Handler', 'AWS::Lambda::Function'), acknowledgements: provider.handler },
    );
  }
  // The same condition as cdk-nag's VPCDefaultSecurityGroupClosed: a sibling of the CfnVPC named
  // RestrictDefaultSecurityGroupCustomResource of type Custom::VpcRestrictDefaultSG. A VPC without
  // it is not acknowledged, and the in-app run reports it.
  for (const vpc of resources.filter((resource) => resource instanceof ec2.CfnVPC)) {
    const stripper = vpc.node.scope?.node.tryFindChild('RestrictDefaultSecurityGroupCustomResource')?.node.defaultChild;
    if (CfnResource.isCfnResource(stripper) && stripper.cfnResourceType === 'Custom::VpcRestrictDefaultSG') {
      found.push({ resource: vpc, acknowledgements: nistAndHipaa('VPCDefaultSecurityGroupClosed', DEFAULT_SG_CLOSED) });
    }
  }
  return found;
}

/**
 * Acknowledges the findings on CDK's own resources in `stack`, once, on the `CfnResource` that
 * becomes each template resource: the default-security-group stripper and the S3 auto-delete
 * function (stack-level singletons), and the default-security-group check that cdk-nag can only
 * satisfy from the construct tree. Call it last in the stack's constructor, after every construct
 * that may create a provider.
 */
export function acknowledgeCdkProviders(stack: Stack): void {
  for (const { resource, acknowledgements } of cdkProviderAcknowledgements(stack)) {
    acknowledge(resource, ...acknowledgements);
  }
}
