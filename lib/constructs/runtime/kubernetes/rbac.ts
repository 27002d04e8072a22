import type { KubernetesObject } from './objects';
import { NAMESPACES } from './placement';

/**
 * Who may do what in Dify's namespaces. Humans reach the cluster only through EKS access entries
 * that put their IAM role in one of these groups; no Dify service account is bound to anything
 * (their pods carry no token at all).
 */

/** The Kubernetes groups the access entries map IAM roles to. */
export const GROUPS = { operators: 'dify-operators', responders: 'dify-responders' } as const;

/** One RBAC rule. */
export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
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

/** A Role and its RoleBinding to a group in every one of Dify's namespaces, for both roles. */
export function rbacObjects(): KubernetesObject[] {
  const roles = [
    { name: 'dify-operator', rules: OPERATOR_RULES, group: GROUPS.operators },
    { name: 'dify-incident-responder', rules: RESPONDER_RULES, group: GROUPS.responders },
  ];
  return Object.values(NAMESPACES).flatMap((ns) =>
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
}
