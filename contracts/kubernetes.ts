/**
 * What the EKS runtime (lib/constructs/runtime/kubernetes) and the operator's in-cluster tools (the
 * cluster responder function, the CLI's EKS path) agree on: the namespaces and their Pod Security
 * levels, the labels the policies select on, the RBAC groups, and where each service's Deployment is.
 */
import type { ServiceId } from './stack-outputs';

/** The five EKS control-plane log types, as the EKS API names them: the cluster sends them all. */
export const CONTROL_PLANE_LOG_TYPES = ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'] as const;

/** The Kubernetes minor version the Pod Security labels (and the checks the tests port) are pinned to. */
export const POD_SECURITY_VERSION = 'v1.36';

export type PodSecurityLevel = 'restricted' | 'baseline';

/** The checks of the `restricted` level a `baseline` namespace's pods are known to fail, by check id. */
export type RestrictedCheck =
  'runAsNonRoot' | 'runAsUser' | 'capabilities_restricted' | 'allowPrivilegeEscalation' | 'restrictedVolumes';

export interface NamespaceSpec {
  readonly name: string;
  /** Enforced; `audit` and `warn` are always `restricted`, so every exception shows in the audit log. */
  readonly enforce: PodSecurityLevel;
  /** Why the namespace cannot enforce `restricted`, and which restricted checks its pods fail. */
  readonly exception?: { readonly why: string; readonly fails: readonly RestrictedCheck[] };
}

export const NAMESPACES = {
  dify: { name: 'dify', enforce: 'restricted' },
  egress: {
    name: 'dify-egress',
    enforce: 'baseline',
    exception: {
      why: 'squid starts as root to read its configuration and write its pid file, then switches to the proxy user (SETUID, SETGID, CHOWN), as on ECS',
      fails: ['runAsNonRoot', 'capabilities_restricted'],
    },
  },
  sandbox: {
    name: 'dify-sandbox',
    enforce: 'baseline',
    exception: {
      why: 'dify-sandbox chroots each run and switches it to a per-run uid (SYS_CHROOT, SETUID, SETGID), and appends those uids to /etc/passwd on a writable root; only root can do either',
      fails: ['runAsNonRoot', 'capabilities_restricted'],
    },
  },
  plugins: {
    name: 'dify-plugins',
    enforce: 'baseline',
    exception: {
      why: 'the dify-plugin-daemon image has no user of its own and unpacks third-party plugin packages with their owners and modes (CHOWN, DAC_OVERRIDE, FOWNER)',
      fails: ['runAsNonRoot', 'capabilities_restricted'],
    },
  },
} as const satisfies Record<string, NamespaceSpec>;

export type NamespaceKey = keyof typeof NAMESPACES;

/** The Pod Security labels a namespace carries: all three modes, each pinned to POD_SECURITY_VERSION. */
export function podSecurityLabels(ns: NamespaceSpec): Record<string, string> {
  return {
    'pod-security.kubernetes.io/enforce': ns.enforce,
    'pod-security.kubernetes.io/enforce-version': POD_SECURITY_VERSION,
    'pod-security.kubernetes.io/audit': 'restricted',
    'pod-security.kubernetes.io/audit-version': POD_SECURITY_VERSION,
    'pod-security.kubernetes.io/warn': 'restricted',
    'pod-security.kubernetes.io/warn-version': POD_SECURITY_VERSION,
  };
}

/** The label every quarantined pod carries; no allow of any NetworkPolicy selects it, so all its traffic stops. */
export const QUARANTINE_LABEL = 'dify.security/quarantine';

/** The label each pod carries with its service's name (the NetworkPolicies and the Services select on it). */
export const SERVICE_LABEL = 'app.kubernetes.io/name';

/** The annotation on a Deployment that `lockdown` scaled to zero: its replicas before, for `--undo`. */
export const LOCKDOWN_ANNOTATION = 'dify.security/lockdown';

/** The pod-template annotation a restart sets (kubectl rollout restart sets the same one). */
export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';

/** The Kubernetes groups the access entries map IAM roles to. */
export const GROUPS = { operators: 'dify-operators', responders: 'dify-responders' } as const;

/** The NetworkPolicy every namespace starts from: nothing in, nothing out. */
export const DEFAULT_DENY_POLICY = 'default-deny-all';

/** The admission policy that admits images only from the deployment's asset repository. */
export const TRUSTED_IMAGES_POLICY = 'dify-trusted-images';

/** The admission policy that holds one namespace's containers to its capabilities and pool. */
export const containersPolicy = (namespace: string) => `dify-containers-${namespace}`;

/**
 * Each long-running Dify service's Deployment on EKS, by the ServiceId the secret catalogue names
 * (the LLM gateway stays on ECS). test/contracts/kubernetes.test.ts holds this to the rendered manifests.
 */
export const WORKLOADS = {
  Api: { namespace: NAMESPACES.dify.name, name: 'api' },
  Worker: { namespace: NAMESPACES.dify.name, name: 'worker' },
  Beat: { namespace: NAMESPACES.dify.name, name: 'beat' },
  Web: { namespace: NAMESPACES.dify.name, name: 'web' },
  SsrfProxy: { namespace: NAMESPACES.egress.name, name: 'ssrf-proxy' },
  Sandbox: { namespace: NAMESPACES.sandbox.name, name: 'sandbox' },
  PluginDaemon: { namespace: NAMESPACES.plugins.name, name: 'plugin-daemon' },
} as const satisfies Partial<Record<ServiceId, { namespace: string; name: string }>>;

export type WorkloadId = keyof typeof WORKLOADS;
export const WORKLOAD_IDS = Object.keys(WORKLOADS) as WorkloadId[];
