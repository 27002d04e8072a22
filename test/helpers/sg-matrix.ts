import type { Template } from 'aws-cdk-lib/assertions';
import { type IngressRule, ingressRulesOf, resources } from './template';

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
