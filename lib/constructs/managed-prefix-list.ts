import { Stack } from 'aws-cdk-lib';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct, type IConstruct } from 'constructs';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { acknowledgeDeployTimeFunction } from '../nag/deploy-time-function';
import { FunctionRole } from './function-role';
import { encryptedLogGroup, type LogSettings } from './log-group';

export interface ManagedPrefixListProps {
  /** The AWS-managed prefix list's name, e.g. `com.amazonaws.global.cloudfront.origin-facing`. */
  readonly name: string;
  /** Suffix of the lookup's log group name under the stack's prefix. */
  readonly logGroupSuffix: string;
  readonly logs: LogSettings;
}

/** The AWS-managed prefix list of CloudFront's origin-facing addresses. */
export const CLOUDFRONT_ORIGIN_FACING = 'com.amazonaws.global.cloudfront.origin-facing';

/** Construct id of the Lambda that CDK shares between every AwsCustomResource of a stack. */
const SINGLETON_ID = 'AWS679f53fac002430cb0da5b7982bd2287';

/**
 * The id of an AWS-managed prefix list in this region, read at deploy time.
 *
 * The id differs per region, and synth may not look anything up, so a deploy-time call to
 * `ec2:DescribeManagedPrefixLists` (by the list's fixed name) supplies it. The lookup runs outside
 * the VPC: it reads public AWS metadata only, so inside it would need either an internet route or
 * an EC2 endpoint, and outside it has no network path into the VPC at all.
 */
export class ManagedPrefixList extends Construct {
  public readonly prefixListId: string;

  constructor(scope: Construct, id: string, props: ManagedPrefixListProps) {
    super(scope, id);
    const logGroup = encryptedLogGroup(this, 'LogGroup', props.logs, { suffix: props.logGroupSuffix });
    const role = new FunctionRole(this, 'Role', {
      logGroup,
      inVpc: false,
      unscopedActions: {
        actions: ['ec2:DescribeManagedPrefixLists'],
        why: 'read-only, and it supports no resource-level permission',
      },
    });
    const call: cr.AwsSdkCall = {
      service: 'EC2',
      action: 'describeManagedPrefixLists',
      parameters: { Filters: [{ Name: 'prefix-list-name', Values: [props.name] }] },
      physicalResourceId: cr.PhysicalResourceId.of(props.name),
      outputPaths: ['PrefixLists.0.PrefixListId'],
    };
    const lookup = new cr.AwsCustomResource(this, 'Resource', {
      onCreate: call,
      onUpdate: call,
      role: role.role,
      logGroup,
      installLatestAwsSdk: false,
    });
    this.prefixListId = lookup.getResponseField('PrefixLists.0.PrefixListId');

    // AwsCustomResource runs on one Lambda shared by the whole stack (a singleton at stack level).
    const handler = Stack.of(this).node.tryFindChild(SINGLETON_ID)?.node.defaultChild;
    if (handler === undefined) throw new Error(`AwsCustomResource's handler ${SINGLETON_ID} not found`);
    acknowledgeDeployTimeFunction(handler);
    acknowledgeOutsideVpc(handler);
  }
}

/**
 * The lookup functions (CDK's shared AwsCustomResource handler) run outside the VPC on purpose; the
 * finding is acknowledged on that one handler, once however many lookups share it.
 */
export function acknowledgeOutsideVpc(handler: IConstruct): void {
  if (
    handler.node.metadata.some(
      (m) => m.type === 'aws:cdk:acknowledged-rules' && 'NIST.800.53.R5-LambdaInsideVPC' in m.data,
    )
  )
    return;
  acknowledge(
    handler,
    ...nistAndHipaa(
      'LambdaInsideVPC',
      'A deploy-time lookup of public AWS metadata (a managed prefix list id, a managed DNS Firewall domain list id) that CloudFormation invokes; it reads no data of the stack, its role allows only the read-only describe/list calls, and outside the VPC it has no network path to any workload, where inside it would need an internet route.',
    ),
  );
}
