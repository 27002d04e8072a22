import { GATEWAY_NAMESPACE, GATEWAY_SIGNALS, type GatewaySignal } from '../../contracts/gateway-signals';
import { build, VARIANTS, ZONE } from '../helpers/synth';
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
    expect(rds.map((a) => a.MetricName).sort()).toEqual(['ACUUtilization', 'CPUUtilization', 'DatabaseConnections']);
    for (const alarm of rds) expect((alarm.Dimensions as Array<{ Name: string }>)[0].Name).toBe('DBClusterIdentifier');
  });

  it('subscribes alarmEmail, and nobody when it is unset', () => {
    prod.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    dev.template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  describe('signals', () => {
    const eks = build(VARIANTS['eks-dev']);
    const signalOf = (alarm: Record<string, unknown>) =>
      /^\[([a-z0-9.-]+)\] /.exec(String(alarm.AlarmDescription))?.[1];
    const signals = (built: typeof dev) => new Set(alarms(built).map(signalOf));
    const BOTH = [
      ...Object.values(GATEWAY_SIGNALS).map((s) => s.signal),
      'gateway.client-key-failures-by-source',
      'data.aurora-cpu',
      'data.aurora-acu',
      'data.valkey-cpu',
      'data.valkey-memory',
      'data.aurora-connections',
      'data.valkey-evictions',
    ];
    const EKS_ONLY = ['eks.secret-access', 'eks.pod-exec', 'eks.refused-requests'];

    it('names the signal each alarm watches and what to check first, on both platforms', () => {
      for (const alarm of [...alarms(dev), ...alarms(eks)]) {
        expect(signalOf(alarm)).toBeDefined();
        expect(String(alarm.AlarmDescription)).toMatch(/Check first|Read the audit log/);
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
});
