import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { encryptedLogGroup, type LogSettings } from './log-group';
import { deploymentName } from './deployment-name';
import type { Observability } from './observability';
import { SIGN_IN_PATHS } from '../../contracts/log-signals';

/** What the web ACL admits and blocks. */
export interface WebAclRules {
  /** IPv4 networks admitted; empty admits no IPv4 client. */
  readonly allowedIpv4Cidrs: readonly string[];
  /** IPv6 networks admitted; empty admits no IPv6 client. */
  readonly allowedIpv6Cidrs: readonly string[];
  /** Requests per client IP in any five minutes before the IP is blocked. */
  readonly rateLimit: number;
  /** Console sign-in attempts per client IP in any five minutes before the IP is refused (429). */
  readonly loginRateLimit: number;
  /** Also block anonymizing networks (VPNs, proxies, Tor, hosting providers). */
  readonly anonymousIpList: boolean;
}

export interface WebAclProps extends WebAclRules {
  /** CLOUDFRONT (the ACL must then live in us-east-1) or REGIONAL (an ALB's). */
  readonly scope: 'CLOUDFRONT' | 'REGIONAL';
  /**
   * Refuse requests that carry a header Dify takes the client address from ({@link CLIENT_ADDRESS_HEADERS}).
   * For an ACL on a load balancer that clients reach directly, where nothing else can overwrite them.
   * @default false - the headers pass: behind CloudFront the viewer-request function overwrites them
   *   after WAF has run, so refusing them would only turn away viewers whose proxies add X-Forwarded-For
   */
  readonly refuseClientAddressHeaders?: boolean;
  /** Where the WAF logs go; WAF requires log group names starting with `aws-waf-logs-`. */
  readonly logs: LogSettings;
  /** Request paths whose bodies are large by design (UrlSurface.largeBodyPaths). */
  readonly largeBodyPaths: readonly string[];
  /** Where its alarms notify: an Observability of the ACL's own region (alarms cannot cross regions). */
  readonly alarms: Observability;
}

/**
 * The request headers Dify takes the client address from, in the order it reads them
 * (extract_remote_ip in api/libs/helper.py: CF-Connecting-IP, then the whole first X-Forwarded-For
 * header, then the socket peer), each with the rule that refuses it from clients and the answer
 * the client gets. WAF cannot rule out a header it could not inspect, so a request whose headers
 * exceed WAF's limits (8 KB or 200 fields) is refused too, and each answer says so.
 */
export const CLIENT_ADDRESS_HEADERS = [
  {
    header: 'cf-connecting-ip',
    rule: 'NoClientCfConnectingIp',
    answer:
      'Request refused: this Dify front door does not accept a CF-Connecting-IP header from clients. Dify takes the ' +
      'client address it records and rate-limits by from that header, so a client could choose its own. Send the ' +
      'request without CF-Connecting-IP. Requests with more than 8 KB or 200 header fields are refused as well, ' +
      'because they cannot be checked for it.',
  },
  {
    header: 'x-forwarded-for',
    rule: 'NoClientXForwardedFor',
    answer:
      'Request refused: this Dify front door does not accept an X-Forwarded-For header from clients. Dify takes the ' +
      'client address it records and rate-limits by from that header, and the load balancer adds it with the ' +
      'address your connection comes from. Send the request without X-Forwarded-For; if a proxy between you and ' +
      'Dify adds it, configure the proxy not to. Requests with more than 8 KB or 200 header fields are refused as ' +
      'well, because they cannot be checked for it.',
  },
] as const;

export { SIGN_IN_PATHS };

/**
 * The order in which rules are evaluated; tests hold the ACL to it. The `NoClient...` rules exist only
 * with `refuseClientAddressHeaders`. They follow the allow-list, so that only admitted networks learn
 * why a request was refused, and precede the rate limit, which aggregates by the connection's address
 * and is unaffected by them.
 */
export const RULE_ORDER: readonly string[] = [
  'AllowListedNetworksOnly',
  ...CLIENT_ADDRESS_HEADERS.map((entry) => entry.rule),
  'RateLimitPerClientIp',
  'LoginRateLimitPerClientIp',
  'AWS-AWSManagedRulesAmazonIpReputationList',
  'AWS-AWSManagedRulesAnonymousIpList',
  'AWS-AWSManagedRulesKnownBadInputsRuleSet',
  'AWS-AWSManagedRulesCommonRuleSet',
  'OversizeBodyOutsideUploadPaths',
];

/**
 * A WAF web ACL for Dify's front door. Rules, in order:
 * 1. block every client outside the allow-lists (empty lists block everyone);
 * 2. with `refuseClientAddressHeaders`, answer 400 to a request that carries CF-Connecting-IP, then
 *    to one that carries X-Forwarded-For, saying which header is not accepted and why;
 * 3. block a client IP above the rate limit, and answer 429 to one above the sign-in limit on Dify's
 *    console sign-in paths ({@link SIGN_IN_PATHS}): a credential-stuffing run from one address;
 * 4. AWS managed IP reputation list, then (optionally) the anonymous-IP list;
 * 5. AWS managed known-bad-inputs and common rule sets, with the common set's body-size rule
 *    counted instead of blocking;
 * 6. block a body over the common set's size limit unless the path is an upload path.
 * Requests that pass every rule are allowed. Logs go to CloudWatch with the `authorization` and
 * `cookie` headers redacted, so no credential or session reaches the log.
 */
export class WebAcl extends Construct {
  public readonly acl: wafv2.CfnWebACL;

  constructor(scope: Construct, id: string, props: WebAclProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const name = (suffix: string) => `${deploymentName(this)}-${suffix}`;

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
      regularExpressionList: [...props.largeBodyPaths],
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
    // Matched on header names, in any case and anywhere among the headers, so an empty value or a
    // repeated header is caught too. Look-alikes such as `cf_connecting_ip` are not valid header names:
    // the ALB drops them (drop_invalid_header_fields) before Dify could read them.
    const refusals = (props.refuseClientAddressHeaders ?? false) ? CLIENT_ADDRESS_HEADERS : [];
    const refusalRules = refusals.map(({ header, rule }) => ({
      name: rule,
      action: { block: { customResponse: { responseCode: 400, customResponseBodyKey: rule } } },
      statement: {
        byteMatchStatement: {
          searchString: header,
          positionalConstraint: 'EXACTLY',
          // MATCH: a header beyond what WAF can inspect must not slip through unseen.
          fieldToMatch: { headers: { matchPattern: { all: {} }, matchScope: 'KEY', oversizeHandling: 'MATCH' } },
          textTransformations: [{ priority: 0, type: 'LOWERCASE' }],
        },
      },
      visibilityConfig: visibility(rule),
    }));
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
      ...refusalRules,
      {
        name: 'RateLimitPerClientIp',
        action: { block: {} },
        statement: { rateBasedStatement: { limit: props.rateLimit, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
        visibilityConfig: visibility('RateLimitPerClientIp'),
      },
      {
        name: 'LoginRateLimitPerClientIp',
        action: { block: { customResponse: { responseCode: 429 } } },
        statement: {
          rateBasedStatement: {
            limit: props.loginRateLimit,
            aggregateKeyType: 'IP',
            evaluationWindowSec: 300,
            scopeDownStatement: {
              andStatement: {
                statements: [
                  {
                    byteMatchStatement: {
                      searchString: 'POST',
                      positionalConstraint: 'EXACTLY',
                      fieldToMatch: { method: {} },
                      textTransformations: [{ priority: 0, type: 'NONE' }],
                    },
                  },
                  {
                    orStatement: {
                      statements: SIGN_IN_PATHS.map((path) => ({
                        byteMatchStatement: {
                          searchString: path,
                          positionalConstraint: 'EXACTLY',
                          fieldToMatch: { uriPath: {} },
                          textTransformations: [{ priority: 0, type: 'NONE' }],
                        },
                      })),
                    },
                  },
                ],
              },
            },
          },
        },
        visibilityConfig: visibility('LoginRateLimitPerClientIp'),
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
      // Named as its metric is, so the WebACL dimension of its metrics is known at synth.
      name: name('web-acl'),
      scope: props.scope,
      defaultAction: { allow: {} },
      description: 'Dify front door - allow-list, rate limit, AWS managed rules',
      visibilityConfig: visibility(name('web-acl')),
      rules: rules.map((rule, priority) => ({ ...rule, priority })),
      customResponseBodies:
        refusals.length > 0
          ? Object.fromEntries(
              refusals.map(({ rule, answer }) => [rule, { contentType: 'TEXT_PLAIN', content: answer }]),
            )
          : undefined,
    });

    // A dot cannot occur in a stack name, so the logs key's prefix `aws-waf-logs-<stack>.` matches
    // this stack's groups and no other stack's.
    const logGroupName = `aws-waf-logs-${deploymentName(this)}.${props.scope.toLowerCase()}`;
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

    const blocked = (rule: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/WAFV2',
        metricName: 'BlockedRequests',
        // CLOUDFRONT-scope ACLs publish without a Region dimension (in us-east-1).
        dimensionsMap: {
          WebACL: name('web-acl'),
          Rule: rule,
          ...(props.scope === 'REGIONAL' ? { Region: stack.region } : {}),
        },
        statistic: 'Sum',
        period: Duration.minutes(5),
      });
    const where = `web ACL ${name('web-acl')} (${props.scope === 'REGIONAL' ? 'the load balancer' : 'CloudFront'}, log group ${logGroupName})`;
    props.alarms.watch(this, 'BlockedAlarm', {
      signal: 'edge.waf-blocked',
      title: 'WAF: blocked requests',
      metric: blocked('ALL'),
      threshold: 'baseline',
      periods: 2,
      description: `Blocked requests at ${where} rose above their usual band: a scan, an attack, or a rule now refusing real users. Check first which rule blocks (terminatingRuleId in the WAF log) and from where (httpRequest.clientIp).`,
    });
    props.alarms.watch(this, 'RateLimitedAlarm', {
      signal: 'edge.waf-rate-limited',
      title: 'WAF: clients over the rate limit',
      metric: blocked('RateLimitPerClientIp'),
      threshold: 1,
      periods: 1,
      description: `A client address went over ${props.rateLimit} requests in 5 minutes at ${where} and is blocked until it slows down. Check first the address (httpRequest.clientIp where terminatingRuleId is RateLimitPerClientIp) and whether it is one of yours.`,
    });
    props.alarms.watch(this, 'SignInBurstAlarm', {
      signal: 'auth.console-sign-in-burst-by-source',
      title: 'WAF: sign-in bursts per address',
      metric: blocked('LoginRateLimitPerClientIp'),
      threshold: 1,
      periods: 1,
      description: `A client address tried to sign in to the Dify console more than ${props.loginRateLimit} times in 5 minutes at ${where}, across any e-mail addresses: credential stuffing. It is refused (429) until it slows down. Check first the address (terminatingRuleId LoginRateLimitPerClientIp), then the auth.console-sign-in-failures alarm for passwords that were tried.`,
    });
  }

  public get arn(): string {
    return this.acl.attrArn;
  }
}
