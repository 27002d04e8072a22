import { build, VARIANTS } from '../helpers/synth';
import { logicalId, references, resources } from '../helpers/template';

describe('Keys', () => {
  const { template, stacks } = build({ profile: 'dev' });
  const keys = stacks.keys;
  const ids = { data: logicalId(keys.data), secrets: logicalId(keys.secrets), logs: logicalId(keys.logs) };

  it('has one customer-managed key per purpose, each rotating', () => {
    const all = resources(template, 'AWS::KMS::Key');
    expect(all).toHaveLength(3);
    for (const [, key] of all) expect(key.Properties?.EnableKeyRotation).toBe(true);
  });

  it('admits the CloudWatch Logs service to the logs key only for this stack’s log groups', () => {
    // Why: without the encryption-context condition, any log group in the account (and region)
    // could be encrypted with, and so read through, our key.
    const policy = (
      template.toJSON().Resources[ids.logs].Properties.KeyPolicy.Statement as Array<Record<string, any>>
    ).find((s) => s.Sid === 'CloudWatchLogsForThisStackOnly');
    expect(policy).toBeDefined();
    const arns = JSON.stringify(policy!.Condition.ArnLike['kms:EncryptionContext:aws:logs:arn']);
    expect(arns).toContain('log-group:/dify/Dify/*');
    expect(arns).toContain('log-group:/aws/rds/cluster/dify-aurora/*');
    expect(arns).not.toMatch(/log-group:\*"/);
  });

  it('trusts no service principal on the data and secrets keys', () => {
    for (const id of [ids.data, ids.secrets]) {
      const statements = template.toJSON().Resources[id].Properties.KeyPolicy.Statement as Array<Record<string, any>>;
      for (const statement of statements) expect(statement.Principal?.Service).toBeUndefined();
    }
  });

  it('encrypts every store with the key of its purpose', () => {
    const json = template.toJSON().Resources;
    const [[, cluster]] = resources(template, 'AWS::RDS::DBCluster');
    expect(references(cluster.Properties?.KmsKeyId, ids.data)).toBe(true);
    expect(references(cluster.Properties?.PerformanceInsightsKmsKeyId, ids.data)).toBe(true);
    const [[, cache]] = resources(template, 'AWS::ElastiCache::ReplicationGroup');
    expect(references(cache.Properties?.KmsKeyId, ids.data)).toBe(true);
    const bucket = json[logicalId(stacks.storage.bucket)];
    expect(references(bucket.Properties.BucketEncryption, ids.data)).toBe(true);
    for (const [id, secret] of resources(template, 'AWS::SecretsManager::Secret')) {
      expect({ id, encrypted: references(secret.Properties?.KmsKeyId, ids.secrets) }).toEqual({ id, encrypted: true });
    }
    for (const [id, group] of resources(template, 'AWS::Logs::LogGroup')) {
      expect({ id, encrypted: references(group.Properties?.KmsKeyId, ids.logs) }).toEqual({ id, encrypted: true });
    }
    const [[, topic]] = resources(template, 'AWS::SNS::Topic');
    expect(references(topic.Properties?.KmsMasterKeyId, ids.logs)).toBe(true);
  });

  it('keeps the keys on destroy in prod, where snapshots and retained data still need them', () => {
    const prod = build(VARIANTS.prod).template;
    for (const [, key] of resources(prod, 'AWS::KMS::Key')) expect(key.DeletionPolicy).toBe('Retain');
    for (const [, key] of resources(template, 'AWS::KMS::Key')) expect(key.DeletionPolicy).toBe('Delete');
  });
});
