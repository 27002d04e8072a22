import { build } from './helpers/synth';
import { renderMatrix } from './helpers/sg-matrix';
import { logicalId } from './helpers/template';

/**
 * The whole security-group matrix of the foundation and the front door, rendered from the template
 * and compared with the table below. A new rule anywhere fails this test until the table (the
 * reviewed intent) says so. The ECS services extend this table.
 */
describe('the security-group matrix', () => {
  it('is exactly the reviewed table, in prod (with interface endpoints)', () => {
    const { template, stacks } = build({ profile: 'prod' });
    const main = stacks.main;
    const names: Record<string, string> = {
      [logicalId(main.database.connections.securityGroups[0])]: 'database',
      [logicalId(main.cache.connections.securityGroups[0])]: 'cache',
      [logicalId(main.edge.loadBalancer.connections.securityGroups[0])]: 'load balancer',
      [logicalId(main.database.node.findChild('RotationSecurityGroup'))]: 'secret rotation',
      [logicalId(main.database.node.findChild('Bootstrap').node.findChild('SecurityGroup'))]: 'database bootstrap',
    };
    for (const [name, endpoint] of Object.entries(main.network.interfaceEndpoints)) {
      names[logicalId(endpoint.connections.securityGroups[0])] = `${name} endpoint`;
    }
    const endpoints = Object.keys(main.network.interfaceEndpoints).sort();
    const expected = [
      { from: 'secret rotation', to: 'database', port: '5432' },
      { from: 'prefix list', to: 'load balancer', port: '80' },
      ...endpoints.flatMap((name) => [
        { from: 'database bootstrap', to: `${name} endpoint`, port: '443' },
        { from: 'secret rotation', to: `${name} endpoint`, port: '443' },
      ]),
    ].sort((a, b) => `${a.to} ${a.from} ${a.port}`.localeCompare(`${b.to} ${b.from} ${b.port}`));
    expect(renderMatrix(template, names)).toEqual(expected);
  });
});
