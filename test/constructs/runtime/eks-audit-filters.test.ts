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
}) =>
  JSON.stringify({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: '4d2c6a9e-8a3b-4f1e-9a55-0c2f1f0b7c11',
    stage: 'ResponseComplete',
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
      ...(overrides.subresource ? { subresource: overrides.subresource } : {}),
    },
    responseStatus: { metadata: {}, code: overrides.code ?? 200 },
    requestReceivedTimestamp: '2026-12-02T10:00:00.000000Z',
    stageTimestamp: '2026-12-02T10:00:00.010000Z',
    annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': '' },
  });

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
