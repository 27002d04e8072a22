import { CfnResource, Stack } from 'aws-cdk-lib';
import { RUNTIME_SERVICES } from '../../lib/app';
import { compareResourceSets } from '../helpers/resource-set';
import { build, VARIANTS } from '../helpers/synth';
import { resources } from '../helpers/template';

/**
 * The deployment's four stacks (lib/app.ts): each fits CloudFormation's limit with room to grow, they
 * deploy in the order of their references, and together they create exactly what one stack of
 * everything would. That last check builds each variant a second time, as one stack, and compares
 * what the two create resource by resource (test/helpers/resource-set.ts).
 */
const MOST_RESOURCES = 300;
const MOVED = ['Foundation', 'Data', 'Runtime'];
const STATEFUL = [
  'AWS::KMS::Key',
  'AWS::SecretsManager::Secret',
  'AWS::RDS::DBCluster',
  'AWS::ElastiCache::ReplicationGroup',
  'AWS::S3::Bucket',
];

describe.each(Object.entries(VARIANTS))('the deployment of variant %s', (_name, context) => {
  const split = build(context);
  const { stacks, placement } = split.stacks;
  const deployment = placement.main.stackName;

  it(`fits every stack in ${MOST_RESOURCES} resources (CloudFormation allows 500)`, () => {
    const counts = Object.fromEntries(
      Object.entries(split.templates).map(([name, template]) => [name, resources(template).length]),
    );
    expect(Object.entries(counts).filter(([, n]) => n > MOST_RESOURCES)).toEqual([]);
    expect(Object.keys(counts).sort()).toEqual([...stacks.map((stack) => stack.stackName)].sort());
  });

  // The split is the one change issue 12 made to the ECS templates, so ECS is held to one stack of
  // everything; EKS was born split (its runtime stack cannot join the main one without a cycle).
  const ecs = context.platform !== 'eks';
  (ecs ? it : it.skip)('creates what one stack of everything creates: the same types, properties and retention', () => {
    const single = build(context, { singleStack: true, nag: false });
    // One stack in the main region; the us-east-1 ones (CloudFront's web ACL, then its alarms) stay apart.
    expect(
      single.stacks.stacks.filter((stack) => stack !== single.stacks.global && stack !== single.stacks.globalAlarms),
    ).toHaveLength(1);
    // Dashboards are one per stack by design (each shows its own stack's alarms), so the split has
    // more of them than one stack: compared apart, below, by the alarms each shows.
    const withoutDashboards = (template: typeof split.template) => {
      const json = template.toJSON();
      return {
        ...json,
        Resources: Object.fromEntries(
          Object.entries(json.Resources).filter(
            ([, r]) => (r as { Type: string }).Type !== 'AWS::CloudWatch::Dashboard',
          ),
        ),
      };
    };
    const difference = compareResourceSets(withoutDashboards(single.template), withoutDashboards(split.template), {
      deployment,
      moved: MOVED,
    });
    expect({ onlyInOneStack: difference.onlyInFirst, onlyInTheSplit: difference.onlyInSecond }).toEqual({
      onlyInOneStack: [],
      onlyInTheSplit: [],
    });
    const counted = (template: typeof split.template) =>
      resources(template).filter(([, r]) => r.Type !== 'AWS::CloudWatch::Dashboard').length;
    expect(counted(split.template)).toBe(counted(single.template));
    // Every alarm is on exactly one dashboard, in one stack as in the split.
    for (const built of [single, split]) {
      const bodies = resources(built.template, 'AWS::CloudWatch::Dashboard').map(([, d]) =>
        JSON.stringify(d.Properties!.DashboardBody),
      );
      for (const [id] of resources(built.template, 'AWS::CloudWatch::Alarm')) {
        expect({ id, dashboards: bodies.filter((body) => body.includes(`"${id}"`)).length }).toEqual({
          id,
          dashboards: 1,
        });
      }
    }
  });

  it('deploys each stack after every stack it reads from, and the main stack last', () => {
    const order = [placement.foundation, placement.data, placement.runtime, placement.main];
    expect(order.map((stack) => stack.stackName)).toEqual(
      MOVED.map((suffix) => `${deployment}-${suffix}`).concat(deployment),
    );
    order.forEach((stack, index) => {
      for (const dependency of stack.dependencies) {
        if (dependency === split.stacks.global) continue;
        expect({ stack: stack.stackName, dependsOn: order.indexOf(dependency) < index }).toEqual({
          stack: stack.stackName,
          dependsOn: true,
        });
      }
    });
    expect(placement.main.dependencies).toEqual(expect.arrayContaining([placement.runtime]));
  });

  it('keeps every stateful resource where its retention says, as one stack did (EKS: as ECS does)', () => {
    // EKS: the ECS deployment of the same settings, which holds every stateful resource EKS has but its own key.
    const single = ecs
      ? build(context, { singleStack: true, nag: false })
      : build(
          Object.fromEntries(Object.entries(context).filter(([key]) => !key.startsWith('eks') && key !== 'platform')),
        );
    const retention = (template: typeof split.template) =>
      STATEFUL.flatMap((type) =>
        resources(template, type).map(([, r]) => `${type} ${r.DeletionPolicy ?? '-'} ${r.UpdateReplacePolicy ?? '-'}`),
      ).sort();
    if (ecs) expect(retention(split.template)).toEqual(retention(single.template));
    else {
      const eks = retention(split.template);
      for (const entry of retention(single.template)) {
        const at = eks.indexOf(entry);
        expect({ entry, found: at >= 0 }).toEqual({ entry, found: true });
        eks.splice(at, 1);
      }
      // What is left is the cluster's own key, kept or deleted as the profile keeps the other keys.
      expect(eks).toEqual([retention(single.template).find((r) => r.startsWith('AWS::KMS::Key'))]);
    }
    expect(retention(split.template).length).toBeGreaterThan(5);
  });

  it('puts only the chokepoints, none of them routed by the front door, in the runtime stack', () => {
    for (const service of RUNTIME_SERVICES) {
      const running = split.stacks.services[service];
      expect(running.row.edge).toBeUndefined();
      const owner = split.stacks.eks?.roleOf(running) ?? split.stacks.platform.taskOf(running);
      expect(Stack.of(owner).stackName).toBe(`${deployment}-Runtime`);
    }
    for (const construct of placement.main.node.findAll()) {
      if (CfnResource.isCfnResource(construct)) expect(Stack.of(construct)).toBe(placement.main);
    }
  });
});

describe('the resource-set comparison', () => {
  // Why: a comparison that cannot fail proves nothing. Each probe changes one thing a split must not.
  const { template } = build(VARIANTS.dev, { singleStack: true, nag: false });
  const base = template.toJSON();
  const options = { deployment: 'Dify', moved: MOVED };
  const firstOf = (type: string) => Object.keys(base.Resources).find((id) => base.Resources[id].Type === type)!;

  it('finds nothing between a template and itself', () => {
    const difference = compareResourceSets(base, structuredClone(base), options);
    expect([difference.onlyInFirst, difference.onlyInSecond]).toEqual([[], []]);
  });

  it('sees a changed property, a changed retention and a dropped resource', () => {
    const changed = structuredClone(base);
    changed.Resources[firstOf('AWS::S3::Bucket')].Properties.VersioningConfiguration = { Status: 'Suspended' };
    changed.Resources[firstOf('AWS::KMS::Key')].DeletionPolicy = 'Delete';
    changed.Resources[firstOf('AWS::KMS::Key')].UpdateReplacePolicy = 'Delete';
    delete changed.Resources[firstOf('AWS::RDS::DBCluster')];
    const difference = compareResourceSets(base, changed, options);
    expect(difference.onlyInFirst.length).toBeGreaterThanOrEqual(2);
    expect(difference.onlyInSecond.length).toBeGreaterThanOrEqual(1);
  });

  it('follows a renamed resource through the references to it, and sees a reference that moved', () => {
    const renamed = structuredClone(base);
    const bucket = firstOf('AWS::S3::Bucket');
    renamed.Resources[`${bucket}Moved`] = renamed.Resources[bucket];
    delete renamed.Resources[bucket];
    const text = JSON.stringify(renamed).replaceAll(`"${bucket}"`, `"${bucket}Moved"`);
    const followed = compareResourceSets(base, JSON.parse(text), options);
    expect([followed.onlyInFirst, followed.onlyInSecond]).toEqual([[], []]);
    expect(followed.renamed[bucket]).toBe(`${bucket}Moved`);
    // A reference that now points at another bucket is a change, not a rename.
    const buckets = Object.keys(base.Resources).filter((id) => base.Resources[id].Type === 'AWS::S3::Bucket');
    const swapped = JSON.stringify(base).replaceAll(`{"Ref":"${buckets[1]}"}`, `{"Ref":"${buckets[2]}"}`);
    const difference = compareResourceSets(base, JSON.parse(swapped), options);
    expect(difference.onlyInSecond.length).toBeGreaterThan(0);
  });
});
