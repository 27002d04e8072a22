import { Aws, Duration, Stack, Token } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { acknowledge, nistAndHipaa } from '../nag/acknowledge';
import { CloudFrontFront, type CloudFrontOptions } from './cloudfront-front';
import type { EdgeDomain } from './edge-domain';
import type { LogSettings } from './log-group';
import type { Network } from './network';
import type { Observability } from './observability';
import { WebAcl, type WebAclRules } from './web-acl';
import { OUTPUTS } from '../../contracts/stack-outputs';
import { output } from './outputs';
import type { UrlSurface } from './url-surface';

/** `cloudfront`: CloudFront + VPC origin + internal ALB; `alb`: internet-facing ALB; `internal`: internal ALB only. */
export type EdgeMode = 'cloudfront' | 'alb' | 'internal';

/** The public name of Dify and how its certificates are obtained. */
export type { EdgeDomain } from './edge-domain';

export interface EdgeProps {
  readonly mode: EdgeMode;
  readonly network: Network;
  /** Receives the load balancer's (and CloudFront's) access logs. */
  readonly logBucket: s3.IBucket;
  /**
   * Dify's public name.
   * @default - no domain: only allowed with `cloudfront`, which then serves CloudFront's default domain
   */
  readonly domain?: EdgeDomain;
  /** Allow-lists and rate limit, enforced by WAF (and by the ALB's security group in `alb` and `internal`). */
  readonly rules: WebAclRules;
  /** Deletion protection on the load balancer (prod). */
  readonly deletionProtection: boolean;
  readonly logs: LogSettings;
  /** Required in `cloudfront` mode: the us-east-1 web ACL and certificate, price class, geo restriction. */
  readonly cloudFront?: CloudFrontOptions;
  /** The application's paths: what CloudFront may cache and which bodies WAF lets through large. */
  readonly surface: UrlSurface;
  /** Where the front door's alarms notify. */
  readonly alarms: Observability;
}

/** How a service is routed: the port it listens on, its health check, and the paths it serves. */
export interface TargetOptions {
  readonly port: number;
  readonly healthCheckPath: string;
  /**
   * Path patterns routed to this target, in the order given.
   * @default - none: the target becomes the default action (everything no rule matches)
   */
  readonly pathPatterns?: readonly string[];
  /**
   * The targets (for example an ECS service); more can be attached to the returned target group. The
   * caller opens `port` from the load balancer to them before registering, so that the rule carries
   * its own description and lives with the target.
   */
  readonly targets?: elbv2.IApplicationLoadBalancerTarget[];
}

/** A listener rule may hold at most five path patterns. */
const PATTERNS_PER_RULE = 5;
/** Gap between rule priorities, so a later release can insert a rule without renumbering. */
const PRIORITY_STEP = 10;
/** The default target's catch-all rule: the highest priority number ALB allows, so it is evaluated last. */
const CATCH_ALL_PRIORITY = 50_000;

/**
 * The only way into Dify: the load balancer, its certificates, CloudFront, WAF, routing and the
 * allow-list. Services register with `addTarget`, and the edge gives their rules stable priorities
 * in registration order.
 *
 * TLS holds at every hop a client can see: the ALB accepts TLS 1.2+ only
 * (ELBSecurityPolicy-TLS13-1-2-2021-06) and redirects HTTP to HTTPS; CloudFront requires TLS 1.2
 * (TLSv1.2_2021) with a custom domain and redirects viewers to HTTPS. The one plain-HTTP hop is
 * CloudFront's VPC origin to the internal ALB when no domain is set, inside the VPC.
 *
 * The client address Dify records and rate-limits by (CF-Connecting-IP, else X-Forwarded-For) is the
 * real client's in every mode: behind CloudFront a viewer-request function sets both from the
 * viewer's address and the ALB preserves them; facing clients directly, the web ACL refuses both
 * headers from clients and the ALB adds X-Forwarded-For itself.
 */
export class Edge extends Construct {
  public readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  /** The listener that routes to services: HTTPS, or HTTP behind CloudFront without a domain. */
  public readonly listener: elbv2.ApplicationListener;
  /** Dify's public base URL, e.g. `https://dify.example.com`. */
  public readonly url: string;
  public readonly webAcl?: WebAcl;
  public readonly cloudFront?: CloudFrontFront;
  private readonly registered: Array<{ id: string; priority: number; patterns: readonly string[] }> = [];
  private readonly alarms: Observability;
  private nextPriority = PRIORITY_STEP;
  private hasDefault = false;

  constructor(scope: Construct, id: string, props: EdgeProps) {
    super(scope, id);
    const { mode, network, domain } = props;
    if (mode !== 'cloudfront' && domain === undefined) {
      throw new Error(`Edge: mode '${mode}' serves HTTPS only and needs a domain`);
    }
    if (mode === 'cloudfront' && props.cloudFront === undefined) {
      throw new Error("Edge: mode 'cloudfront' needs the us-east-1 web ACL (props.cloudFront)");
    }

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: network.vpc,
      description: `Dify load balancer (${mode}): the front door only`,
      allowAllOutbound: false,
    });
    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: network.vpc,
      internetFacing: mode === 'alb',
      vpcSubnets: mode === 'alb' ? { subnetType: ec2.SubnetType.PUBLIC } : network.privateSubnets,
      securityGroup,
      dropInvalidHeaderFields: true,
      // Streamed (SSE) answers stay open for minutes; the 60 s default cuts them.
      idleTimeout: Duration.seconds(600),
      deletionProtection: props.deletionProtection,
      http2Enabled: true,
      // Dify takes the client address from the first X-Forwarded-For header, whole. Behind CloudFront
      // that header already holds exactly the viewer's address (the viewer-request function sees to it)
      // and only CloudFront can reach this ALB, so it passes unchanged; appending would make it
      // "viewer, edge". Facing clients directly, the ALB creates it from the connection's address, and
      // the web ACL refuses any X-Forwarded-For a client sends, so the header holds that address alone.
      xffHeaderProcessingMode:
        mode === 'cloudfront' ? elbv2.XffHeaderProcessingMode.PRESERVE : elbv2.XffHeaderProcessingMode.APPEND,
    });
    logAccessLogs(this.loadBalancer, props.logBucket, 'alb');

    const certificate = domain === undefined ? undefined : this.regionalCertificate(domain);
    if (certificate === undefined) {
      // CloudFront without a domain: CloudFront terminates TLS, and its VPC origin speaks HTTP to the
      // internal ALB inside the VPC, because no certificate can name the ALB's internal DNS name.
      this.listener = this.loadBalancer.addListener('Http', {
        protocol: elbv2.ApplicationProtocol.HTTP,
        port: 80,
        open: false,
      });
    } else {
      this.listener = this.loadBalancer.addListener('Https', {
        protocol: elbv2.ApplicationProtocol.HTTPS,
        port: 443,
        certificates: [elbv2.ListenerCertificate.fromArn(certificate.certificateArn)],
        sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
        open: false,
      });
    }
    this.listener.addAction('NotRouted', {
      action: elbv2.ListenerAction.fixedResponse(404, { contentType: 'text/plain', messageBody: 'Not found' }),
    });

    if (mode === 'cloudfront') {
      // Only CloudFront's origin-facing addresses may reach the ALB, on the one listener port.
      securityGroup.addIngressRule(
        ec2.Peer.prefixList(network.cloudFrontOriginPrefixListId),
        ec2.Port.tcp(this.listener.port),
        'CloudFront origin-facing addresses only',
      );
      this.cloudFront = new CloudFrontFront(this, 'CloudFront', {
        loadBalancer: this.loadBalancer,
        originHttps: certificate !== undefined,
        domain,
        logBucket: props.logBucket,
        options: props.cloudFront!,
        surface: props.surface,
      });
      this.url = `https://${domain?.name ?? this.cloudFront.distribution.distributionDomainName}`;
    } else {
      // Port 80 only redirects to HTTPS; it admits the same allow-listed networks as 443.
      const redirect = this.loadBalancer.addRedirect({ sourcePort: 80, targetPort: 443, open: false });
      acknowledge(
        redirect.node.defaultChild!,
        ...nistAndHipaa(
          'ELBv2ACMCertificateRequired',
          'This listener only answers with a permanent redirect to HTTPS on 443 and forwards nothing; every request that reaches Dify arrives over TLS 1.2+ with the ACM certificate.',
        ),
      );
      for (const cidr of props.rules.allowedIpv4Cidrs) {
        for (const port of [443, 80]) {
          securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), `allowedIpv4Cidrs ${cidr}`);
        }
      }
      this.webAcl = new WebAcl(this, 'WebAcl', {
        scope: 'REGIONAL',
        ...props.rules,
        // Clients reach this ALB directly: nothing in between can overwrite the headers Dify trusts.
        refuseClientAddressHeaders: true,
        logs: props.logs,
        largeBodyPaths: props.surface.largeBodyPaths,
        alarms: props.alarms,
      });
      new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', {
        resourceArn: this.loadBalancer.loadBalancerArn,
        webAclArn: this.webAcl.arn,
      });
      if (domain?.zone !== undefined) {
        new route53.ARecord(this, 'AliasRecord', {
          zone: domain.zone,
          recordName: domain.name,
          target: route53.RecordTarget.fromAlias(new targets.LoadBalancerTarget(this.loadBalancer)),
        });
      }
      this.url = `https://${domain!.name}`;
    }
    this.acknowledgeFindings(mode, props);
    output(this, OUTPUTS.difyUrl, this.url);
    output(this, OUTPUTS.loadBalancerArn, this.loadBalancer.loadBalancerArn);
    if (this.cloudFront !== undefined)
      output(this, OUTPUTS.distributionId, this.cloudFront.distribution.distributionId);

    this.alarms = props.alarms;
    const metrics = this.loadBalancer.metrics;
    const every = { period: Duration.minutes(5), statistic: 'Sum' };
    props.alarms.watch(this, 'ServerErrorsAlarm', {
      signal: 'edge.alb-5xx',
      title: 'Load balancer: 5xx, % of requests',
      metric: new cloudwatch.MathExpression({
        // Answered by the load balancer itself (no healthy target, timeouts) or by a service.
        expression: '100 * (FILL(elb, 0) + FILL(target, 0)) / IF(FILL(requests, 0) > 0, requests, 1)',
        usingMetrics: {
          elb: metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, every),
          target: metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, every),
          requests: metrics.requestCount(every),
        },
        label: '5xx %',
        period: Duration.minutes(5),
      }),
      threshold: 5,
      periods: 3,
      description: `At least 5% of the requests the load balancer ${this.loadBalancer.loadBalancerName} answered in 15 minutes were 5xx. Check first the unhealthy-targets alarm, then which service answers 5xx (HTTPCode_Target_5XX_Count by target group) and its log.`,
    });
  }

  /**
   * Routes `pathPatterns` (or, without patterns, everything else) to a new target group. Rules get
   * priorities 10, 20, 30... in the order services register, so a registration never renumbers
   * another service's rules.
   */
  public addTarget(id: string, options: TargetOptions): elbv2.ApplicationTargetGroup {
    const group = new elbv2.ApplicationTargetGroup(this, `${id}Target`, {
      vpc: this.loadBalancer.vpc,
      port: options.port,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.IP,
      targets: options.targets,
      healthCheck: { path: options.healthCheckPath, healthyHttpCodes: '200-399', interval: Duration.seconds(30) },
      deregistrationDelay: Duration.seconds(30),
    });
    const patterns = options.pathPatterns ?? [];
    if (patterns.length === 0) {
      if (this.hasDefault) throw new Error(`Edge.addTarget(${id}): a default target is already registered`);
      this.hasDefault = true;
      // A catch-all rule evaluated last, rather than replacing the listener's default action: the
      // fixed 404 stays the answer for anything no rule takes (it never is, with this rule in place).
      this.listener.addTargetGroups(`${id}Default`, {
        targetGroups: [group],
        priority: CATCH_ALL_PRIORITY,
        conditions: [elbv2.ListenerCondition.pathPatterns(['/*'])],
      });
      this.registered.push({ id, priority: CATCH_ALL_PRIORITY, patterns: ['/*'] });
      this.watchTargets(id, group, options.healthCheckPath);
      return group;
    }
    for (let start = 0; start < patterns.length; start += PATTERNS_PER_RULE) {
      const chunk = patterns.slice(start, start + PATTERNS_PER_RULE);
      const priority = this.nextPriority;
      this.nextPriority += PRIORITY_STEP;
      this.listener.addTargetGroups(`${id}Rule${start / PATTERNS_PER_RULE + 1}`, {
        targetGroups: [group],
        priority,
        conditions: [elbv2.ListenerCondition.pathPatterns(chunk)],
      });
      this.registered.push({ id, priority, patterns: chunk });
    }
    this.watchTargets(id, group, options.healthCheckPath);
    return group;
  }

  /** Unhealthy targets in a group, once it is attached (its metrics name the load balancer). */
  private watchTargets(id: string, group: elbv2.ApplicationTargetGroup, healthCheckPath: string): void {
    this.alarms.watch(this, `${id}UnhealthyAlarm`, {
      signal: 'edge.unhealthy-targets',
      title: `Load balancer: unhealthy ${id} targets`,
      metric: group.metrics.unhealthyHostCount({ period: Duration.minutes(5), statistic: 'Maximum' }),
      threshold: 1,
      periods: 3,
      description: `A ${id} target has failed the load balancer's health check (${healthCheckPath}) for 15 minutes. Check first the service's events and stopped tasks (or pods), then its log.`,
    });
  }

  /** The routing table so far: target id, rule priority and path patterns, in evaluation order. */
  public get routes(): ReadonlyArray<{ id: string; priority: number; patterns: readonly string[] }> {
    return [...this.registered];
  }

  private regionalCertificate(domain: EdgeDomain): acm.ICertificate {
    if (domain.certificateArn !== undefined) {
      return acm.Certificate.fromCertificateArn(this, 'Certificate', domain.certificateArn);
    }
    return new acm.Certificate(this, 'Certificate', {
      domainName: domain.name,
      validation: acm.CertificateValidation.fromDns(domain.zone),
    });
  }

  private acknowledgeFindings(mode: EdgeMode, props: EdgeProps): void {
    const alb = this.loadBalancer.node.defaultChild!;
    if (mode === 'cloudfront') {
      acknowledge(
        alb,
        ...nistAndHipaa(
          'ALBWAFEnabled',
          'The load balancer is internal and reachable only from CloudFront’s origin-facing addresses through the VPC origin; the web ACL is attached to the CloudFront distribution, where every request passes it first.',
        ).filter((ack) => ack.id.startsWith('NIST')),
      );
      if (props.domain === undefined) {
        const httpHop =
          'Without a custom domain no certificate can name the internal ALB, so CloudFront’s VPC origin speaks HTTP to it inside the VPC; viewers are redirected to HTTPS at CloudFront, and the ALB admits only CloudFront’s origin-facing addresses. Set domainName to make this hop HTTPS.';
        acknowledge(
          this.listener.node.defaultChild!,
          ...nistAndHipaa('ALBHttpToHttpsRedirection', httpHop),
          ...nistAndHipaa('ELBv2ACMCertificateRequired', httpHop),
        );
      }
    }
    if (!props.deletionProtection) {
      acknowledge(
        alb,
        ...nistAndHipaa(
          'ELBDeletionProtectionEnabled',
          'Profile dev only: deletion protection is off so that `cdk destroy` removes the dev load balancer. Profile prod turns it on.',
        ),
      );
    }
    if (props.rules.allowedIpv4Cidrs.includes('0.0.0.0/0')) {
      acknowledge(this.loadBalancer.connections.securityGroups[0].node.defaultChild!, {
        id: 'AwsSolutions-EC23',
        reason:
          'The owner set allowedIpv4Cidrs=0.0.0.0/0 explicitly, and synth warns about it; only 80 (redirect) and 443 are open, and the WAF rate limit and managed rule groups still apply.',
      });
    }
  }
}

/**
 * The load balancer's access logs, as CDK's `logAccessLogs` writes them, but with every statement for
 * a service principal held to this account (`aws:SourceAccount`), so that the log-delivery service
 * cannot be made to write another account's logs into this bucket (the confused deputy). The
 * statement for Elastic Load Balancing's own regional account (regions older than August 2022) names
 * that account as the principal and this account's prefix as the only resource.
 */
function logAccessLogs(loadBalancer: elbv2.ApplicationLoadBalancer, bucket: s3.IBucket, prefix: string): void {
  const stack = Stack.of(loadBalancer);
  if (Token.isUnresolved(stack.region)) throw new Error('Edge: access logs need a concrete region');
  loadBalancer.setAttribute('access_logs.s3.enabled', 'true');
  loadBalancer.setAttribute('access_logs.s3.bucket', bucket.bucketName);
  loadBalancer.setAttribute('access_logs.s3.prefix', prefix);
  const thisAccount = { 'aws:SourceAccount': Aws.ACCOUNT_ID };
  const logs = bucket.arnForObjects(`${prefix}/AWSLogs/${Aws.ACCOUNT_ID}/*`);
  const elbAccount = RegionInfo.get(stack.region).elbv2Account;
  bucket.addToResourcePolicy(
    new iam.PolicyStatement({
      actions: ['s3:PutObject'],
      principals: [
        elbAccount !== undefined
          ? new iam.AccountPrincipal(elbAccount)
          : new iam.ServicePrincipal('logdelivery.elasticloadbalancing.amazonaws.com'),
      ],
      resources: [logs],
      ...(elbAccount !== undefined ? {} : { conditions: { StringEquals: thisAccount } }),
    }),
  );
  const delivery = new iam.ServicePrincipal('delivery.logs.amazonaws.com');
  bucket.addToResourcePolicy(
    new iam.PolicyStatement({
      actions: ['s3:PutObject'],
      principals: [delivery],
      resources: [logs],
      conditions: { StringEquals: { 's3:x-amz-acl': 'bucket-owner-full-control', ...thisAccount } },
    }),
  );
  bucket.addToResourcePolicy(
    new iam.PolicyStatement({
      actions: ['s3:GetBucketAcl'],
      principals: [delivery],
      resources: [bucket.bucketArn],
      conditions: { StringEquals: thisAccount },
    }),
  );
  // The bucket policy must exist before the load balancer checks that it may write there.
  loadBalancer.node.addDependency(bucket);
}
