import { allowed, type Cluster, type Endpoint, matrix, selects } from './network-policy';

/** The evaluator's semantics on small clusters whose answers the NetworkPolicy documentation gives. */
const pod = (name: string, namespace: string, labels: Record<string, string> = {}, address = '10.1.0.1'): Endpoint => ({
  kind: 'pod',
  name,
  namespace,
  labels: { app: name, ...labels },
  address,
});
const a = pod('a', 'one', {}, '10.1.0.1');
const b = pod('b', 'one', {}, '10.1.0.2');
const c = pod('c', 'two', {}, '10.1.0.3');
const NAMESPACES = { one: { name: 'one' }, two: { name: 'two', team: 'x' } };
const policy = (namespace: string, spec: object) => ({
  kind: 'NetworkPolicy',
  metadata: { name: 'p', namespace },
  spec,
});

describe('the NetworkPolicy evaluator', () => {
  it('allows everything with no policy and nothing under a default deny', () => {
    expect(allowed({ namespaces: NAMESPACES, policies: [] }, a, b, 80)).toBe(true);
    const deny: Cluster = {
      namespaces: NAMESPACES,
      policies: [policy('one', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })],
    };
    expect(allowed(deny, a, b, 80)).toBe(false);
    expect(allowed(deny, c, a, 80)).toBe(false);
    expect(allowed(deny, c, c, 80)).toBe(true);
  });

  it('needs both the source’s egress and the destination’s ingress', () => {
    const policies: object[] = [
      policy('one', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
      policy('one', {
        podSelector: { matchLabels: { app: 'b' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'a' } } }], ports: [{ port: 80 }] }],
      }),
    ];
    const cluster: Cluster = { namespaces: NAMESPACES, policies };
    expect(allowed(cluster, a, b, 80)).toBe(false);
    policies.push(
      policy('one', {
        podSelector: { matchLabels: { app: 'a' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ podSelector: { matchLabels: { app: 'b' } } }], ports: [{ port: 80 }] }],
      }),
    );
    expect(allowed(cluster, a, b, 80)).toBe(true);
    expect(allowed(cluster, a, b, 81)).toBe(false);
    expect(allowed(cluster, a, b, 80, 'UDP')).toBe(false);
  });

  it('reads a podSelector alone as the policy’s namespace, and both selectors as an intersection', () => {
    const only = (peer: object): Cluster => ({
      namespaces: NAMESPACES,
      policies: [
        policy('one', {
          podSelector: { matchLabels: { app: 'a' } },
          policyTypes: ['Ingress'],
          ingress: [{ from: [peer] }],
        }),
      ],
    });
    const anyApp = { podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] } };
    expect(allowed(only(anyApp), b, a, 1)).toBe(true);
    expect(allowed(only(anyApp), c, a, 1)).toBe(false);
    expect(allowed(only({ ...anyApp, namespaceSelector: { matchLabels: { team: 'x' } } }), c, a, 1)).toBe(true);
    expect(allowed(only({ ...anyApp, namespaceSelector: { matchLabels: { team: 'x' } } }), b, a, 1)).toBe(false);
  });

  it('matches ipBlocks with their exceptions, pods included', () => {
    const cluster: Cluster = {
      namespaces: NAMESPACES,
      policies: [
        policy('one', {
          podSelector: { matchLabels: { app: 'a' } },
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: '10.1.0.0/16', except: ['10.1.0.2/32'] } }] }],
        }),
      ],
    };
    expect(allowed(cluster, a, c, 5)).toBe(true);
    expect(allowed(cluster, a, b, 5)).toBe(false);
    expect(allowed(cluster, a, { kind: 'external', name: 'lo', address: '127.0.0.1' }, 5)).toBe(false);
  });

  it('evaluates match expressions as Kubernetes does: NotIn matches an absent label', () => {
    expect(selects({ matchExpressions: [{ key: 'q', operator: 'NotIn', values: ['true'] }] }, {})).toBe(true);
    expect(selects({ matchExpressions: [{ key: 'q', operator: 'NotIn', values: ['true'] }] }, { q: 'true' })).toBe(
      false,
    );
    expect(selects({ matchExpressions: [{ key: 'q', operator: 'In', values: ['x'] }] }, {})).toBe(false);
    expect(selects({}, { any: 'thing' })).toBe(true);
    expect(() => selects({ matchExpressions: [{ key: 'q', operator: 'Near' }] }, {})).toThrow(
      /unknown selector operator/,
    );
  });

  it('lists a matrix only where one end is a pod', () => {
    const outside: Endpoint = { kind: 'external', name: 'x', address: '127.0.0.2' };
    const inside: Endpoint = { kind: 'external', name: 'y', address: '127.0.0.3' };
    expect(matrix({ namespaces: NAMESPACES, policies: [] }, [a, outside, inside], () => [1])).toEqual([
      'a -> x : 1',
      'a -> y : 1',
      'x -> a : 1',
      'y -> a : 1',
    ]);
  });
});
