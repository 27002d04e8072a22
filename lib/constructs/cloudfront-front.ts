import { Duration } from 'aws-cdk-lib';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from '../nag/acknowledge';
import { repoPath } from '../paths';
import type { EdgeDomain } from './edge-domain';
import type { UrlSurface } from './url-surface';
import { deploymentName } from './deployment-name';

/** What only the `cloudfront` mode needs. */
export interface CloudFrontOptions {
  /** ARN of the CLOUDFRONT-scope web ACL (in the us-east-1 stack). */
  readonly webAclArn: string;
  /**
   * The us-east-1 certificate for the custom domain.
   * @default - no custom domain: CloudFront's default `*.cloudfront.net` name and certificate
   */
  readonly certificate?: acm.ICertificate;
  readonly priceClass: cloudfront.PriceClass;
  /**
   * Countries served (ISO 3166-1 alpha-2).
   * @default - no geographic restriction; the WAF allow-list still applies
   */
  readonly geoAllowlist: readonly string[];
}

export interface CloudFrontFrontProps {
  readonly loadBalancer: elbv2.IApplicationLoadBalancer;
  /** HTTPS to the ALB (custom domain) or HTTP inside the VPC (no domain). */
  readonly originHttps: boolean;
  readonly domain?: EdgeDomain;
  readonly logBucket: s3.IBucket;
  readonly options: CloudFrontOptions;
  /** Which paths are never cached and which one is. */
  readonly surface: UrlSurface;
}

/**
 * The viewer-request function that makes the client address Dify records the viewer's own: it sets
 * `cf-connecting-ip` to the viewer's address and deletes the viewer's `x-forwarded-for`, which
 * CloudFront then adds back carrying exactly that address. Plain JavaScript, as CloudFront runs it.
 */
export const VIEWER_IP_FUNCTION_FILE = repoPath('lib/constructs/edge-functions/viewer-ip.js');

/**
 * The CloudFront distribution in front of the internal ALB, reached through a VPC origin so that the
 * ALB has no public address at all. Viewers are redirected to HTTPS; with a custom domain CloudFront
 * requires TLS 1.2 (TLSv1.2_2021) and reaches the ALB over HTTPS as well. API paths are never cached;
 * only Next.js's immutable static assets are. Every behavior runs {@link VIEWER_IP_FUNCTION_FILE} on
 * the viewer request, so no viewer can choose the address Dify records and rate-limits by.
 */
export class CloudFrontFront extends Construct {
  public readonly distribution: cloudfront.Distribution;

  constructor(scope: Construct, id: string, props: CloudFrontFrontProps) {
    super(scope, id);
    const { options, domain } = props;
    const origin = origins.VpcOrigin.withApplicationLoadBalancer(props.loadBalancer, {
      protocolPolicy: props.originHttps
        ? cloudfront.OriginProtocolPolicy.HTTPS_ONLY
        : cloudfront.OriginProtocolPolicy.HTTP_ONLY,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      // With HTTPS, CloudFront checks the ALB's certificate against this name.
      domainName: props.originHttps ? domain?.name : undefined,
      // CloudFront's longest origin read timeout without a quota increase; Dify's SSE streams send
      // a ping well within it.
      readTimeout: Duration.seconds(60),
      keepaliveTimeout: Duration.seconds(60),
    });
    const headers = new cloudfront.ResponseHeadersPolicy(this, 'SecurityHeaders', {
      comment: 'Dify: HSTS, nosniff, frame options, referrer policy',
      securityHeadersBehavior: {
        strictTransportSecurity: {
          accessControlMaxAge: Duration.days(730),
          includeSubdomains: true,
          preload: false,
          override: true,
        },
        contentTypeOptions: { override: true },
        // Dify's own pages frame each other (the app preview); other sites may not frame them.
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.SAMEORIGIN, override: true },
        referrerPolicy: {
          referrerPolicy: cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
          override: true,
        },
      },
    });
    // Dify trusts CF-Connecting-IP, then X-Forwarded-For; ALL_VIEWER would forward both as the viewer
    // sent them. WAF has already judged the request by its source address when the function runs.
    const viewerIp = new cloudfront.Function(this, 'ViewerIpFunction', {
      // A readable name (CloudFront function names are unique per account), not CDK's generated
      // hash, which reads like a secret to the template scan and to a reviewer.
      functionName: `${deploymentName(this)}-viewer-ip`,
      code: cloudfront.FunctionCode.fromFile({ filePath: VIEWER_IP_FUNCTION_FILE }),
      runtime: cloudfront.FunctionRuntime.JS_2_0,
      comment: 'Dify: CF-Connecting-IP and X-Forwarded-For carry the viewer address, never a viewer-chosen one',
    });
    const dynamic: cloudfront.BehaviorOptions = {
      origin,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
      cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
      originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER,
      responseHeadersPolicy: headers,
      compress: true,
      // Inherited by every behavior below, the static one included.
      functionAssociations: [{ function: viewerIp, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST }],
    };
    this.distribution = new cloudfront.Distribution(this, 'Resource', {
      comment: 'Dify',
      defaultBehavior: dynamic,
      additionalBehaviors: {
        ...Object.fromEntries(props.surface.uncachedPaths.map((path) => [path, dynamic])),
        [props.surface.staticAssetPath]: {
          ...dynamic,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
          cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
          originRequestPolicy: undefined,
        },
      },
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      enableIpv6: true,
      priceClass: options.priceClass,
      geoRestriction:
        options.geoAllowlist.length > 0 ? cloudfront.GeoRestriction.allowlist(...options.geoAllowlist) : undefined,
      webAclId: options.webAclArn,
      enableLogging: true,
      logBucket: props.logBucket,
      logFilePrefix: 'cloudfront/',
      certificate: options.certificate,
      domainNames: options.certificate !== undefined && domain !== undefined ? [domain.name] : undefined,
      // Takes effect with a custom certificate; CloudFront's default certificate has a fixed policy.
      minimumProtocolVersion:
        options.certificate !== undefined ? cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 : undefined,
    });

    if (domain?.zone !== undefined) {
      const target = route53.RecordTarget.fromAlias(new targets.CloudFrontTarget(this.distribution));
      new route53.ARecord(this, 'AliasRecord', { zone: domain.zone, recordName: domain.name, target });
      new route53.AaaaRecord(this, 'AliasRecordIpv6', { zone: domain.zone, recordName: domain.name, target });
    }

    const cfn = this.distribution.node.defaultChild!;
    if (options.geoAllowlist.length === 0) {
      acknowledge(cfn, {
        id: 'AwsSolutions-CFR1',
        reason:
          'No country list is configured (cloudFrontGeoAllowlist); the WAF allow-list admits only the configured networks, which is narrower than any country restriction.',
      });
    }
    if (options.certificate === undefined) {
      acknowledge(cfn, {
        id: 'AwsSolutions-CFR4',
        reason:
          'Without a custom domain CloudFront serves its default *.cloudfront.net certificate, whose minimum protocol CloudFront fixes; viewers are still redirected to HTTPS. Set domainName to require TLSv1.2_2021.',
      });
    }
  }
}
