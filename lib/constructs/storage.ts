import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { StorageSizing } from '../config/sizing';
import { acknowledge, acknowledgeGrantedResource, nistAndHipaa } from '../nag/acknowledge';
import { OUTPUTS } from '../../contracts/stack-outputs';
import { output } from './outputs';

export interface StorageProps {
  readonly sizing: StorageSizing;
  /**
   * Whether CloudFront writes access logs to the log bucket. CloudFront's standard logging writes
   * with ACLs, so the log bucket then keeps ACLs enabled (owner preferred) instead of disabled.
   */
  readonly cloudFrontLogs: boolean;
  /** Encrypts Dify's files (SSE-KMS with a bucket key). */
  readonly dataKey: kms.IKey;
}

const NO_REPLICATION =
  'Cross-region replication would copy user data to a second region, which data-residency rules in regulated deployments often forbid; versioning with noncurrent-version retention protects against deletion and overwrite, and replication stays a deliberate opt-in of the owner.';

/**
 * Dify's file storage, the plugin daemon's own bucket, and the account's log bucket.
 *
 * - `bucket`: uploads, plugin packages and generated files. SSE-KMS with the data key and a bucket
 *   key, versioned, TLS only, no public access, noncurrent versions expire, kept on `cdk destroy` in
 *   prod. Its server access logs go to `logBucket`.
 * - `logBucket`: the sink for S3 server access logs (and, later, load balancer and CloudFront logs).
 *   Those services can only write to SSE-S3 buckets, so it uses SSE-S3; it is otherwise as locked down.
 */
export class Storage extends Construct {
  /** Dify's files: uploads, generated files and each tenant's RSA private key (`privkeys/`). */
  public readonly bucket: s3.Bucket;
  /**
   * The plugin daemon's own bucket (installed plugins, packages, assets, plugin persistence). It is
   * separate so that the daemon, which runs third-party plugin code, can never read Dify's files, and
   * the tenants' private keys above all; the api reaches plugin assets only through the daemon's API.
   */
  public readonly pluginBucket: s3.Bucket;
  public readonly logBucket: s3.Bucket;
  private readonly dataKey: kms.IKey;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const { sizing } = props;
    this.dataKey = props.dataKey;
    const destroy = sizing.removalPolicy === RemovalPolicy.DESTROY;

    this.logBucket = new s3.Bucket(this, 'LogBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      objectOwnership: props.cloudFrontLogs
        ? s3.ObjectOwnership.BUCKET_OWNER_PREFERRED
        : s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          id: 'ExpireLogs',
          expiration: sizing.accessLogExpiration,
          noncurrentVersionExpiration: sizing.accessLogExpiration,
        },
      ],
      removalPolicy: sizing.removalPolicy,
      autoDeleteObjects: destroy,
    });
    acknowledge(
      this.logBucket.node.defaultChild!,
      {
        id: 'AwsSolutions-S1',
        reason:
          'This is the access-log bucket itself: logging it into itself would loop, and logging it elsewhere only moves the question. Writes come from the S3 log delivery service alone (bucket policy), and CloudTrail records its API calls.',
      },
      ...nistAndHipaa(
        'S3BucketLoggingEnabled',
        'This is the access-log bucket itself: logging it into itself would loop. Writes come from the S3 log delivery service alone (bucket policy), and CloudTrail records its API calls.',
      ),
      ...nistAndHipaa(
        'S3DefaultEncryptionKMS',
        'S3 server access logging and load balancer access logs can only be delivered to a bucket encrypted with SSE-S3, not SSE-KMS; the logs hold request metadata, not user content, and the bucket blocks public access and requires TLS.',
      ),
      ...nistAndHipaa('S3BucketReplicationEnabled', NO_REPLICATION),
    );

    this.bucket = this.dataBucket('Resource', 'dify-storage/', sizing);
    this.pluginBucket = this.dataBucket('PluginBucket', 'dify-plugins/', sizing);
    output(this, OUTPUTS.storageBucketName, this.bucket.bucketName);
    output(this, OUTPUTS.pluginBucketName, this.pluginBucket.bucketName);
    output(this, OUTPUTS.logBucketName, this.logBucket.bucketName);
  }

  /** A bucket for data: SSE-KMS with the data key, versioned, TLS 1.2+, private, access-logged. */
  private dataBucket(id: string, logPrefix: string, sizing: StorageSizing): s3.Bucket {
    const bucket = new s3.Bucket(this, id, {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.dataKey,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: logPrefix,
      lifecycleRules: [
        {
          id: 'ExpireNoncurrentVersions',
          noncurrentVersionExpiration: sizing.noncurrentVersionExpiration,
          abortIncompleteMultipartUploadAfter: sizing.noncurrentVersionExpiration,
        },
      ],
      removalPolicy: sizing.removalPolicy,
      autoDeleteObjects: sizing.removalPolicy === RemovalPolicy.DESTROY,
    });
    acknowledge(bucket.node.defaultChild!, ...nistAndHipaa('S3BucketReplicationEnabled', NO_REPLICATION));
    return bucket;
  }

  /** Read and write Dify's files: for the api and the worker only. */
  public grantReadWrite(grantee: iam.IGrantable): iam.Grant {
    return this.grantBucket(this.bucket, grantee, 'tenant, upload and file ids');
  }

  /** Read and write the plugin daemon's bucket: for the plugin daemon only. */
  public grantPluginStorage(grantee: iam.IGrantable): iam.Grant {
    return this.grantBucket(this.pluginBucket, grantee, 'plugin identifiers, tenant ids and persistence keys');
  }

  /**
   * Named actions rather than CDK's `s3:GetObject*`-style wildcards, and the data key only through S3
   * in this region.
   */
  private grantBucket(bucket: s3.Bucket, grantee: iam.IGrantable, keysChosenBy: string): iam.Grant {
    const objects = bucket.arnForObjects('*');
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket', 's3:GetBucketLocation'],
      resourceArns: [bucket.bucketArn],
    })
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: [
            's3:GetObject',
            's3:PutObject',
            's3:DeleteObject',
            's3:AbortMultipartUpload',
            's3:ListMultipartUploadParts',
          ],
          resourceArns: [objects],
        }),
      )
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resourceArns: [bucket.encryptionKey!.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
        }),
      );
    const policy =
      grantee.grantPrincipal instanceof iam.Role
        ? grantee.grantPrincipal.node.tryFindChild('DefaultPolicy')
        : undefined;
    if (policy !== undefined) {
      acknowledgeGrantedResource(
        policy.node.defaultChild!,
        objects,
        `Object keys are chosen at run time (${keysChosenBy}), so the grant covers the objects of this one bucket; named object actions only, and the bucket is KMS-encrypted and TLS-only.`,
      );
    }
    return grant;
  }
}
