import { DescribeServicesCommand, ECSClient, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { mockClient } from 'aws-sdk-client-mock';
import {
  LOCKDOWN_ANNOTATION,
  QUARANTINE_LABEL,
  RESTARTED_AT_ANNOTATION,
  WORKLOADS,
} from '../../../contracts/kubernetes';
import { MOTO_CREDENTIALS } from '../../../gateway/test/helpers/moto';
import { type Cluster, startCluster } from '../helpers/cluster';
import { type Deployment, REGION, rolling, startDeployment } from '../helpers/deployment';
import { enableRotation, rotationDriver } from '../helpers/rotation';

/**
 * The CLI on an EKS deployment: Dify's services are Deployments behind a private API, reached through
 * the cluster responder (its real handler, against a Kubernetes API on 127.0.0.1 that enforces the
 * responders' RBAC); the LLM gateway is an ECS service in moto_server.
 */
describe('dify-aws on an EKS deployment', () => {
  let d: Deployment;
  let cluster: Cluster;
  let revoked = 0;
  const deployment = (id: keyof typeof WORKLOADS) =>
    cluster.kube.object(`/apis/apps/v1/namespaces/${WORKLOADS[id].namespace}/deployments/${WORKLOADS[id].name}`)!;
  const cli = (argv: string[], clients: Record<string, unknown> = {}) =>
    d.cli(argv, '', { clients: { lambda: cluster.lambda, ...clients }, now: () => new Date('2026-12-02T10:00:00Z') });

  beforeAll(async () => {
    d = await startDeployment({ platform: 'eks' });
    cluster = await startCluster({ revoked: async () => ((revoked += 1), 42) });
  });
  afterAll(async () => {
    await cluster?.stop();
    await d?.stop();
  });
  afterEach(() => {
    // Every call reached the cluster as the responders, and the RBAC allowed each one.
    expect(cluster.kube.requests.filter((r) => r.status === 401 || r.status === 403)).toEqual([]);
    expect(new Set(cluster.invocations.map((i) => i.functionName))).toEqual(
      new Set(cluster.invocations.length === 0 ? [] : ['Dify-ClusterResponder']),
    );
  });

  it('lockdown scales every Deployment and the ECS gateway to zero; --undo restores each exactly', async () => {
    const scaling = new ApplicationAutoScalingClient({
      region: REGION,
      endpoint: d.moto.endpoint,
      credentials: MOTO_CREDENTIALS,
    });
    const gateway = async () =>
      (await d.clients.ecs.send(new DescribeServicesCommand({ cluster: 'dify-cluster', services: ['dify-gateway'] })))
        .services![0].desiredCount;
    try {
      expect((await cli(['lockdown'], { scaling })).code).toBe(3);
      expect(deployment('Api').spec.replicas).toBe(2);
      const locked = await cli(['lockdown', '--yes', '--json'], { scaling });
      expect(locked.code).toBe(0);
      const services = JSON.parse(locked.out).services as Array<{ service: string; result: string }>;
      expect(services.map((s) => s.service)).toEqual([
        ...Object.keys(WORKLOADS).map((id) => `eks ${id}`),
        'dify-gateway',
      ]);
      for (const id of Object.keys(WORKLOADS) as Array<keyof typeof WORKLOADS>) {
        expect(deployment(id).spec.replicas).toBe(0);
        expect(deployment(id).metadata.annotations[LOCKDOWN_ANNOTATION]).toBeDefined();
      }
      expect(await gateway()).toBe(0);
      const undone = await cli(['lockdown', '--undo', '--json'], { scaling });
      expect(undone.code).toBe(0);
      expect(JSON.parse(undone.out).services.every((s: { result: string }) => s.result === 'restored')).toBe(true);
      expect(deployment('Beat').spec.replicas).toBe(1);
      expect(deployment('Web').spec.replicas).toBe(2);
      expect(await gateway()).toBe(1);
    } finally {
      scaling.destroy();
    }
  });

  it('secrets rotate: the rotation function restarts exactly the consumers’ Deployments, and the CLI waits for their rollout', async () => {
    const ecs = mockClient(ECSClient);
    await enableRotation(d.clients.secrets, d.outputs.SandboxApiKeySecretArn);
    const driver = rotationDriver({
      moto: d.clients.secrets,
      functionName: d.outputs.SecretRotationFunctionName,
      targets: {
        [d.outputs.SandboxApiKeySecretArn]: {
          kind: 'shared-key',
          what: 'the sandbox API key',
          consumers: {
            cluster: '',
            services: [],
            workloads: ['Api', 'Worker', 'Sandbox'],
            responder: d.outputs.ClusterResponderFunctionName,
          },
        },
      },
      responder: cluster.lambda,
    });
    const before = await d.value(d.outputs.SandboxApiKeySecretArn);
    try {
      const rotated = await d.cli(['secrets', 'rotate', 'sandbox-key', '--yes', '--json'], '', {
        clients: { ecs: new ECSClient({ region: REGION }), secrets: driver.secrets, lambda: driver.lambda },
        now: () => new Date('2026-12-02T10:00:00Z'),
        // Each wait lasts until the rotation Secrets Manager runs in the background has ended.
        sleep: async () => {
          await driver.running;
        },
      });
      expect(rotated.code).toBe(0);
      expect(JSON.parse(rotated.out)).toMatchObject({ restarted: ['Api', 'Worker', 'Sandbox'], healthy: true });
      expect(await d.value(d.outputs.SandboxApiKeySecretArn)).not.toBe(before);
      for (const id of Object.keys(WORKLOADS) as Array<keyof typeof WORKLOADS>) {
        const at = deployment(id).spec.template.metadata.annotations?.[RESTARTED_AT_ANNOTATION];
        expect({ id, at }).toEqual({
          id,
          at: ['Api', 'Worker', 'Sandbox'].includes(id) ? '2026-12-02T10:00:00.000Z' : undefined,
        });
      }
      // The first rollout poll finds the pods still rolling, the next one done.
      expect(rotated.err).toMatch(/pods only: Api \(0 new, 2\/2 available\), Worker .*, Sandbox.* \(0 s elapsed\)/);
      expect(cluster.invocations.slice(-3).map((i) => i.request.action)).toEqual(['restart', 'rollout', 'rollout']);
      expect(ecs.calls()).toHaveLength(0);
    } finally {
      ecs.restore();
    }
  });

  it('redeploys a consumer that runs on ECS (the gateway) there, and restarts nothing in the cluster for it', async () => {
    const ecs = mockClient(ECSClient);
    ecs.on(UpdateServiceCommand).resolves({});
    ecs.on(DescribeServicesCommand).resolves({ services: [rolling('dify-gateway', 'COMPLETED')] });
    const invoked = cluster.invocations.length;
    try {
      const { redeploy, consumersOf } = await import('../../src/commands/secrets');
      const { loadDeployment } = await import('../../src/stack');
      const outputs = await loadDeployment(d.clients.cfn, 'Dify');
      const consumers = consumersOf(outputs, ['Gateway'], 'eks');
      expect(consumers).toEqual({ cluster: 'dify-cluster', ecs: ['dify-gateway'], eks: [] });
      expect(consumersOf(outputs, ['Api', 'Gateway'], 'eks')).toEqual({
        cluster: 'dify-cluster',
        ecs: ['dify-gateway'],
        eks: ['Api'],
      });
      const { Context } = await import('../../src/context');
      const ctx = new Context({
        io: { out: () => undefined, err: () => undefined, readSecret: async () => '', confirm: async () => false },
        stackName: 'Dify',
        json: true,
        yes: true,
        clients: { cloudFormation: d.clients.cfn, ecs: new ECSClient({ region: REGION }), lambda: cluster.lambda },
        sleep: async () => undefined,
      });
      await redeploy(ctx, consumers, {});
      expect(ecs.commandCalls(UpdateServiceCommand).map((c) => c.args[0].input.service)).toEqual(['dify-gateway']);
      expect(cluster.invocations.length).toBe(invoked);
    } finally {
      ecs.restore();
    }
  });

  it('revoke-sessions asks the cluster responder, which deletes the refresh tokens inside the VPC', async () => {
    const refused = await cli(['revoke-sessions']);
    expect(refused.code).toBe(3);
    expect(revoked).toBe(0);
    const done = await cli(['revoke-sessions', '--yes', '--json']);
    expect(done.code).toBe(0);
    expect(JSON.parse(done.out)).toEqual({ revoked: true, deleted: 42 });
    expect(revoked).toBe(1);
  });

  it('quarantine cuts a service’s pods off the network, and --release puts them back', async () => {
    const pods = () =>
      [0, 1].map((i) =>
        cluster.kube.object(`/api/v1/namespaces/dify-sandbox/pods/sandbox-7d9f8b6c5-${'ab'[i]}x${i}zq`)!,
      );
    const out = await cli(['quarantine', 'sandbox', '--yes', '--json']);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.out).pods.map((p: { result: string }) => p.result)).toEqual(['quarantined', 'quarantined']);
    expect(pods().map((p) => p.metadata.labels[QUARANTINE_LABEL])).toEqual(['true', 'true']);
    const one = await cli(['quarantine', 'pod/dify-sandbox/sandbox-7d9f8b6c5-ax0zq', '--release', '--json']);
    expect(one.code).toBe(0);
    expect(pods().map((p) => p.metadata.labels[QUARANTINE_LABEL])).toEqual([undefined, 'true']);
    await cli(['quarantine', 'namespace/dify-sandbox', '--release']);
    expect(pods().map((p) => p.metadata.labels[QUARANTINE_LABEL])).toEqual([undefined, undefined]);
  });

  it('quarantine refuses a target outside Dify before asking anyone, naming what it expects', async () => {
    const asked = cluster.invocations.length;
    for (const [target, reason] of [
      [
        'kube-system',
        /is not a target; expected a service \(api, worker, beat, web, ssrf-proxy, sandbox, plugin-daemon\)/,
      ],
      ['pod/kube-system/coredns-1', /'kube-system' is not one of Dify's namespaces/],
      ['namespace/dify/extra', /is not a target/],
      ['pod/dify/', /is not a target/],
    ] as const) {
      const refused = await cli(['quarantine', target, '--yes']);
      expect(refused.code).toBe(2);
      expect(refused.err).toMatch(reason);
    }
    expect((await cli(['quarantine', '--yes'])).err).toMatch(/quarantine: expected TARGET: a service/);
    expect(cluster.invocations.length).toBe(asked);
  });

  it('says what failed when the responder cannot act: a missing pod, a crashed function', async () => {
    const missing = await cli(['quarantine', 'pod/dify/api-gone', '--yes']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(
      /the cluster responder answered: quarantine: GET .*api-gone: 404 pods "api-gone" not found/,
    );
    cluster.crashNext();
    const crashed = await cli(['quarantine', 'api', '--yes']);
    expect(crashed.code).toBe(1);
    expect(crashed.err).toMatch(
      /the cluster responder Dify-ClusterResponder failed \(Runtime.ExitError: .*\); see its log group/,
    );
  });
});
