import * as ipaddr from 'ipaddr.js';
import { DEFAULT_DENY_POLICY } from '../../../../contracts/kubernetes';
import { DIFY_SERVICES, type DifyServiceName, type Flow, type Peer } from '../../dify/catalog';
import { DENIED_DESTINATIONS } from '../../dify/squid-config';
import type { KubernetesObject, LabelSelector } from './objects';
import { namespaceOf, QUARANTINE_LABEL, SERVICE_LABEL } from './placement';

/**
 * The catalogue's flow table (dify/catalog.ts FLOWS), the same table the ECS security groups are
 * rendered from, as NetworkPolicies:
 * - every namespace denies all traffic in and out by default, and allows DNS out;
 * - each service gets one ingress and one egress policy with exactly its flows;
 * - every allow, DNS included, excludes pods labelled `dify.security/quarantine=true` on both ends,
 *   and peers in a namespace so labelled: a quarantined pod is selected by the default deny alone.
 *   NetworkPolicies only ever add allows, so a quarantine must be absent from every allow, not
 *   patched into a deny (which isolates nothing).
 */

/** Where a non-Dify peer of a flow is, as the network sees it on EKS. */
export interface PeerAddress {
  /** IPv4 ranges the peer's addresses are in. */
  readonly cidrs: readonly string[];
  /** Its ports, for flows that name none. */
  readonly ports: readonly number[];
}

export interface NetworkPolicyProps {
  readonly vpcCidr: string;
  /** Every non-Dify peer the flows name, except `internet` (any public IPv4 address). */
  readonly peers: Readonly<Record<Exclude<Peer, 'internet' | 'mirror'>, PeerAddress>>;
  /**
   * Platform flows that the flow table leaves to the platform on ECS (the task's own credentials
   * and the AWS APIs it calls), by service.
   */
  readonly platformEgress?: Partial<
    Record<
      DifyServiceName,
      ReadonlyArray<{
        readonly cidrs: readonly string[];
        readonly ports: readonly number[];
        readonly description: string;
      }>
    >
  >;
}

const NOT_QUARANTINED = { key: QUARANTINE_LABEL, operator: 'NotIn', values: ['true'] } as const;

/** The pods of one service, never quarantined ones. */
const podsOf = (service: DifyServiceName): LabelSelector => ({
  matchLabels: { [SERVICE_LABEL]: DIFY_SERVICES[service].name },
  matchExpressions: [NOT_QUARANTINED],
});

/** A peer rule that names one service's pods in their namespace, unless either is quarantined. */
const servicePeer = (service: DifyServiceName) => ({
  namespaceSelector: {
    matchLabels: { 'kubernetes.io/metadata.name': namespaceOf(service) },
    matchExpressions: [NOT_QUARANTINED],
  },
  podSelector: podsOf(service),
});

/** Any public IPv4 address: everything but the ranges the SSRF proxy refuses, and the VPC. */
export function internetBlock(vpcCidr: string) {
  const denied = [...DENIED_DESTINATIONS.private, ...DENIED_DESTINATIONS.linkLocal, ...DENIED_DESTINATIONS.loopback]
    .filter((cidr) => ipaddr.parseCIDR(cidr)[0].kind() === 'ipv4')
    .filter((cidr) => cidr !== '0.0.0.0/8');
  const [vpc, bits] = ipaddr.parseCIDR(vpcCidr);
  const covered = denied.some((cidr) => vpc.match(ipaddr.parseCIDR(cidr)) && bits >= ipaddr.parseCIDR(cidr)[1]);
  return { cidr: '0.0.0.0/0', except: covered ? denied : [...denied, vpcCidr] };
}

const portsOf = (target: DifyServiceName | Peer, flow: Flow, props: NetworkPolicyProps): readonly number[] => {
  if (flow.ports !== undefined) return flow.ports;
  if (target === 'internet') throw new Error(`${flow.description}: a flow to the internet must name its ports`);
  if (target === 'edge') throw new Error(`${flow.description}: the edge is never a destination`);
  if (target in DIFY_SERVICES) {
    const port = DIFY_SERVICES[target as DifyServiceName].port;
    if (port === undefined) throw new Error(`${flow.description}: ${target} serves no port`);
    return [port];
  }
  return props.peers[target as Exclude<Peer, 'internet' | 'mirror'>].ports;
};

const tcp = (ports: readonly number[]) => ports.map((port) => ({ protocol: 'TCP', port }));

const isService = (end: DifyServiceName | Peer): end is DifyServiceName => end in DIFY_SERVICES;

/** Default deny and DNS for every namespace, then one ingress and one egress policy per service in `services`. */
export function networkPolicies(
  flows: readonly Flow[],
  services: readonly DifyServiceName[],
  props: NetworkPolicyProps,
): KubernetesObject[] {
  const namespaces = [...new Set(services.map(namespaceOf))];
  const objects: KubernetesObject[] = namespaces.flatMap((namespace) => [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: DEFAULT_DENY_POLICY, namespace },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      // EKS Auto Mode answers DNS on a node-local address, so DNS is allowed to any address, on 53 only.
      metadata: { name: 'allow-dns', namespace },
      spec: {
        podSelector: { matchExpressions: [NOT_QUARANTINED] },
        policyTypes: ['Egress'],
        egress: [
          {
            ports: [
              { protocol: 'UDP', port: 53 },
              { protocol: 'TCP', port: 53 },
            ],
          },
        ],
      },
    },
  ]);
  for (const service of services) {
    const row = DIFY_SERVICES[service];
    const namespace = namespaceOf(service);
    const ingress = flows
      .filter((flow) => flow.to === service)
      .map((flow) => {
        const ports = tcp(portsOf(service, flow, props));
        if (isService(flow.from)) return { from: [servicePeer(flow.from)], ports };
        if (flow.from === 'internet' || flow.from === 'mirror')
          throw new Error(`${flow.description}: nothing is let in from outside the VPC`);
        return { from: props.peers[flow.from].cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports };
      });
    const egress = [
      ...flows
        .filter((flow) => flow.from === service)
        .map((flow) => {
          const ports = tcp(portsOf(flow.to, flow, props));
          if (isService(flow.to)) return { to: [servicePeer(flow.to)], ports };
          if (flow.to === 'internet') return { to: [{ ipBlock: internetBlock(props.vpcCidr) }], ports };
          if (flow.to === 'mirror') return { to: (flow.networks ?? []).map((cidr) => ({ ipBlock: { cidr } })), ports };
          return { to: props.peers[flow.to].cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports };
        }),
      ...(props.platformEgress?.[service] ?? []).map((rule) => ({
        to: rule.cidrs.map((cidr) => ({ ipBlock: { cidr } })),
        ports: tcp(rule.ports),
      })),
    ];
    const policy = (direction: 'ingress' | 'egress', rules: unknown[]): KubernetesObject => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `${row.name}-${direction}`, namespace },
      spec: {
        podSelector: podsOf(service),
        policyTypes: [direction === 'ingress' ? 'Ingress' : 'Egress'],
        [direction]: rules,
      },
    });
    if (ingress.length > 0) objects.push(policy('ingress', ingress));
    if (egress.length > 0) objects.push(policy('egress', egress));
  }
  return objects;
}
