import type { Template } from 'aws-cdk-lib/assertions';
import { type IngressRule, ingressRulesOf, references, resources } from './template';

/** One allowed flow: `from` may open `port` on `to`. Names come from the caller's map of logical ids. */
export interface Flow {
  readonly from: string;
  readonly to: string;
  readonly port: string;
}

function sourceOf(rule: IngressRule, names: Record<string, string>): string {
  if (rule.CidrIp !== undefined) return `cidr ${rule.CidrIp}`;
  if (rule.CidrIpv6 !== undefined) return `cidr ${rule.CidrIpv6}`;
  if (rule.SourcePrefixListId !== undefined) return 'prefix list';
  const ref = rule.SourceSecurityGroupId as { 'Fn::GetAtt'?: [string, string] } | undefined;
  const id = ref?.['Fn::GetAtt']?.[0];
  return id === undefined ? 'unknown' : (names[id] ?? `unnamed ${id}`);
}

/**
 * The security-group matrix as the template actually has it: every ingress rule of every security
 * group, rendered as `from -> to : port`. Groups are named through `names` (logical id -> name), so
 * a test can compare the result with the table a reviewer reads.
 */
export function renderMatrix(template: Template, names: Record<string, string>): Flow[] {
  return resources(template, 'AWS::EC2::SecurityGroup')
    .flatMap(([id]) =>
      ingressRulesOf(template, id).map((rule) => ({
        from: sourceOf(rule, names),
        to: names[id] ?? `unnamed ${id}`,
        port: rule.FromPort === rule.ToPort ? String(rule.FromPort) : `${rule.FromPort}-${rule.ToPort}`,
      })),
    )
    .sort((a, b) => `${a.to} ${a.from} ${a.port}`.localeCompare(`${b.to} ${b.from} ${b.port}`));
}

interface EgressRule {
  readonly FromPort?: number;
  readonly ToPort?: number;
  readonly IpProtocol?: string;
  readonly CidrIp?: string;
  readonly CidrIpv6?: string;
  readonly DestinationSecurityGroupId?: unknown;
  readonly DestinationPrefixListId?: unknown;
}

/** CDK's placeholder rule for a group with no egress at all: it matches no real traffic. */
const NO_EGRESS_MARKER = '255.255.255.255/32';

/**
 * Every way out of the VPC a security group allows: its egress rules to addresses and prefix lists
 * (egress to another group mirrors that group's ingress and is in `renderMatrix` already). A group
 * that allows all outbound traffic shows as `cidr 0.0.0.0/0 : all`.
 */
export function renderEgress(template: Template, names: Record<string, string>): Flow[] {
  return resources(template, 'AWS::EC2::SecurityGroup')
    .flatMap(([id, group]) => {
      const inline = (group.Properties?.SecurityGroupEgress as EgressRule[] | undefined) ?? [];
      const separate = resources(template, 'AWS::EC2::SecurityGroupEgress')
        .filter(([, rule]) => references(rule.Properties?.GroupId, id))
        .map(([, rule]) => rule.Properties as EgressRule);
      return [...inline, ...separate]
        .filter((rule) => rule.CidrIp !== NO_EGRESS_MARKER && rule.DestinationSecurityGroupId === undefined)
        .map((rule) => ({
          from: names[id] ?? `unnamed ${id}`,
          to:
            rule.DestinationPrefixListId !== undefined
              ? 'prefix list'
              : `cidr ${rule.CidrIp ?? rule.CidrIpv6 ?? 'unknown'}`,
          port:
            rule.IpProtocol === '-1'
              ? 'all'
              : rule.FromPort === rule.ToPort
                ? String(rule.FromPort)
                : `${rule.FromPort}-${rule.ToPort}`,
        }));
    })
    .sort((a, b) => `${a.from} ${a.to} ${a.port}`.localeCompare(`${b.from} ${b.to} ${b.port}`));
}
