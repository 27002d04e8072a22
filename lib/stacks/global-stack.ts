import { Stack, type StackProps } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as route53 from 'aws-cdk-lib/aws-route53';
import type { Construct } from 'constructs';
import type { Config } from '../config/schema';
import type { Sizing } from '../config/sizing';
import { allowAlarmNotifications, allowLogGroups } from '../constructs/keys';
import { Observability } from '../constructs/observability';
import { DIFY_URL_SURFACE } from '../constructs/dify/urls';
import { WebAcl } from '../constructs/web-acl';

export interface GlobalStackProps extends StackProps {
  readonly config: Config;
  readonly sizing: Sizing;
}

/**
 * What CloudFront requires in us-east-1: the CLOUDFRONT-scope web ACL (with its own logs key, as KMS
 * keys are regional) and, with a custom domain, CloudFront's certificate. The main stack reads both
 * through cross-region references. Created only with `edge=cloudfront`.
 */
export class GlobalStack extends Stack {
  public readonly webAcl: WebAcl;
  public readonly certificate?: acm.Certificate;
  /** us-east-1's own alarm topic: CloudFront's and its web ACL's metrics exist only here, and alarms cannot cross regions. */
  public readonly observability: Observability;

  constructor(scope: Construct, id: string, props: GlobalStackProps) {
    super(scope, id, props);
    const { config, sizing } = props;
    const logsKey = new kms.Key(this, 'LogsKey', {
      enableKeyRotation: true,
      removalPolicy: sizing.retention.removalPolicy,
      alias: `alias/${this.stackName}/logs`,
      description: `${this.stackName}: CloudFront web ACL logs and alarm notifications`,
    });
    allowLogGroups(logsKey, [`aws-waf-logs-${this.stackName}.`]);
    allowAlarmNotifications(logsKey);
    this.observability = new Observability(this, 'Observability', {
      key: logsKey,
      alarmEmail: config.alarmEmail,
      incidents: false,
    });

    this.webAcl = new WebAcl(this, 'WebAcl', {
      scope: 'CLOUDFRONT',
      allowedIpv4Cidrs: config.allowedIpv4Cidrs,
      allowedIpv6Cidrs: config.allowedIpv6Cidrs,
      rateLimit: config.wafRateLimit,
      loginRateLimit: config.wafLoginRateLimit,
      anonymousIpList: config.wafAnonymousIpList,
      largeBodyPaths: DIFY_URL_SURFACE.largeBodyPaths,
      alarms: this.observability,
      logs: {
        prefix: `/dify/${this.stackName}/`,
        key: logsKey,
        retention: sizing.retention.logRetention,
        removalPolicy: sizing.retention.removalPolicy,
      },
    });

    if (config.domainName !== undefined && config.hostedZoneId !== undefined && config.hostedZoneName !== undefined) {
      const zone = route53.HostedZone.fromHostedZoneAttributes(this, 'HostedZone', {
        hostedZoneId: config.hostedZoneId,
        zoneName: config.hostedZoneName,
      });
      this.certificate = new acm.Certificate(this, 'CloudFrontCertificate', {
        domainName: config.domainName,
        validation: acm.CertificateValidation.fromDns(zone),
      });
    }
  }
}
