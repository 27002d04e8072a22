import { Redis } from 'ioredis';
import type { ResponderResponse } from '../../../contracts/cluster-responder';
import {
  LOCKDOWN_ANNOTATION,
  QUARANTINE_LABEL,
  RESTARTED_AT_ANNOTATION,
  WORKLOADS,
} from '../../../contracts/kubernetes';
import { startRedis, type RedisServer } from '../../../gateway/test/helpers/redis';
import { CACHE_USERS } from '../../../lib/constructs/cache';
import { type FakeKubernetes, startFakeKubernetes, tokenProblem } from '../../../test/helpers/fake-kubernetes';
import { deleteRefreshTokens, type HandlerDependencies, respond } from '../src/index';
import { KubeClient } from '../src/kube';
import { eksToken } from '../src/token';

const CLUSTER = 'Dify';
const REGION = 'eu-west-1';
const CREDENTIALS = {
  accessKeyId: 'AKIAEXAMPLEEXAMPLE00',
  secretAccessKey: 'responderSecretAccessKeyExample0123456789',
  sessionToken: 'responderSessionTokenExample0123456789',
};
const NOW = new Date('2026-12-02T09:00:00Z');
const deployment = (id: keyof typeof WORKLOADS) =>
  `/apis/apps/v1/namespaces/${WORKLOADS[id].namespace}/deployments/${WORKLOADS[id].name}`;

describe('cluster responder: the EKS token', () => {
  it('is a pre-signed STS GetCallerIdentity URL bound to the cluster, one minute long, as EKS accepts', async () => {
    const token = await eksToken(CLUSTER, REGION, CREDENTIALS, NOW);
    expect(tokenProblem(`Bearer ${token}`, CLUSTER, REGION)).toBeUndefined();
    const url = new URL(Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString());
    expect(url.searchParams.get('X-Amz-Date')).toBe('20261202T090000Z');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host;x-k8s-aws-id');
    expect(url.searchParams.get('X-Amz-Security-Token')).toBe(CREDENTIALS.sessionToken);
    // The secret key signs; it never travels.
    expect(token).not.toContain(CREDENTIALS.secretAccessKey);
    expect(Buffer.from(token.slice(11), 'base64url').toString()).not.toContain(CREDENTIALS.secretAccessKey);
    // Deterministic for one instant and one cluster; another cluster's token differs.
    expect(await eksToken(CLUSTER, REGION, CREDENTIALS, NOW)).toBe(token);
    expect(await eksToken('Other', REGION, CREDENTIALS, NOW)).not.toBe(token);
  });
});

describe('cluster responder against a Kubernetes API that enforces the responders’ RBAC', () => {
  let kube: FakeKubernetes;
  let deps: HandlerDependencies;
  const lines: Array<Record<string, unknown>> = [];
  let revoked = 0;
  const ask = async (event: unknown) => respond(event, deps);
  const ok = async <T>(event: unknown): Promise<T> => {
    const answer = (await ask(event)) as ResponderResponse;
    if (!answer.ok) throw new Error(answer.error);
    return answer.result as T;
  };

  beforeAll(async () => {
    kube = await startFakeKubernetes({ clusterName: CLUSTER, region: REGION });
    deps = {
      kube: new KubeClient({
        baseUrl: kube.url,
        token: () => eksToken(CLUSTER, REGION, CREDENTIALS, NOW),
        timeoutMs: 5000,
      }),
      log: (line) => lines.push(line),
      revokeSessions: async () => ++revoked,
    };
  });
  afterAll(async () => {
    await kube?.stop();
  });
  afterEach(() => {
    // Everything the function did, the responders' RBAC allowed: no call was refused.
    expect(kube.requests.filter((r) => r.status === 401 || r.status === 403)).toEqual([]);
  });

  it('refuses a malformed request before it reaches the cluster, saying what is wrong', async () => {
    const before = kube.requests.length;
    const cases: Array<[unknown, RegExp]> = [
      [{ action: 'exec', command: 'sh' }, /action/],
      [{ action: 'lockdown' }, /undo/],
      [{ action: 'restart', workloads: [], at: NOW.toISOString() }, /workloads/],
      [{ action: 'restart', workloads: ['Gateway'], at: NOW.toISOString() }, /workloads/],
      [{ action: 'quarantine', target: { namespace: 'kube-system' }, release: false }, /target/],
      [{ action: 'quarantine', target: { namespace: 'dify', pod: '../secrets/x' }, release: false }, /target/],
      [{ action: 'inspect', extra: true }, /extra|Unrecognized/i],
      ['lockdown', /object/],
      [null, /object/],
    ];
    for (const [event, reason] of cases) {
      const answer = await ask(event);
      expect(answer.ok).toBe(false);
      expect(answer.ok === false && answer.error).toMatch(/^request: /);
      expect(answer.ok === false && answer.error).toMatch(reason);
    }
    expect(kube.requests.length).toBe(before);
    expect(lines.slice(-cases.length).every((l) => l.outcome === 'refused')).toBe(true);
  });

  it('locks down every Deployment in one patch each, remembering its replicas, and --undo restores them exactly', async () => {
    const first = await ok<{ rows: Array<{ workload: string; replicas: number; result: string }> }>({
      action: 'lockdown',
      undo: false,
    });
    expect(first.rows.map((r) => r.workload).sort()).toEqual(Object.keys(WORKLOADS).sort());
    expect(first.rows.find((r) => r.workload === 'Beat')!.result).toBe('scaled down from 1');
    expect(first.rows.find((r) => r.workload === 'Api')!.result).toBe('scaled down from 2');
    for (const id of Object.keys(WORKLOADS) as Array<keyof typeof WORKLOADS>) {
      const d = kube.object(deployment(id))!;
      expect(d.spec.replicas).toBe(0);
      expect(JSON.parse(d.metadata.annotations[LOCKDOWN_ANNOTATION])).toEqual({ replicas: id === 'Beat' ? 1 : 2 });
    }
    const again = await ok<{ rows: Array<{ result: string }> }>({ action: 'lockdown', undo: false });
    expect(new Set(again.rows.map((r) => r.result))).toEqual(new Set(['already locked down']));
    expect(kube.object(deployment('Api'))!.metadata.annotations[LOCKDOWN_ANNOTATION]).toBe('{"replicas":2}');

    const undone = await ok<{ rows: Array<{ workload: string; replicas: number; result: string }> }>({
      action: 'lockdown',
      undo: true,
    });
    expect(new Set(undone.rows.map((r) => r.result))).toEqual(new Set(['restored']));
    for (const id of Object.keys(WORKLOADS) as Array<keyof typeof WORKLOADS>) {
      const d = kube.object(deployment(id))!;
      expect(d.spec.replicas).toBe(id === 'Beat' ? 1 : 2);
      expect(d.metadata.annotations ?? {}).not.toHaveProperty(LOCKDOWN_ANNOTATION);
    }
    const twice = await ok<{ rows: Array<{ result: string }> }>({ action: 'lockdown', undo: true });
    expect(new Set(twice.rows.map((r) => r.result))).toEqual(new Set(['not locked down; unchanged']));
  });

  it('restarts exactly the Deployments named, and reports their rollout until it is done', async () => {
    const at = NOW.toISOString();
    const before = kube.object(deployment('Sandbox'));
    expect(await ok({ action: 'restart', workloads: ['Api', 'Worker'], at })).toEqual({
      restarted: ['Api', 'Worker'],
    });
    for (const id of ['Api', 'Worker'] as const)
      expect(kube.object(deployment(id))!.spec.template.metadata.annotations[RESTARTED_AT_ANNOTATION]).toBe(at);
    expect(kube.object(deployment('Sandbox'))).toEqual(before);
    const polled = await ok<{ rows: Array<{ workload: string; done: boolean }> }>({
      action: 'rollout',
      workloads: ['Api', 'Worker'],
    });
    expect(polled.rows.map((r) => r.done)).toEqual([false, false]);
    const settled = await ok<{ rows: Array<{ workload: string; done: boolean; available: number }> }>({
      action: 'rollout',
      workloads: ['Api', 'Worker'],
    });
    expect(settled.rows).toEqual([
      { workload: 'Api', desired: 2, updated: 2, available: 2, done: true },
      { workload: 'Worker', desired: 2, updated: 2, available: 2, done: true },
    ]);
  });

  it('quarantines one pod, a service’s pods or a namespace’s, and releases them; nothing outside Dify is touched', async () => {
    const pods = (ns: string) =>
      Object.values(WORKLOADS)
        .filter((w) => w.namespace === ns)
        .flatMap((w) => [0, 1].map((i) => `/api/v1/namespaces/${ns}/pods/${w.name}-7d9f8b6c5-${'abcde'[i]}x${i}zq`))
        .filter((p) => kube.object(p) !== undefined);
    const label = (path: string) => kube.object(path)!.metadata.labels[QUARANTINE_LABEL];
    const one = await ok<{ rows: unknown[] }>({
      action: 'quarantine',
      target: { namespace: 'dify-sandbox', pod: 'sandbox-7d9f8b6c5-ax0zq' },
      release: false,
    });
    expect(one.rows).toEqual([{ namespace: 'dify-sandbox', pod: 'sandbox-7d9f8b6c5-ax0zq', result: 'quarantined' }]);
    expect(label('/api/v1/namespaces/dify-sandbox/pods/sandbox-7d9f8b6c5-ax0zq')).toBe('true');
    expect(label('/api/v1/namespaces/dify-sandbox/pods/sandbox-7d9f8b6c5-bx1zq')).toBeUndefined();

    const service = await ok<{ rows: Array<{ pod: string; result: string }> }>({
      action: 'quarantine',
      target: { workload: 'Sandbox' },
      release: false,
    });
    expect(service.rows.map((r) => r.result).sort()).toEqual(['already quarantined', 'quarantined']);

    const namespace = await ok<{ rows: Array<{ pod: string }> }>({
      action: 'quarantine',
      target: { namespace: 'dify' },
      release: false,
    });
    expect(namespace.rows).toHaveLength(pods('dify').length);
    expect(pods('dify').map(label)).toEqual(pods('dify').map(() => 'true'));
    expect(kube.object('/api/v1/namespaces/default/pods/other-app-0')!.metadata.labels).not.toHaveProperty(
      QUARANTINE_LABEL,
    );

    await ok({ action: 'quarantine', target: { namespace: 'dify' }, release: true });
    await ok({ action: 'quarantine', target: { workload: 'Sandbox' }, release: true });
    for (const path of [...pods('dify'), ...pods('dify-sandbox')]) expect(label(path)).toBeUndefined();

    const missing = await ask({ action: 'quarantine', target: { namespace: 'dify', pod: 'api-gone' }, release: false });
    expect(missing).toEqual({
      ok: false,
      error: expect.stringMatching(/^quarantine: GET .*api-gone: 404 pods "api-gone" not found$/),
    });
    // The failed call is the one 404 the API answered, and it is logged as failed.
    expect(lines.at(-1)).toMatchObject({ action: 'quarantine', outcome: 'failed' });
  });

  it('reads the posture doctor checks: Pod Security labels, NetworkPolicies and admission policies', async () => {
    const posture = await ok<{
      namespaces: Array<{ name: string; labels: Record<string, string> }>;
      networkPolicies: Record<string, string[]>;
      admissionPolicies: string[];
      admissionBindings: string[];
    }>({ action: 'inspect' });
    expect(posture.namespaces.map((n) => n.name)).toEqual(['dify', 'dify-egress', 'dify-sandbox', 'dify-plugins']);
    expect(posture.namespaces[0].labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    expect(posture.networkPolicies['dify-sandbox']).toEqual(['default-deny-all']);
    expect(posture.admissionPolicies).toHaveLength(5);
    expect(posture.admissionBindings).toEqual(posture.admissionPolicies);
    kube.remove('/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/dify-trusted-images');
    const weakened = await ok<{ admissionBindings: string[] }>({ action: 'inspect' });
    expect(weakened.admissionBindings).not.toContain('dify-trusted-images');
  });

  it('revokes sessions through its Valkey connection and writes one audit line per request, no token in it', async () => {
    expect(await ok({ action: 'revoke-sessions' })).toEqual({ deleted: 1 });
    expect(lines.at(-1)).toEqual({ action: 'revoke-sessions', target: undefined, outcome: 'done' });
    expect(JSON.stringify(lines)).not.toMatch(/k8s-aws-v1|responderSecret|responderSession/);
  });
});

describe('cluster responder: deleting the console refresh tokens as Dify’s own Valkey user', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await server?.stop();
  });

  it('deletes every refresh_token:* and account_refresh_token:* key, and nothing else', async () => {
    const { userName, accessString } = CACHE_USERS.dify;
    server = await startRedis({
      password: 'setupOnlyPassw0rd',
      config: `user ${userName} ${accessString} >difyPassw0rd\n`,
    });
    const setup = new Redis({ host: '127.0.0.1', port: server.port, password: 'setupOnlyPassw0rd' });
    clients.push(setup);
    for (let i = 0; i < 1500; i++) await setup.set(`refresh_token:t${i}`, `account-${i % 7}`);
    for (let i = 0; i < 7; i++) await setup.set(`account_refresh_token:account-${i}`, 'x');
    await setup.set('generate_task_belong:1', 'keep');
    await setup.set('plugin_daemon:session_info:1', 'keep');
    const dify = new Redis({
      host: '127.0.0.1',
      port: server.port,
      username: userName,
      password: 'difyPassw0rd',
      enableReadyCheck: false,
    });
    clients.push(dify);
    expect(await deleteRefreshTokens(dify)).toBe(1507);
    expect((await setup.keys('*')).sort()).toEqual(['generate_task_belong:1', 'plugin_daemon:session_info:1']);
    expect(await deleteRefreshTokens(dify)).toBe(0);
  });
});
