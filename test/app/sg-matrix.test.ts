import type { IConstruct } from 'constructs';
import type { Flow } from '../helpers/sg-matrix';
import { renderEgress, renderMatrix } from '../helpers/sg-matrix';
import { build, task, VARIANTS } from '../helpers/synth';
import { logicalId } from '../helpers/template';

/**
 * The whole security-group matrix, rendered from the template and compared with the tables below.
 * A new rule anywhere fails this test until the table (the reviewed intent) says so.
 *
 * Application flows (the services issue's table):
 *   load balancer -> web 3000, api 5001, plugin daemon 5002
 *   api, worker -> Aurora 5432, Valkey 6379, sandbox 8194, plugin daemon 5002, SSRF proxy 3128
 *   beat -> Aurora 5432, Valkey 6379, SSRF proxy 3128 (it calls neither the sandbox nor the plugin daemon)
 *   plugin daemon -> Aurora, Valkey, api 5001, SSRF proxy
 *   sandbox -> SSRF proxy only
 *   SSRF proxy -> 80/443 out
 * plus the migration task (Aurora, Valkey, the proxy), the LLM gateway
 * (from api, worker and plugin daemon; to Valkey and the providers on 443) and the foundation's own
 * flows (secret rotation -> Aurora, CloudFront's prefix list -> the load balancer).
 *
 * Platform flows: every task reaches the Secrets Manager, ECR, Logs (and KMS in prod) endpoints
 * and S3's prefix list on 443 (image layers, the storage bucket through the gateway endpoint); that
 * is how Fargate pulls images, reads secrets and ships logs for tasks that have no route to the
 * internet. The in-VPC functions reach only the endpoints they call. Each endpoint's policy admits
 * only this account's principals and resources (test/constructs/network.test.ts).
 */
describe('the security-group matrix', () => {
  const sort = (flows: Flow[]) =>
    [...flows].sort((a, b) => `${a.to} ${a.from} ${a.port}`.localeCompare(`${b.to} ${b.from} ${b.port}`));
  const sortEgress = (flows: Flow[]) =>
    [...flows].sort((a, b) => `${a.from} ${a.to} ${a.port}`.localeCompare(`${b.from} ${b.to} ${b.port}`));

  const built = build(VARIANTS.prod);
  const { template, stacks } = built;
  const main = stacks;
  const sg = (construct: IConstruct) => logicalId(construct);
  const tasks = {
    api: task(built, 'api'),
    worker: task(built, 'worker'),
    beat: task(built, 'worker_beat'),
    web: task(built, 'web'),
    sandbox: task(built, 'sandbox'),
    'plugin daemon': task(built, 'plugin_daemon'),
    'ssrf proxy': task(built, 'ssrf_proxy'),
    'migration task': task(built, 'migration'),
    'llm gateway': main.gateway.service,
  };
  const names: Record<string, string> = {
    [sg(main.database.connections.securityGroups[0])]: 'database',
    [sg(main.cache.connections.securityGroups[0])]: 'cache',
    [sg(main.edge.loadBalancer.connections.securityGroups[0])]: 'load balancer',
    [sg(main.database.node.findChild('RotationSecurityGroup'))]: 'secret rotation',
    [sg(stacks.main.node.findChild('SecretRotation').node.findChild('SecurityGroup'))]: 'scheduled rotation',
    [sg(main.database.node.findChild('Bootstrap').node.findChild('SecurityGroup'))]: 'database bootstrap',
    [sg(stacks.main.node.findChild('Dify').node.findChild('Migration').node.findChild('SecurityGroup'))]:
      'migration runner',
    ...Object.fromEntries(Object.entries(tasks).map(([name, task]) => [sg(task.securityGroup), name])),
  };
  for (const [name, endpoint] of Object.entries(main.network.interfaceEndpoints)) {
    names[sg(endpoint.connections.securityGroups[0])] = `${name} endpoint`;
  }
  const endpoints = Object.keys(main.network.interfaceEndpoints);
  const flow = (from: string, to: string, port: number | string): Flow => ({ from, to, port: String(port) });

  it('has exactly the reviewed ingress rules, in prod (all nine interface endpoints)', () => {
    const apiImage = ['api', 'worker'];
    const application = [
      // prod has a domain of its own, so CloudFront reaches the load balancer over HTTPS.
      flow('prefix list', 'load balancer', 443),
      flow('load balancer', 'web', 3000),
      flow('load balancer', 'api', 5001),
      flow('load balancer', 'plugin daemon', 5002),
      ...apiImage.flatMap((from) => [
        flow(from, 'database', 5432),
        flow(from, 'cache', 6379),
        flow(from, 'sandbox', 8194),
        flow(from, 'plugin daemon', 5002),
        flow(from, 'ssrf proxy', 3128),
      ]),
      flow('beat', 'database', 5432),
      flow('beat', 'cache', 6379),
      flow('beat', 'ssrf proxy', 3128),
      flow('plugin daemon', 'database', 5432),
      flow('plugin daemon', 'cache', 6379),
      flow('plugin daemon', 'api', 5001),
      flow('plugin daemon', 'ssrf proxy', 3128),
      flow('migration task', 'database', 5432),
      flow('migration task', 'cache', 6379),
      flow('migration task', 'ssrf proxy', 3128),
      flow('sandbox', 'ssrf proxy', 3128),
      flow('secret rotation', 'database', 5432),
      // The bootstrap runs its SQL over 5432 from inside the VPC, with TLS verified (no Data API).
      flow('database bootstrap', 'database', 5432),
      // The LLM gateway: called by the api, worker and plugin daemon only (never the load balancer),
      // and sharing its rate limits through Valkey.
      flow('api', 'llm gateway', 8080),
      flow('worker', 'llm gateway', 8080),
      flow('plugin daemon', 'llm gateway', 8080),
      flow('llm gateway', 'cache', 6379),
      // The scheduled rotation signs in with a Valkey user's new password before it becomes current.
      flow('scheduled rotation', 'cache', 6379),
    ];
    const fargate = ['SecretsManager', 'EcrApi', 'EcrDocker', 'Logs', 'Kms'];
    const platform = [
      ...Object.keys(tasks).flatMap((from) => fargate.map((name) => flow(from, `${name} endpoint`, 443))),
      ...['database bootstrap', 'migration runner'].flatMap((from) =>
        fargate.map((name) => flow(from, `${name} endpoint`, 443)),
      ),
      flow('database bootstrap', 'Lambda endpoint', 443),
      flow('migration runner', 'Lambda endpoint', 443),
      flow('migration runner', 'Ecs endpoint', 443),
      flow('plugin daemon', 'BedrockRuntime endpoint', 443),
      flow('secret rotation', 'SecretsManager endpoint', 443),
      ...['SecretsManager', 'Lambda', 'Ecs', 'ElastiCache'].map((name) =>
        flow('scheduled rotation', `${name} endpoint`, 443),
      ),
    ];
    expect(endpoints.sort()).toEqual([...fargate, 'BedrockRuntime', 'Lambda', 'Ecs', 'ElastiCache'].sort());
    expect(renderMatrix(template, names)).toEqual(sort([...application, ...platform]));
  });

  it('lets nothing out of the VPC but the proxy’s web ports, the gateway’s provider calls and S3 through its endpoint', () => {
    // Why: the sandbox runs user code and the api fetches user-supplied URLs; the only way to the
    // internet is the SSRF proxy, whose rules deny the metadata endpoints and every private range.
    const expected = [
      ...[...Object.keys(tasks), 'database bootstrap', 'migration runner'].map((from) =>
        flow(from, 'prefix list', 443),
      ),
      flow('ssrf proxy', 'cidr 0.0.0.0/0', 80),
      flow('ssrf proxy', 'cidr 0.0.0.0/0', 443),
      // Our own gateway calls the LLM providers' HTTPS APIs directly.
      flow('llm gateway', 'cidr 0.0.0.0/0', 443),
    ];
    expect(renderEgress(template, names)).toEqual(sortEgress(expected));
  });

  it('renders everything the sandbox can reach, hiding no flow, and holds it to the reviewed table', () => {
    // Why: code in the sandbox can open sockets. Its only way to the internet is the SSRF proxy; the
    // endpoints and S3 are there because Fargate pulls its image, injects its key and ships its logs
    // through the task's own interface, and their policies admit only this account.
    const egressTo = (target: string) =>
      renderMatrix(template, names)
        .filter((f) => f.to === target)
        .map((f) => f.from);
    const sandboxOut = [
      ...renderMatrix(template, names).filter((f) => f.from === 'sandbox'),
      ...renderEgress(template, names).filter((f) => f.from === 'sandbox'),
    ];
    expect(sortEgress(sandboxOut)).toEqual(
      sortEgress([
        flow('sandbox', 'ssrf proxy', 3128),
        flow('sandbox', 'EcrApi endpoint', 443),
        flow('sandbox', 'EcrDocker endpoint', 443),
        flow('sandbox', 'Kms endpoint', 443),
        flow('sandbox', 'Logs endpoint', 443),
        flow('sandbox', 'SecretsManager endpoint', 443),
        flow('sandbox', 'prefix list', 443),
      ]),
    );
    // Nothing that is not ours to call: no data tier, no other service, no function endpoint.
    for (const target of [
      'database',
      'cache',
      'api',
      'plugin daemon',
      'llm gateway',
      'Lambda endpoint',
      'Ecs endpoint',
      'ElastiCache endpoint',
      'BedrockRuntime endpoint',
    ]) {
      expect({ target, sandbox: egressTo(target).includes('sandbox') }).toEqual({ target, sandbox: false });
    }
  });
});
