import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { Network } from '../network';
import type { DifyServiceName, Flow, Peer } from './catalog';

/** An end of a flow that has a security group: a service, Aurora, Valkey, the gateway, the load balancer. */
export type FlowEnd = DifyServiceName | Exclude<Peer, 'internet' | 'bedrock' | 'mirror'>;

/**
 * Renders the catalogue's flows as security-group rules, each as soon as both of its ends exist.
 *
 * A rule is always written from the end whose security group is in the later stack (of `stacks`,
 * in deploy order), and between two ends of one stack from the end added last, with that end's own
 * `connections`: CDK places the ingress and egress rules of a pair that spans two stacks in the
 * stack of the group whose `connections` was called, so this keeps every reference pointing at a
 * stack deployed earlier (on EKS, a service in the main stack shares the cluster's group, which is
 * in the runtime stack). Within one stack either direction yields the same two rules.
 */
export class SecurityGroupFlows {
  private readonly ends = new Map<FlowEnd, ec2.IConnectable>();
  private readonly rendered = new Set<Flow>();

  constructor(
    private readonly flows: readonly Flow[],
    private readonly network: Network,
    /** The stacks in deploy order. @default - one stack */
    private readonly stacks: readonly Stack[] = [],
  ) {}

  /** Adds an end and renders every flow whose other end is already here. */
  public add(end: FlowEnd, connectable: ec2.IConnectable): void {
    if (this.ends.has(end)) throw new Error(`flow end ${end} was added twice`);
    this.ends.set(end, connectable);
    for (const flow of this.flows) {
      if (this.rendered.has(flow) || (flow.from !== end && flow.to !== end)) continue;
      if (this.render(flow)) this.rendered.add(flow);
    }
  }

  /** Flows not rendered yet, because one of their ends was never added. */
  public get pending(): readonly Flow[] {
    return this.flows.filter((flow) => !this.rendered.has(flow));
  }

  private render(flow: Flow): boolean {
    if (flow.to === 'internet') {
      const from = this.ends.get(flow.from as FlowEnd)!;
      for (const port of flow.ports ?? []) {
        from.connections.allowTo(ec2.Peer.anyIpv4(), ec2.Port.tcp(port), flow.description);
      }
      return true;
    }
    if (flow.to === 'mirror') {
      const from = this.ends.get(flow.from as FlowEnd);
      if (from === undefined) return false;
      for (const network of flow.networks ?? []) {
        for (const port of flow.ports ?? []) {
          from.connections.allowTo(ec2.Peer.ipv4(network), ec2.Port.tcp(port), flow.description);
        }
      }
      return true;
    }
    if (flow.to === 'bedrock') {
      this.network.allowEndpoints(this.ends.get(flow.from as FlowEnd)!, flow.description, ['BedrockRuntime']);
      return true;
    }
    const from = this.ends.get(flow.from as FlowEnd);
    const to = this.ends.get(flow.to as FlowEnd);
    if (from === undefined || to === undefined) return false;
    const ports = flow.ports ?? [portOf(to, flow)];
    const rank = (end: ec2.IConnectable) => {
      const group = end.connections.securityGroups[0];
      return group === undefined ? -1 : this.stacks.indexOf(Stack.of(group));
    };
    // `to` was just added when it is the later end: write from it; otherwise from `from`.
    const writeFromTo = rank(to) === rank(from) ? [...this.ends.keys()].pop() === flow.to : rank(to) > rank(from);
    for (const port of ports) {
      if (writeFromTo) to.connections.allowFrom(from, ec2.Port.tcp(port), flow.description);
      else from.connections.allowTo(to, ec2.Port.tcp(port), flow.description);
    }
    return true;
  }
}

function portOf(to: ec2.IConnectable, flow: Flow): number {
  const port = to.connections.defaultPort?.toRuleJson() as { fromPort?: number } | undefined;
  if (port?.fromPort === undefined) throw new Error(`flow to ${flow.to}: it has no default port; name the ports`);
  return port.fromPort;
}
