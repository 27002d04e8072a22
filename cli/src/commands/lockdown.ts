import {
  DescribeScalableTargetsCommand,
  RegisterScalableTargetCommand,
} from '@aws-sdk/client-application-auto-scaling';
import {
  DescribeServicesCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import type { Command, Options } from '../command';
import type { Context } from '../context';
import { askCluster, platformOf } from '../cluster';
import { awsError, cancelled } from '../errors';
import { table } from '../io';
import { OUTPUTS, SERVICES, serviceNameOutput } from '../../../contracts/stack-outputs';

/** The tag on each service that remembers what lockdown changed, so --undo restores it exactly. */
export const LOCKDOWN_TAG = 'dify-aws:lockdown';

/** Every service of the stack, by output name: Dify's seven and the gateway. */
interface Saved {
  /** desired count */
  d: number;
  /** autoscaling min and max, when the service scales */
  mn?: number;
  mx?: number;
}

/**
 * Incident response: scale every service to zero with autoscaling held at zero (so nothing scales
 * it back), remembering each service's desired count and limits in a tag; `--undo` puts back exactly
 * what the tag says and removes it.
 */
export async function lockdown(ctx: Context, options: Options) {
  if ((await platformOf(ctx)) === 'eks') return lockdownEks(ctx, options);
  const rows = await lockdownEcs(ctx, options, 'all');
  ctx.print(
    options.undo === true ? { undone: true, services: rows } : { lockedDown: true, services: rows },
    table(rows),
  );
}

type Row = { service: string | undefined; desired: number | undefined; result: string };

/**
 * On EKS: Dify's Deployments through the cluster responder (each scaled to zero in one patch that
 * also remembers its replicas), then the LLM gateway, which runs on ECS beside the cluster.
 */
async function lockdownEks(ctx: Context, options: Options) {
  const undo = options.undo === true;
  const stack = await ctx.stack();
  if (
    !undo &&
    !(await ctx.confirm(
      `Scale every Dify Deployment of ${stack.stackName} and its LLM gateway to zero? Dify and the gateway stop answering.`,
    ))
  ) {
    throw cancelled();
  }
  const { rows: cluster } = await askCluster(ctx, { action: 'lockdown', undo });
  const rows: Row[] = cluster.map((r) => ({ service: `eks ${r.workload}`, desired: r.replicas, result: r.result }));
  rows.push(...(await lockdownEcs(ctx, options, 'confirmed')));
  ctx.print(undo ? { undone: true, services: rows } : { lockedDown: true, services: rows }, table(rows));
}

/** The ECS services of the deployment: all of them on ECS, the LLM gateway alone on EKS. */
async function lockdownEcs(ctx: Context, options: Options, confirm: 'all' | 'confirmed'): Promise<Row[]> {
  const scaling = ctx.scaling;
  const stack = await ctx.stack();
  const cluster = stack.get(OUTPUTS.clusterName);
  const names = SERVICES.filter((s) => stack.has(serviceNameOutput(s))).map((s) => stack.get(serviceNameOutput(s)));
  let described;
  try {
    described = await ctx.ecs().send(new DescribeServicesCommand({ cluster, services: names, include: ['TAGS'] }));
  } catch (error) {
    throw awsError('reading the services', error);
  }
  const services = described.services ?? [];
  const resourceId = (name: string) => `service/${cluster}/${name}`;
  const targets = new Map<string, { min: number; max: number }>();
  const scalable = await scaling().send(
    new DescribeScalableTargetsCommand({ ServiceNamespace: 'ecs', ResourceIds: names.map(resourceId) }),
  );
  for (const t of scalable.ScalableTargets ?? [])
    targets.set(t.ResourceId!, { min: t.MinCapacity!, max: t.MaxCapacity! });
  const tagOf = async (arn: string) =>
    (await ctx.ecs().send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags?.find(
      (t) => t.key === LOCKDOWN_TAG,
    )?.value;

  if (options.undo === true) {
    const rows: Row[] = [];
    for (const service of services) {
      const tag = await tagOf(service.serviceArn!);
      if (tag === undefined) {
        rows.push({
          service: service.serviceName,
          desired: service.desiredCount,
          result: 'not locked down; unchanged',
        });
        continue;
      }
      const saved = JSON.parse(tag) as Saved;
      if (saved.mn !== undefined && saved.mx !== undefined) {
        await scaling().send(
          new RegisterScalableTargetCommand({
            ServiceNamespace: 'ecs',
            ScalableDimension: 'ecs:service:DesiredCount',
            ResourceId: resourceId(service.serviceName!),
            MinCapacity: saved.mn,
            MaxCapacity: saved.mx,
            SuspendedState: {
              DynamicScalingInSuspended: false,
              DynamicScalingOutSuspended: false,
              ScheduledScalingSuspended: false,
            },
          }),
        );
      }
      await ctx.ecs().send(new UpdateServiceCommand({ cluster, service: service.serviceName, desiredCount: saved.d }));
      await ctx.ecs().send(new UntagResourceCommand({ resourceArn: service.serviceArn, tagKeys: [LOCKDOWN_TAG] }));
      rows.push({ service: service.serviceName, desired: saved.d, result: 'restored' });
    }
    return rows;
  }

  if (
    confirm === 'all' &&
    !(await ctx.confirm(
      `Scale all ${services.length} services of ${stack.stackName} to zero? Dify and the gateway stop answering.`,
    ))
  ) {
    throw cancelled();
  }
  const rows: Row[] = [];
  for (const service of services) {
    if ((await tagOf(service.serviceArn!)) !== undefined) {
      rows.push({ service: service.serviceName, desired: 0, result: 'already locked down' });
      continue;
    }
    const target = targets.get(resourceId(service.serviceName!));
    const saved: Saved = { d: service.desiredCount ?? 0, ...(target ? { mn: target.min, mx: target.max } : {}) };
    // Remember first: if anything after this fails, --undo still knows the way back.
    await ctx.ecs().send(
      new TagResourceCommand({
        resourceArn: service.serviceArn,
        tags: [{ key: LOCKDOWN_TAG, value: JSON.stringify(saved) }],
      }),
    );
    if (target) {
      await scaling().send(
        new RegisterScalableTargetCommand({
          ServiceNamespace: 'ecs',
          ScalableDimension: 'ecs:service:DesiredCount',
          ResourceId: resourceId(service.serviceName!),
          MinCapacity: 0,
          MaxCapacity: 0,
          SuspendedState: {
            DynamicScalingInSuspended: true,
            DynamicScalingOutSuspended: true,
            ScheduledScalingSuspended: true,
          },
        }),
      );
    }
    await ctx.ecs().send(new UpdateServiceCommand({ cluster, service: service.serviceName, desiredCount: 0 }));
    rows.push({ service: service.serviceName, desired: 0, result: `scaled down from ${saved.d}` });
  }
  return rows;
}

export const LOCKDOWN: Command = {
  name: 'lockdown',
  summary: 'incident: scale every service to zero and hold autoscaling there; --undo restores',
  form: {
    summary: 'scale every service to zero and hold autoscaling there (asks first)',
    description:
      "Each service's desired count and autoscaling limits are remembered in a tag (on EKS, each Deployment's replicas in an annotation, through the cluster responder) before it is scaled down; --undo restores exactly what was remembered.",
    options: [{ name: 'undo', description: "restore each service's count and limits, as lockdown remembered them" }],
    examples: ['dify-aws lockdown --yes', 'dify-aws lockdown --undo'],
  },
  run: (ctx, { options }) => lockdown(ctx, options),
};
