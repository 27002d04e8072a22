import { Match } from 'aws-cdk-lib/assertions';
import { build, VARIANTS } from '../helpers/synth';
import { logicalId, references } from '../helpers/template';

describe('Storage', () => {
  const dev = build({ profile: 'dev' });
  const prod = build(VARIANTS.prod);
  const json = (built: typeof dev, construct: Parameters<typeof logicalId>[0]) =>
    built.template.toJSON().Resources[logicalId(construct)];

  it('encrypts Dify’s files and the plugin daemon’s with the data key and a bucket key', () => {
    for (const construct of [dev.stacks.storage.bucket, dev.stacks.storage.pluginBucket]) {
      const bucket = json(dev, construct);
      const rule = bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0];
      expect(rule.ServerSideEncryptionByDefault.SSEAlgorithm).toBe('aws:kms');
      expect(references(rule.ServerSideEncryptionByDefault.KMSMasterKeyID, logicalId(dev.stacks.keys.data))).toBe(true);
      expect(rule.BucketKeyEnabled).toBe(true);
      expect(bucket.Properties.VersioningConfiguration.Status).toBe('Enabled');
    }
  });

  it('versions, blocks public access, expires noncurrent versions and logs access to the log bucket', () => {
    const { storage } = dev.stacks;
    const bucket = json(dev, storage.bucket).Properties;
    expect(bucket.VersioningConfiguration.Status).toBe('Enabled');
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.LifecycleConfiguration.Rules[0].NoncurrentVersionExpiration.NoncurrentDays).toBe(30);
    expect(references(bucket.LoggingConfiguration.DestinationBucketName, logicalId(storage.logBucket))).toBe(true);
  });

  it('denies every request that is not over TLS 1.2 or later, on both buckets', () => {
    const { storage } = dev.stacks;
    for (const bucket of [storage.bucket, storage.pluginBucket, storage.logBucket]) {
      dev.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: logicalId(bucket) },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            Match.objectLike({ Effect: 'Deny', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
          ]),
        },
      });
    }
  });

  it('locks the log bucket down too, and lets only the S3 log service write to it', () => {
    const { storage } = dev.stacks;
    const logBucket = json(dev, storage.logBucket).Properties;
    expect(logBucket.PublicAccessBlockConfiguration.BlockPublicPolicy).toBe(true);
    // CloudFront's standard logs are written with ACLs, so ACLs stay enabled (owner preferred) only
    // when CloudFront logs here; otherwise they are disabled.
    expect(logBucket.OwnershipControls.Rules[0].ObjectOwnership).toBe('BucketOwnerPreferred');
    const alb = build(VARIANTS['alb-zone']);
    expect(json(alb, alb.stacks.storage.logBucket).Properties.OwnershipControls.Rules[0].ObjectOwnership).toBe(
      'BucketOwnerEnforced',
    );
    dev.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logicalId(storage.logBucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'logging.s3.amazonaws.com' },
            Action: 's3:PutObject',
          }),
        ]),
      },
    });
  });

  it('holds every log-delivery service statement of the log bucket to this account', () => {
    // Why: without aws:SourceAccount a delivery service could be made to write another account's
    // logs into this bucket (the confused deputy).
    for (const variant of [dev, build(VARIANTS['alb-zone'])]) {
      const [[, policy]] = Object.entries(variant.template.toJSON().Resources as Record<string, any>).filter(
        ([, r]) =>
          r.Type === 'AWS::S3::BucketPolicy' &&
          references(r.Properties.Bucket, logicalId(variant.stacks.storage.logBucket)),
      );
      const services = (policy.Properties.PolicyDocument.Statement as Array<Record<string, any>>).filter(
        (s) => s.Effect === 'Allow' && s.Principal?.Service !== undefined,
      );
      expect(services.length).toBeGreaterThanOrEqual(3);
      for (const statement of services) {
        expect({
          service: statement.Principal.Service,
          account: statement.Condition?.StringEquals?.['aws:SourceAccount'],
        }).toEqual({
          service: statement.Principal.Service,
          account: { Ref: 'AWS::AccountId' },
        });
      }
    }
  });

  it('keeps both buckets on destroy in prod, and lets dev be destroyed', () => {
    for (const bucket of [prod.stacks.storage.bucket, prod.stacks.storage.logBucket]) {
      expect(json(prod, bucket).DeletionPolicy).toBe('Retain');
    }
    expect(json(dev, dev.stacks.storage.bucket).DeletionPolicy).toBe('Delete');
  });
});
