import type * as route53 from 'aws-cdk-lib/aws-route53';

/** Dify's own domain name, shared by the load balancer's and CloudFront's certificates and records. */
export interface EdgeDomain {
  readonly name: string;
  /**
   * Hosted zone for DNS-validated certificates and alias records.
   * @default - no zone: `certificateArn` must be given, and DNS records are the owner's to create
   */
  readonly zone?: route53.IHostedZone;
  /**
   * An existing regional ACM certificate for the load balancer.
   * @default - a DNS-validated certificate in `zone`
   */
  readonly certificateArn?: string;
}
