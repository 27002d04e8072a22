import { CustomResource, Duration, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as route53resolver from 'aws-cdk-lib/aws-route53resolver';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { acknowledge } from '../nag/acknowledge';
import { acknowledgeDeployTimeFunction } from '../nag/deploy-time-function';
import { BundledFunction } from './lambda-code';
import { FunctionRole } from './function-role';
import { encryptedLogGroup, type LogSettings } from './log-group';
import { acknowledgeOutsideVpc } from './managed-prefix-list';
import { deploymentName } from './deployment-name';

/**
 * AWS's managed threat lists that the VPC's resolver refuses to answer for: domains that serve
 * malware, and botnet command-and-control domains (Route 53 Resolver DNS Firewall's managed lists).
 */
export const MANAGED_THREAT_LISTS = ['AWSManagedDomainsMalwareDomainList', 'AWSManagedDomainsBotnetCommandandControl'];

export interface DnsFirewallProps {
  readonly vpc: ec2.IVpc;
  readonly logs: LogSettings;
}

/**
 * Route 53 Resolver DNS Firewall on the VPC: a rule group that answers NXDOMAIN for every domain on
 * AWS's managed threat lists, so a compromised task can neither fetch malware by name nor reach a
 * command-and-control server by name, whatever its security groups allow. The lists' ids differ
 * per region, so a deploy-time function (lambda/firewall-domain-lists) reads them by name; synth
 * looks nothing up. The queries themselves are logged by the VPC's resolver query logging.
 */
export class DnsFirewall extends Construct {
  public readonly ruleGroup: route53resolver.CfnFirewallRuleGroup;

  constructor(scope: Construct, id: string, props: DnsFirewallProps) {
    super(scope, id);
    const functionLogGroup = encryptedLogGroup(this, 'LookupLogGroup', props.logs, { suffix: 'firewall-domain-lists' });
    const providerLogGroup = encryptedLogGroup(this, 'ProviderLogGroup', props.logs, {
      suffix: 'firewall-domain-lists-provider',
    });
    const handler = new BundledFunction(this, 'Lookup', {
      bundle: 'firewall-domain-lists',
      role: new FunctionRole(this, 'LookupRole', {
        logGroup: functionLogGroup,
        inVpc: false,
        unscopedActions: {
          actions: ['route53resolver:ListFirewallDomainLists'],
          why: 'read-only, and it supports no resource-level permission',
        },
      }).role,
      timeout: Duration.minutes(1),
      description: 'Dify: reads the ids of AWS-managed DNS Firewall domain lists by name (deploy time)',
      logGroup: functionLogGroup,
    });
    const providerRole = new FunctionRole(this, 'ProviderRole', { logGroup: providerLogGroup, inVpc: false });
    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: handler,
      logGroup: providerLogGroup,
      frameworkOnEventRole: providerRole.role,
    });
    const lists = new CustomResource(this, 'DomainLists', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::DifyFirewallDomainLists',
      properties: { Names: MANAGED_THREAT_LISTS },
    });

    this.ruleGroup = new route53resolver.CfnFirewallRuleGroup(this, 'RuleGroup', {
      name: `${deploymentName(this)}-managed-threats`,
      firewallRules: MANAGED_THREAT_LISTS.map((name, index) => ({
        firewallDomainListId: lists.getAttString(name),
        priority: (index + 1) * 10,
        action: 'BLOCK',
        blockResponse: 'NXDOMAIN',
      })),
    });
    new route53resolver.CfnFirewallRuleGroupAssociation(this, 'Association', {
      firewallRuleGroupId: this.ruleGroup.attrId,
      vpcId: props.vpc.vpcId,
      priority: 101,
      name: `${deploymentName(this)}-managed-threats`,
    });

    const functions = [
      handler,
      ...provider.node.findAll().filter((c): c is lambda.Function => c instanceof lambda.Function),
    ];
    for (const fn of functions) {
      acknowledgeDeployTimeFunction(fn.node.defaultChild!);
      acknowledgeOutsideVpc(fn.node.defaultChild!);
    }
    acknowledge(providerRole.role.node.findChild('DefaultPolicy').node.defaultChild!, {
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(handler.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason:
        'lambda:InvokeFunction on the versions and aliases of the one lookup function (the `:*` suffix), granted by the provider framework; no other function can be invoked.',
    });
  }
}
