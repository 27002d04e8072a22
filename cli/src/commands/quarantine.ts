import type { Command, CommandArgs } from '../command';
import type { Context } from '../context';
import { askCluster, platformOf } from '../cluster';
import { cancelled, CliError, UsageError } from '../errors';
import { table } from '../io';
import type { ResponderRequest } from '../../../contracts/cluster-responder';
import { NAMESPACES, QUARANTINE_LABEL, WORKLOAD_IDS, WORKLOADS, type WorkloadId } from '../../../contracts/kubernetes';

type Target = Extract<ResponderRequest, { action: 'quarantine' }>['target'];

const NAMESPACE_NAMES: readonly string[] = Object.values(NAMESPACES).map((ns) => ns.name);

/**
 * What to isolate, from the command line: a service (`api`, or its id `Api`), `pod/<namespace>/<name>`,
 * or `namespace/<name>`; only Dify's own namespaces and services.
 */
export function parseTarget(text: string | undefined): Target {
  const expected = `expected a service (${WORKLOAD_IDS.map((id) => WORKLOADS[id].name).join(', ')}), pod/NAMESPACE/POD or namespace/NAMESPACE (${NAMESPACE_NAMES.join(', ')})`;
  if (text === undefined) throw new UsageError(`quarantine: ${expected}`);
  const byName = WORKLOAD_IDS.find((id) => WORKLOADS[id].name === text || id === text);
  if (byName !== undefined) return { workload: byName as WorkloadId };
  const [kind, namespace, pod, ...extra] = text.split('/');
  if (namespace !== undefined && !NAMESPACE_NAMES.includes(namespace)) {
    throw new UsageError(`quarantine: '${namespace}' is not one of Dify's namespaces; ${expected}`);
  }
  if (kind === 'namespace' && namespace !== undefined && pod === undefined) return { namespace };
  if (kind === 'pod' && namespace !== undefined && pod && extra.length === 0) return { namespace, pod };
  throw new UsageError(`quarantine: '${text}' is not a target; ${expected}`);
}

/**
 * Incident response on EKS: cut every network flow of a pod, a service's pods or a namespace's pods by
 * labelling them `dify.security/quarantine=true` (no NetworkPolicy allow selects such a pod, and every
 * namespace denies by default), so they stay running for forensics; `--release` removes the label.
 * A quarantined pod still counts for its Deployment, which starts no replacement.
 */
export async function quarantine(ctx: Context, args: CommandArgs) {
  const target = parseTarget(args.action);
  if ((await platformOf(ctx)) !== 'eks') {
    throw new CliError(
      'quarantine labels Kubernetes pods, and this deployment runs Dify on ECS; there, stop a suspicious task with `aws ecs stop-task` (its log stays in CloudWatch) or scale everything down with `dify-aws lockdown`',
    );
  }
  const release = args.options.release === true;
  const what =
    'pod' in target
      ? `pod ${target.namespace}/${target.pod}`
      : 'workload' in target
        ? `every pod of ${WORKLOADS[target.workload].name}`
        : `every pod in namespace ${target.namespace}`;
  if (!release && !(await ctx.confirm(`Cut all network traffic of ${what}? It stops answering at once.`))) {
    throw cancelled();
  }
  const { rows } = await askCluster(ctx, { action: 'quarantine', target, release });
  if (rows.length === 0) throw new CliError(`quarantine: no pod matched ${what}`);
  ctx.print(
    { quarantined: !release, label: QUARANTINE_LABEL, pods: rows },
    `${table(rows.map((row) => ({ ...row })))}\n${
      release
        ? 'released: the pods are selected by their NetworkPolicies again'
        : 'each pod keeps running with no network; read its logs, then delete it with kubectl as the responder role when done'
    }`,
  );
}

export const QUARANTINE: Command = {
  name: 'quarantine',
  summary: 'EKS incident: cut all network traffic of pods, and keep them running for forensics',
  form: {
    summary: "cut all network traffic of a service's pods, a pod or a namespace's pods (EKS; asks first)",
    description:
      "Labels the pods dify.security/quarantine=true: no NetworkPolicy allow selects such a pod, and every namespace denies by default, so they stay running with no network; their Deployment starts no replacement. --release removes the label. Only Dify's own namespaces and services.",
    operand: {
      name: 'TARGET',
      description: `a service (${WORKLOAD_IDS.map((id) => WORKLOADS[id].name).join(', ')}), pod/NAMESPACE/POD or namespace/NAMESPACE (${NAMESPACE_NAMES.join(', ')})`,
      required: true,
      check: (value) => void parseTarget(value),
    },
    options: [{ name: 'release', description: 'remove the quarantine label: the pods get their network back' }],
    examples: ['dify-aws quarantine sandbox', 'dify-aws quarantine pod/dify/api-7f9c6b5d4-x2x7q --release'],
  },
  run: (ctx, args) => quarantine(ctx, args),
};
