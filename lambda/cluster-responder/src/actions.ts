import {
  containersPolicy,
  LOCKDOWN_ANNOTATION,
  NAMESPACES,
  QUARANTINE_LABEL,
  RESTARTED_AT_ANNOTATION,
  SERVICE_LABEL,
  TRUSTED_IMAGES_POLICY,
  WORKLOAD_IDS,
  WORKLOADS,
  type WorkloadId,
} from '../../../contracts/kubernetes';
import type {
  ClusterPosture,
  LockdownRow,
  QuarantineRow,
  ResponderRequest,
  ResponderResults,
  RolloutRow,
} from '../../../contracts/cluster-responder';
import { KubeError, type KubeClient, type KubeObject, paths } from './kube';

/** Deletes the console refresh tokens; the handler gives it a Valkey connection as Dify's own user. */
export type RevokeSessions = () => Promise<number>;

export interface ActionDependencies {
  readonly kube: KubeClient;
  readonly revokeSessions: RevokeSessions;
}

const deploymentPath = (id: WorkloadId) => paths.deployment(WORKLOADS[id].namespace, WORKLOADS[id].name);

/** What lockdown remembers on a Deployment: its replicas before. */
interface Saved {
  readonly replicas: number;
}

async function lockdown(kube: KubeClient, undo: boolean): Promise<ResponderResults['lockdown']> {
  const rows: LockdownRow[] = [];
  for (const workload of WORKLOAD_IDS) {
    let deployment: KubeObject;
    try {
      deployment = await kube.get(deploymentPath(workload));
    } catch (error) {
      // A deployment without this service (none is optional today) is reported, not fatal.
      if (error instanceof KubeError && error.status === 404) {
        rows.push({ workload, replicas: 0, result: 'no such Deployment; skipped' });
        continue;
      }
      throw error;
    }
    const replicas = Number(deployment.spec?.replicas ?? 0);
    const saved = deployment.metadata.annotations?.[LOCKDOWN_ANNOTATION];
    if (undo) {
      if (saved === undefined) {
        rows.push({ workload, replicas, result: 'not locked down; unchanged' });
        continue;
      }
      const before = (JSON.parse(saved) as Saved).replicas;
      await kube.mergePatch(deploymentPath(workload), {
        metadata: { annotations: { [LOCKDOWN_ANNOTATION]: null } },
        spec: { replicas: before },
      });
      rows.push({ workload, replicas: before, result: 'restored' });
      continue;
    }
    if (saved !== undefined) {
      rows.push({ workload, replicas, result: 'already locked down' });
      continue;
    }
    // One patch both remembers and scales: there is no moment where one is done and not the other.
    // At zero replicas a HorizontalPodAutoscaler stands still (it never scales up from zero).
    await kube.mergePatch(deploymentPath(workload), {
      metadata: { annotations: { [LOCKDOWN_ANNOTATION]: JSON.stringify({ replicas } satisfies Saved) } },
      spec: { replicas: 0 },
    });
    rows.push({ workload, replicas: 0, result: `scaled down from ${replicas}` });
  }
  return { rows };
}

async function restart(kube: KubeClient, workloads: readonly WorkloadId[], at: string) {
  for (const workload of workloads) {
    await kube.mergePatch(deploymentPath(workload), {
      spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: at } } } },
    });
  }
  return { restarted: [...workloads] };
}

/** `kubectl rollout status`'s judgement: the controller saw the change, and only new pods run, all available. */
async function rollout(kube: KubeClient, workloads: readonly WorkloadId[]): Promise<ResponderResults['rollout']> {
  const rows: RolloutRow[] = [];
  for (const workload of workloads) {
    const d = await kube.get(deploymentPath(workload));
    const status = (d.status ?? {}) as Record<string, number | undefined>;
    const desired = Number(d.spec?.replicas ?? 0);
    const updated = status.updatedReplicas ?? 0;
    const available = status.availableReplicas ?? 0;
    const done =
      (status.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
      updated === desired &&
      (status.replicas ?? 0) === updated &&
      available === updated;
    rows.push({ workload, desired, updated, available, done });
  }
  return { rows };
}

async function quarantine(
  kube: KubeClient,
  target: Extract<ResponderRequest, { action: 'quarantine' }>['target'],
  release: boolean,
): Promise<ResponderResults['quarantine']> {
  let pods: Array<{ namespace: string; name: string; labels: Record<string, string> }>;
  if ('pod' in target) {
    const pod = await kube.get(paths.pod(target.namespace, target.pod));
    pods = [{ namespace: target.namespace, name: pod.metadata.name, labels: pod.metadata.labels ?? {} }];
  } else {
    const namespace = 'workload' in target ? WORKLOADS[target.workload].namespace : target.namespace;
    const selector = 'workload' in target ? `${SERVICE_LABEL}=${WORKLOADS[target.workload].name}` : undefined;
    pods = (await kube.list(paths.pods(namespace), selector)).map((p) => ({
      namespace,
      name: p.metadata.name,
      labels: p.metadata.labels ?? {},
    }));
  }
  const rows: QuarantineRow[] = [];
  for (const pod of pods) {
    const labelled = pod.labels[QUARANTINE_LABEL] === 'true';
    if (labelled !== release) {
      rows.push({
        namespace: pod.namespace,
        pod: pod.name,
        result: release ? 'not quarantined; unchanged' : 'already quarantined',
      });
      continue;
    }
    await kube.mergePatch(paths.pod(pod.namespace, pod.name), {
      metadata: { labels: { [QUARANTINE_LABEL]: release ? null : 'true' } },
    });
    rows.push({ namespace: pod.namespace, pod: pod.name, result: release ? 'released' : 'quarantined' });
  }
  return { rows };
}

/** Reads each expected object by name (the responders may get these, never list the cluster). */
async function inspect(kube: KubeClient): Promise<ClusterPosture> {
  const present = async (path: string): Promise<KubeObject | undefined> => {
    try {
      return await kube.get(path);
    } catch (error) {
      if (error instanceof KubeError && error.status === 404) return undefined;
      throw error;
    }
  };
  const names = Object.values(NAMESPACES).map((ns) => ns.name);
  const namespaces = [];
  const networkPolicies: Record<string, string[]> = {};
  for (const name of names) {
    const ns = await present(paths.namespace(name));
    if (ns !== undefined) namespaces.push({ name, labels: ns.metadata.labels ?? {} });
    networkPolicies[name] =
      ns === undefined ? [] : (await kube.list(paths.networkPolicies(name))).map((p) => p.metadata.name);
  }
  const expected = [TRUSTED_IMAGES_POLICY, ...names.map(containersPolicy)];
  const admissionPolicies = [];
  const admissionBindings = [];
  for (const name of expected) {
    if ((await present(`${paths.admissionPolicies}/${name}`)) !== undefined) admissionPolicies.push(name);
    if ((await present(`${paths.admissionBindings}/${name}`)) !== undefined) admissionBindings.push(name);
  }
  return { namespaces, networkPolicies, admissionPolicies, admissionBindings };
}

/** Carries out one validated request. */
export async function act(
  request: ResponderRequest,
  deps: ActionDependencies,
): Promise<ResponderResults[ResponderRequest['action']]> {
  switch (request.action) {
    case 'lockdown':
      return lockdown(deps.kube, request.undo);
    case 'restart':
      return restart(deps.kube, request.workloads, request.at);
    case 'rollout':
      return rollout(deps.kube, request.workloads);
    case 'quarantine':
      return quarantine(deps.kube, request.target, request.release);
    case 'revoke-sessions':
      return { deleted: await deps.revokeSessions() };
    case 'inspect':
      return inspect(deps.kube);
  }
}
