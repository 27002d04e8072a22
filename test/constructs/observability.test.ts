import { FAILED_TASK_PATTERNS } from '../../contracts/ecs-task-events';
import { GATEWAY_NAMESPACE, GATEWAY_SIGNALS, type GatewaySignal } from '../../contracts/gateway-signals';
import { LOG_SIGNALS, logSignalPattern } from '../../contracts/log-signals';
import { SIGN_IN_PATHS } from '../../lib/constructs/web-acl';
import { CLOUDFRONT_5XX_PERCENT } from '../../lib/stacks/global-alarms-stack';
import { build, VARIANTS, ZONE } from '../helpers/synth';
import { logicalId, references, resources } from '../helpers/template';

describe('Observability', () => {
  const dev = build({ profile: 'dev' });
  const prod = build({ profile: 'prod', alarmEmail: 'ops@example.com', ...ZONE });
  const alarms = (built: typeof dev) =>
    resources(built.template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties!);

  it('notifies the encrypted alarm topic when an alarm fires and when it clears, itself or through its incident', () => {
    const topic = logicalId(dev.stacks.observability.topic);
    expect(alarms(dev).length).toBeGreaterThanOrEqual(4);
    const composites = resources(dev.template, 'AWS::CloudWatch::CompositeAlarm');
    const rules = JSON.stringify(composites.map(([, c]) => c.Properties!.AlarmRule));
    for (const [id, alarm] of resources(dev.template, 'AWS::CloudWatch::Alarm')) {
      if (alarm.Properties!.AlarmActions === undefined) {
        // A member of an incident: its composite notifies, once for the whole incident.
        expect(rules).toContain(`"${id}"`);
        continue;
      }
      expect(alarm.Properties!.AlarmActions).toEqual([{ Ref: topic }]);
      expect(alarm.Properties!.OKActions).toEqual([{ Ref: topic }]);
    }
    expect(composites.length).toBeGreaterThan(0);
    for (const [, composite] of composites) {
      expect(composite.Properties!.AlarmActions).toEqual([{ Ref: topic }]);
      expect(composite.Properties!.OKActions).toEqual([{ Ref: topic }]);
    }
    const [[, topicResource]] = resources(dev.template, 'AWS::SNS::Topic');
    expect(references(topicResource.Properties?.KmsMasterKeyId, logicalId(dev.stacks.keys.logs))).toBe(true);
  });

  it('watches every Valkey node by its cache cluster id, the dimension ElastiCache publishes', () => {
    // Why: a ReplicationGroupId dimension has no data, so such an alarm would stay OK forever.
    const group = logicalId(prod.stacks.cache.replicationGroup);
    const cacheAlarms = alarms(prod).filter((a) => a.Namespace === 'AWS/ElastiCache');
    // CPU, memory and evictions per node, and replication lag on the replica.
    expect(cacheAlarms).toHaveLength(7);
    const ids = cacheAlarms.map((a) => JSON.stringify((a.Dimensions as Array<{ Name: string; Value: unknown }>)[0]));
    for (const suffix of ['-001', '-002']) {
      expect(ids).toContain(
        JSON.stringify({ Name: 'CacheClusterId', Value: { 'Fn::Join': ['', [{ Ref: group }, suffix]] } }),
      );
    }
    expect(alarms(dev).filter((a) => a.Namespace === 'AWS/ElastiCache')).toHaveLength(3);
  });

  it('watches Aurora by its cluster identifier', () => {
    const rds = alarms(dev).filter((a) => a.Namespace === 'AWS/RDS');
    expect(rds.map((a) => a.MetricName).sort()).toEqual([
      'ACUUtilization',
      'CPUUtilization',
      'DatabaseConnections',
      'FreeLocalStorage',
    ]);
    for (const alarm of rds) expect((alarm.Dimensions as Array<{ Name: string }>)[0].Name).toBe('DBClusterIdentifier');
  });

  it('subscribes alarmEmail, and nobody when it is unset', () => {
    prod.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    dev.template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  describe('signals', () => {
    const eks = build(VARIANTS['eks-dev']);
    // A description with a resource's name in it is an Fn::Join; its first part starts with the signal.
    const signalOf = (alarm: Record<string, any>) =>
      /^\[([a-z0-9.-]+)\] /.exec(
        typeof alarm.AlarmDescription === 'string'
          ? alarm.AlarmDescription
          : String(alarm.AlarmDescription?.['Fn::Join']?.[1]?.[0] ?? ''),
      )?.[1];
    const signals = (built: typeof dev) => new Set(alarms(built).map(signalOf));
    const BOTH = [
      ...Object.values(GATEWAY_SIGNALS).map((s) => s.signal),
      'gateway.client-key-failures-by-source',
      'data.aurora-cpu',
      'data.aurora-acu',
      'data.valkey-cpu',
      'data.valkey-memory',
      'data.aurora-connections',
      'data.aurora-free-storage',
      'data.valkey-evictions',
      'auth.console-sign-in-failures',
      'auth.service-api-failures',
      'containers.cpu',
      'containers.memory',
      'containers.task-failed',
      'edge.alb-5xx',
      'edge.unhealthy-targets',
      'egress.nat-bytes-out',
      'egress.squid-denied',
    ];
    const EKS_ONLY = [
      'eks.secret-access',
      'eks.pod-exec',
      'eks.refused-requests',
      'eks.policy-change',
      'eks.pod-security-violation',
      'eks.pod-restarts',
      'eks.pods-failed',
    ];

    it('names the signal each alarm watches and what to check first, on both platforms', () => {
      for (const alarm of [...alarms(dev), ...alarms(eks)]) {
        expect(signalOf(alarm)).toBeDefined();
        expect(JSON.stringify(alarm.AlarmDescription)).toMatch(/Check first|Read the audit log/);
      }
      expect([...signals(dev)].sort()).toEqual([...BOTH].sort());
      expect([...signals(eks)].sort()).toEqual([...BOTH, ...EKS_ONLY].sort());
    });

    it('watches replication lag where there is a replica (prod), and connections against the configured capacity', () => {
      const lag = alarms(prod).filter((a) =>
        /^\[data\.(aurora-replica-lag|valkey-replication-lag)\]/.test(String(a.AlarmDescription)),
      );
      expect(lag.map((a) => a.MetricName).sort()).toEqual(['AuroraReplicaLagMaximum', 'ReplicationLag']);
      // ElastiCache reports ReplicationLag on replicas only: node 002, not the primary.
      const valkey = lag.find((a) => a.MetricName === 'ReplicationLag')!;
      expect(JSON.stringify(valkey.Dimensions)).toContain('-002');
      expect([...signals(dev)].filter((s) => s?.endsWith('lag'))).toEqual([]);
      // dev: at most 4 ACU, so max_connections is LEAST(8 GiB / 9531392, 5000) = 901, and the alarm 80% of it.
      const connections = alarms(dev).find((a) => a.MetricName === 'DatabaseConnections')!;
      expect([connections.Threshold, connections.Statistic]).toEqual([720, 'Maximum']);
      const evictions = alarms(prod).filter((a) => a.MetricName === 'Evictions');
      expect(evictions.map((a) => [a.Statistic, a.Threshold, a.EvaluationPeriods])).toEqual([
        ['Sum', 1, 1],
        ['Sum', 1, 1],
      ]);
    });

    it('builds each gateway alarm on exactly the metrics the gateway writes (contracts/gateway-signals.ts)', () => {
      const dimensionsOf = (d: Record<string, string>) =>
        Object.entries(d)
          .sort()
          .map(([Name, Value]) => ({ Name, Value }));
      const sortDimensions = (list: Array<{ Name: string }> = []) =>
        [...list].sort((a, b) => a.Name.localeCompare(b.Name));
      for (const signal of Object.values(GATEWAY_SIGNALS) as GatewaySignal[]) {
        const found = alarms(dev).filter((a) => signalOf(a) === signal.signal);
        expect(found).toHaveLength(1);
        const [alarm] = found as Array<Record<string, any>>;
        expect(alarm.EvaluationPeriods).toBe(1);
        if (signal.threshold === 'baseline') {
          const band = alarm.Metrics.find((m: any) => m.Expression !== undefined);
          expect(band.Expression).toMatch(/^ANOMALY_DETECTION_BAND\(\w+, ?3\)$/);
          expect(alarm.ThresholdMetricId).toBe(band.Id);
          expect(alarm.ComparisonOperator).toBe('GreaterThanUpperThreshold');
        } else {
          expect(alarm.Threshold).toBe(signal.threshold);
          expect(alarm.ComparisonOperator).toBe('GreaterThanOrEqualToThreshold');
        }
        const stats =
          alarm.MetricName !== undefined
            ? [
                {
                  Namespace: alarm.Namespace,
                  MetricName: alarm.MetricName,
                  Dimensions: alarm.Dimensions,
                  Stat: alarm.Statistic,
                  Period: alarm.Period,
                },
              ]
            : alarm.Metrics.filter((m: any) => m.MetricStat !== undefined).map((m: any) => ({
                ...m.MetricStat.Metric,
                Stat: m.MetricStat.Stat,
                Period: m.MetricStat.Period,
              }));
        expect(stats.map((m: any) => ({ ...m, Dimensions: sortDimensions(m.Dimensions) }))).toEqual(
          signal.metrics.map((m) => ({
            Namespace: GATEWAY_NAMESPACE,
            MetricName: m.metricName,
            Dimensions: dimensionsOf(m.dimensions),
            Stat: signal.statistic,
            Period: 300,
          })),
        );
        if (signal.metrics.length > 1) {
          const sum = alarm.Metrics.find((m: any) => m.Expression !== undefined);
          expect(sum.Expression).toBe(`SUM([${signal.metrics.map((_, i) => `m${i}`).join(',')}])`);
          expect(sum.ReturnData).not.toBe(false);
        }
      }
    });

    it('counts refused keys per source address over the gateway log group, and alarms on the busiest address', () => {
      const [[, rule]] = resources(dev.template, 'AWS::CloudWatch::InsightRule');
      const body = JSON.stringify(rule.Properties!.RuleBody);
      expect(references(rule.Properties!.RuleBody, logicalId(dev.stacks.gateway.service.logGroup))).toBe(true);
      expect(body).toContain('$.sourceIp');
      const [alarm] = alarms(dev).filter((a) => signalOf(a) === 'gateway.client-key-failures-by-source') as Array<
        Record<string, any>
      >;
      expect(JSON.stringify(alarm.Metrics)).toContain('INSIGHT_RULE_METRIC(');
      expect(JSON.stringify(alarm.Metrics)).toContain("'MaxContributorValue'");
    });

    it('gives each stack with alarms one dashboard, showing every alarm of that stack', () => {
      for (const built of [dev, eks]) {
        let dashboards = 0;
        for (const [, template] of Object.entries(built.templates)) {
          const stackAlarms = resources(template, 'AWS::CloudWatch::Alarm').map(([id]) => id);
          const stackDashboards = resources(template, 'AWS::CloudWatch::Dashboard');
          expect(stackDashboards).toHaveLength(stackAlarms.length > 0 ? 1 : 0);
          if (stackAlarms.length === 0) continue;
          dashboards += 1;
          const body = JSON.stringify(stackDashboards[0][1].Properties!.DashboardBody);
          for (const id of stackAlarms) expect(body).toContain(`"${id}"`);
        }
        expect(dashboards).toBeGreaterThanOrEqual(2);
      }
    });
  });

  describe('where each signal is read', () => {
    const eks = build(VARIANTS['eks-dev']);
    const alb = build(VARIANTS['alb-zone']);
    const cloudFront = build(VARIANTS.dev);
    const filters = (built: typeof dev) =>
      resources(built.template, 'AWS::Logs::MetricFilter').map(([, f]) => f.Properties!);

    it('reads the sign-in, API-key and egress signals from the api and SSRF proxy log groups (ECS)', () => {
      const api = logicalId(dev.stacks.platform.taskOf(dev.stacks.services.api).logGroup);
      const proxy = logicalId(dev.stacks.platform.taskOf(dev.stacks.services.ssrf_proxy).logGroup);
      for (const [signal, group] of [
        [LOG_SIGNALS.consoleSignInFailures, api],
        [LOG_SIGNALS.serviceApiAuthFailures, api],
        [LOG_SIGNALS.deniedEgress, proxy],
      ] as const) {
        const found = filters(dev).filter((f) => f.FilterPattern === logSignalPattern(signal));
        expect(found).toHaveLength(1);
        expect(found[0].LogGroupName).toEqual({ Ref: group });
      }
      // And the api writes the lines they read.
      const api_ = resources(dev.template, 'AWS::ECS::TaskDefinition')
        .map(([, t]) => (t.Properties as Record<string, any>).ContainerDefinitions[0])
        .find((c: any) => c.Name === 'api');
      expect(api_.Environment).toEqual(
        expect.arrayContaining([
          { Name: 'ENABLE_REQUEST_LOGGING', Value: 'true' },
          { Name: 'LOG_OUTPUT_FORMAT', Value: 'json' },
        ]),
      );
    });

    it('reads them from Container Insights’ application group on EKS, by container, and keeps that group encrypted', () => {
      const application = logicalId(eks.stacks.eks!.insights.applicationLogs);
      for (const [signal, container] of [
        [LOG_SIGNALS.consoleSignInFailures, 'api'],
        [LOG_SIGNALS.serviceApiAuthFailures, 'api'],
        [LOG_SIGNALS.deniedEgress, 'ssrf-proxy'],
      ] as const) {
        const found = filters(eks).filter((f) => f.FilterPattern === logSignalPattern(signal, container));
        expect(found).toHaveLength(1);
        expect(found[0].LogGroupName).toEqual({ Ref: application });
      }
      const groups = resources(eks.template, 'AWS::Logs::LogGroup')
        .map(([, g]) => g.Properties!)
        .filter((g) => String(g.LogGroupName).startsWith('/aws/containerinsights/'));
      expect(groups.map((g) => g.LogGroupName).sort()).toEqual(
        ['application', 'dataplane', 'host', 'performance'].map((n) => `/aws/containerinsights/Dify/${n}`),
      );
      for (const group of groups) {
        expect(references(group.KmsKeyId, logicalId(eks.stacks.keys.logs))).toBe(true);
        expect(group.RetentionInDays).toBeGreaterThan(0);
      }
      eks.template.hasResourceProperties('AWS::EKS::Addon', { AddonName: 'amazon-cloudwatch-observability' });
      // The agents write to those groups only: no log action on any other resource.
      const [, policy] = resources(eks.template, 'AWS::IAM::Policy').find(([id]) => id.includes('InsightsAgentRole'))!;
      for (const statement of (policy.Properties as Record<string, any>).PolicyDocument.Statement) {
        const logActions = [statement.Action]
          .flat()
          .filter((a: string) => a.startsWith('logs:') && a !== 'logs:DescribeLogGroups');
        if (logActions.length > 0) expect(JSON.stringify(statement.Resource)).toContain('InsightsApplicationLogs');
        if (logActions.length > 0) expect(JSON.stringify(statement.Resource)).not.toContain('"*"');
      }
    });

    it('sends each failed ECS task of the cluster to the topic, by the patterns contracts/ecs-task-events.ts tests', () => {
      const cluster = logicalId(dev.stacks.platform.cluster);
      const rules = resources(dev.template, 'AWS::Events::Rule')
        .map(([, r]) => r.Properties as Record<string, any>)
        .filter((r) => r.EventPattern?.['detail-type']?.[0] === 'ECS Task State Change');
      expect(rules.map((r) => r.EventPattern.detail)).toEqual(
        Object.values(FAILED_TASK_PATTERNS).map((detail) => ({
          clusterArn: [{ 'Fn::GetAtt': [cluster, 'Arn'] }],
          ...detail,
        })),
      );
      for (const rule of rules) {
        expect(rule.Targets).toHaveLength(1);
        expect(rule.Targets[0].Arn).toEqual({ Ref: logicalId(dev.stacks.observability.topic) });
        expect(JSON.stringify(rule.Targets[0].InputTransformer)).toContain('stoppedReason');
      }
      // EventBridge may publish to the KMS-encrypted topic: the key admits it, for this account only.
      const [, key] = resources(dev.template, 'AWS::KMS::Key').find(([id]) => id === logicalId(dev.stacks.keys.logs))!;
      const statement = (key.Properties as Record<string, any>).KeyPolicy.Statement.find(
        (s: any) => s.Sid === 'AlarmsAndRulesToEncryptedTopic',
      );
      expect(statement.Principal.Service).toEqual(['cloudwatch.amazonaws.com', 'events.amazonaws.com']);
      expect(statement.Condition).toEqual({ StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } });
    });

    it('rate-limits console sign-ins per client address at WAF, and alarms where the web ACL publishes', () => {
      const rulesOf = (template: typeof dev.template) =>
        resources(template, 'AWS::WAFv2::WebACL').flatMap(
          ([, acl]) => acl.Properties!.Rules as Array<Record<string, any>>,
        );
      const regional = rulesOf(alb.template).find((r) => r.Name === 'LoginRateLimitPerClientIp')!;
      expect(regional.Action).toEqual({ Block: { CustomResponse: { ResponseCode: 429 } } });
      const statement = regional.Statement.RateBasedStatement;
      expect([statement.Limit, statement.AggregateKeyType, statement.EvaluationWindowSec]).toEqual([30, 'IP', 300]);
      const scope = JSON.stringify(statement.ScopeDownStatement);
      for (const path of SIGN_IN_PATHS) expect(scope).toContain(`"SearchString":"${path}"`);
      expect(scope).toContain('"SearchString":"POST"');
      // ALB mode: the regional web ACL's alarms are in the main region, with the Region dimension.
      const wafAlarms = alarms(alb).filter((a) => a.Namespace === 'AWS/WAFV2');
      expect(wafAlarms.map((a) => (a.Dimensions as Array<{ Name: string }>).map((d) => d.Name).sort())).toEqual(
        Array(2).fill(['Region', 'Rule', 'WebACL']),
      );
      // CloudFront mode: in the us-east-1 stack, without a Region dimension, on that stack's own topic.
      const global = cloudFront.templates['Dify-Global'];
      const globalAlarms = resources(global, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties!);
      expect(globalAlarms.length).toBe(3);
      const [[globalTopic]] = resources(global, 'AWS::SNS::Topic');
      for (const alarm of globalAlarms) {
        expect(JSON.stringify(alarm)).not.toContain('"Region"');
        expect(alarm.AlarmActions).toEqual([{ Ref: globalTopic }]);
      }
      expect(rulesOf(global).some((r) => r.Name === 'LoginRateLimitPerClientIp')).toBe(true);
    });

    it('watches CloudFront’s 5xx share in us-east-1, from a stack deployed after the distribution’s', () => {
      const stacks = cloudFront.stacks;
      expect(stacks.stacks.at(-1)).toBe(stacks.globalAlarms);
      expect(stacks.globalAlarms!.dependencies).toContain(stacks.main);
      const [[, alarm]] = resources(cloudFront.templates['Dify-GlobalAlarms'], 'AWS::CloudWatch::Alarm');
      const properties = alarm.Properties as Record<string, any>;
      expect([properties.Namespace, properties.MetricName, properties.Threshold]).toEqual([
        'AWS/CloudFront',
        '5xxErrorRate',
        CLOUDFRONT_5XX_PERCENT,
      ]);
      // The distribution's id, read from the main stack in its own region when this stack deploys.
      const [distribution, region] = properties.Dimensions as Array<{ Name: string; Value: any }>;
      expect(distribution.Value['Fn::GetStackOutput']).toMatchObject({ StackName: 'Dify', Region: stacks.main.region });
      expect(region).toEqual({ Name: 'Region', Value: 'Global' });
      expect(properties.AlarmActions[0]['Fn::GetStackOutput']).toMatchObject({ StackName: 'Dify-Global' });
      expect(build(VARIANTS['alb-zone']).stacks.globalAlarms).toBeUndefined();
    });
  });
});
