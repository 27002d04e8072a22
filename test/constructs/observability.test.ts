import { build, ZONE } from '../helpers/synth';
import { logicalId, references, resources } from '../helpers/template';

describe('Observability', () => {
  const dev = build({ profile: 'dev' });
  const prod = build({ profile: 'prod', alarmEmail: 'ops@example.com', ...ZONE });
  const alarms = (built: typeof dev) =>
    resources(built.template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties!);

  it('notifies the encrypted alarm topic when an alarm fires and when it clears', () => {
    const topic = logicalId(dev.stacks.observability.topic);
    expect(alarms(dev).length).toBeGreaterThanOrEqual(4);
    for (const alarm of alarms(dev)) {
      expect(alarm.AlarmActions).toEqual([{ Ref: topic }]);
      expect(alarm.OKActions).toEqual([{ Ref: topic }]);
    }
    const [[, topicResource]] = resources(dev.template, 'AWS::SNS::Topic');
    expect(references(topicResource.Properties?.KmsMasterKeyId, logicalId(dev.stacks.keys.logs))).toBe(true);
  });

  it('watches every Valkey node by its cache cluster id, the dimension ElastiCache publishes', () => {
    // Why: a ReplicationGroupId dimension has no data, so such an alarm would stay OK forever.
    const group = logicalId(prod.stacks.cache.replicationGroup);
    const cacheAlarms = alarms(prod).filter((a) => a.Namespace === 'AWS/ElastiCache');
    expect(cacheAlarms).toHaveLength(4);
    const ids = cacheAlarms.map((a) => JSON.stringify((a.Dimensions as Array<{ Name: string; Value: unknown }>)[0]));
    for (const suffix of ['-001', '-002']) {
      expect(ids).toContain(
        JSON.stringify({ Name: 'CacheClusterId', Value: { 'Fn::Join': ['', [{ Ref: group }, suffix]] } }),
      );
    }
    expect(alarms(dev).filter((a) => a.Namespace === 'AWS/ElastiCache')).toHaveLength(2);
  });

  it('watches Aurora by its cluster identifier', () => {
    const rds = alarms(dev).filter((a) => a.Namespace === 'AWS/RDS');
    expect(rds.map((a) => a.MetricName).sort()).toEqual(['ACUUtilization', 'CPUUtilization']);
    for (const alarm of rds) expect((alarm.Dimensions as Array<{ Name: string }>)[0].Name).toBe('DBClusterIdentifier');
  });

  it('subscribes alarmEmail, and nobody when it is unset', () => {
    prod.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    dev.template.resourceCountIs('AWS::SNS::Subscription', 0);
  });
});
