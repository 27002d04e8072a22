import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type { DifyServiceRow } from '../dify/catalog';
import type { Edge } from '../edge';

/**
 * Registers a routed row with the front door, as every runtime must: its paths, its port, its HTTP
 * health path. Throws for a row the front door cannot route (no route, no port, no HTTP health check).
 */
export function addRowTarget(
  edge: Edge,
  row: DifyServiceRow,
  targets?: elbv2.IApplicationLoadBalancerTarget[],
): { group: elbv2.ApplicationTargetGroup; port: number } {
  if (row.edge === undefined || row.port === undefined || row.health.kind !== 'http') {
    throw new Error(`${row.service}: only a row with an edge route, a port and an HTTP health check is routed`);
  }
  const group = edge.addTarget(row.id, {
    port: row.port,
    healthCheckPath: row.health.path,
    pathPatterns: row.edge.paths,
    targets,
  });
  return { group, port: row.port };
}
