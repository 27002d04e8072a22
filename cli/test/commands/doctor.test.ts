import {
  CloudFormationClient,
  CreateStackCommand,
  ListStackResourcesCommand,
  type ListStackResourcesCommandOutput,
} from '@aws-sdk/client-cloudformation';
import {
  CloudWatchClient,
  DescribeAlarmsCommand,
  ListDashboardsCommand,
  ListMetricsCommand,
} from '@aws-sdk/client-cloudwatch';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { CloudFrontClient, GetDistributionConfigCommand } from '@aws-sdk/client-cloudfront';
import {
  DescribeListenersCommand,
  DescribeLoadBalancerAttributesCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { DescribeDBClustersCommand, RDSClient } from '@aws-sdk/client-rds';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { GetWebACLForResourceCommand, WAFV2Client } from '@aws-sdk/client-wafv2';
import { mockClient } from 'aws-sdk-client-mock';
import { MOTO_CREDENTIALS, type Moto, startMoto } from '../../../gateway/test/helpers/moto';
import { type Cluster, startCluster } from '../helpers/cluster';
import { enableRotation } from '../helpers/rotation';
import type { Io } from '../../src/io';
import { run } from '../../src/main';

/**
 * doctor against a stack in moto_server (outputs, secrets and their ages, the alarm topic and its
 * subscribers), with the load balancer, CloudFront, WAF and Aurora answers from aws-sdk-client-mock,
 * as a deployed stack would give them.
 */
const REGION = 'us-east-1';
const LB = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dify/0123456789abcdef';

describe('dify-aws doctor', () => {
  let moto: Moto;
  let cfn: CloudFormationClient;
  let secrets: SecretsManagerClient;
  let sns: SNSClient;
  const elb = mockClient(ElasticLoadBalancingV2Client);
  const cloudFront = mockClient(CloudFrontClient);
  const waf = mockClient(WAFV2Client);
  const rds = mockClient(RDSClient);
  const cloudWatch = mockClient(CloudWatchClient);
  /** The alarms and dashboard every test deployment declares (moto's CloudFormation cannot create alarms). */
  const arn = (name: string) => `arn:aws:cloudwatch:us-east-1:123456789012:alarm:${name}`;
  const DECLARED = [
    { LogicalResourceId: 'Cpu', PhysicalResourceId: 'S-Cpu-1', ResourceType: 'AWS::CloudWatch::Alarm' },
    { LogicalResourceId: 'Fivexx', PhysicalResourceId: 'S-Fivexx-1', ResourceType: 'AWS::CloudWatch::Alarm' },
    { LogicalResourceId: 'Down', PhysicalResourceId: 'S-Down-1', ResourceType: 'AWS::CloudWatch::CompositeAlarm' },
    { LogicalResourceId: 'Board', PhysicalResourceId: 'S-signals', ResourceType: 'AWS::CloudWatch::Dashboard' },
  ].map((r) => ({ ...r, ResourceStatus: 'CREATE_COMPLETE' as const, LastUpdatedTimestamp: new Date() }));
  /** CloudFormation as moto answers it, with the declared alarms and dashboard in every stack's resources. */
  const withAlarms = (client: CloudFormationClient): CloudFormationClient =>
    Object.assign(Object.create(client) as CloudFormationClient, {
      send: async (command: unknown) => {
        const answer = await client.send(command as ListStackResourcesCommand);
        if (!(command instanceof ListStackResourcesCommand)) return answer;
        const page = answer as ListStackResourcesCommandOutput;
        return { ...page, StackResourceSummaries: [...(page.StackResourceSummaries ?? []), ...DECLARED] };
      },
    });
  /** CloudWatch as a healthy deployment answers: an alarm notifying the topic, one through its incident. */
  const healthyAlarms = (topics: string[]) => {
    cloudWatch.on(DescribeAlarmsCommand).resolves({
      MetricAlarms: [
        {
          AlarmName: 'S-Cpu-1',
          AlarmArn: arn('S-Cpu-1'),
          AlarmDescription: '[data.aurora-cpu] Aurora CPU',
          AlarmActions: topics,
          StateValue: 'OK',
          Namespace: 'AWS/RDS',
          MetricName: 'CPUUtilization',
          Dimensions: [{ Name: 'DBClusterIdentifier', Value: 'dify-aurora' }],
        },
        {
          AlarmName: 'S-Fivexx-1',
          AlarmArn: arn('S-Fivexx-1'),
          AlarmDescription: '[edge.alb-5xx] 5xx',
          AlarmActions: [],
          StateValue: 'OK',
          Metrics: [
            {
              Id: 'elb',
              MetricStat: {
                Metric: { Namespace: 'AWS/ApplicationELB', MetricName: 'HTTPCode_ELB_5XX_Count', Dimensions: [] },
                Period: 300,
                Stat: 'Sum',
              },
            },
            { Id: 'sum', Expression: 'FILL(elb, 0)' },
          ],
        },
      ],
      CompositeAlarms: [
        {
          AlarmName: 'S-Down-1',
          AlarmDescription: '[incident.service-down] down',
          AlarmRule: `ALARM("${arn('S-Fivexx-1')}")`,
          AlarmActions: topics,
        },
      ],
    });
    cloudWatch.on(ListMetricsCommand).resolves({ Metrics: [{ Namespace: 'AWS/RDS', MetricName: 'CPUUtilization' }] });
    cloudWatch.on(ListDashboardsCommand).resolves({ DashboardEntries: [{ DashboardName: 'S-signals' }] });
  };
  let topics: string[];

  beforeAll(async () => {
    moto = await startMoto();
    const config = { region: REGION, endpoint: moto.endpoint, credentials: MOTO_CREDENTIALS };
    cfn = new CloudFormationClient(config);
    secrets = new SecretsManagerClient(config);
    sns = new SNSClient(config);
    const secret = async (name: string) =>
      (await secrets.send(new CreateSecretCommand({ Name: name, SecretString: 'x'.repeat(64) }))).ARN!;
    const topic = async (name: string) => (await sns.send(new CreateTopicCommand({ Name: name }))).TopicArn!;
    const quietTopic = await topic('quiet');
    const watchedTopic = await topic('watched');
    topics = [quietTopic, watchedTopic];
    await sns.send(
      new SubscribeCommand({
        TopicArn: watchedTopic,
        Protocol: 'sqs',
        Endpoint: 'arn:aws:sqs:us-east-1:123456789012:ops',
      }),
    );
    const common = {
      LoadBalancerArn: LB,
      DatabaseClusterArn: 'arn:aws:rds:us-east-1:123456789012:cluster:dify-aurora',
      DatabaseMasterSecretArn: await secret('master'),
      SandboxApiKeySecretArn: await secret('sandbox'),
      CacheDifyUserSecretArn: await secret('cache'),
    };
    // The sandbox key has its schedule (as a deploy gives it); the cache user's secret has none.
    await enableRotation(secrets, common.SandboxApiKeySecretArn);
    const stack = async (name: string, outputs: Record<string, string>) =>
      cfn.send(
        new CreateStackCommand({
          StackName: name,
          TemplateBody: JSON.stringify({
            Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
            Outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { Value: v }])),
          }),
        }),
      );
    await stack('Prod', { ...common, Profile: 'prod', AlarmTopicArn: watchedTopic });
    const day = 86_400_000;
    const pool = {
      version: 1,
      providers: {
        openai: {
          baseUrl: 'https://api.openai.com',
          models: ['gpt-4o-mini'],
          keys: [
            {
              id: 'old',
              key: 'sk-old-key-0000000000000000000000',
              weight: 1,
              enabled: true,
              addedAt: new Date(Date.now() - 200 * day).toISOString(),
            },
            {
              id: 'fresh',
              key: 'sk-fresh-key-00000000000000000000',
              weight: 1,
              enabled: true,
              addedAt: new Date(Date.now() - 10 * day).toISOString(),
            },
            { id: 'by-hand', key: 'sk-by-hand-key-000000000000000000', weight: 1, enabled: true },
          ],
        },
      },
    };
    const poolArn = (await secrets.send(new CreateSecretCommand({ Name: 'pool', SecretString: JSON.stringify(pool) })))
      .ARN!;
    await stack('Keys', {
      ...common,
      Profile: 'dev',
      AlarmTopicArn: watchedTopic,
      GatewayProviderKeysSecretArn: poolArn,
    });
    await stack('DevEks', {
      ...common,
      Profile: 'dev',
      AlarmTopicArn: watchedTopic,
      Platform: 'eks',
      EksClusterName: 'Dify',
      ClusterResponderFunctionName: 'Dify-ClusterResponder',
    });
    await stack('Dev', { ...common, Profile: 'dev', AlarmTopicArn: quietTopic, DistributionId: 'E2EXAMPLE' });
    // A production stack deployed before domainName became required in prod.
    await stack('ProdNoDomain', {
      ...common,
      Profile: 'prod',
      AlarmTopicArn: watchedTopic,
      DistributionId: 'E3EXAMPLE',
    });
  });
  afterAll(async () => {
    cfn?.destroy();
    secrets?.destroy();
    sns?.destroy();
    await moto?.stop();
  });
  beforeEach(() => {
    for (const mock of [elb, cloudFront, waf, rds, cloudWatch]) mock.reset();
    healthyAlarms(topics);
  });

  async function doctor(stack: string, extra: string[] = [], now = new Date(), clients: Record<string, unknown> = {}) {
    const captured = { out: '', err: '' };
    const io: Io = {
      out: (l) => (captured.out += `${l}\n`),
      err: (l) => (captured.err += `${l}\n`),
      readSecret: async () => '',
      confirm: async () => false,
    };
    const code = await run(['doctor', '--stack', stack, '--region', REGION, '--json', ...extra], io, {
      clients: {
        cloudFormation: withAlarms(cfn),
        cloudWatch: new CloudWatchClient({ region: REGION }),
        secrets,
        elb: new ElasticLoadBalancingV2Client({ region: REGION }),
        cloudFront: new CloudFrontClient({ region: REGION }),
        waf: new WAFV2Client({ region: REGION }),
        rds: new RDSClient({ region: REGION }),
        sns,
        ...clients,
      },
      now: () => now,
    });
    return {
      code,
      findings: JSON.parse(captured.out).findings as Array<{
        check: string;
        target: string;
        status: string;
        detail: string;
      }>,
      err: captured.err,
    };
  }
  /** edge=cloudfront without a domain: a plain-HTTP internal listener, CloudFront's default certificate. */
  const behindDefaultCertificate = () => {
    elb
      .on(DescribeListenersCommand)
      .resolves({ Listeners: [{ Port: 80, Protocol: 'HTTP', DefaultActions: [{ Type: 'forward' }] }] });
    cloudFront.on(GetDistributionConfigCommand).resolves({
      DistributionConfig: {
        WebACLId: 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/dify/1',
        ViewerCertificate: { CloudFrontDefaultCertificate: true },
      } as never,
    });
  };
  const status = (findings: Array<{ check: string; target: string; status: string }>) =>
    Object.fromEntries(findings.map((f) => [`${f.check} ${f.target}`, f.status]));

  it('passes a prod stack deployed as intended, except the master secret that never rotated', async () => {
    elb.on(DescribeListenersCommand).resolves({
      Listeners: [
        { Port: 443, Protocol: 'HTTPS', SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06' },
        {
          Port: 80,
          Protocol: 'HTTP',
          DefaultActions: [{ Type: 'redirect', RedirectConfig: { Protocol: 'HTTPS', StatusCode: 'HTTP_301' } }],
        },
      ],
    });
    elb
      .on(DescribeLoadBalancerAttributesCommand)
      .resolves({ Attributes: [{ Key: 'deletion_protection.enabled', Value: 'true' }] });
    waf.on(GetWebACLForResourceCommand).resolves({
      WebACL: {
        Name: 'dify',
        Id: 'x',
        ARN: 'arn',
        DefaultAction: {},
        VisibilityConfig: undefined as never,
        Rules: [],
      } as never,
    });
    rds.on(DescribeDBClustersCommand).resolves({ DBClusters: [{ DeletionProtection: true }] });
    const { code, findings, err } = await doctor('Prod');
    expect(status(findings)).toEqual({
      'tls listener 443': 'PASS',
      'tls listener 80': 'PASS',
      'waf load balancer': 'PASS',
      'deletion protection aurora': 'PASS',
      'deletion protection load balancer': 'PASS',
      // moto's secrets without a rotation configured: exactly what doctor must catch.
      'rotation aurora master secret': 'FAIL',
      'rotation sandbox-key': 'PASS',
      'rotation cache-dify-password': 'FAIL',
      'alarms alarm topic': 'PASS',
      'alarms exist': 'PASS',
      'alarms notify': 'PASS',
      'alarms insufficient data': 'PASS',
      // Deployed seconds ago: too early to tell whether each metric arrives.
      'alarms metrics arrive': 'WARN',
      'alarms dashboards': 'PASS',
    });
    expect(findings.find((f) => f.target === 'sandbox-key')!.detail).toMatch(
      /^every 90 days; last 0 days ago; next \d{4}-\d\d-\d\d$/,
    );
    expect(findings.find((f) => f.target === 'cache-dify-password')!.detail).toBe(
      'no rotation schedule: deploy the stack, which gives it one',
    );
    expect([code, err]).toEqual([4, expect.stringContaining('2 check(s) failed')]);
  });

  it('fails a weak TLS policy, a missing WAF, deletion protection off, old secrets and nobody subscribed', async () => {
    elb
      .on(DescribeListenersCommand)
      .resolves({ Listeners: [{ Port: 443, Protocol: 'HTTPS', SslPolicy: 'ELBSecurityPolicy-2016-08' }] });
    elb
      .on(DescribeLoadBalancerAttributesCommand)
      .resolves({ Attributes: [{ Key: 'deletion_protection.enabled', Value: 'false' }] });
    waf.on(GetWebACLForResourceCommand).resolves({});
    rds.on(DescribeDBClustersCommand).resolves({ DBClusters: [{ DeletionProtection: false }] });
    const later = new Date(Date.now() + 120 * 86_400_000);
    const { code, findings } = await doctor('Prod', ['--max-age-days', '90'], later);
    expect(status(findings)).toMatchObject({
      'tls listener 443': 'FAIL',
      'waf load balancer': 'FAIL',
      'deletion protection aurora': 'FAIL',
      'deletion protection load balancer': 'FAIL',
      'rotation sandbox-key': 'FAIL',
    });
    // 120 days on, the quarterly rotation due at day 90 has not happened: a failing rotation.
    expect(findings.find((f) => f.target === 'sandbox-key')!.detail).toMatch(
      /^overdue: the rotation due \d{4}-\d\d-\d\d has not succeeded \(last 120 days ago\); the rotation function's log \(output SecretRotationFunctionName\) names the failing step$/,
    );
    expect(code).toBe(4);
  });

  it('checks CloudFront instead of the load balancer’s WAF, skips deletion protection in dev, and names a silent alarm topic', async () => {
    behindDefaultCertificate();
    const { findings } = await doctor('Dev');
    expect(status(findings)).toMatchObject({
      'tls listener 80': 'WARN',
      'tls cloudfront': 'WARN',
      'waf cloudfront': 'PASS',
      'alarms alarm topic': 'FAIL',
    });
    expect(Object.keys(status(findings)).some((k) => k.startsWith('deletion protection'))).toBe(false);
    expect(rds.commandCalls(DescribeDBClustersCommand)).toHaveLength(0);
  });

  it('fails a production stack that serves CloudFront’s default certificate, which accepts TLS 1.0', async () => {
    behindDefaultCertificate();
    const { code, findings } = await doctor('ProdNoDomain');
    expect(status(findings)['tls cloudfront']).toBe('FAIL');
    expect(findings.find((f) => f.check === 'tls' && f.target === 'cloudfront')!.detail).toContain(
      'required in profile prod',
    );
    expect(code).toBe(4);
  });

  it('warns of provider keys older than the limit (180 days by default) or of unknown age, never printing one', async () => {
    elb.on(DescribeListenersCommand).resolves({
      Listeners: [{ Port: 443, Protocol: 'HTTPS', SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06' }],
    });
    const run = await doctor('Keys');
    const ages = run.findings.filter((f) => f.check === 'provider key age');
    expect(ages.map((f) => [f.target, f.status])).toEqual([
      ['openai old', 'WARN'],
      ['openai fresh', 'PASS'],
      ['openai by-hand', 'WARN'],
    ]);
    expect(ages[0].detail).toBe(
      '200 days old (limit 180): create a new key at the provider, `dify-aws keys add` it, then `keys remove` this one',
    );
    expect(ages[2].detail).toBe('age unknown: the pool does not say when it was added');
    expect(JSON.stringify(run)).not.toMatch(/sk-(old|fresh|by-hand)-key/);
    // A warning is not a failure: only the FAIL rows count toward the exit code.
    expect(run.findings.filter((f) => f.status === 'FAIL').every((f) => f.check !== 'provider key age')).toBe(true);
    const lenient = await doctor('Keys', ['--max-key-age-days', '365']);
    expect(lenient.findings.find((f) => f.target === 'openai old')!.status).toBe('PASS');
  });

  it('warns of a gateway client the next pepper rotation would refuse to lock out, naming it', async () => {
    const pepper = (
      await secrets.send(new CreateSecretCommand({ Name: 'pepper-doctor', SecretString: 'p'.repeat(64) }))
    ).ARN!;
    await enableRotation(secrets, pepper);
    const stages = (await secrets.send(new DescribeSecretCommand({ SecretId: pepper }))).VersionIdsToStages!;
    const current = Object.entries(stages).find(([, s]) => s.includes('AWSCURRENT'))![0];
    const record = (id: string, extra: Record<string, unknown>) => ({
      id,
      keyHash: 'a'.repeat(64),
      allowedCidrs: ['10.0.0.0/8'],
      allowedModels: ['*'],
      requestsPerMinute: 1,
      tokensPerMinute: 1,
      ...extra,
    });
    const clientsDocument = (records: unknown[]) => JSON.stringify({ version: 1, clients: records });
    const clients = (
      await secrets.send(
        new CreateSecretCommand({
          Name: 'clients-doctor',
          SecretString: clientsDocument([
            record('dify', { pepperVersionId: current }),
            record('idle', {}),
            record('off', { disabled: true }),
          ]),
        }),
      )
    ).ARN!;
    const rehash = (
      await secrets.send(
        new CreateSecretCommand({ Name: 'rehash-doctor', SecretString: '{"uninitialized":true,"placeholder":"r"}' }),
      )
    ).ARN!;
    await cfn.send(
      new CreateStackCommand({
        StackName: 'Pepper',
        TemplateBody: JSON.stringify({
          Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
          Outputs: {
            GatewayPepperSecretArn: { Value: pepper },
            GatewayClientsSecretArn: { Value: clients },
            GatewayRehashSecretArn: { Value: rehash },
            LoadBalancerArn: { Value: LB },
            Profile: { Value: 'dev' },
          },
        }),
      }),
    );
    const rows = async () => (await doctor('Pepper')).findings.filter((f) => f.target === 'gateway-pepper');
    const warned = await rows();
    expect(warned.map((f) => f.status)).toEqual(['PASS', 'WARN']);
    expect(warned[1].detail).toMatch(
      /^client idle has not signed in since the pepper last changed: the next pepper rotation( \(\d{4}-\d{2}-\d{2}\))? refuses to run until each makes one request through the gateway, gets a new key \(dify-aws clients rotate --id ID\) or is revoked$/,
    );
    // Once the gateway confirmed it under the current pepper, nothing to warn of.
    await secrets.send(
      new PutSecretValueCommand({
        SecretId: rehash,
        SecretString: JSON.stringify({
          version: 1,
          clients: { idle: { from: 'a'.repeat(64), to: 'b'.repeat(64), pepperVersionId: current } },
        }),
      }),
    );
    expect((await rows()).map((f) => f.status)).toEqual(['PASS']);
  });

  it('fails a rotation that stopped with its new value staged, and says how to finish it', async () => {
    const sandbox = (
      await secrets.send(new CreateSecretCommand({ Name: 'sandbox-interrupted', SecretString: 'y'.repeat(64) }))
    ).ARN!;
    await enableRotation(secrets, sandbox);
    const pending = (
      await secrets.send(
        new PutSecretValueCommand({ SecretId: sandbox, SecretString: 'z'.repeat(64), VersionStages: ['AWSPENDING'] }),
      )
    ).VersionId!;
    await cfn.send(
      new CreateStackCommand({
        StackName: 'Interrupted',
        TemplateBody: JSON.stringify({
          Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
          Outputs: {
            SandboxApiKeySecretArn: { Value: sandbox },
            LoadBalancerArn: { Value: LB },
            Profile: { Value: 'dev' },
          },
        }),
      }),
    );
    const { findings, err } = await doctor('Interrupted');
    expect(findings.find((f) => f.target === 'sandbox-key')).toEqual({
      check: 'rotation',
      target: 'sandbox-key',
      status: 'FAIL',
      detail: `a rotation stopped with version ${pending} staged but not current (the old value is live): run dify-aws secrets rotate sandbox-key to finish it`,
    });
    expect(JSON.stringify(findings) + err).not.toContain('z'.repeat(64));

    // Made current, but the finish step (which restarts the readers, then clears AWSPENDING) never ended.
    // (A staging label is on one version at a time; moto does not move AWSPENDING itself.)
    await secrets.send(
      new UpdateSecretVersionStageCommand({
        SecretId: sandbox,
        VersionStage: 'AWSPENDING',
        RemoveFromVersionId: pending,
      }),
    );
    const live = (
      await secrets.send(
        new PutSecretValueCommand({
          SecretId: sandbox,
          SecretString: 'w'.repeat(64),
          VersionStages: ['AWSCURRENT', 'AWSPENDING'],
        }),
      )
    ).VersionId!;
    const unfinished = await doctor('Interrupted');
    expect(unfinished.findings.find((f) => f.target === 'sandbox-key')!.detail).toBe(
      `a rotation made version ${live} live but did not finish (its readers may not all have restarted): run dify-aws secrets rotate sandbox-key to finish it`,
    );
  });

  it('fails an alarm gone from CloudWatch, one that notifies nobody, one stuck without data, an unwritten metric and a missing dashboard', async () => {
    const later = new Date(Date.now() + 3 * 3_600_000);
    cloudWatch.on(DescribeAlarmsCommand).resolves({
      // S-Down-1 (the composite) is gone; S-Fivexx-1 no longer has a composite naming it.
      MetricAlarms: [
        {
          AlarmName: 'S-Cpu-1',
          AlarmArn: arn('S-Cpu-1'),
          AlarmDescription: '[data.aurora-cpu] Aurora CPU',
          AlarmActions: topics,
          StateValue: 'INSUFFICIENT_DATA',
          StateUpdatedTimestamp: new Date(later.getTime() - 2 * 3_600_000),
          Namespace: 'AWS/RDS',
          MetricName: 'CPUUtilization',
          Dimensions: [{ Name: 'DBClusterIdentifier', Value: 'typo' }],
        },
        {
          AlarmName: 'S-Fivexx-1',
          AlarmArn: arn('S-Fivexx-1'),
          AlarmDescription: '[gateway.key-disabled] a key',
          AlarmActions: [],
          StateValue: 'OK',
          Namespace: 'DifyLlmGateway',
          MetricName: 'KeyState',
        },
      ],
      CompositeAlarms: [],
    });
    // Nothing was ever written under the RDS alarm's dimensions; the gateway's metric is an event's, never asked.
    cloudWatch.on(ListMetricsCommand).resolves({ Metrics: [] });
    cloudWatch.on(ListDashboardsCommand).resolves({ DashboardEntries: [] });
    const { code, findings } = await doctor('Prod', [], later);
    const alarmFindings = Object.fromEntries(
      findings
        .filter((f) => f.check === 'alarms' && f.target !== 'alarm topic')
        .map((f) => [f.target, [f.status, f.detail]]),
    );
    expect(alarmFindings).toEqual({
      exist: ['FAIL', expect.stringContaining('S-Down-1')],
      notify: ['FAIL', 'notify nobody: S-Fivexx-1 [gateway.key-disabled]'],
      'insufficient data': ['FAIL', expect.stringContaining('S-Cpu-1 [data.aurora-cpu]')],
      'metrics arrive': ['FAIL', expect.stringContaining('S-Cpu-1 [data.aurora-cpu] watches AWS/RDS CPUUtilization')],
      dashboards: ['FAIL', 'missing: S-signals; redeploy to recreate them'],
    });
    expect(JSON.stringify(alarmFindings)).not.toContain('KeyState');
    expect(cloudWatch.commandCalls(ListMetricsCommand)).toHaveLength(1);
    expect(code).toBe(4);
  });

  it('refuses a key age limit that is not a whole number of days', async () => {
    const captured = { out: '', err: '' };
    const code = await run(
      ['doctor', '--stack', 'Keys', '--region', REGION, '--max-key-age-days', 'six months'],
      {
        out: (l) => (captured.out += l),
        err: (l) => (captured.err += l),
        readSecret: async () => '',
        confirm: async () => false,
      },
      { clients: { cloudFormation: cfn } },
    );
    expect([code, captured.err]).toEqual([
      2,
      "dify-aws: --max-key-age-days 'six months': expected a whole number of days from 1 to 3650",
    ]);
  });

  describe('on an EKS deployment', () => {
    let cluster: Cluster;
    const eks = mockClient(EKSClient);
    const good = {
      resourcesVpcConfig: { endpointPublicAccess: false, endpointPrivateAccess: true },
      logging: {
        clusterLogging: [
          { enabled: true, types: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'] as never },
        ],
      },
      encryptionConfig: [{ resources: ['secrets'], provider: { keyArn: 'arn:aws:kms:us-east-1:123456789012:key/1' } }],
      accessConfig: { authenticationMode: 'API' as const },
    };
    beforeAll(async () => {
      cluster = await startCluster();
    });
    afterAll(async () => {
      eks.restore();
      await cluster?.stop();
    });
    const asDeployed = () => {
      behindDefaultCertificate();
      cloudFront.reset();
      elb.on(DescribeListenersCommand).resolves({
        Listeners: [{ Port: 443, Protocol: 'HTTPS', SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06' }],
      });
      waf.on(GetWebACLForResourceCommand).resolves({ WebACL: { Name: 'dify' } as never });
    };
    const clients = () => ({ eks: new EKSClient({ region: REGION }), lambda: cluster.lambda });

    it('passes the cluster as deployed: private endpoint, five logs, encryption, access entries, Pod Security, policies', async () => {
      asDeployed();
      eks.on(DescribeClusterCommand).resolves({ cluster: good });
      const { findings } = await doctor('DevEks', [], new Date(), clients());
      const eksFindings = findings.filter((f) => /^(eks|pod security|network policy|admission)/.test(f.check));
      expect(eksFindings.map((f) => `${f.check} ${f.target} ${f.status}`)).toEqual([
        'eks endpoint Dify PASS',
        'eks logging Dify PASS',
        'eks encryption Dify PASS',
        'eks access Dify PASS',
        'pod security dify PASS',
        'network policy dify PASS',
        'pod security dify-egress PASS',
        'network policy dify-egress PASS',
        'pod security dify-sandbox PASS',
        'network policy dify-sandbox PASS',
        'pod security dify-plugins PASS',
        'network policy dify-plugins PASS',
        'admission cluster PASS',
      ]);
      expect(eks.commandCalls(DescribeClusterCommand)[0].args[0].input).toEqual({ name: 'Dify' });
      expect(cluster.invocations.at(-1)).toEqual({
        functionName: 'Dify-ClusterResponder',
        request: { action: 'inspect' },
      });
    });

    it('fails a public endpoint, a missing log, a relaxed namespace, a missing default deny and an unbound policy', async () => {
      asDeployed();
      eks.on(DescribeClusterCommand).resolves({
        cluster: {
          ...good,
          resourcesVpcConfig: { endpointPublicAccess: true, endpointPrivateAccess: true },
          logging: { clusterLogging: [{ enabled: true, types: ['api', 'authenticator'] as never }] },
          encryptionConfig: [],
          accessConfig: { authenticationMode: 'API_AND_CONFIG_MAP' },
        },
      });
      const namespace = cluster.kube.object('/api/v1/namespaces/dify-sandbox')!;
      namespace.metadata.labels['pod-security.kubernetes.io/enforce'] = 'privileged';
      cluster.kube.put('/api/v1/namespaces/dify-sandbox', namespace);
      cluster.kube.remove('/apis/networking.k8s.io/v1/namespaces/dify/networkpolicies/default-deny-all');
      cluster.kube.remove(
        '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/dify-trusted-images',
      );
      const { code, findings } = await doctor('DevEks', [], new Date(), clients());
      const detail = (check: string, target: string) => findings.find((f) => f.check === check && f.target === target)!;
      expect(detail('eks endpoint', 'Dify')).toMatchObject({
        status: 'FAIL',
        detail: expect.stringContaining('public access on'),
      });
      expect(detail('eks logging', 'Dify')).toMatchObject({
        status: 'FAIL',
        detail: 'not logged: audit, controllerManager, scheduler',
      });
      expect(detail('eks encryption', 'Dify').status).toBe('FAIL');
      expect(detail('eks access', 'Dify').detail).toMatch(/API_AND_CONFIG_MAP: the aws-auth ConfigMap/);
      expect(detail('pod security', 'dify-sandbox')).toMatchObject({
        status: 'FAIL',
        detail: 'pod-security.kubernetes.io/enforce=privileged, expected baseline',
      });
      expect(detail('pod security', 'dify').status).toBe('PASS');
      expect(detail('network policy', 'dify').status).toBe('FAIL');
      expect(detail('admission', 'cluster')).toMatchObject({
        status: 'FAIL',
        detail: 'missing: binding dify-trusted-images',
      });
      expect(code).toBe(4);
    });

    it('reports a cluster it cannot reach as a failed check, naming why', async () => {
      asDeployed();
      eks.on(DescribeClusterCommand).resolves({ cluster: good });
      const denied = {
        send: async () => Promise.reject(Object.assign(new Error('no'), { name: 'AccessDeniedException' })),
        destroy: () => undefined,
      };
      const { findings } = await doctor('DevEks', [], new Date(), { ...clients(), lambda: denied });
      expect(findings.find((f) => f.check === 'pod security')).toEqual({
        check: 'pod security',
        target: 'cluster',
        status: 'FAIL',
        detail:
          'could not check: invoking the cluster responder Dify-ClusterResponder (assume the incident-responder role): access denied (AccessDeniedException): the role or user in use may not make this call; grant the missing permission to that role or user, or use credentials that have it (AWS_PROFILE)',
      });
    });
  });
});
