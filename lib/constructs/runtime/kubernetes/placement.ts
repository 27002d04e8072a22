import type { DifyServiceName } from '../../dify/catalog';
import { type NamespaceKey, NAMESPACES, type NamespaceSpec, podSecurityLabels } from '../../../../contracts/kubernetes';
import type { KubernetesObject } from './objects';

export {
  NAMESPACES,
  type NamespaceKey,
  type NamespaceSpec,
  type PodSecurityLevel,
  POD_SECURITY_VERSION,
  QUARANTINE_LABEL,
  type RestrictedCheck,
  SERVICE_LABEL,
} from '../../../../contracts/kubernetes';

/**
 * Where each Dify service runs on EKS: its namespace, with that namespace's Pod Security Standards
 * level, and its node pool. The platform decides this; the services' facts stay in the catalogue.
 */

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

/** The Namespace objects, with all three Pod Security modes pinned to POD_SECURITY_VERSION. */
export function namespaceObjects(): KubernetesObject[] {
  return Object.values(NAMESPACES).map((ns: NamespaceSpec) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: ns.name,
      labels: {
        'kubernetes.io/metadata.name': ns.name,
        ...podSecurityLabels(ns),
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
