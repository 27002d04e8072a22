import { SECRETS, type SecretEntry } from '../../contracts/secrets';
import { EKS_OUTPUTS, OUTPUTS, SERVICES, type ServiceId } from '../../contracts/stack-outputs';
import type { DifyTask } from '../../lib/constructs/runtime/ecs-task';
import { build, task, VARIANTS } from '../helpers/synth';
import { logicalId, resources } from '../helpers/template';

/**
 * The secret catalogue (contracts/secrets.ts) against the synthesized template. `dify-aws secrets
 * rotate` redeploys the catalogue's consumers of a secret; if a service that reads a secret were
 * missing from the list, it would keep running on the old value after a rotation. So, for every
 * secret: its output holds its ARN, and the services and tasks whose execution role may read it are
 * exactly its consumers (the task roles that read it at run time, exactly its readers).
 */
describe('the secret catalogue', () => {
  // Every option on, so that the secrets only some options create (SECRETS' onlyWith) are here too.
  const built = build(VARIANTS['prod-everything']);
  const { gateway } = built.stacks;
  const tasks: Record<ServiceId | 'MigrationTask', DifyTask> = {
    Api: task(built, 'api'),
    Worker: task(built, 'worker'),
    Beat: task(built, 'worker_beat'),
    Web: task(built, 'web'),
    Sandbox: task(built, 'sandbox'),
    PluginDaemon: task(built, 'plugin_daemon'),
    SsrfProxy: task(built, 'ssrf_proxy'),
    Gateway: gateway.service,
    MigrationTask: task(built, 'migration'),
  };
  const template = built.template.toJSON();
  /** The logical ids of the secrets a role's policies let it read. */
  const readable = (roleId: string) =>
    new Set(
      resources(built.template, 'AWS::IAM::Policy')
        .filter(([, p]) => (p.Properties?.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
        .flatMap(
          ([, p]) => (p.Properties?.PolicyDocument as any).Statement as Array<{ Action: unknown; Resource: unknown }>,
        )
        .filter((s) => JSON.stringify(s.Action).includes('secretsmanager:GetSecretValue'))
        .flatMap((s) => [...JSON.stringify(s.Resource).matchAll(/"Ref":"([A-Za-z0-9]+)"/g)].map((m) => m[1])),
    );
  const roles = Object.entries(tasks).map(([id, task]) => ({
    id,
    execution: readable(logicalId(task.taskDefinition.obtainExecutionRole())),
    task: readable(logicalId(task.taskRole)),
  }));

  it('names every service the stack outputs, and every output it names exists', () => {
    for (const service of SERVICES) expect(template.Outputs[`${service}ServiceName`]).toBeDefined();
    for (const name of Object.values(OUTPUTS).filter((o) => o !== OUTPUTS.distributionId)) {
      // This is an ECS build: it has every output but the EKS deployment's own, and none of those.
      if (EKS_OUTPUTS.includes(name)) expect(template.Outputs[name]).toBeUndefined();
      else expect(template.Outputs[name]).toBeDefined();
    }
  });

  it.each(Object.entries(SECRETS) as Array<[string, SecretEntry]>)(
    '%s: the consumers are exactly who may read it',
    (_id, entry) => {
      const value = template.Outputs[entry.output]?.Value as { Ref?: string };
      expect(value?.Ref).toMatch(/^[A-Za-z0-9]+$/);
      const secret = value.Ref!;
      const byExecutionRole = roles
        .filter((r) => r.execution.has(secret))
        .map((r) => r.id)
        .sort();
      const byTaskRole = roles
        .filter((r) => r.task.has(secret))
        .map((r) => r.id)
        .sort();
      expect(byExecutionRole).toEqual([...entry.consumers, ...entry.tasks].sort());
      expect(byTaskRole).toEqual([...(entry.readers ?? [])].sort());
    },
  );

  it('covers every secret a service or task may read', () => {
    const catalogued = new Set(
      Object.values(SECRETS).map((entry) => (template.Outputs[entry.output].Value as { Ref: string }).Ref),
    );
    for (const role of roles)
      for (const secret of [...role.execution, ...role.task]) expect(catalogued).toContain(secret);
  });
});
