import { CACHE_USERS } from '../../lib/constructs/cache';
import { build, task, VARIANTS } from '../helpers/synth';
import { ingressRulesOf, logicalId, references, resources } from '../helpers/template';

describe('Cache', () => {
  const dev = build({ profile: 'dev' });
  const prod = build(VARIANTS.prod);
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
    expect(references(props.KmsKeyId, logicalId(dev.stacks.keys.data))).toBe(true);
    expect(props.TransitEncryptionEnabled).toBe(true);
    expect(props.TransitEncryptionMode).toBe('required');
  });

  it('authenticates each component as its own RBAC user, with no shared AUTH token', () => {
    // Why: with one token, the plugin daemon (third-party code) and the gateway could read Dify's
    // sessions and cached credentials, inject Celery tasks, or reset the gateway's counters.
    const props = group(dev);
    expect(props.AuthToken).toBeUndefined();
    const [[groupId, userGroup]] = resources(dev.template, 'AWS::ElastiCache::UserGroup');
    expect(props.UserGroupIds).toEqual([{ Ref: groupId }]);
    const users = Object.fromEntries(
      resources(dev.template, 'AWS::ElastiCache::User').map(([id, user]) => [id, user.Properties!]),
    );
    expect(
      Object.values(users)
        .map((u) => [u.UserName, u.AccessString])
        .sort(),
    ).toEqual(
      [['default', 'off -@all'], ...Object.values(CACHE_USERS).map((u) => [u.userName, u.accessString])].sort(),
    );
    expect((userGroup.Properties?.UserIds as unknown[]).map((ref) => (ref as { Ref: string }).Ref).sort()).toEqual(
      Object.keys(users).sort(),
    );
  });

  it('takes each user’s password from its own secret as a dynamic reference, never as a literal', () => {
    // Why: a literal password would sit in the template, in CloudFormation's console and in cdk diff.
    const { cache } = dev.stacks;
    for (const { secret, user } of Object.values(cache.users)) {
      const [, resource] = resources(dev.template, 'AWS::ElastiCache::User').find(([id]) => id === logicalId(user))!;
      const passwords = (resource.Properties?.AuthenticationMode as { Passwords: unknown[] }).Passwords;
      expect(passwords).toHaveLength(1);
      expect(JSON.stringify(passwords)).toContain('{{resolve:secretsmanager:');
      expect(references(passwords, logicalId(secret))).toBe(true);
    }
  });

  it('accepts 6379 only from the security groups of the api image’s tasks, the plugin daemon, the LLM gateway and the secret rotation', () => {
    // Why: Valkey holds sessions, locks and the Celery queue; only the services that use it may
    // connect, each through its own security group, never a CIDR.
    const rules = ingressRulesOf(dev.template, logicalId(dev.stacks.cache.connections.securityGroups[0]));
    const clients = [
      task(dev, 'api'),
      task(dev, 'worker'),
      task(dev, 'worker_beat'),
      task(dev, 'plugin_daemon'),
      task(dev, 'migration'),
      dev.stacks.gateway.service,
    ]
      .map((t) => logicalId(t.securityGroup))
      // The scheduled rotation signs in with a Valkey user's new password before making it current.
      .concat(logicalId(dev.stacks.main.node.findChild('SecretRotation').node.findChild('SecurityGroup')));
    expect(dev.stacks.cache.connections.defaultPort?.toString()).toBe('6379');
    expect(rules).toHaveLength(clients.length);
    for (const rule of rules) {
      expect(rule).toMatchObject({ FromPort: 6379, ToPort: 6379 });
      expect(clients).toContain((rule.SourceSecurityGroupId as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]);
    }
  });

  it('lives in the isolated subnets', () => {
    const isolated = dev.stacks.network.vpc.isolatedSubnets.map((s) => logicalId(s));
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
