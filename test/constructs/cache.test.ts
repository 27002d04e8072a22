import { build } from '../helpers/synth';
import { ingressRulesOf, logicalId, references, resources } from '../helpers/template';

describe('Cache', () => {
  const dev = build({ profile: 'dev' });
  const prod = build({ profile: 'prod' });
  const group = (built: typeof dev) =>
    resources(built.template, 'AWS::ElastiCache::ReplicationGroup')[0][1].Properties!;

  it('runs Valkey with cluster mode off, which Celery needs', () => {
    const props = group(dev);
    expect(props.Engine).toBe('valkey');
    expect(props.NumNodeGroups).toBeUndefined();
    expect(props.NumCacheClusters).toBe(1);
  });

  it('encrypts at rest with the data key and requires TLS in transit', () => {
    const props = group(dev);
    expect(props.AtRestEncryptionEnabled).toBe(true);
    expect(references(props.KmsKeyId, logicalId(dev.stacks.main.keys.data))).toBe(true);
    expect(props.TransitEncryptionEnabled).toBe(true);
    expect(props.TransitEncryptionMode).toBe('required');
  });

  it('takes its AUTH token from Secrets Manager as a dynamic reference, never as a literal', () => {
    // Why: a literal token would sit in the template, in CloudFormation's console and in cdk diff.
    const token = JSON.stringify(group(dev).AuthToken);
    expect(token).toContain('{{resolve:secretsmanager:');
    expect(references(group(dev).AuthToken, logicalId(dev.stacks.main.cache.authToken))).toBe(true);
  });

  it('accepts connections from nobody until a consumer is allowed, and then only on 6379 from its security group', () => {
    // No Dify service is deployed yet, so the cache admits nothing at all; the services issue adds
    // its consumers through `cache.connections`, and its security-group matrix test takes over.
    const rules = ingressRulesOf(dev.template, logicalId(dev.stacks.main.cache.connections.securityGroups[0]));
    expect(rules).toEqual([]);
    expect(dev.stacks.main.cache.connections.defaultPort?.toString()).toBe('6379');
    for (const rule of rules) {
      expect(rule).toMatchObject({ FromPort: 6379, ToPort: 6379 });
      expect(rule.SourceSecurityGroupId).toBeDefined();
    }
  });

  it('lives in the isolated subnets', () => {
    const isolated = dev.stacks.main.network.vpc.isolatedSubnets.map((s) => logicalId(s));
    const [[, subnets]] = resources(dev.template, 'AWS::ElastiCache::SubnetGroup');
    for (const id of isolated) expect(references(subnets.Properties?.SubnetIds, id)).toBe(true);
    expect((subnets.Properties?.SubnetIds as unknown[]).length).toBe(isolated.length);
  });

  it('fails over across zones and keeps 15 days of snapshots in prod', () => {
    const props = group(prod);
    expect(props.NumCacheClusters).toBe(2);
    expect(props.MultiAZEnabled).toBe(true);
    expect(props.AutomaticFailoverEnabled).toBe(true);
    expect(props.SnapshotRetentionLimit).toBe(15);
  });

  it('delivers slow and engine logs to encrypted log groups', () => {
    const deliveries = group(dev).LogDeliveryConfigurations as Array<Record<string, any>>;
    expect(deliveries.map((d) => d.LogType).sort()).toEqual(['engine-log', 'slow-log']);
    for (const delivery of deliveries) {
      const target = delivery.DestinationDetails.CloudWatchLogsDetails.LogGroup;
      const [[, logGroup]] = resources(dev.template, 'AWS::Logs::LogGroup').filter(([id]) => references(target, id));
      expect(logGroup.Properties?.KmsKeyId).toBeDefined();
    }
  });
});
