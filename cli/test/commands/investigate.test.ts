import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  DescribeQueriesCommand,
  FilterLogEventsCommand,
  type FilterLogEventsCommandOutput,
  GetQueryResultsCommand,
  PutLogEventsCommand,
  StartQueryCommand,
  type StartQueryCommandInput,
  StopQueryCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { deploymentStacks } from '../../../contracts/stack-outputs';
import { MOTO_CREDENTIALS, type Moto, startMoto } from '../../../gateway/test/helpers/moto';
import type { Io } from '../../src/io';
import { run } from '../../src/main';
import { normalizePath, SECTIONS } from '../../src/queries';
import { secretReason, WITHHELD, withholdSecrets } from '../../src/redact';
import { evaluate, type InsightsEvent } from '../helpers/insights';

/**
 * dify-aws investigate against a deployment in moto_server: its stacks' outputs name the log groups,
 * and each log group holds lines in the exact formats its writer uses (the gateway's audit lines,
 * Dify 1.13.3's JSON request log, AWS WAF v2 log records, squid's native access log), planted with
 * PutLogEvents, with secrets planted in fields no query may select.
 *
 * moto_server 5.2.1 runs StartQuery and GetQueryResults, but of the query it evaluates only `fields`
 * (of @timestamp, @message, @logStream, @log), `sort` by time and `limit`; it ignores `filter`,
 * `parse` and `stats`. So the command is run twice over the same events:
 * - against moto_server alone, which checks what moto evaluates: the log groups each section
 *   queries (a missing one fails), the window in seconds, and the polling;
 * - against a CloudWatch Logs mock that reads the same events back from moto_server with
 *   FilterLogEvents over the query's window and groups, then runs the query string with the Logs
 *   Insights evaluator in ../helpers/insights.ts. That checks the queries' filters, parses and
 *   counts, and the report built from them.
 */
const REGION = 'us-east-1';
const STACK = 'Incident';
/** A whole minute, near the real time: moto refuses events older than 14 days. */
const NOW = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const GROUPS = {
  gateway: `/dify/${STACK}/llm-gateway`,
  api: `/dify/${STACK}/ecs/api`,
  ssrfProxy: `/dify/${STACK}/ecs/ssrf-proxy`,
  waf: `aws-waf-logs-${STACK}.regional`,
};

/** Secrets planted in the logs: neither stdout nor stderr may ever hold one. */
const PLANTED = {
  providerKey: 'sk-planted-openai-key-0123456789abcdefghij',
  clientKey: 'dgw_team-a_PlantedClientKey0123456789abcdefghijklmnopq',
  /** A client key where a client id belongs: the secret check must withhold it. */
  clientKeyAsId: 'dgw_team-z_PlantedClientKeyAsId0123456789abcdefghijklm',
  prompt: 'Summarise the merger memo for Project Kestrel before Friday',
  difyAppKey: 'app-PlantedDifyAppKey0123456789ab',
  proxyPassword: 'planted-proxy-password',
  urlToken: 'plantedUrlToken0123456789abcdef',
  wafArgs: 'planted-reset-token=0123456789',
};

const minutesAgo = (m: number) => NOW.getTime() - m * 60_000;
type Planted = InsightsEvent;
const at = (m: number, message: string | Record<string, unknown>): Planted => ({
  timestamp: minutesAgo(m),
  message:
    typeof message === 'string' ? message : JSON.stringify({ time: new Date(minutesAgo(m)).toISOString(), ...message }),
});

/** A gateway request audit line (gateway/src/audit.ts), planted secrets in fields no query selects. */
let requests = 0;
const request = (m: number, fields: Record<string, unknown>) =>
  at(m, {
    type: 'request',
    requestId: `req-${(requests += 1)}`,
    route: '/v1/chat/completions',
    model: PLANTED.prompt,
    stream: false,
    latencyMs: 120,
    guardrails: [],
    attempts: 1,
    retries: 0,
    note: `authorization: Bearer ${PLANTED.clientKey}`,
    ...fields,
  });
/** A gateway attempt audit line (gateway/src/attempt.ts). */
const attempt = (m: number, provider: string, keyId: string, outcome: string) =>
  at(m, {
    type: 'attempt',
    requestId: `req-${m}`,
    attempt: 1,
    clientId: 'team-a',
    route: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    provider,
    keyId,
    status: outcome === 'success' ? 200 : 429,
    outcome,
    ...(outcome === 'success' ? {} : { errorClass: outcome }),
    latencyMs: 80,
    upstreamAuthorization: `Bearer ${PLANTED.providerKey}`,
  });

const EVENTS: Record<keyof typeof GROUPS, Planted[]> = {
  gateway: [
    ...[5, 6, 7].map((m) =>
      request(m, {
        clientId: 'team-a',
        sourceIp: '10.0.1.10',
        provider: 'openai',
        keyId: 'openai-1',
        status: 200,
        attempts: 2,
        retries: 1,
      }),
    ),
    request(8, { clientId: 'team-b', sourceIp: '10.0.2.20', provider: 'anthropic', keyId: 'anthropic-1', status: 200 }),
    ...[9, 10].map((m) =>
      request(m, { sourceIp: '203.0.113.7', status: 401, errorClass: 'invalid_client_key', attempts: 0 }),
    ),
    ...[11, 12].map((m) =>
      request(m, {
        clientId: 'team-a',
        sourceIp: '10.0.1.10',
        provider: 'openai',
        status: 400,
        errorClass: 'guardrail_blocked',
        attempts: 0,
        guardrails: [
          { detector: 'email', action: 'log', count: 1 },
          { detector: 'credit_card', action: 'block', count: 1 },
        ],
      }),
    ),
    request(13, {
      clientId: 'team-b',
      sourceIp: '10.0.2.20',
      provider: 'openai',
      status: 400,
      errorClass: 'guardrail_blocked',
      attempts: 0,
      guardrails: [{ detector: 'phone', action: 'redact', count: 1000 }],
    }),
    request(14, { clientId: PLANTED.clientKeyAsId, sourceIp: '10.0.9.9', status: 200 }),
    ...[5, 6, 7].map((m) => attempt(m, 'openai', 'openai-1', 'success')),
    attempt(7, 'openai', 'openai-2', 'rate_limited'),
    attempt(8, 'anthropic', 'anthropic-1', 'success'),
    at(4, { _aws: { Timestamp: minutesAgo(4), CloudWatchMetrics: [] }, Requests: 10 }),
    // Before the window: counted by no section.
    request(180, { clientId: 'team-c', sourceIp: '198.51.100.9', status: 200, provider: 'openai', keyId: 'openai-3' }),
    attempt(180, 'openai', 'openai-3', 'success'),
  ],
  api: [
    ...[
      [20, 'POST /console/api/login 401 12.345'],
      [21, 'POST /console/api/login 401 11.002'],
      [22, 'POST /console/api/login 401 10.917'],
      [23, 'POST /console/api/login 429 3.210'],
      [24, 'POST /console/api/login 200 80.100'],
      [25, 'GET /v1/conversations/3f2b6c1e-8d4a-4b7e-9c1a-2e5f7a9b0c3d 401 2.001'],
      [26, 'POST /v1/chat-messages 401 1.500'],
      [27, 'POST /v1/chat-messages 401 1.400'],
      [28, 'POST /v1/chat-messages 200 900.000'],
      [29, 'GET /console/api/apps 401 3.000'],
      [180, 'POST /console/api/login 401 12.000'],
    ].map(([m, access]) =>
      at(m as number, {
        ts: new Date(minutesAgo(m as number)).toISOString(),
        severity: 'INFO',
        service: 'langgenius/dify',
        caller: 'ext_request_logging.py:83',
        message: `${access} 4bf92f3577b34da6a3ce929d0e0e4736`,
      }),
    ),
    at(30, {
      ts: new Date(minutesAgo(30)).toISOString(),
      severity: 'ERROR',
      service: 'langgenius/dify',
      caller: 'completion.py:120',
      message: `invoke failed for "${PLANTED.prompt}" with key ${PLANTED.difyAppKey} and ${PLANTED.providerKey}`,
    }),
  ],
  waf: [
    ...[
      [31, '203.0.113.7', 'JP', 'POST', '/console/api/login', 'ALLOW', 'Default_Action'],
      [32, '203.0.113.7', 'JP', 'POST', '/console/api/login', 'ALLOW', 'Default_Action'],
      [33, '203.0.113.7', 'JP', 'POST', '/console/api/login', 'ALLOW', 'Default_Action'],
      [34, '203.0.113.7', 'JP', 'POST', '/console/api/login', 'ALLOW', 'Default_Action'],
      [35, '203.0.113.7', 'JP', 'POST', '/console/api/login', 'BLOCK', 'LoginRateLimitPerClientIp'],
      [36, '203.0.113.7', 'JP', 'POST', '/console/api/login', 'BLOCK', 'LoginRateLimitPerClientIp'],
      [37, '198.51.100.23', 'US', 'POST', '/console/api/email-code-login/validity', 'ALLOW', 'Default_Action'],
      [38, '198.51.100.23', 'US', 'GET', '/console/api/login', 'ALLOW', 'Default_Action'],
      [39, '192.0.2.1', 'DE', 'POST', '/v1/chat-messages', 'ALLOW', 'Default_Action'],
      [180, '192.0.2.99', 'FR', 'POST', '/console/api/login', 'ALLOW', 'Default_Action'],
    ].map(([m, clientIp, country, httpMethod, uri, action, terminatingRuleId]) =>
      at(m as number, {
        timestamp: minutesAgo(m as number),
        formatVersion: 1,
        webaclId: `arn:aws:wafv2:${REGION}:123456789012:regional/webacl/${STACK}/1`,
        terminatingRuleId,
        terminatingRuleType: action === 'BLOCK' ? 'RATE_BASED' : 'REGULAR',
        action,
        httpSourceName: 'ALB',
        httpRequest: {
          clientIp,
          country,
          headers: [
            { name: 'authorization', value: `Bearer ${PLANTED.difyAppKey}` },
            { name: 'user-agent', value: PLANTED.prompt },
          ],
          uri,
          args: PLANTED.wafArgs,
          httpVersion: 'HTTP/2.0',
          httpMethod,
          requestId: `1-${m}`,
        },
      }),
    ),
  ],
  ssrfProxy: [
    ...[
      [40, '10.0.3.17 TCP_DENIED/403 3899 CONNECT 169.254.169.254:443 - HIER_NONE/- text/html'],
      [41, '10.0.3.17 TCP_DENIED/403 3899 CONNECT 169.254.169.254:443 - HIER_NONE/- text/html'],
      [
        42,
        `10.0.3.17 TCP_DENIED/403 3899 GET http://proxyuser:${PLANTED.proxyPassword}@10.0.0.5:8080/admin?token=${PLANTED.urlToken} - HIER_NONE/- text/html`,
      ],
      [43, '10.0.3.18 TCP_TUNNEL/200 5120 CONNECT api.openai.com:443 - HIER_DIRECT/162.159.140.245 -'],
      [180, '10.0.3.19 TCP_DENIED/403 3899 CONNECT 10.0.0.9:443 - HIER_NONE/- text/html'],
    ].map(([m, rest]) => at(m as number, `${(minutesAgo(m as number) / 1000).toFixed(3)}      0 ${rest}`)),
    at(44, '2026/12/02 10:00:00| WARNING: HTTP requires the use of Via'),
  ],
};

const inWindow = (events: Planted[], since = 60) => events.filter((e) => e.timestamp >= minutesAgo(since)).length;

interface Captured {
  code: number;
  out: string;
  err: string;
}

describe('dify-aws investigate', () => {
  let moto: Moto;
  let cfn: CloudFormationClient;
  let logs: CloudWatchLogsClient;
  const saved = { ...process.env };

  beforeAll(async () => {
    moto = await startMoto();
    // The command makes its own Logs client; the SDK's standard variables point it at moto_server.
    process.env.AWS_ENDPOINT_URL_CLOUDWATCH_LOGS = moto.endpoint;
    process.env.AWS_ACCESS_KEY_ID = MOTO_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = MOTO_CREDENTIALS.secretAccessKey;
    const config = { region: REGION, endpoint: moto.endpoint, credentials: MOTO_CREDENTIALS };
    cfn = new CloudFormationClient(config);
    logs = new CloudWatchLogsClient(config);
    const deploy = async (name: string, outputs: Record<string, string>) => {
      // Spread over the deployment's stacks, as a deployment has them.
      const stacks = deploymentStacks(name);
      const entries = Object.entries(outputs);
      for (const [index, stackName] of stacks.entries()) {
        const mine = entries.filter((_, position) => position % stacks.length === index);
        await cfn.send(
          new CreateStackCommand({
            StackName: stackName,
            TemplateBody: JSON.stringify({
              Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
              Outputs: Object.fromEntries(mine.map(([k, v]) => [k, { Value: v }])),
            }),
          }),
        );
      }
    };
    const outputs = {
      Profile: 'prod',
      GatewayLogGroupName: GROUPS.gateway,
      ApiLogGroupName: GROUPS.api,
      SsrfProxyLogGroupName: GROUPS.ssrfProxy,
      WorkerLogGroupName: `/dify/${STACK}/ecs/worker`,
    };
    await deploy(STACK, outputs);
    // edge=cloudfront: the web ACL logs to aws-waf-logs-Edge-Global.cloudfront in us-east-1, never created here.
    await deploy('Edge', { ...outputs, DistributionId: 'E2EXAMPLE' });
    await deploy('OnEks', { Profile: 'dev', Platform: 'eks', GatewayLogGroupName: GROUPS.gateway });
    // OnEks's web ACL log group, empty.
    await logs.send(new CreateLogGroupCommand({ logGroupName: 'aws-waf-logs-OnEks.regional' }));
    for (const [source, group] of Object.entries(GROUPS)) {
      await logs.send(new CreateLogGroupCommand({ logGroupName: group }));
      await logs.send(new CreateLogStreamCommand({ logGroupName: group, logStreamName: 'planted' }));
      const events = [...EVENTS[source as keyof typeof GROUPS]].sort((a, b) => a.timestamp - b.timestamp);
      await logs.send(new PutLogEventsCommand({ logGroupName: group, logStreamName: 'planted', logEvents: events }));
    }
  });
  afterAll(async () => {
    process.env = saved;
    cfn?.destroy();
    logs?.destroy();
    await moto?.stop();
  });

  /** Runs `dify-aws <argv> --region us-east-1`; fails the test if it printed a planted secret. */
  async function cli(argv: string[], overrides: Parameters<typeof run>[2] = {}): Promise<Captured> {
    const captured: Captured = { code: -1, out: '', err: '' };
    const io: Io = {
      out: (line) => (captured.out += `${line}\n`),
      err: (line) => (captured.err += `${line}\n`),
      readSecret: async () => '',
      confirm: async () => false,
    };
    captured.code = await run([...argv, '--region', REGION], io, {
      now: () => NOW,
      sleep: async () => undefined,
      clients: { cloudFormation: cfn },
      ...overrides,
    });
    const printed = `${captured.out}\n${captured.err}`;
    expect(Object.entries(PLANTED).filter(([, secret]) => printed.includes(secret))).toEqual([]);
    return captured;
  }

  interface SectionJson {
    id: string;
    status: string;
    reason?: string;
    logGroups: string[];
    region?: string;
    total?: number;
    rows: Array<Record<string, string | number>>;
    withheld: number;
    unreadable: number;
  }
  const sections = (out: string) =>
    Object.fromEntries((JSON.parse(out).sections as SectionJson[]).map((s) => [s.id, s]));

  describe('against moto_server alone', () => {
    it("queries each section's log group over the window, and prints nothing moto cannot aggregate", async () => {
      const { code, out, err } = await cli(['investigate', '--stack', STACK, '--json']);
      expect(code).toBe(0);
      const report = JSON.parse(out);
      expect(report.window).toEqual({
        start: new Date(minutesAgo(60)).toISOString(),
        end: NOW.toISOString(),
      });
      // moto answers a stats query with one row per event in the window, without the count: the
      // command leaves each out as unreadable. That the number equals the group's events in the
      // window (not the ones before) is moto's evaluation of the group and the window.
      const bySection = sections(out);
      const group = Object.fromEntries(SECTIONS.map((s) => [s.id, s.source]));
      for (const [id, section] of Object.entries(bySection)) {
        const source = group[id] as keyof typeof GROUPS;
        expect([id, section.status, section.logGroups, section.rows, section.unreadable]).toEqual([
          id,
          'complete',
          [GROUPS[source]],
          [],
          inWindow(EVENTS[source]),
        ]);
      }
      expect(inWindow(EVENTS.gateway)).toBeLessThan(EVENTS.gateway.length);
      // What moto recorded: each group got exactly the queries of its sections.
      for (const [source, name] of Object.entries(GROUPS)) {
        const ran = (await logs.send(new DescribeQueriesCommand({ logGroupName: name }))).queries ?? [];
        expect(ran.map((q) => q.queryString).sort()).toEqual(
          SECTIONS.filter((s) => s.source === source)
            .map((s) => s.query)
            .sort(),
        );
      }
      expect(err).toContain(`[1/6] requests: querying ${GROUPS.gateway}`);
      expect(err).toMatch(/\[6\/6\] provider-keys: complete in \d+\.\d s/);
    });

    it('reports a missing log group in its section, runs the others, and exits 4', async () => {
      const { code, out, err } = await cli(['investigate', '--stack', 'Edge', '--json']);
      const bySection = sections(out);
      expect(bySection['sign-in-attempts']).toMatchObject({
        status: 'failed',
        logGroups: ['aws-waf-logs-Edge-Global.cloudfront'],
        region: 'us-east-1',
        reason: 'could not start the query: the log group does not exist (ResourceNotFoundException)',
      });
      expect(Object.values(bySection).filter((s) => s.status === 'complete')).toHaveLength(5);
      expect([code, err]).toEqual([
        4,
        expect.stringContaining('1 of 6 queries did not complete (sign-in-attempts); their sections say why'),
      ]);
    });

    it('skips, saying why, the sections whose log group the deployment does not output', async () => {
      const { code, out } = await cli(['investigate', '--stack', 'OnEks', '--json']);
      expect(code).toBe(0);
      const bySection = sections(out);
      expect(bySection['denied-egress']).toMatchObject({
        status: 'skipped',
        reason:
          "deployment OnEks has no output SsrfProxyLogGroupName: on EKS, Dify's services do not log to a log group of the stack",
      });
      expect(bySection['failed-sign-ins'].status).toBe('skipped');
      expect(bySection['provider-keys'].status).toBe('complete');
      expect(bySection['sign-in-attempts']).toMatchObject({
        status: 'complete',
        logGroups: ['aws-waf-logs-OnEks.regional'],
        total: 0,
      });
    });

    it('names a missing stack', async () => {
      const { code, err } = await cli(['investigate', '--stack', 'NoSuchStack']);
      expect([code, err.trim()]).toEqual([
        1,
        'dify-aws: stack NoSuchStack not found in us-east-1; pass --stack NAME of a deployed stack (the name given to cdk deploy; Dify by default), and --region REGION if it is in another region',
      ]);
    });
  });

  describe('with the queries evaluated (Logs Insights evaluator over the events in moto_server)', () => {
    const started: StartQueryCommandInput[] = [];
    let cloudWatch: AwsClientStub<CloudWatchLogsClient>;
    /** Queries whose results never complete, by a log group they run on. */
    const stuck = new Set<string>();
    /** Queries CloudWatch reports Failed, by a log group they run on. */
    const failing = new Set<string>();

    beforeAll(() => {
      // The real send, kept to read the events back from moto_server while the class is mocked.
      const realSend = CloudWatchLogsClient.prototype.send as (
        this: CloudWatchLogsClient,
        command: FilterLogEventsCommand,
      ) => Promise<FilterLogEventsCommandOutput>;
      const eventsIn = async (input: StartQueryCommandInput) => {
        const all: InsightsEvent[] = [];
        for (const logGroupName of input.logGroupNames ?? []) {
          const response = await realSend.call(
            logs,
            new FilterLogEventsCommand({
              logGroupName,
              startTime: input.startTime! * 1000,
              endTime: input.endTime! * 1000,
            }),
          );
          all.push(...(response.events ?? []).map((e) => ({ timestamp: e.timestamp!, message: e.message! })));
        }
        return all;
      };
      const queries = new Map<string, { input: StartQueryCommandInput; events: InsightsEvent[] }>();
      cloudWatch = mockClient(CloudWatchLogsClient);
      cloudWatch.on(StartQueryCommand).callsFake(async (input: StartQueryCommandInput) => {
        started.push(input);
        const queryId = `query-${started.length}`;
        queries.set(queryId, { input, events: await eventsIn(input) });
        return { queryId };
      });
      cloudWatch.on(GetQueryResultsCommand).callsFake(async ({ queryId }: { queryId: string }) => {
        const { input, events } = queries.get(queryId)!;
        if (input.logGroupNames!.some((name) => stuck.has(name))) return { status: 'Running', results: [] };
        if (input.logGroupNames!.some((name) => failing.has(name))) return { status: 'Failed', results: [] };
        return { status: 'Complete', results: evaluate(input.queryString!, events) };
      });
      cloudWatch.on(StopQueryCommand).resolves({ success: true });
    });
    afterAll(() => cloudWatch.restore());
    beforeEach(() => {
      cloudWatch.resetHistory();
      started.length = 0;
      stuck.clear();
      failing.clear();
    });

    it('counts what each section asks for, over the window only, in --json', async () => {
      const { code, out } = await cli(['investigate', '--stack', STACK, '--since', '1h', '--json']);
      expect(code).toBe(0);
      expect(started.map((s) => [s.logGroupNames, s.startTime, s.endTime])).toEqual(
        SECTIONS.map((s) => [[GROUPS[s.source]], minutesAgo(60) / 1000, NOW.getTime() / 1000]),
      );
      const bySection = sections(out);
      const summary = Object.fromEntries(
        Object.entries(bySection).map(([id, s]) => [
          id,
          { total: s.total, rows: s.rows, withheld: s.withheld, unreadable: s.unreadable },
        ]),
      );
      expect(summary).toEqual({
        requests: {
          total: 10,
          withheld: 1,
          unreadable: 0,
          rows: [
            { client: 'team-a', sourceIp: '10.0.1.10', requests: 5 },
            { client: '(no client identified)', sourceIp: '203.0.113.7', requests: 2 },
            { client: 'team-b', sourceIp: '10.0.2.20', requests: 2 },
            { client: WITHHELD, sourceIp: '10.0.9.9', requests: 1 },
          ],
        },
        'failed-sign-ins': {
          total: 7,
          withheld: 0,
          unreadable: 0,
          rows: [
            { kind: 'console sign-in: wrong password', path: '/console/api/login', status: '401', failures: 3 },
            { kind: 'service API: key rejected', path: '/v1/chat-messages', status: '401', failures: 2 },
            { kind: 'console sign-in: locked out', path: '/console/api/login', status: '429', failures: 1 },
            { kind: 'service API: key rejected', path: '/v1/conversations/{id}', status: '401', failures: 1 },
          ],
        },
        'sign-in-attempts': {
          total: 7,
          withheld: 0,
          unreadable: 0,
          rows: [
            { sourceIp: '203.0.113.7', country: 'JP', action: 'ALLOW', rule: 'Default_Action', attempts: 4 },
            { sourceIp: '203.0.113.7', country: 'JP', action: 'BLOCK', rule: 'LoginRateLimitPerClientIp', attempts: 2 },
            { sourceIp: '198.51.100.23', country: 'US', action: 'ALLOW', rule: 'Default_Action', attempts: 1 },
          ],
        },
        'guardrail-blocks': {
          total: 3,
          withheld: 0,
          unreadable: 0,
          rows: [
            { client: 'team-a', sourceIp: '10.0.1.10', detector: 'credit_card', blocks: 2 },
            { client: 'team-b', sourceIp: '10.0.2.20', detector: '(a redact detector over its match cap)', blocks: 1 },
          ],
        },
        'denied-egress': {
          total: 3,
          withheld: 0,
          unreadable: 0,
          rows: [
            { client: '10.0.3.17', destination: '169.254.169.254:443', method: 'CONNECT', denials: 2 },
            { client: '10.0.3.17', destination: '10.0.0.5:8080', method: 'GET', denials: 1 },
          ],
        },
        'provider-keys': {
          total: 5,
          withheld: 0,
          unreadable: 0,
          rows: [
            { provider: 'openai', keyId: 'openai-1', outcome: 'success', attempts: 3 },
            { provider: 'anthropic', keyId: 'anthropic-1', outcome: 'success', attempts: 1 },
            { provider: 'openai', keyId: 'openai-2', outcome: 'rate_limited', attempts: 1 },
          ],
        },
      });
    });

    it('prints a table per section, and never a planted secret', async () => {
      const { code, out, err } = await cli([
        'investigate',
        '--stack',
        STACK,
        '--start',
        new Date(minutesAgo(200)).toISOString(),
        '--end',
        NOW.toISOString(),
      ]);
      expect(code).toBe(0);
      // A wider window takes in the events of three hours ago.
      expect(out).toContain('== LLM gateway requests per client and source address ==');
      expect(out).toMatch(/^team-c\s+198\.51\.100\.9\s+1$/m);
      expect(out).toMatch(/^openai\s+openai-3\s+success\s+1$/m);
      expect(out).toMatch(/^10\.0\.3\.19\s+10\.0\.0\.9:443\s+CONNECT\s+1$/m);
      expect(out).toContain('total 11; 1 value(s) withheld: they looked like a secret or free text');
      expect(out).toMatch(/^console sign-in: wrong password\s+\/console\/api\/login\s+401\s+4$/m);
      expect(err).toMatch(/\[3\/6\] sign-in-attempts: querying aws-waf-logs-Incident\.regional\n/);
    });

    it('stops a query that does not finish within its bounds, and reports the others', async () => {
      stuck.add(GROUPS.ssrfProxy);
      const { code, out, err } = await cli(['investigate', '--stack', STACK, '--timeout', '5', '--json']);
      const bySection = sections(out);
      expect(bySection['denied-egress']).toMatchObject({ status: 'timed out', rows: [] });
      expect(bySection['denied-egress'].reason).toMatch(/^no result within .* \(6 polls at most, --timeout 5 s\)/);
      expect(bySection['provider-keys'].total).toBe(5);
      // Six polls at most (the fixed clock never reaches the time bound), then StopQuery.
      const squid = started.findIndex((s) => s.logGroupNames![0] === GROUPS.ssrfProxy);
      const polls = cloudWatch
        .commandCalls(GetQueryResultsCommand)
        .filter((call) => call.args[0].input.queryId === `query-${squid + 1}`);
      expect(polls).toHaveLength(6);
      expect(cloudWatch.commandCalls(StopQueryCommand).map((call) => call.args[0].input)).toEqual([
        { queryId: `query-${squid + 1}` },
      ]);
      expect(err).toContain('[5/6] denied-egress: still running after');
      expect(code).toBe(4);
    });

    it('reports a query CloudWatch failed in its section', async () => {
      failing.add(GROUPS.waf);
      const { code, out } = await cli(['investigate', '--stack', STACK, '--since', '2h']);
      expect(out).toContain('failed: CloudWatch reports the query Failed');
      expect(out).toMatch(/^10\.0\.3\.17\s+169\.254\.169\.254:443\s+CONNECT\s+2$/m);
      expect(code).toBe(4);
    });
  });

  describe('arguments', () => {
    it.each([
      [['--since', '90x'], "--since '90x': expected a whole number and a unit, m (minutes), h (hours) or d (days)"],
      [['--since', '0h'], "--since '0h': expected a whole number and a unit"],
      [['--since', '1.5h'], "--since '1.5h': expected a whole number and a unit"],
      [['--start', 'yesterday'], "--start 'yesterday': expected an ISO 8601 time with its zone"],
      [['--start', '2026-12-02T09:00:00'], "--start '2026-12-02T09:00:00': expected an ISO 8601 time with its zone"],
      [['--start', '2026-02-30T09:00:00Z'], "--start '2026-02-30T09:00:00Z': expected an ISO 8601 time"],
      [
        ['--start', '2026-12-02T11:00:00Z', '--end', '2026-12-02T10:00:00Z'],
        '--start 2026-12-02T11:00:00.000Z is not before --end 2026-12-02T10:00:00.000Z: expected a window that starts before it ends',
      ],
      [['--end', '2026-12-02T10:00:00Z'], '--end needs --start'],
      [['--since', '1h', '--start', '2026-12-02T10:00:00Z'], '--since and --start/--end: give one or the other'],
      [['--timeout', '0'], "--timeout '0': expected a whole number of seconds from 1 to 3600"],
    ])('refuses %j before any AWS call', async (args, message) => {
      const cloudFormation = new CloudFormationClient({ region: REGION });
      const cfnMock = mockClient(cloudFormation);
      const logsMock = mockClient(CloudWatchLogsClient);
      try {
        const { code, err } = await cli(['investigate', ...args], { clients: { cloudFormation } });
        expect([code, err]).toEqual([2, expect.stringContaining(`dify-aws: ${message}`)]);
        expect([cfnMock.calls().length, logsMock.calls().length]).toEqual([0, 0]);
      } finally {
        logsMock.restore();
        cfnMock.restore();
      }
    });
  });

  describe('the secret check on every printed value', () => {
    it.each([
      [PLANTED.providerKey, 'provider key'],
      ['sk-ant-api03-PlantedAnthropicKey0123456789', 'provider key'],
      [PLANTED.clientKey, 'gateway client key'],
      ['AKIAIOSFODNN7EXAMPLE', 'AWS access key id'],
      ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig', 'JSON web token'],
      ['-----BEGIN RSA PRIVATE KEY-----', 'private key'],
      [PLANTED.difyAppKey, 'Dify API key'],
      ['http://user:pass@host/', 'credentials in a URL'],
      ['Bearer abc', 'bearer token'],
      ['a'.repeat(20) + '0123456789abcdef', 'long random token'],
      [PLANTED.prompt, 'free text'],
      ['x'.repeat(300), 'too long for an identifier'],
    ])('withholds %s (%s)', (value, reason) => {
      expect(secretReason(value)).toBe(reason);
    });

    it('lets identifiers through', () => {
      const identifiers = [
        '10.0.1.10',
        '2001:db8::1',
        'team-a',
        'openai-1',
        'anthropic',
        '/v1/chat-messages',
        normalizePath('/v1/conversations/3f2b6c1e-8d4a-4b7e-9c1a-2e5f7a9b0c3d'),
        'credit_card',
        'custom:acme-ids',
        'AWS-AWSManagedRulesAmazonIpReputationList',
        'LoginRateLimitPerClientIp',
        '169.254.169.254:443',
        'bedrock-runtime.us-east-1.amazonaws.com:443',
        'rate_limited',
        'task-0123',
      ];
      expect(identifiers.filter((value) => secretReason(value) !== undefined)).toEqual([]);
    });

    it("checks every string cell but the command's own labels", () => {
      const labels = new Set(['(none)']);
      expect(
        withholdSecrets([{ a: PLANTED.providerKey, b: '(none)', c: 'ok', n: 3 }, { a: 'fine b' }], labels),
      ).toEqual({
        rows: [{ a: WITHHELD, b: '(none)', c: 'ok', n: 3 }, { a: WITHHELD }],
        withheld: 2,
      });
    });
  });
});
