import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIFY_RELEASE } from '../../../contracts/dify-release';
import { parseConfig } from '../../../lib/config/load';
import { type DifyServiceName, environmentOf } from '../../../lib/constructs/dify/catalog';
import { apiStartScript, type SecretRef } from '../../../lib/constructs/dify/environment';
import { CONTRACT_ADDITIONS, NOT_READ_BY } from '../../../lib/constructs/dify/contract-additions';
import { repoPath } from '../../../lib/paths';
import { RDS_CA_IMAGE_PATH } from '../../../lib/rds-ca';
import { placeholderWiring } from '../../helpers/wiring';

const SERVICES: DifyServiceName[] = [
  'api',
  'worker',
  'worker_beat',
  'migration',
  'web',
  'sandbox',
  'plugin_daemon',
  'ssrf_proxy',
];
const WIRING = placeholderWiring();

describe('the Dify environment contract', () => {
  // In the repository (contracts/dify/services.json), so a fresh clone tests with nothing beside it.
  it('is the contract of the release the stack deploys by default', () => {
    expect(DIFY_RELEASE.difyVersion).toBe(parseConfig({}).difyVersion);
  });
  const contract = DIFY_RELEASE;

  describe.each(SERVICES)('service %s', (service) => {
    const env = () => contract.services[service].env;
    const given = environmentOf(service, WIRING);
    const names = [...Object.keys(given.environment), ...Object.keys(given.secrets), ...given.assembledAtStart];

    it('sets only variables the pinned release reads (or a documented addition says what reads it)', () => {
      const additions = CONTRACT_ADDITIONS[service] ?? {};
      const unknown = names.filter((name) => !(name in env()) && !(name in additions));
      expect(unknown).toEqual([]);
    });

    it('documents only additions the contract really lacks', () => {
      const redundant = Object.keys(CONTRACT_ADDITIONS[service] ?? {}).filter((name) => name in env());
      expect(redundant).toEqual([]);
    });

    it('sets every variable the release marks required, unless a documented entry shows the service never reads it', () => {
      const missing = Object.entries(env())
        .filter(([, variable]) => variable.required)
        .map(([name]) => name)
        .filter((name) => !names.includes(name) && !(name in (NOT_READ_BY[service] ?? {})));
      expect(missing).toEqual([]);
    });

    it('leaves out only variables it really does not set', () => {
      expect(Object.keys(NOT_READ_BY[service] ?? {}).filter((name) => names.includes(name))).toEqual([]);
    });

    it('keeps every secret-marked variable out of the plain environment', () => {
      const leaked = Object.keys(given.environment).filter((name) => env()[name]?.secret);
      expect(leaked).toEqual([]);
    });

    it('sets each variable in one place only', () => {
      expect(new Set(names).size).toBe(names.length);
    });
  });

  it('feeds each pair of keys that must match from the same secret', () => {
    const sources = (service: string, variable: string): SecretRef | undefined =>
      environmentOf(service as DifyServiceName, WIRING).secrets[variable];
    expect(contract.sharedSecretsMustMatch.length).toBeGreaterThanOrEqual(4);
    for (const pair of contract.sharedSecretsMustMatch) {
      const refs = pair.flatMap((entry) => {
        const [services, variable] = entry.split(' ');
        return services.split('/').map((service) => ({ entry, ref: sources(service, variable) }));
      });
      for (const { entry, ref } of refs)
        expect({ entry, defined: ref !== undefined }).toEqual({ entry, defined: true });
      expect(new Set(refs.map(({ ref }) => JSON.stringify(ref))).size).toBe(1);
    }
  });

  it('gives the api, worker and beat their own database role, and the plugin daemon another', () => {
    for (const service of ['api', 'worker', 'worker_beat'] as const) {
      expect(environmentOf(service, WIRING).secrets.DB_PASSWORD).toEqual({
        secret: 'appDatabase',
        field: 'password',
      });
    }
    expect(environmentOf('plugin_daemon', WIRING).secrets.DB_PASSWORD).toEqual({
      secret: 'pluginDatabase',
      field: 'password',
    });
  });

  it('gates /install with INIT_PASSWORD from its own secret, in the api only', () => {
    // Why: without it the first allow-listed visitor to /install becomes the owner of the instance.
    expect(environmentOf('api', WIRING).secrets.INIT_PASSWORD).toEqual({ secret: 'initPassword' });
    for (const service of ['worker', 'worker_beat', 'migration', 'plugin_daemon'] as const) {
      expect(environmentOf(service, WIRING).secrets.INIT_PASSWORD).toBeUndefined();
    }
  });

  it('gives beat neither the sandbox’s nor the plugin daemon’s keys, which it never uses', () => {
    const beat = environmentOf('worker_beat', WIRING);
    for (const name of [
      'CODE_EXECUTION_API_KEY',
      'PLUGIN_DAEMON_KEY',
      'INNER_API_KEY_FOR_PLUGIN',
      'PGVECTOR_PASSWORD',
    ]) {
      expect(beat.secrets[name]).toBeUndefined();
    }
    expect(beat.environment.CODE_EXECUTION_ENDPOINT).toBeUndefined();
    expect(beat.environment.PLUGIN_DAEMON_URL).toBeUndefined();
  });

  it('migrates only in the migration task', () => {
    for (const service of ['api', 'worker', 'worker_beat'] as const) {
      expect(environmentOf(service, WIRING).environment.MIGRATION_ENABLED).toBe('false');
    }
    expect(environmentOf('migration', WIRING).environment).toMatchObject({
      MODE: 'migration',
      MIGRATION_ENABLED: 'true',
    });
  });

  it('connects over TLS with verification everywhere', () => {
    const api = environmentOf('api', WIRING).environment;
    expect(api.DB_EXTRAS).toBe(`sslmode=verify-full&sslrootcert=${RDS_CA_IMAGE_PATH}`);
    // pgvector's own pool reads no DB_EXTRAS: libpq takes verify-full from the environment.
    for (const service of ['api', 'worker', 'worker_beat', 'migration'] as const) {
      expect(environmentOf(service, WIRING).environment).toMatchObject({
        PGSSLMODE: 'verify-full',
        PGSSLROOTCERT: RDS_CA_IMAGE_PATH,
      });
    }
    expect(api).toMatchObject({ REDIS_USE_SSL: 'true', REDIS_SSL_CERT_REQS: 'CERT_REQUIRED', PGVECTOR_PORT: '5432' });
    expect(environmentOf('plugin_daemon', WIRING).environment).toMatchObject({
      DB_SSL_MODE: 'require',
      REDIS_USE_SSL: 'true',
      REDIS_SSL_CERT_REQS: 'CERT_REQUIRED',
    });
  });

  it('uses the public URL for browsers and the in-VPC name for internal file fetches; CORS allows only the domain', () => {
    const api = environmentOf('api', WIRING).environment;
    expect(api.FILES_URL).toBe('https://dify.example.com');
    expect(api.INTERNAL_FILES_URL).toBe('http://api.dify.internal:5001');
    expect(api.CONSOLE_CORS_ALLOW_ORIGINS).toBe('https://dify.example.com');
    expect(api.WEB_API_CORS_ALLOW_ORIGINS).toBe('https://dify.example.com');
    expect(Object.values(api)).not.toContain('*');
  });

  it('sends every outbound HTTP of the api image, the sandbox and the plugin daemon through the SSRF proxy', () => {
    const proxy = 'http://ssrf-proxy.dify.internal:3128';
    for (const service of ['api', 'worker', 'worker_beat', 'migration', 'sandbox', 'plugin_daemon'] as const) {
      expect({ service, ...environmentOf(service, WIRING).environment }).toMatchObject({
        service,
        HTTP_PROXY: proxy,
        HTTPS_PROXY: proxy,
      });
    }
    expect(environmentOf('api', WIRING).environment.SSRF_PROXY_HTTP_URL).toBe(proxy);
  });

  it('keeps direct only the services, S3 in the region and the credentials address (never AWS at large or loopback)', () => {
    for (const service of ['api', 'worker', 'worker_beat', 'migration', 'plugin_daemon'] as const) {
      expect(environmentOf(service, WIRING).environment.NO_PROXY.split(',')).toEqual([
        '.dify.internal',
        's3.eu-west-1.amazonaws.com',
        '.s3.eu-west-1.amazonaws.com',
        '169.254.170.2',
      ]);
    }
  });

  it('pins Dify’s SSRF-protected client to the proxy for every scheme, so NO_PROXY never applies to it', () => {
    for (const service of ['api', 'worker', 'worker_beat', 'migration'] as const) {
      expect(environmentOf(service, WIRING).environment.SSRF_PROXY_ALL_URL).toBe(
        'http://ssrf-proxy.dify.internal:3128',
      );
    }
  });

  it.each(['api', 'worker'] as const)(
    'builds the Celery broker URL at start as rediss:// with ssl_cert_reqs, from the injected user and password (%s)',
    (service) => {
      const script = apiStartScript(service);
      expect(script).toContain(
        'export CELERY_BROKER_URL="rediss://$REDIS_USERNAME:$REDIS_PASSWORD@$REDIS_HOST:$REDIS_PORT/1?ssl_cert_reqs=required"',
      );
      expect(script).toContain('exec /bin/bash /entrypoint.sh');
      // Nothing is fetched at start: the trust anchor is in the image.
      expect(script).not.toMatch(/urlretrieve|curl|wget|https:/);
      expect(script).not.toMatch(/echo|set -x/);
    },
  );

  it('runs beat with its schedule file in /tmp, the one writable path, and migrates without a broker', () => {
    expect(apiStartScript('worker_beat')).toMatch(
      /exec celery -A app\.celery beat .*--schedule \/tmp\/celerybeat-schedule$/,
    );
    expect(apiStartScript('migration')).not.toContain('CELERY_BROKER_URL');
    expect(apiStartScript('migration')).toMatch(/exec \/bin\/bash \/entrypoint\.sh$/);
  });
});

describe('npm run contract:refresh', () => {
  const script = repoPath('scripts/refresh-dify-contract.mjs');
  const run = (...args: string[]) => {
    try {
      return {
        code: 0,
        output: execFileSync(process.execPath, [script, ...args], { encoding: 'utf8', stdio: 'pipe' }),
      };
    } catch (error) {
      const failed = error as { status: number; stderr: string };
      return { code: failed.status, output: failed.stderr };
    }
  };
  const dir = mkdtempSync(join(tmpdir(), 'contract-'));

  it('copies a release’s contract in, byte for byte, and says which release it replaced', () => {
    const next = { ...DIFY_RELEASE, difyVersion: '9.9.9' };
    writeFileSync(join(dir, 'next.json'), JSON.stringify(next));
    writeFileSync(join(dir, 'current.json'), readFileSync(repoPath('contracts/dify/services.json')));
    const result = run(join(dir, 'next.json'), '--out', join(dir, 'current.json'));
    expect(result).toEqual({
      code: 0,
      output: expect.stringContaining(
        `Dify 9.9.9 written to ${join(dir, 'current.json')} (was ${DIFY_RELEASE.difyVersion})`,
      ),
    });
    expect(readFileSync(join(dir, 'current.json'), 'utf8')).toBe(JSON.stringify(next));
  });

  it('refuses a file that is not a contract, naming what is wrong, and writes nothing', () => {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ difyVersion: '1.0.0', services: {} }));
    writeFileSync(join(dir, 'kept.json'), 'kept');
    expect(run(join(dir, 'bad.json'), '--out', join(dir, 'kept.json'))).toEqual({
      code: 1,
      output: expect.stringContaining("'sharedSecretsMustMatch' is missing or has the wrong shape"),
    });
    expect(run(join(dir, 'missing.json'), '--out', join(dir, 'kept.json')).output).toContain('cannot read');
    expect(readFileSync(join(dir, 'kept.json'), 'utf8')).toBe('kept');
  });
});
