import { execFileSync } from 'node:child_process';
import { repoPath } from '../../../lib/paths';
import { build, ZONE } from '../../helpers/synth';
import { resources } from '../../helpers/template';

/**
 * Where each container's HTTP clients really send a URL, as httpx decides it under the container's
 * exact environment from the synthesized template (Debian's python3-httpx; see
 * test/constructs/dify/python/proxy_routes.py). The SSRF-protected client is what workflow HTTP nodes, remote
 * file uploads and tools use, so a URL it fetches directly is an SSRF hole: it must go to the proxy
 * whatever the host. The other clients may reach only the few names that must be direct.
 */
const PYTHON = '/usr/bin/python3';
const PROXY = 'http://ssrf-proxy.dify.internal:3128';
const REGION = 'eu-west-1';

/** What the environment-trusting clients (botocore, the service calls) may reach directly, and only that. */
const DIRECT = [
  'http://169.254.170.2/v2/credentials/abc', // the task's IAM credentials
  'http://api.dify.internal:5001/inner/api/invoke/llm',
  'http://sandbox.dify.internal:8194/v1/sandbox/run',
  'http://plugin-daemon.dify.internal:5002/plugin/x',
  'http://llm-gateway.dify.internal:8080/v1/models',
  `https://s3.${REGION}.amazonaws.com/some-bucket/key`,
  `https://exfil-bucket.s3.${REGION}.amazonaws.com/key`,
];

/** URLs a hostile workflow author or end user would aim the SSRF client at: all of the above, and more. */
const HOSTILE = [
  ...DIRECT,
  'http://169.254.169.254/latest/meta-data/', // instance metadata
  'http://localhost:5001/console/api/setup',
  'http://127.0.0.1:5001/health',
  `https://secretsmanager.${REGION}.amazonaws.com/`,
  'https://example.com/',
];

interface Routes {
  readonly ssrf: Record<string, string | null>;
  readonly default: Record<string, string | null>;
}

function routes(environment: Record<string, string>): Routes {
  const out = execFileSync(PYTHON, [repoPath('test/constructs/dify/python/proxy_routes.py')], {
    input: JSON.stringify({ environment, urls: HOSTILE }),
    encoding: 'utf8',
  });
  return JSON.parse(out) as Routes;
}

/** Every container's environment in the template; values CloudFormation resolves become placeholders. */
function containerEnvironments(): Array<[string, Record<string, string>]> {
  const { template } = build({ profile: 'prod', region: REGION, ...ZONE });
  return resources(template, 'AWS::ECS::TaskDefinition').flatMap(([, task]) =>
    (
      task.Properties!.ContainerDefinitions as Array<{
        Name: string;
        Environment?: Array<{ Name: string; Value: unknown }>;
      }>
    ).map((container): [string, Record<string, string>] => [
      container.Name,
      Object.fromEntries(
        (container.Environment ?? []).map(({ Name, Value }) => [
          Name,
          typeof Value === 'string' ? Value : 'resolved-at-deploy',
        ]),
      ),
    ]),
  );
}

describe('the SSRF proxy, as httpx routes each container’s requests', () => {
  const containers = containerEnvironments();
  const ssrfClients = containers.filter(([, env]) => env.SSRF_PROXY_HTTP_URL !== undefined);
  const proxied = containers.filter(([, env]) => env.HTTP_PROXY !== undefined);

  it('covers every container of the api image and every container that has a proxy', () => {
    expect(ssrfClients.map(([name]) => name).sort()).toEqual(['api', 'beat', 'migration', 'worker']);
    expect(proxied.map(([name]) => name).sort()).toEqual([
      'api',
      'beat',
      'migration',
      'plugin-daemon',
      'sandbox',
      'worker',
    ]);
  });

  it.each(['api', 'worker', 'beat', 'migration'])(
    'sends every URL of Dify’s SSRF-protected client through squid, whatever the host (%s)',
    (name) => {
      const [, environment] = containers.find(([container]) => container === name)!;
      const { ssrf } = routes(environment);
      expect(ssrf).toEqual(Object.fromEntries(HOSTILE.map((url) => [url, PROXY])));
    },
  );

  it.each(['api', 'worker', 'beat', 'migration', 'plugin-daemon', 'sandbox'])(
    'lets the other clients reach directly only the services, S3 in the region and the credentials address (%s)',
    (name) => {
      const [, environment] = containers.find(([container]) => container === name)!;
      const expected = Object.fromEntries(
        HOSTILE.map((url) => [url, name !== 'sandbox' && DIRECT.includes(url) ? null : PROXY]),
      );
      expect(routes(environment).default).toEqual(expected);
    },
  );
});
