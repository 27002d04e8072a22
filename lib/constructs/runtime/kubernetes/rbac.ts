import { containersPolicy, GROUPS, TRUSTED_IMAGES_POLICY } from '../../../../contracts/kubernetes';
import type { KubernetesObject } from './objects';
import { NAMESPACES } from './placement';

/**
 * Who may do what in Dify's namespaces. Humans reach the cluster only through EKS access entries
 * that put their IAM role in one of these groups; no Dify service account is bound to anything
 * (their pods carry no token at all).
 */

export { GROUPS };

/** One RBAC rule. */
export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  /** Only these objects (a get, update, patch or delete; a list cannot be limited by name). */
  readonly resourceNames?: readonly string[];
}

/** Dify's Kubernetes security guide's `dify-operator` Role, rule for rule as the guide writes it. */
export const OPERATOR_RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['pods', 'services', 'configmaps'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: ['get', 'list', 'watch', 'update'] },
];

/**
 * What the guide's incident steps need and the operator Role cannot do (its `update` neither scales,
 * a PATCH of `deployments/scale`, nor restarts, a PATCH of the Deployment): scale to zero, restart
 * after a credential rotation, label a pod into quarantine, read its logs, delete it, and see the
 * policies that hold it. Nothing else: no exec, no Secrets, no policy writes.
 */
export const RESPONDER_RULES: readonly PolicyRule[] = [
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'patch'] },
  { apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['get', 'update', 'patch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['get', 'list'] },
];

/**
 * What `dify-aws doctor` reads outside Dify's namespaces, through the responder: Dify's four
 * Namespaces (their Pod Security labels) and Dify's admission policies and bindings, each by name,
 * get only. Nothing else of the cluster, and nothing it could change.
 */
export const RESPONDER_CLUSTER_RULES: readonly PolicyRule[] = [
  {
    apiGroups: [''],
    resources: ['namespaces'],
    verbs: ['get'],
    resourceNames: Object.values(NAMESPACES).map((ns) => ns.name),
  },
  {
    apiGroups: ['admissionregistration.k8s.io'],
    resources: ['validatingadmissionpolicies', 'validatingadmissionpolicybindings'],
    verbs: ['get'],
    resourceNames: [TRUSTED_IMAGES_POLICY, ...Object.values(NAMESPACES).map((ns) => containersPolicy(ns.name))],
  },
];

/** The cluster-wide read of the responders: a ClusterRole and its binding to their group, never to a service account. */
const RESPONDER_POSTURE = 'dify-incident-responder-posture';

/** A Role and its RoleBinding to a group in every one of Dify's namespaces, for both roles. */
export function rbacObjects(): KubernetesObject[] {
  const roles = [
    { name: 'dify-operator', rules: OPERATOR_RULES, group: GROUPS.operators },
    { name: 'dify-incident-responder', rules: RESPONDER_RULES, group: GROUPS.responders },
  ];
  const perNamespace = Object.values(NAMESPACES).flatMap((ns) =>
    roles.flatMap((role) => [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: role.name, namespace: ns.name },
        rules: role.rules,
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: role.name, namespace: ns.name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.name },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: role.group }],
      },
    ]),
  );
  return [
    ...perNamespace,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: RESPONDER_POSTURE },
      rules: RESPONDER_CLUSTER_RULES,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: RESPONDER_POSTURE },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: RESPONDER_POSTURE },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: GROUPS.responders }],
    },
  ];
}
