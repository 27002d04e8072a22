import { type CfnElement, Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';

/** A resource of a synthesized template. */
export interface Resource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
  readonly Metadata?: Record<string, unknown>;
  readonly DependsOn?: string[];
}

export function resources(template: Template, type?: string): Array<[string, Resource]> {
  const all = Object.entries(template.toJSON().Resources as Record<string, Resource>);
  return type === undefined ? all : all.filter(([, resource]) => resource.Type === type);
}

/** The logical id CloudFormation sees for a construct (or its default child). */
export function logicalId(construct: IConstruct): string {
  const cfn = (construct.node.defaultChild ?? construct) as CfnElement;
  // Resolving honours overridden logical ids (CDK overrides some, such as database secrets).
  return Stack.of(cfn).resolve(cfn.logicalId) as string;
}

/** True when `value` is, or contains, a reference (Ref or Fn::GetAtt) to the logical id. */
export function references(value: unknown, id: string): boolean {
  if (Array.isArray(value)) return value.some((item) => references(item, id));
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (record.Ref === id) return true;
    const getAtt = record['Fn::GetAtt'];
    if (Array.isArray(getAtt) && getAtt[0] === id) return true;
    return Object.values(record).some((item) => references(item, id));
  }
  return false;
}

/** One ingress rule, whether inline in a security group or a separate resource. */
export interface IngressRule {
  readonly FromPort?: number;
  readonly ToPort?: number;
  readonly IpProtocol?: string;
  readonly CidrIp?: string;
  readonly CidrIpv6?: string;
  readonly SourceSecurityGroupId?: unknown;
  readonly SourcePrefixListId?: unknown;
}

/** Every ingress rule that opens the security group with the given logical id. */
export function ingressRulesOf(template: Template, securityGroupId: string): IngressRule[] {
  const group = template.toJSON().Resources[securityGroupId] as Resource;
  const inline = (group.Properties?.SecurityGroupIngress as IngressRule[] | undefined) ?? [];
  const separate = resources(template, 'AWS::EC2::SecurityGroupIngress')
    .filter(([, rule]) => references(rule.Properties?.GroupId, securityGroupId))
    .map(([, rule]) => rule.Properties as IngressRule);
  return [...inline, ...separate];
}

/** Every string anywhere in a JSON value. */
export function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}
