import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { encryptedLogGroup, type LogSettings } from './log-group';

/** What the web ACL admits and blocks. */
export interface WebAclRules {
  /** IPv4 networks admitted; empty admits no IPv4 client. */
  readonly allowedIpv4Cidrs: readonly string[];
  /** IPv6 networks admitted; empty admits no IPv6 client. */
  readonly allowedIpv6Cidrs: readonly string[];
  /** Requests per client IP in any five minutes before the IP is blocked. */
  readonly rateLimit: number;
  /** Also block anonymizing networks (VPNs, proxies, Tor, hosting providers). */
  readonly anonymousIpList: boolean;
}

export interface WebAclProps extends WebAclRules {
  /** CLOUDFRONT (the ACL must then live in us-east-1) or REGIONAL (an ALB's). */
  readonly scope: 'CLOUDFRONT' | 'REGIONAL';
  /** Where the WAF logs go; WAF requires log group names starting with `aws-waf-logs-`. */
  readonly logs: LogSettings;
}

/**
 * Request paths whose bodies are large by design, so the common rule set's 8 KB body limit
 * (SizeRestrictions_BODY) must not apply to them. Every other path keeps the limit. Dify itself
 * enforces UPLOAD_FILE_SIZE_LIMIT on uploads.
 */
export const LARGE_BODY_PATHS = [
  // File uploads: console, web apps and the service API.
  '^/(console/api|api|v1)/files/upload$',
  // Plugin packages and bundles.
  '^/console/api/workspaces/current/plugin/upload/(pkg|bundle)$',
  // DSL (app definition) imports, and workflow drafts, which carry the whole graph.
  '^/console/api/apps/imports$',
  '^/console/api/apps/[0-9a-f-]{36}/workflows/draft$',
  // Knowledge documents created or updated from text through the service API.
  '^/v1/datasets/[0-9a-f-]{36}/(document/create[-_]by[-_]text|documents/[0-9a-f-]{36}/update[-_]by[-_]text)$',
  // Prompts: chat, completion and workflow runs carry user input that often exceeds 8 KB.
  '^/(console/api/apps/[0-9a-f-]{36}|api|v1)/(chat-messages|completion-messages|workflows/run)$',
] as const;

/** The order in which rules are evaluated; tests hold the ACL to it. */
export const RULE_ORDER = [
  'AllowListedNetworksOnly',
  'RateLimitPerClientIp',
  'AWS-AWSManagedRulesAmazonIpReputationList',
  'AWS-AWSManagedRulesAnonymousIpList',
  'AWS-AWSManagedRulesKnownBadInputsRuleSet',
  'AWS-AWSManagedRulesCommonRuleSet',
  'OversizeBodyOutsideUploadPaths',
] as const;

/**
 * A WAF web ACL for Dify's front door. Rules, in order:
 * 1. block every client outside the allow-lists (empty lists block everyone);
 * 2. block a client IP above the rate limit;
 * 3. AWS managed IP reputation list, then (optionally) the anonymous-IP list;
 * 4. AWS managed known-bad-inputs and common rule sets, with the common set's body-size rule
 *    counted instead of blocking;
 * 5. block a body over the common set's size limit unless the path is an upload path.
 * Requests that pass every rule are allowed. Logs go to CloudWatch with the `authorization` and
 * `cookie` headers redacted, so no credential or session reaches the log.
 */
export class WebAcl extends Construct {
  public readonly acl: wafv2.CfnWebACL;

  constructor(scope: Construct, id: string, props: WebAclProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const name = (suffix: string) => `${stack.stackName}-${suffix}`;

    const ipv4 = new wafv2.CfnIPSet(this, 'AllowedIpv4', {
      scope: props.scope,
      ipAddressVersion: 'IPV4',
      addresses: [...props.allowedIpv4Cidrs],
      description: 'Networks admitted to Dify - allowedIpv4Cidrs',
    });
    const ipv6 = new wafv2.CfnIPSet(this, 'AllowedIpv6', {
      scope: props.scope,
      ipAddressVersion: 'IPV6',
      addresses: [...props.allowedIpv6Cidrs],
      description: 'Networks admitted to Dify - allowedIpv6Cidrs',
    });
    const largeBodyPaths = new wafv2.CfnRegexPatternSet(this, 'LargeBodyPaths', {
      scope: props.scope,
      regularExpressionList: [...LARGE_BODY_PATHS],
      description: 'Dify paths whose request bodies are large by design - uploads, imports, prompts',
    });

    const visibility = (metric: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      metricName: metric,
      sampledRequestsEnabled: true,
    });
    const managed = (ruleName: string, overrides?: wafv2.CfnWebACL.RuleActionOverrideProperty[]) => ({
      name: `AWS-${ruleName}`,
      overrideAction: { none: {} },
      statement: { managedRuleGroupStatement: { vendorName: 'AWS', name: ruleName, ruleActionOverrides: overrides } },
      visibilityConfig: visibility(ruleName),
    });
    const rules: Array<Omit<wafv2.CfnWebACL.RuleProperty, 'priority'>> = [
      {
        name: 'AllowListedNetworksOnly',
        action: { block: {} },
        statement: {
          notStatement: {
            statement: {
              orStatement: {
                statements: [
                  { ipSetReferenceStatement: { arn: ipv4.attrArn } },
                  { ipSetReferenceStatement: { arn: ipv6.attrArn } },
                ],
              },
            },
          },
        },
        visibilityConfig: visibility('AllowListedNetworksOnly'),
      },
      {
        name: 'RateLimitPerClientIp',
        action: { block: {} },
        statement: { rateBasedStatement: { limit: props.rateLimit, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
        visibilityConfig: visibility('RateLimitPerClientIp'),
      },
      managed('AWSManagedRulesAmazonIpReputationList'),
      ...(props.anonymousIpList ? [managed('AWSManagedRulesAnonymousIpList')] : []),
      managed('AWSManagedRulesKnownBadInputsRuleSet'),
      managed('AWSManagedRulesCommonRuleSet', [{ name: 'SizeRestrictions_BODY', actionToUse: { count: {} } }]),
      {
        name: 'OversizeBodyOutsideUploadPaths',
        action: { block: {} },
        statement: {
          andStatement: {
            statements: [
              {
                labelMatchStatement: { scope: 'LABEL', key: 'awswaf:managed:aws:core-rule-set:SizeRestrictions_Body' },
              },
              {
                notStatement: {
                  statement: {
                    regexPatternSetReferenceStatement: {
                      arn: largeBodyPaths.attrArn,
                      fieldToMatch: { uriPath: {} },
                      textTransformations: [{ priority: 0, type: 'NONE' }],
                    },
                  },
                },
              },
            ],
          },
        },
        visibilityConfig: visibility('OversizeBodyOutsideUploadPaths'),
      },
    ];

    this.acl = new wafv2.CfnWebACL(this, 'Resource', {
      scope: props.scope,
      defaultAction: { allow: {} },
      description: 'Dify front door - allow-list, rate limit, AWS managed rules',
      visibilityConfig: visibility(name('web-acl')),
      rules: rules.map((rule, priority) => ({ ...rule, priority })),
    });

    // A dot cannot occur in a stack name, so the logs key's prefix `aws-waf-logs-<stack>.` matches
    // this stack's groups and no other stack's.
    const logGroupName = `aws-waf-logs-${stack.stackName}.${props.scope.toLowerCase()}`;
    const logGroup = encryptedLogGroup(this, 'LogGroup', props.logs, { exact: logGroupName });
    const logging = new wafv2.CfnLoggingConfiguration(this, 'Logging', {
      resourceArn: this.acl.attrArn,
      // WAF wants the log group's ARN without the `:*` that `logGroupArn` carries.
      logDestinationConfigs: [
        stack.formatArn({
          service: 'logs',
          resource: 'log-group',
          resourceName: logGroupName,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
      redactedFields: [{ singleHeader: { Name: 'authorization' } }, { singleHeader: { Name: 'cookie' } }],
    });
    logging.node.addDependency(logGroup);
  }

  public get arn(): string {
    return this.acl.attrArn;
  }
}
