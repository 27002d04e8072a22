import { RDS_CA_IMAGE_PATH } from '../../rds-ca';
import { DIFY_REQUEST_LOGGING } from '../../../contracts/log-signals';

/**
 * What each Dify container is told, as plain data: non-secret `environment`, `secrets` injected by
 * ECS from Secrets Manager, and the few values the container assembles at start from those secrets.
 * Each row of the service catalogue (catalog.ts) names the builder here that gives its environment;
 * the platform's runtime maps the result onto its own objects. test/dify/environment.test.ts holds it
 * to the pinned release's contract in contracts/dify/services.json.
 */

/** The secrets of the stack, one per purpose. */
export type SecretName =
  | 'secretKey'
  | 'sandboxApiKey'
  | 'pluginDaemonKey'
  | 'pluginInnerApiKey'
  | 'initPassword'
  | 'cacheDify'
  | 'cachePluginDaemon'
  | 'appDatabase'
  | 'pluginDatabase'
  | 'smtp';

/** A secret, or one JSON field of it (the database secrets hold username, password, host...). */
export interface SecretRef {
  readonly secret: SecretName;
  readonly field?: 'username' | 'password';
}

/**
 * What the environment-trusting clients of a container (httpx and requests with their defaults,
 * botocore, Go's net/http in the plugin daemon) reach directly, and nothing more: the services' own
 * names, S3 in this region (through the VPC's gateway endpoint; `AWS_S3_US_EAST_1_REGIONAL_ENDPOINT`
 * keeps botocore off the legacy global name) and the task credentials address. Everything else,
 * the task metadata, loopback and every other AWS name included, goes to the SSRF proxy, which
 * denies internal addresses. Dify's SSRF-protected client ignores this list altogether:
 * `SSRF_PROXY_ALL_URL` sends every URL it fetches through the proxy (see `SSRF_PROXY_ALL_URL` in
 * contracts/dify/services.json).
 */
export function noProxy(wiring: Pick<Wiring, 'region' | 'serviceDomain' | 'credentialsAddress'>): string {
  const { region } = wiring;
  return [
    `.${wiring.serviceDomain}`,
    `s3.${region}.amazonaws.com`,
    `.s3.${region}.amazonaws.com`,
    wiring.credentialsAddress,
  ].join(',');
}

/** The in-VPC base URLs of the services others call (`http://<name>.<serviceDomain>:<port>`). */
export interface ServiceUrls {
  readonly api: string;
  readonly sandbox: string;
  readonly pluginDaemon: string;
  readonly ssrfProxy: string;
}

/** Everything the environment depends on that the stack knows. */
export interface Wiring {
  /** Dify's public base URL, e.g. `https://dify.example.com`. */
  readonly publicUrl: string;
  readonly region: string;
  /** The private DNS domain the platform registers the services under, e.g. `dify.internal`. */
  readonly serviceDomain: string;
  /** Where the platform serves a container its IAM credentials (ECS: 169.254.170.2). */
  readonly credentialsAddress: string;
  /** Where the services others call answer, from the catalogue's names and ports. */
  readonly urls: ServiceUrls;
  readonly databaseHost: string;
  readonly databasePort: number;
  readonly appDatabase: string;
  readonly pluginDatabase: string;
  readonly cacheHost: string;
  readonly cachePort: number;
  readonly bucketName: string;
  /** The plugin daemon's own bucket: it never sees Dify's files. */
  readonly pluginBucketName: string;
  readonly uploadFileSizeLimitMb: number;
  /**
   * A PyPI mirror for plugin and sandbox dependency installs.
   * @default - none: installs reach PyPI through the SSRF proxy
   */
  readonly pipMirrorUrl?: string;
  /**
   * Public addresses are reachable through the SSRF proxy (egress=nat). False with egress=none:
   * the marketplace and the version check are turned off rather than left to fail on every page.
   * @default true
   */
  readonly internet?: boolean;
  /**
   * Bedrock's runtime endpoint exists (bedrockModels is set): the plugin daemon's model plugins
   * reach it directly. Through the SSRF proxy they could not, as its private DNS name resolves to
   * addresses in the VPC, which the proxy refuses.
   * @default false
   */
  readonly bedrockRuntime?: boolean;
  /**
   * Amazon SES's SMTP interface, through its endpoint in the VPC (configuration key email).
   * @default - no e-mail: Dify hides the features that need it
   */
  readonly email?: { readonly server: string; readonly port: number; readonly from: string };
}

export interface ServiceEnvironment {
  readonly environment: Record<string, string>;
  readonly secrets: Record<string, SecretRef>;
  /** Variables the container's start command builds from its secrets (never stored anywhere). */
  readonly assembledAtStart: readonly string[];
}

/** The services the api image runs as, each in its own `MODE`. */
export type ApiImageService = 'api' | 'worker' | 'worker_beat' | 'migration';

/** The api image's environment, shared by api, worker, beat and the migration task. */
export function apiFamily(service: ApiImageService, mode: string, wiring: Wiring): ServiceEnvironment {
  const proxy = wiring.urls.ssrfProxy;
  const environment: Record<string, string> = {
    MODE: mode,
    // Only the one-off migration task migrates; replicas racing `flask upgrade-db` corrupt it.
    MIGRATION_ENABLED: service === 'migration' ? 'true' : 'false',
    DEPLOY_ENV: 'PRODUCTION',
    LOG_LEVEL: 'INFO',
    // JSON lines, and one access line per request: the sign-in and API-key failure alarms read them.
    ...DIFY_REQUEST_LOGGING,
    // Public URLs come from the domain; INTERNAL_FILES_URL stays inside the VPC (pitfall 7).
    CONSOLE_API_URL: wiring.publicUrl,
    CONSOLE_WEB_URL: wiring.publicUrl,
    SERVICE_API_URL: wiring.publicUrl,
    APP_API_URL: wiring.publicUrl,
    APP_WEB_URL: wiring.publicUrl,
    FILES_URL: wiring.publicUrl,
    INTERNAL_FILES_URL: wiring.urls.api,
    ENDPOINT_URL_TEMPLATE: `${wiring.publicUrl}/e/{hook_id}`,
    CONSOLE_CORS_ALLOW_ORIGINS: wiring.publicUrl,
    WEB_API_CORS_ALLOW_ORIGINS: wiring.publicUrl,
    DB_TYPE: 'postgresql',
    DB_HOST: wiring.databaseHost,
    DB_PORT: String(wiring.databasePort),
    DB_DATABASE: wiring.appDatabase,
    // The api has no DB_SSL_MODE: libpq parameters go in DB_EXTRAS. verify-full checks the
    // certificate chain against the RDS bundle baked into the image and the host name.
    DB_EXTRAS: `sslmode=verify-full&sslrootcert=${RDS_CA_IMAGE_PATH}`,
    // pgvector opens its own psycopg2 pool without DB_EXTRAS; libpq takes these two from the
    // environment for every connection whose DSN names no sslmode, so it verifies as well. A
    // documented addition to the contract (lib/constructs/dify/contract-additions.ts).
    PGSSLMODE: 'verify-full',
    PGSSLROOTCERT: RDS_CA_IMAGE_PATH,
    VECTOR_STORE: 'pgvector',
    PGVECTOR_HOST: wiring.databaseHost,
    // The api's config defaults PGVECTOR_PORT to 5433 (pitfall 12).
    PGVECTOR_PORT: String(wiring.databasePort),
    PGVECTOR_DATABASE: wiring.appDatabase,
    REDIS_HOST: wiring.cacheHost,
    REDIS_PORT: String(wiring.cachePort),
    REDIS_DB: '0',
    REDIS_USE_SSL: 'true',
    // Its default, CERT_NONE, would accept any certificate (pitfall 8).
    REDIS_SSL_CERT_REQS: 'CERT_REQUIRED',
    STORAGE_TYPE: 's3',
    S3_BUCKET_NAME: wiring.bucketName,
    S3_REGION: wiring.region,
    // The task role, never access keys.
    S3_USE_AWS_MANAGED_IAM: 'true',
    CODE_EXECUTION_ENDPOINT: wiring.urls.sandbox,
    PLUGIN_DAEMON_URL: wiring.urls.pluginDaemon,
    // SSRF_PROXY_ALL_URL makes Dify's SSRF-protected client (HTTP request nodes, remote files,
    // tools) proxy every URL and ignore NO_PROXY; the two per-scheme settings alone would let
    // NO_PROXY's hosts (the services, S3, the credentials address) go direct.
    SSRF_PROXY_ALL_URL: proxy,
    SSRF_PROXY_HTTP_URL: proxy,
    SSRF_PROXY_HTTPS_URL: proxy,
    UPLOAD_FILE_SIZE_LIMIT: String(wiring.uploadFileSizeLimitMb),
    // The api image has no route to the internet: its other outbound HTTP (the marketplace, plugin
    // package downloads, remote files) goes through the SSRF proxy too. A documented addition to the
    // contract (lib/constructs/dify/contract-additions.ts).
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    NO_PROXY: noProxy(wiring),
    AWS_S3_US_EAST_1_REGIONAL_ENDPOINT: 'regional',
    // With no internet (egress=none), the plugin marketplace and the console's version check
    // (updates.dify.ai) are off: plugins are installed from uploaded packages, whose Python
    // dependencies come from the package mirror. An empty CHECK_UPDATE_URL makes the api answer
    // with its own version without a call (api/controllers/console/version.py).
    ...(wiring.internet === false ? { MARKETPLACE_ENABLED: 'false', CHECK_UPDATE_URL: '' } : {}),
  };
  const secrets: Record<string, SecretRef> = {
    SECRET_KEY: { secret: 'secretKey' },
    DB_USERNAME: { secret: 'appDatabase', field: 'username' },
    DB_PASSWORD: { secret: 'appDatabase', field: 'password' },
    // Their own ElastiCache user (lib/constructs/cache.ts CACHE_USERS), not a token shared with the
    // plugin daemon and the gateway.
    REDIS_USERNAME: { secret: 'cacheDify', field: 'username' },
    REDIS_PASSWORD: { secret: 'cacheDify', field: 'password' },
  };
  if (service === 'api') {
    // Keeps streamed answers alive; the load balancer's idle timeout is 600 s (pitfall 6).
    environment.GUNICORN_TIMEOUT = '360';
    // /install asks for it before the owner account can be created (the api serves /console/api/init).
    secrets.INIT_PASSWORD = { secret: 'initPassword' };
  }
  if (wiring.email !== undefined && (service === 'api' || service === 'worker')) {
    // Invitations, password resets and sign-in codes: the worker sends them (Celery mail tasks), and
    // the api shows the features that need mail only when MAIL_TYPE is set. STARTTLS on 587: Dify's
    // smtplib client with SMTP_USE_TLS and SMTP_OPPORTUNISTIC_TLS both true (api/libs/smtp.py).
    Object.assign(environment, {
      MAIL_TYPE: 'smtp',
      MAIL_DEFAULT_SEND_FROM: wiring.email.from,
      SMTP_SERVER: wiring.email.server,
      SMTP_PORT: String(wiring.email.port),
      SMTP_USE_TLS: 'true',
      SMTP_OPPORTUNISTIC_TLS: 'true',
    });
    secrets.SMTP_USERNAME = { secret: 'smtp', field: 'username' };
    secrets.SMTP_PASSWORD = { secret: 'smtp', field: 'password' };
  }
  if (service === 'api' || service === 'worker') {
    Object.assign(secrets, {
      PGVECTOR_USER: { secret: 'appDatabase', field: 'username' },
      PGVECTOR_PASSWORD: { secret: 'appDatabase', field: 'password' },
      CODE_EXECUTION_API_KEY: { secret: 'sandboxApiKey' },
      PLUGIN_DAEMON_KEY: { secret: 'pluginDaemonKey' },
      INNER_API_KEY_FOR_PLUGIN: { secret: 'pluginInnerApiKey' },
    });
  } else {
    // Beat only publishes scheduled tasks to the broker, and the migration only migrates: neither
    // calls the sandbox or the plugin daemon, or opens the vector store (pinned release:
    // api/extensions/ext_celery.py, core/helper/code_executor, core/plugin/impl/base.py).
    delete environment.CODE_EXECUTION_ENDPOINT;
    delete environment.PLUGIN_DAEMON_URL;
    for (const name of Object.keys(environment).filter((key) => key.startsWith('PGVECTOR_'))) delete environment[name];
  }
  // The broker URL embeds the user's password, so it is built in the container from REDIS_PASSWORD and
  // never stored: rediss:// with ssl_cert_reqs, which Celery requires for TLS (pitfall 8).
  return { environment, secrets, assembledAtStart: service === 'migration' ? [] : ['CELERY_BROKER_URL'] };
}

/** The web front end's environment; it listens on `port`. */
export function webEnvironment(wiring: Wiring, port: number): ServiceEnvironment {
  return {
    // Empty API URLs make the browser use the same origin, which the front door routes.
    environment: {
      CONSOLE_API_URL: wiring.publicUrl,
      APP_API_URL: wiring.publicUrl,
      NEXT_TELEMETRY_DISABLED: '1',
      ALLOW_EMBED: 'false',
      PORT: String(port),
      HOSTNAME: '0.0.0.0',
    },
    secrets: {},
    assembledAtStart: [],
  };
}

/** The sandbox's environment; it listens on `port`. */
export function sandboxEnvironment(wiring: Wiring, port: number): ServiceEnvironment {
  return {
    environment: {
      GIN_MODE: 'release',
      SANDBOX_PORT: String(port),
      WORKER_TIMEOUT: '15',
      // User code reaches the network only through the SSRF proxy.
      ENABLE_NETWORK: 'true',
      HTTP_PROXY: wiring.urls.ssrfProxy,
      HTTPS_PROXY: wiring.urls.ssrfProxy,
      ...(wiring.pipMirrorUrl ? { PIP_MIRROR_URL: wiring.pipMirrorUrl } : {}),
    },
    secrets: { API_KEY: { secret: 'sandboxApiKey' } },
    assembledAtStart: [],
  };
}

/** The plugin daemon's environment; it listens on `port`. */
export function pluginDaemonEnvironment(wiring: Wiring, port: number): ServiceEnvironment {
  return {
    environment: {
      SERVER_PORT: String(port),
      DIFY_INNER_API_URL: wiring.urls.api,
      DB_TYPE: 'postgresql',
      DB_HOST: wiring.databaseHost,
      DB_PORT: String(wiring.databasePort),
      DB_DATABASE: wiring.pluginDatabase,
      // The daemon accepts only disable or require (pitfall 2); the server forces TLS anyway.
      DB_SSL_MODE: 'require',
      REDIS_HOST: wiring.cacheHost,
      REDIS_PORT: String(wiring.cachePort),
      REDIS_USE_SSL: 'true',
      REDIS_SSL_CERT_REQS: 'CERT_REQUIRED',
      PLUGIN_STORAGE_TYPE: 'aws_s3',
      PLUGIN_STORAGE_OSS_BUCKET: wiring.pluginBucketName,
      S3_USE_AWS_MANAGED_IAM: 'true',
      S3_USE_AWS: 'true',
      AWS_REGION: wiring.region,
      // Plugins unpack and run from local disk even with S3 storage (pitfall 3).
      PLUGIN_WORKING_PATH: '/app/storage/cwd',
      PLUGIN_INSTALLED_PATH: 'plugin',
      PLUGIN_PACKAGE_CACHE_PATH: 'plugin_packages',
      PLUGIN_MAX_EXECUTION_TIMEOUT: '600',
      MAX_PLUGIN_PACKAGE_SIZE: String(52_428_800),
      PYTHON_ENV_INIT_TIMEOUT: '120',
      PLUGIN_REMOTE_INSTALLING_ENABLED: 'false',
      FORCE_VERIFYING_SIGNATURE: 'true',
      // Plugin installs reach PyPI through the SSRF proxy, or use the mirror; the api stays direct.
      HTTP_PROXY: wiring.urls.ssrfProxy,
      HTTPS_PROXY: wiring.urls.ssrfProxy,
      // Model plugins call Bedrock through its interface endpoint, directly (see Wiring.bedrockRuntime).
      NO_PROXY: wiring.bedrockRuntime
        ? `${noProxy(wiring)},bedrock-runtime.${wiring.region}.amazonaws.com`
        : noProxy(wiring),
      ...(wiring.pipMirrorUrl ? { PIP_MIRROR_URL: wiring.pipMirrorUrl } : {}),
    },
    secrets: {
      SERVER_KEY: { secret: 'pluginDaemonKey' },
      DIFY_INNER_API_KEY: { secret: 'pluginInnerApiKey' },
      DB_USERNAME: { secret: 'pluginDatabase', field: 'username' },
      DB_PASSWORD: { secret: 'pluginDatabase', field: 'password' },
      REDIS_USERNAME: { secret: 'cachePluginDaemon', field: 'username' },
      REDIS_PASSWORD: { secret: 'cachePluginDaemon', field: 'password' },
    },
    assembledAtStart: [],
  };
}

/** The SSRF proxy's environment; it listens on `port`. */
export function ssrfProxyEnvironment(port: number): ServiceEnvironment {
  return { environment: { HTTP_PORT: String(port) }, secrets: {}, assembledAtStart: [] };
}

/**
 * The start command of the api-family containers: build the Celery broker URL from the injected
 * secrets, then hand over to the image's own entrypoint. Nothing is fetched at start (the RDS CA
 * bundle is in the image), and nothing secret is written to disk or logged.
 *
 * Beat is the exception at the last step: the entrypoint starts `celery beat` in /app/api, where it
 * would write its schedule file on the read-only root filesystem, so beat runs the same command with
 * the schedule file in /tmp (keep it in step with the image's /entrypoint.sh on upgrades).
 */
export function apiStartScript(service: ApiImageService): string {
  return [
    'set -eu',
    ...(service === 'migration'
      ? []
      : // `$NAME`, not `${NAME}`: CloudFormation linters read `${…}` in a template string as a Sub.
        [
          'export CELERY_BROKER_URL="rediss://$REDIS_USERNAME:$REDIS_PASSWORD@$REDIS_HOST:$REDIS_PORT/1?ssl_cert_reqs=required"',
        ]),
    service === 'worker_beat'
      ? 'exec celery -A app.celery beat --loglevel "$LOG_LEVEL" --schedule /tmp/celerybeat-schedule'
      : 'exec /bin/bash /entrypoint.sh',
  ].join('\n');
}
