import type { DifyServiceName } from '../../dify/catalog';
import type { KubernetesObject } from './objects';

/**
 * Where each Dify service runs on EKS: its namespace, with that namespace's Pod Security Standards
 * level, and its node pool. The platform decides this; the services' facts stay in the catalogue.
 */

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

/** A node pool: `untrusted` is tainted, so that only the pods that run third-party code land there. */
export type NodePool = 'apps' | 'untrusted';

/** The taint (and the toleration the untrusted pods carry) that keeps every other pod off that pool. */
export const UNTRUSTED_TAINT = { key: 'dify.ai/untrusted', value: 'true', effect: 'NoSchedule' } as const;

export interface Placement {
  readonly namespace: NamespaceKey;
  readonly pool: NodePool;
}

/**
 * Each service's namespace and pool. The sandbox runs users' code and the plugin daemon third-party
 * plugins: both go to the tainted pool, so that an escape lands where no api pod and no secret of
 * Dify's is.
 */
export const PLACEMENT: Readonly<Record<DifyServiceName, Placement>> = {
  api: { namespace: 'dify', pool: 'apps' },
  worker: { namespace: 'dify', pool: 'apps' },
  worker_beat: { namespace: 'dify', pool: 'apps' },
  migration: { namespace: 'dify', pool: 'apps' },
  web: { namespace: 'dify', pool: 'apps' },
  ssrf_proxy: { namespace: 'egress', pool: 'apps' },
  sandbox: { namespace: 'sandbox', pool: 'untrusted' },
  plugin_daemon: { namespace: 'plugins', pool: 'untrusted' },
};

/** The namespace a service runs in. */
export const namespaceOf = (service: DifyServiceName): string => NAMESPACES[PLACEMENT[service].namespace].name;

/** The label every quarantined pod or namespace carries; the admin-tier deny cuts all its traffic. */
export const QUARANTINE_LABEL = 'dify.security/quarantine';

/** The label each pod carries with its service's name (the NetworkPolicies and the Services select on it). */
export const SERVICE_LABEL = 'app.kubernetes.io/name';

/** The Namespace objects, with all three Pod Security modes pinned to POD_SECURITY_VERSION. */
export function namespaceObjects(): KubernetesObject[] {
  return Object.values(NAMESPACES).map((ns: NamespaceSpec) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: ns.name,
      labels: {
        'kubernetes.io/metadata.name': ns.name,
        'pod-security.kubernetes.io/enforce': ns.enforce,
        'pod-security.kubernetes.io/enforce-version': POD_SECURITY_VERSION,
        'pod-security.kubernetes.io/audit': 'restricted',
        'pod-security.kubernetes.io/audit-version': POD_SECURITY_VERSION,
        'pod-security.kubernetes.io/warn': 'restricted',
        'pod-security.kubernetes.io/warn-version': POD_SECURITY_VERSION,
      },
      ...(ns.exception === undefined
        ? {}
        : {
            annotations: {
              'dify.security/baseline-because': ns.exception.why,
              'dify.security/fails-restricted': ns.exception.fails.join(','),
            },
          }),
    },
  }));
}
