import { Match } from 'aws-cdk-lib/assertions';
import { build, VARIANTS } from '../helpers/synth';
import { ingressRulesOf, logicalId, references, resources, strings } from '../helpers/template';

describe('Database', () => {
  const dev = build({ profile: 'dev' });
  const prod = build(VARIANTS.prod);

  it('runs Aurora PostgreSQL 16 Serverless v2, pausing at 0 ACU in dev and never below 1 ACU in prod', () => {
    dev.template.hasResourceProperties('AWS::RDS::DBCluster', {
      Engine: 'aurora-postgresql',
      EngineVersion: Match.stringLikeRegexp('^16\\.'),
      ServerlessV2ScalingConfiguration: { MinCapacity: 0, MaxCapacity: Match.anyValue() },
    });
    prod.template.hasResourceProperties('AWS::RDS::DBCluster', {
      ServerlessV2ScalingConfiguration: { MinCapacity: 1, MaxCapacity: Match.anyValue() },
    });
    dev.template.resourceCountIs('AWS::RDS::DBInstance', 1);
    prod.template.resourceCountIs('AWS::RDS::DBInstance', 2);
  });

  it('accepts 5432 only from the app’s security groups', () => {
    // Why: the database holds every conversation and credential Dify stores; no CIDR, and no port but 5432.
    for (const { template, stacks } of [dev, prod]) {
      const group = stacks.database.connections.securityGroups[0];
      const rules = ingressRulesOf(template, logicalId(group));
      expect(rules.length).toBeGreaterThan(0);
      for (const rule of rules) {
        expect(rule).toMatchObject({ IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432 });
        expect(rule.SourceSecurityGroupId).toBeDefined();
        expect(rule.CidrIp ?? rule.CidrIpv6).toBeUndefined();
      }
    }
  });

  it('lives in the isolated subnets', () => {
    const { template, stacks } = dev;
    const isolated = stacks.network.vpc.isolatedSubnets.map((s) => logicalId(s));
    const [[, group]] = resources(template, 'AWS::RDS::DBSubnetGroup');
    const ids = group.Properties?.SubnetIds as unknown[];
    expect(ids).toHaveLength(isolated.length);
    for (const id of isolated) expect(references(ids, id)).toBe(true);
  });

  it('forces TLS, stores SCRAM passwords, enables IAM authentication, and has no Data API', () => {
    // Why: with the Data API on, anyone holding rds-data:ExecuteStatement and the master secret could
    // run SQL as master from anywhere, not just from inside the VPC.
    dev.template.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', {
      Parameters: Match.objectLike({ 'rds.force_ssl': '1', password_encryption: 'scram-sha-256' }),
    });
    dev.template.hasResourceProperties('AWS::RDS::DBCluster', {
      StorageEncrypted: true,
      EnableIAMDatabaseAuthentication: true,
      EnableHttpEndpoint: false,
      EnableCloudwatchLogsExports: ['postgresql'],
    });
  });

  it('exports PostgreSQL logs to an encrypted group that exists before the cluster', () => {
    const [[clusterId, cluster]] = resources(dev.template, 'AWS::RDS::DBCluster');
    const [[groupId, group]] = resources(dev.template, 'AWS::Logs::LogGroup').filter(
      ([, g]) => g.Properties?.LogGroupName === '/aws/rds/cluster/dify-aurora/postgresql',
    );
    expect(group.Properties?.KmsKeyId).toBeDefined();
    expect((dev.template.toJSON().Resources[clusterId].DependsOn as string[]) ?? []).toContain(groupId);
    expect(cluster.Properties?.DBClusterIdentifier).toBe('dify-aurora');
  });

  it('protects prod from deletion and keeps a snapshot; dev can be destroyed', () => {
    const [[, prodCluster]] = resources(prod.template, 'AWS::RDS::DBCluster');
    expect(prodCluster.Properties?.DeletionProtection).toBe(true);
    expect(prodCluster.DeletionPolicy).toBe('Snapshot');
    expect(prodCluster.Properties?.BackupRetentionPeriod).toBe(35);
    const [[, devCluster]] = resources(dev.template, 'AWS::RDS::DBCluster');
    expect(devCluster.Properties?.DeletionProtection).toBe(false);
    expect(devCluster.DeletionPolicy).toBe('Delete');
    expect(devCluster.Properties?.BackupRetentionPeriod).toBe(7);
  });

  it('generates the master credentials into a secret under the secrets key, rotated every 30 days', () => {
    const { template, stacks } = dev;
    const master = stacks.database.cluster.node.findChild('Secret');
    const secret = template.toJSON().Resources[logicalId(master)];
    expect(secret.Properties.GenerateSecretString.GenerateStringKey).toBe('password');
    expect(references(secret.Properties.KmsKeyId, logicalId(stacks.keys.secrets))).toBe(true);
    template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      SecretId: { Ref: logicalId(stacks.database.cluster.secret!) },
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
      HostedRotationLambda: Match.objectLike({ RotationType: 'PostgreSQLSingleUser' }),
    });
  });

  it('gives Dify and the plugin daemon their own roles and databases, never the master user', () => {
    const { template, stacks } = dev;
    const [[, bootstrap]] = resources(template, 'Custom::DifyDatabaseBootstrap');
    const props = bootstrap.Properties as Record<string, any>;
    expect(props.Roles).toEqual([
      { SecretArn: { Ref: logicalId(stacks.database.appSecret) }, Database: 'dify' },
      { SecretArn: { Ref: logicalId(stacks.database.pluginSecret) }, Database: 'dify_plugin' },
    ]);
    expect(props.Extensions).toEqual([{ Database: 'dify', Name: 'vector' }]);
    for (const secret of [stacks.database.appSecret, stacks.database.pluginSecret]) {
      const json = JSON.parse(
        template.toJSON().Resources[logicalId(secret)].Properties.GenerateSecretString.SecretStringTemplate,
      );
      expect(json.username).not.toBe('dify_admin');
    }
  });

  it('passes only ARNs and names to the bootstrap, never a password', () => {
    // Why: CloudFormation echoes custom resource properties in events and to the provider's logs.
    const [[, bootstrap]] = resources(dev.template, 'Custom::DifyDatabaseBootstrap');
    const keys = JSON.stringify(Object.keys(bootstrap.Properties ?? {}).filter((key) => key !== 'ServiceToken'));
    expect(keys).not.toMatch(/password|token/i);
    for (const value of strings(bootstrap.Properties)) expect(value).not.toContain('{{resolve:');
  });

  it('runs the bootstrap after the writer instance exists', () => {
    const [[id]] = resources(dev.template, 'Custom::DifyDatabaseBootstrap');
    const [[writerId]] = resources(dev.template, 'AWS::RDS::DBInstance');
    expect(dev.template.toJSON().Resources[id].DependsOn).toContain(writerId);
  });

  it('lets the bootstrap read exactly the master and the two role secrets, with no Data API permission', () => {
    const { template, stacks } = dev;
    const role = stacks.database.node.findChild('Bootstrap').node.findChild('FunctionRole').node.defaultChild!;
    const [[, policy]] = resources(template, 'AWS::IAM::Policy').filter(([, p]) =>
      references(p.Properties?.Roles, logicalId(role)),
    );
    const statements = (policy.Properties?.PolicyDocument as { Statement: Array<Record<string, any>> }).Statement;
    const secretReads = statements.filter((s) => JSON.stringify(s.Action).includes('secretsmanager:GetSecretValue'));
    const readable = secretReads.flatMap((s) => [s.Resource].flat());
    // The two role secrets, and the master secret it connects with: nothing else.
    expect(new Set(readable.map((r) => JSON.stringify(r)))).toEqual(
      new Set(
        [
          { Ref: logicalId(stacks.database.appSecret) },
          { Ref: logicalId(stacks.database.pluginSecret) },
          { Ref: logicalId(stacks.database.cluster.secret!) },
        ].map((r) => JSON.stringify(r)),
      ),
    );
    expect(JSON.stringify(readable)).not.toContain('"*"');
    expect(JSON.stringify(statements)).not.toContain('rds-data:');
  });

  it('reaches Aurora only on 5432 from inside the VPC, and nothing on the internet', () => {
    const { template, stacks } = dev;
    const bootstrap = stacks.database.node.findChild('Bootstrap').node.findChild('SecurityGroup');
    const [, group] = resources(template, 'AWS::EC2::SecurityGroup').find(([id]) => id === logicalId(bootstrap))!;
    const egress = (group.Properties?.SecurityGroupEgress as Array<Record<string, unknown>>) ?? [];
    expect(egress.filter((rule) => rule.CidrIp === '0.0.0.0/0')).toEqual([]);
    const toDatabase = resources(template, 'AWS::EC2::SecurityGroupIngress').filter(
      ([, rule]) =>
        references(rule.Properties?.SourceSecurityGroupId, logicalId(bootstrap)) &&
        references(rule.Properties?.GroupId, logicalId(stacks.database.connections.securityGroups[0])),
    );
    expect(toDatabase.map(([, rule]) => [rule.Properties?.FromPort, rule.Properties?.ToPort])).toEqual([[5432, 5432]]);
    // And the rotation function lost its redundant internet rule.
    for (const [, g] of resources(template, 'AWS::EC2::SecurityGroup')) {
      if (!String(g.Properties?.GroupDescription).startsWith('Master secret rotation')) continue;
      expect(
        ((g.Properties?.SecurityGroupEgress as Array<Record<string, unknown>>) ?? []).filter(
          (r) => r.CidrIp === '0.0.0.0/0',
        ),
      ).toEqual([]);
    }
  });
});
