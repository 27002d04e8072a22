import * as ipaddr from 'ipaddr.js';

/**
 * A NetworkPolicy evaluator (networking.k8s.io/v1 semantics): who may open which TCP port on whom,
 * given the pods, their namespaces and the policies. No CNI runs offline, so the tests compute the
 * matrix the policies allow and compare it with the reviewed intent (and with the ECS security
 * groups rendered from the same flow table). test/helpers/network-policy.test.ts pins the evaluator.
 *
 * Semantics: a pod selected by no policy of a direction is open in that direction; a pod selected
 * by any is closed but for the union of their rules. A connection needs the source's egress and the
 * destination's ingress. Peers: podSelector alone means the policy's namespace; namespaceSelector
 * alone, every pod there; both, the pods that match in the namespaces that match; ipBlock, addresses
 * (pods have addresses too, so an ipBlock can admit a pod).
 */

export type Labels = Record<string, string>;

export interface Pod {
  readonly kind: 'pod';
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly address: string;
}

export interface External {
  readonly kind: 'external';
  readonly name: string;
  readonly address: string;
}

export type Endpoint = Pod | External;

export interface Cluster {
  readonly namespaces: Record<string, Labels>;
  readonly policies: readonly any[];
}

export function selects(selector: any, labels: Labels): boolean {
  if (selector === undefined || selector === null) return false;
  for (const [key, value] of Object.entries((selector.matchLabels as Labels) ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const expr of (selector.matchExpressions as any[]) ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, expr.key);
    const values: string[] = expr.values ?? [];
    switch (expr.operator) {
      case 'In':
        if (!has || !values.includes(labels[expr.key])) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[expr.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        throw new Error(`unknown selector operator ${expr.operator}`);
    }
  }
  return true;
}

function inBlock(block: any, address: string): boolean {
  const ip = ipaddr.parse(address);
  const within = (cidr: string) => {
    const [range, bits] = ipaddr.parseCIDR(cidr);
    return range.kind() === ip.kind() && ip.match(range, bits);
  };
  return within(block.cidr) && !((block.except as string[]) ?? []).some(within);
}

function peerMatches(peer: any, policyNamespace: string, other: Endpoint, cluster: Cluster): boolean {
  if (peer.ipBlock !== undefined) return inBlock(peer.ipBlock, other.address);
  if (other.kind !== 'pod') return false;
  const namespaceOk =
    peer.namespaceSelector === undefined
      ? other.namespace === policyNamespace
      : selects(peer.namespaceSelector, cluster.namespaces[other.namespace] ?? {});
  const podOk = peer.podSelector === undefined || selects(peer.podSelector, other.labels);
  return namespaceOk && podOk;
}

function portMatches(ports: any[] | undefined, port: number, protocol: string): boolean {
  if (ports === undefined || ports.length === 0) return true;
  return ports.some(
    (p) =>
      (p.protocol ?? 'TCP') === protocol &&
      (p.port === undefined || (p.endPort === undefined ? p.port === port : port >= p.port && port <= p.endPort)),
  );
}

function allowedOneWay(
  pod: Pod,
  other: Endpoint,
  port: number,
  protocol: string,
  direction: 'Ingress' | 'Egress',
  cluster: Cluster,
): boolean {
  const policies = cluster.policies.filter(
    (p) =>
      p.kind === 'NetworkPolicy' &&
      p.metadata.namespace === pod.namespace &&
      selects(p.spec.podSelector, pod.labels) &&
      ((p.spec.policyTypes as string[]) ?? ['Ingress']).includes(direction),
  );
  if (policies.length === 0) return true;
  const field = direction === 'Ingress' ? 'ingress' : 'egress';
  const peersField = direction === 'Ingress' ? 'from' : 'to';
  return policies.some((p) =>
    ((p.spec[field] as any[]) ?? []).some(
      (rule) =>
        portMatches(rule.ports, port, protocol) &&
        (rule[peersField] === undefined ||
          (rule[peersField] as any[]).some((peer) => peerMatches(peer, p.metadata.namespace, other, cluster))),
    ),
  );
}

/** Whether `from` may open `port` (TCP unless said) on `to`. */
export function allowed(cluster: Cluster, from: Endpoint, to: Endpoint, port: number, protocol = 'TCP'): boolean {
  const out = from.kind === 'pod' ? allowedOneWay(from, to, port, protocol, 'Egress', cluster) : true;
  const into = to.kind === 'pod' ? allowedOneWay(to, from, port, protocol, 'Ingress', cluster) : true;
  return out && into;
}

/** Every `from -> to : port` the policies allow among `endpoints` (one end a pod), on each destination's listed ports. */
export function matrix(
  cluster: Cluster,
  endpoints: readonly Endpoint[],
  portsOf: (to: Endpoint) => readonly number[],
): string[] {
  const edges: string[] = [];
  for (const from of endpoints)
    for (const to of endpoints) {
      // Between two addresses outside the cluster no policy applies: not ours to judge.
      if (from === to || (from.kind !== 'pod' && to.kind !== 'pod')) continue;
      for (const port of portsOf(to))
        if (allowed(cluster, from, to, port)) edges.push(`${from.name} -> ${to.name} : ${port}`);
    }
  return edges.sort();
}
