import type { TaskSizing } from '../../../config/sizing';
import type { DifyServiceRow, StartCommand } from '../../dify/catalog';
import { healthCommand } from '../../dify/health-checks';
import type { Container, KubernetesObject, PodTemplate, Probe, SecurityContext, Volume } from './objects';
import { namespaceOf, PLACEMENT, SERVICE_LABEL, UNTRUSTED_TAINT } from './placement';

/**
 * A catalogue row rendered as Kubernetes workloads: the pod template (its security context taken
 * from the row's hardening, exactly as the ECS task definition takes it), and the Deployment or Job,
 * Service, ServiceAccount, PodDisruptionBudget and HorizontalPodAutoscaler around it.
 */

/** Where the Secrets Store CSI driver mounts a pod's secrets, one file per variable. */
export const SECRETS_MOUNT = '/mnt/secrets';

export interface WorkloadSpec {
  /** The image URI, in the deployment's own registry. */
  readonly image: string;
  readonly start: StartCommand;
  /** Non-secret settings only. */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * The variables the container reads from its secrets, with the SecretProviderClass that mounts
   * them; the start command exports each from its file before it runs the row's own start.
   * @default - none
   */
  readonly secrets?: { readonly providerClass: string; readonly variables: readonly string[] };
  readonly sizing: TaskSizing;
  /**
   * A RuntimeClass for the pods on the untrusted pool (`isolated-sandbox`: a VM per pod).
   * @default - the node's runtime
   */
  readonly untrustedRuntimeClass?: string;
}

/** `uid` or `uid:gid`, as the catalogue writes users. */
function parseUser(user: string | undefined): { uid?: number; gid?: number } {
  if (user === undefined) return {};
  const [uid, gid] = user.split(':').map((part) => Number(part));
  if (!Number.isInteger(uid) || (gid !== undefined && !Number.isInteger(gid))) {
    throw new Error(`user ${JSON.stringify(user)}: expected a numeric uid or uid:gid`);
  }
  return { uid, gid };
}

/** The container's security context, from the row's hardening: the same user, root and capabilities as on ECS. */
export function securityContextOf(row: DifyServiceRow): SecurityContext {
  const { hardening } = row;
  const { uid, gid } = parseUser(hardening.user);
  const nonRoot = uid !== undefined && uid !== 0;
  const add = hardening.keepCapabilities.map((kept) => kept.capability);
  return {
    ...(uid === undefined ? {} : { runAsUser: uid }),
    ...(gid === undefined ? {} : { runAsGroup: gid }),
    ...(nonRoot ? { runAsNonRoot: true } : {}),
    readOnlyRootFilesystem: hardening.readonlyRootFilesystem,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: add.length === 0 ? { drop: ['ALL'] } : { drop: ['ALL'], add },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** A volume name from a path: `/app/api/storage` -> `app-api-storage` (the ECS volume names too). */
export const volumeName = (path: string) =>
  path
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();

/** Kubernetes CPU and memory quantities from ECS units (1024 CPU units = 1 vCPU). */
export function resourcesOf(sizing: TaskSizing): Container['resources'] {
  const quantities = { cpu: `${Math.round((sizing.cpu * 1000) / 1024)}m`, memory: `${sizing.memoryMiB}Mi` };
  // Requests equal limits: the pod gets the Guaranteed class and what ECS would reserve for the task.
  return { requests: quantities, limits: quantities };
}

function probes(row: DifyServiceRow): Pick<Container, 'startupProbe' | 'livenessProbe' | 'readinessProbe'> {
  const command = healthCommand(row.health, row.port);
  // The same check, interval, timeout and retries as the ECS health check; the start period becomes
  // a startup probe that allows as many failures as fit in it.
  const liveness: Probe = { exec: { command }, periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 };
  const startup: Probe = {
    exec: { command },
    periodSeconds: 10,
    timeoutSeconds: 5,
    failureThreshold: Math.ceil(row.startPeriodSeconds / 10),
  };
  return {
    startupProbe: startup,
    livenessProbe: liveness,
    ...(row.port === undefined ? {} : { readinessProbe: { ...liveness, periodSeconds: 10 } }),
  };
}

/** A POSIX shell word. */
const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

/**
 * The container's command and arguments. Without secrets: the row's start as it is. With secrets:
 * a shell that exports each variable from its mounted file, then `exec`s the row's start, so the
 * values live only in the process's environment, as ECS's injection leaves them.
 */
function commandOf(row: DifyServiceRow, spec: WorkloadSpec): Pick<Container, 'command' | 'args'> {
  const variables = spec.secrets?.variables ?? [];
  if (variables.length === 0) {
    return {
      ...(spec.start.entryPoint === undefined ? {} : { command: spec.start.entryPoint }),
      ...(spec.start.command === undefined ? {} : { args: spec.start.command }),
    };
  }
  const argv =
    spec.start.entryPoint !== undefined
      ? [...spec.start.entryPoint, ...(spec.start.command ?? [])]
      : row.imageCommand !== undefined && spec.start.command === undefined
        ? row.imageCommand
        : undefined;
  if (argv === undefined) {
    throw new Error(
      `${row.service}: reads secrets, so its row must name what the image runs (a start with an entry point, or imageCommand), to run it after the secrets are exported`,
    );
  }
  const exports = variables.map((name) => {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(name)) throw new Error(`${row.service}: ${name} is not a variable name`);
    return `${name}="$(cat ${SECRETS_MOUNT}/${name})"; export ${name}`;
  });
  return { command: ['/bin/sh', '-c', ['set -eu', ...exports, `exec ${argv.map(quote).join(' ')}`].join('\n')] };
}

/** The pod template of a row: one container, hardened from the catalogue, on the row's pool. */
export function podTemplate(row: DifyServiceRow, spec: WorkloadSpec): PodTemplate {
  const placement = PLACEMENT[row.service];
  const writable: Volume[] = row.hardening.writablePaths.map((w) => ({ name: volumeName(w.path), emptyDir: {} }));
  const secretVolume: Volume[] =
    spec.secrets === undefined || spec.secrets.variables.length === 0
      ? []
      : [
          {
            name: 'secrets',
            csi: {
              driver: 'secrets-store.csi.k8s.io',
              readOnly: true,
              volumeAttributes: { secretProviderClass: spec.secrets.providerClass },
            },
          },
        ];
  const container: Container = {
    name: row.name,
    image: spec.image,
    ...commandOf(row, spec),
    env: Object.entries(spec.environment)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value })),
    ...(row.port === undefined ? {} : { ports: [{ name: 'service', containerPort: row.port, protocol: 'TCP' }] }),
    resources: resourcesOf(spec.sizing),
    securityContext: securityContextOf(row),
    volumeMounts: [
      ...row.hardening.writablePaths.map((w) => ({ name: volumeName(w.path), mountPath: w.path })),
      ...secretVolume.map((v) => ({ name: v.name, mountPath: SECRETS_MOUNT, readOnly: true })),
    ],
    ...probes(row),
  };
  const untrusted = placement.pool === 'untrusted';
  return {
    metadata: { labels: { [SERVICE_LABEL]: row.name, 'app.kubernetes.io/part-of': 'dify' } },
    spec: {
      serviceAccountName: row.name,
      // No pod of Dify's talks to the Kubernetes API.
      automountServiceAccountToken: false,
      // Injected *_PORT variables would collide with Dify's and squid's own settings.
      enableServiceLinks: false,
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
      containers: [container],
      volumes: [...writable, ...secretVolume],
      nodeSelector: { 'dify.ai/pool': placement.pool, 'kubernetes.io/arch': 'arm64' },
      ...(untrusted
        ? {
            tolerations: [{ ...UNTRUSTED_TAINT, operator: 'Equal' }],
            ...(spec.untrustedRuntimeClass === undefined ? {} : { runtimeClassName: spec.untrustedRuntimeClass }),
          }
        : {}),
      terminationGracePeriodSeconds: 30,
      // The pause container becomes PID 1 and reaps zombies, as ECS's init process does.
      shareProcessNamespace: true,
    },
  };
}

const meta = (row: DifyServiceRow) => ({
  name: row.name,
  namespace: namespaceOf(row.service),
  labels: { [SERVICE_LABEL]: row.name, 'app.kubernetes.io/part-of': 'dify' },
});

/**
 * The objects that run a row: a ServiceAccount (bound to its IAM role by a Pod Identity
 * association, never a token in the pod), and a Deployment (rolling or singleton) with its Service,
 * disruption budget and autoscaler, or a Job for a one-off row.
 */
export function workloadObjects(row: DifyServiceRow, spec: WorkloadSpec): KubernetesObject[] {
  const template = podTemplate(row, spec);
  const serviceAccount: KubernetesObject = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: meta(row),
    automountServiceAccountToken: false,
  };
  if (row.deployment === 'one-off') {
    return [
      serviceAccount,
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: meta(row),
        spec: {
          backoffLimit: 0,
          activeDeadlineSeconds: 3600,
          ttlSecondsAfterFinished: 86400,
          template: { ...template, spec: { ...template.spec, restartPolicy: 'Never' } },
        },
      },
    ];
  }
  const { minTasks, maxTasks } = spec.sizing;
  const selector = { matchLabels: { [SERVICE_LABEL]: row.name } };
  const objects: KubernetesObject[] = [
    serviceAccount,
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(row),
      spec: {
        replicas: row.deployment === 'singleton' ? 1 : minTasks,
        selector,
        // A singleton (Celery beat) is never two at once: the old pod stops before the new one starts.
        strategy:
          row.deployment === 'singleton'
            ? { type: 'Recreate' }
            : { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          ...template,
          spec: {
            ...template.spec,
            restartPolicy: 'Always',
            // Replicas in different zones, then on different nodes, so that one zone or one node lost
            // does not take every replica with it (ECS spreads Fargate tasks over zones by itself). A
            // preference, which Auto Mode's Karpenter tries to meet when it adds nodes, never a reason
            // to leave a pod unscheduled.
            ...(row.deployment === 'singleton'
              ? {}
              : {
                  topologySpreadConstraints: ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'].map(
                    (topologyKey) => ({
                      maxSkew: 1,
                      topologyKey,
                      whenUnsatisfiable: 'ScheduleAnyway' as const,
                      labelSelector: selector,
                    }),
                  ),
                }),
          },
        },
      },
    },
  ];
  if (row.port !== undefined) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(row),
      // The Service's port equals the container's: the VPC CNI's policies match on the container port.
      spec: {
        type: 'ClusterIP',
        selector: selector.matchLabels,
        ports: [{ name: 'service', port: row.port, targetPort: row.port, protocol: 'TCP' }],
      },
    });
  }
  if (row.deployment === 'rolling' && minTasks > 1) {
    objects.push({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: meta(row),
      spec: { minAvailable: minTasks - 1, selector },
    });
  }
  if (row.scales && maxTasks > minTasks) {
    objects.push({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: meta(row),
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: row.name },
        minReplicas: minTasks,
        maxReplicas: maxTasks,
        metrics: [
          { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } },
        ],
      },
    });
  }
  return objects;
}
