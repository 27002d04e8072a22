import { AUDIT_ALARMS } from '../../../lib/constructs/runtime/eks-cluster';
import { matchesFilterPattern } from '../../helpers/filter-pattern';

/**
 * The EKS audit alarms' metric filters against audit events in the Kubernetes API server's own
 * format (audit.k8s.io/v1 Event, one JSON object per line, as EKS writes them to
 * /aws/eks/<cluster>/cluster in the kube-apiserver-audit streams): lines that must count and lines
 * that must not.
 */
const auditEvent = (overrides: {
  verb: string;
  username: string;
  resource: string;
  subresource?: string;
  code?: number;
  namespace?: string;
  apiGroup?: string;
  stage?: string;
  message?: string;
  annotations?: Record<string, string>;
}) =>
  JSON.stringify({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: '4d2c6a9e-8a3b-4f1e-9a55-0c2f1f0b7c11',
    stage: overrides.stage ?? 'ResponseComplete',
    requestURI: `/api/v1/namespaces/${overrides.namespace ?? 'dify'}/${overrides.resource}/x${overrides.subresource ? `/${overrides.subresource}` : ''}`,
    verb: overrides.verb,
    user: { username: overrides.username, groups: ['system:authenticated'] },
    sourceIPs: ['127.0.0.1'],
    userAgent: 'kubectl/v1.33.0',
    objectRef: {
      resource: overrides.resource,
      namespace: overrides.namespace ?? 'dify',
      name: 'x',
      apiVersion: 'v1',
      ...(overrides.apiGroup ? { apiGroup: overrides.apiGroup } : {}),
      ...(overrides.subresource ? { subresource: overrides.subresource } : {}),
    },
    responseStatus: {
      metadata: {},
      code: overrides.code ?? 200,
      ...(overrides.message ? { status: 'Failure', message: overrides.message, reason: 'Forbidden' } : {}),
    },
    requestReceivedTimestamp: '2026-12-02T10:00:00.000000Z',
    stageTimestamp: '2026-12-02T10:00:00.010000Z',
    annotations: {
      'authorization.k8s.io/decision': 'allow',
      'authorization.k8s.io/reason': '',
      ...overrides.annotations,
    },
  });

const RBAC = 'rbac.authorization.k8s.io';
const KUBECTL_ROLE = 'arn:aws:sts::123456789012:assumed-role/Dify-Runtime-EksKubectlRole/deploy';
// The message and annotations kube-apiserver's Pod Security admission writes (k8s.io/pod-security-admission).
const ENFORCED =
  'pods "api-7d9f" is forbidden: violates PodSecurity "restricted:latest": privileged (container "api" must not set securityContext.privileged=true)';
const AUDITED =
  'would violate PodSecurity "restricted:latest": runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)';

const HUMAN = 'arn:aws:sts::123456789012:assumed-role/Dify-BreakGlass/alice';

describe('EKS audit alarm filters on Kubernetes audit events', () => {
  const cases: Array<[keyof typeof AUDIT_ALARMS, string, string, boolean]> = [
    ['SecretRead', 'a person reads a Secret', auditEvent({ verb: 'get', username: HUMAN, resource: 'secrets' }), true],
    ['SecretRead', 'a person lists Secrets', auditEvent({ verb: 'list', username: HUMAN, resource: 'secrets' }), true],
    [
      'SecretRead',
      'a workload watches Secrets',
      auditEvent({ verb: 'watch', username: 'system:serviceaccount:dify:api', resource: 'secrets' }),
      false,
    ],
    [
      'SecretRead',
      'the control plane reads a Secret',
      auditEvent({ verb: 'get', username: 'eks:certificate-controller', resource: 'secrets' }),
      false,
    ],
    [
      'SecretRead',
      'a person creates a Secret',
      auditEvent({ verb: 'create', username: HUMAN, resource: 'secrets' }),
      false,
    ],
    [
      'SecretRead',
      'a person reads a ConfigMap',
      auditEvent({ verb: 'get', username: HUMAN, resource: 'configmaps' }),
      false,
    ],
    [
      'PodShell',
      'kubectl exec',
      auditEvent({ verb: 'create', username: HUMAN, resource: 'pods', subresource: 'exec' }),
      true,
    ],
    [
      'PodShell',
      'kubectl attach',
      auditEvent({ verb: 'create', username: HUMAN, resource: 'pods', subresource: 'attach' }),
      true,
    ],
    [
      'PodShell',
      'kubectl port-forward',
      auditEvent({ verb: 'create', username: HUMAN, resource: 'pods', subresource: 'portforward' }),
      true,
    ],
    [
      'PodShell',
      'kubectl logs',
      auditEvent({ verb: 'get', username: HUMAN, resource: 'pods', subresource: 'log' }),
      false,
    ],
    ['PodShell', 'reading a pod', auditEvent({ verb: 'get', username: HUMAN, resource: 'pods' }), false],
    [
      'Refused',
      'a refused request',
      auditEvent({ verb: 'get', username: HUMAN, resource: 'secrets', code: 403 }),
      true,
    ],
    ['Refused', 'an allowed request', auditEvent({ verb: 'get', username: HUMAN, resource: 'pods', code: 200 }), false],
    [
      'PolicyChange',
      'a person binds a ClusterRole',
      auditEvent({ verb: 'create', username: HUMAN, resource: 'clusterrolebindings', apiGroup: RBAC, code: 201 }),
      true,
    ],
    [
      'PolicyChange',
      'a deploy patches a NetworkPolicy',
      auditEvent({ verb: 'patch', username: KUBECTL_ROLE, resource: 'networkpolicies', apiGroup: 'networking.k8s.io' }),
      true,
    ],
    [
      'PolicyChange',
      'a person deletes a validating admission policy',
      auditEvent({
        verb: 'delete',
        username: HUMAN,
        resource: 'validatingadmissionpolicies',
        apiGroup: 'admissionregistration.k8s.io',
      }),
      true,
    ],
    [
      'PolicyChange',
      'a person reads a Role',
      auditEvent({ verb: 'get', username: HUMAN, resource: 'roles', apiGroup: RBAC }),
      false,
    ],
    [
      'PolicyChange',
      'a refused attempt to bind a Role (counted by Refused instead)',
      auditEvent({ verb: 'create', username: HUMAN, resource: 'rolebindings', apiGroup: RBAC, code: 403 }),
      false,
    ],
    [
      'PolicyChange',
      'the control plane reconciles a ClusterRole',
      auditEvent({ verb: 'update', username: 'system:apiserver', resource: 'clusterroles', apiGroup: RBAC }),
      false,
    ],
    [
      'PolicyChange',
      'a person patches a Deployment',
      auditEvent({ verb: 'patch', username: HUMAN, resource: 'deployments', apiGroup: 'apps' }),
      false,
    ],
    [
      'PodSecurity',
      'a privileged pod refused (enforce)',
      auditEvent({ verb: 'create', username: HUMAN, resource: 'pods', code: 403, message: ENFORCED }),
      true,
    ],
    [
      'PodSecurity',
      'a root pod flagged (audit annotation)',
      auditEvent({
        verb: 'create',
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        resource: 'pods',
        code: 201,
        annotations: { 'pod-security.kubernetes.io/audit-violations': AUDITED },
      }),
      true,
    ],
    [
      'PodSecurity',
      'a compliant pod created',
      auditEvent({
        verb: 'create',
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        resource: 'pods',
        code: 201,
        annotations: { 'pod-security.kubernetes.io/enforce-policy': 'restricted:latest' },
      }),
      false,
    ],
    ['Refused', 'a missing object', auditEvent({ verb: 'get', username: HUMAN, resource: 'pods', code: 404 }), false],
  ];

  it.each(cases)('%s: %s -> %s', (alarm, _what, line, expected) => {
    expect(matchesFilterPattern(AUDIT_ALARMS[alarm].pattern, line)).toBe(expected);
  });

  it('has a line that counts and one that does not for every alarm', () => {
    for (const alarm of Object.keys(AUDIT_ALARMS)) {
      const mine = cases.filter(([a]) => a === alarm);
      expect(new Set(mine.map(([, , , expected]) => expected))).toEqual(new Set([true, false]));
    }
  });
});
