import { DescribeServicesCommand } from '@aws-sdk/client-ecs';
import {
  ApplicationAutoScalingClient,
  DescribeScalableTargetsCommand,
  RegisterScalableTargetCommand,
} from '@aws-sdk/client-application-auto-scaling';
import { MOTO_CREDENTIALS } from '../../../gateway/test/helpers/moto';
import { type Deployment, REGION, startDeployment } from '../helpers/deployment';

/** dify-aws lockdown, end to end against a deployment in moto_server (helpers/deployment.ts). */
describe('dify-aws lockdown against moto_server', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment();
  });
  afterAll(async () => {
    await d?.stop();
  });

  describe('lockdown', () => {
    const names = ['dify-api', 'dify-worker', 'dify-beat', 'dify-sandbox', 'dify-plugindaemon', 'dify-gateway'];
    const desired = async () =>
      Object.fromEntries(
        (
          (await d.clients.ecs.send(new DescribeServicesCommand({ cluster: 'dify-cluster', services: names })))
            .services ?? []
        ).map((s) => [s.serviceName, s.desiredCount]),
      );

    it('scales every service to zero with autoscaling held there, and --undo restores exactly what was', async () => {
      const scaling = new ApplicationAutoScalingClient({
        region: REGION,
        endpoint: d.moto.endpoint,
        credentials: MOTO_CREDENTIALS,
      });
      await scaling.send(
        new RegisterScalableTargetCommand({
          ServiceNamespace: 'ecs',
          ScalableDimension: 'ecs:service:DesiredCount',
          ResourceId: 'service/dify-cluster/dify-api',
          MinCapacity: 2,
          MaxCapacity: 10,
        }),
      );
      const target = async () =>
        (
          await scaling.send(
            new DescribeScalableTargetsCommand({
              ServiceNamespace: 'ecs',
              ResourceIds: ['service/dify-cluster/dify-api'],
            }),
          )
        ).ScalableTargets![0];
      const before = await desired();
      try {
        const refused = await d.cli(['lockdown'], '', { clients: { scaling } });
        expect(refused.code).toBe(3);
        expect(await desired()).toEqual(before);

        const locked = await d.cli(['lockdown', '--yes', '--json'], '', { clients: { scaling } });
        expect(locked.code).toBe(0);
        expect(Object.values(await desired()).every((count) => count === 0)).toBe(true);
        expect(await target()).toMatchObject({
          MinCapacity: 0,
          MaxCapacity: 0,
          SuspendedState: { DynamicScalingOutSuspended: true },
        });
        // A second lockdown must not overwrite what the first remembered.
        expect((await d.cli(['lockdown', '--yes'], '', { clients: { scaling } })).out).toContain('already locked down');

        const undone = await d.cli(['lockdown', '--undo', '--json'], '', { clients: { scaling } });
        expect(undone.code).toBe(0);
        expect(await desired()).toEqual(before);
        expect(await target()).toMatchObject({
          MinCapacity: 2,
          MaxCapacity: 10,
          SuspendedState: { DynamicScalingOutSuspended: false },
        });
        expect(JSON.parse(undone.out).services.every((s: { result: string }) => s.result === 'restored')).toBe(true);
      } finally {
        scaling.destroy();
      }
    });
  });

  it('quarantine on an ECS deployment says there are no pods to label, and what to do instead', async () => {
    const refused = await d.cli(['quarantine', 'api', '--yes']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(
      /quarantine labels Kubernetes pods, and this deployment runs Dify on ECS; .*aws ecs stop-task.*dify-aws lockdown/,
    );
  });
});
