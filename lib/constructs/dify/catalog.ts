import {
  apiFamily,
  type ApiImageService,
  apiStartScript,
  pluginDaemonEnvironment,
  sandboxEnvironment,
  type ServiceEnvironment,
  ssrfProxyEnvironment,
  webEnvironment,
  type Wiring,
} from './environment';
import type { Egress } from '../egress';
import type { HealthCheck } from './health-checks';
import type { ImageName } from './images';
import { squidConfig } from './squid-config';
import { API_ROUTES, PLUGIN_ROUTES } from './urls';

/**
 * Dify's services, one row each, and the flows between them: everything a platform needs to run
 * them, and nothing of any platform. The ECS runtime renders these rows into task definitions,
 * services and security groups; it decides nothing of its own about a service. A service's port,
 * health check, hardening and flows are written here and nowhere else.
 */

/** Dify's services, named as in the release's docker-compose.yaml. */
export type DifyServiceName =
  'api' | 'worker' | 'worker_beat' | 'migration' | 'web' | 'sandbox' | 'plugin_daemon' | 'ssrf_proxy';

/** A Linux capability, by its name without `CAP_`. */
export type LinuxCapability =
  | 'AUDIT_WRITE'
  | 'CHOWN'
  | 'DAC_OVERRIDE'
  | 'FOWNER'
  | 'FSETID'
  | 'KILL'
  | 'MKNOD'
  | 'NET_BIND_SERVICE'
  | 'NET_RAW'
  | 'SETFCAP'
  | 'SETGID'
  | 'SETPCAP'
  | 'SETUID'
  | 'SYS_CHROOT';

/** A path the container may write although its root filesystem is read-only, and why it must. */
export interface WritablePath {
  readonly path: string;
  readonly why: string;
}

/** A Linux capability kept from the container runtime's default set, and why the container needs it. */
export interface KeptCapability {
  readonly capability: LinuxCapability;
  readonly why: string;
}

/** How far one container is locked down. Every exception carries its reason, which the tests print. */
export interface ContainerHardening {
  /**
   * `uid` or `uid:gid` to run as.
   * @default - the image's own user; then `runsAsRootBecause` must say why that is root
   */
  readonly user?: string;
  readonly runsAsRootBecause?: string;
  /** False only with `writableRootBecause`. ECS Exec, when on, turns it off for every container. */
  readonly readonlyRootFilesystem: boolean;
  readonly writableRootBecause?: string;
  readonly writablePaths: readonly WritablePath[];
  /** Capabilities kept from the default set; every other one is dropped. Empty: all dropped. */
  readonly keepCapabilities: readonly KeptCapability[];
}

/** The sizing entry (config/sizing.ts ServicesSizing) a service takes its CPU, memory and counts from. */
export type SizingKey = 'api' | 'worker' | 'beat' | 'web' | 'sandbox' | 'pluginDaemon' | 'ssrfProxy' | 'migration';

/** What the start command may depend on beyond the row itself. */
export interface StartContext {
  /** The VPC's CIDR: the SSRF proxy denies it. */
  readonly vpcCidr: string;
  /** Where the SSRF proxy may connect. @default - egress=nat, no private mirror */
  readonly egress?: Egress;
}

/** The container's entry point and command. @default - both the image's own */
export interface StartCommand {
  readonly entryPoint?: string[];
  readonly command?: string[];
}

/** How the front door routes to a service; the target group checks the row's HTTP health path. */
export interface EdgeRoute {
  /**
   * Path patterns routed to the service, in order.
   * @default - none: the service takes everything no other route matches
   */
  readonly paths?: readonly string[];
  /** The order in which the front door matches the routes (lowest first); it fixes the rules' priorities. */
  readonly rank: number;
  /**
   * For a service that `scales`: scale out as well when a task serves more than this many requests a minute.
   * @default - CPU only
   */
  readonly requestsPerTarget?: number;
}

/** One Dify service: everything a platform needs to run it. */
export interface DifyServiceRow {
  /** As in docker-compose.yaml. */
  readonly service: DifyServiceName;
  /** The construct id the platform renders the service under (kept stable: it names the resources). */
  readonly id: string;
  /** Short kebab-case name: the container, the log group suffix, the task family and the DNS name. */
  readonly name: string;
  /** What it is, for its security group's description. */
  readonly description: string;
  readonly image: ImageName;
  /** @default - none: it serves nothing */
  readonly port?: number;
  /** Registered as `<name>.<service domain>`, for the services that others call by name. */
  readonly discoverable: boolean;
  readonly health: HealthCheck;
  /** How long a starting container may fail its health check. */
  readonly startPeriodSeconds: number;
  /** @default - the image's entry point and command */
  readonly start?: (context: StartContext) => StartCommand;
  /**
   * What the image runs when `start` leaves it alone (its entry point and command), from the release
   * contract's `command` (contracts/dify/services.json). A platform that must run something first
   * (EKS exports the secrets from their files) runs this after it.
   * @default - the row has a `start` of its own
   */
  readonly imageCommand?: readonly string[];
  /** `MODE` of the api image. */
  readonly mode?: string;
  readonly hardening: ContainerHardening;
  readonly sizing: SizingKey;
  /**
   * `rolling`: new tasks start before old ones stop. `singleton`: never two at once (Celery beat).
   * `one-off`: runs to completion at deploy time (the migration).
   */
  readonly deployment: 'rolling' | 'singleton' | 'one-off';
  /** May run on interruptible capacity when the configuration allows it (fargateSpotWorker). */
  readonly interruptible?: boolean;
  /** Local disk beyond the platform's default, in GiB. */
  readonly ephemeralStorageGiB?: number;
  /** Routed by the front door. @default - not reachable from outside */
  readonly edge?: EdgeRoute;
  /** Scales on CPU between its sizing's minTasks and maxTasks. */
  readonly scales?: boolean;
  /** The environment and secrets it reads. */
  readonly environment: (wiring: Wiring) => ServiceEnvironment;
}

/** The api image's uid (dify-api and dify-web both create uid 1001 and switch to it). */
const DIFY_UID = '1001';
const SQUID_RUN_DIRECTORY = '/run/squid';
const TMP = { path: '/tmp', why: 'temporary files of the runtime (uploads in flight, caches)' };
const API_STORAGE = { path: '/app/api/storage', why: 'Dify writes local scratch files here even with S3 storage' };
/** A service's port, from its row (read when a row's environment or start command is built). */
const portOf = (service: DifyServiceName): number => {
  const port = DIFY_SERVICES[service].port;
  if (port === undefined) throw new Error(`${service} serves no port`);
  return port;
};

/** The api image's start: the Celery broker URL is assembled from the injected secrets (environment.ts). */
const apiImageStart = (service: ApiImageService) => (): StartCommand => ({
  entryPoint: ['/bin/bash', '-c'],
  command: [apiStartScript(service)],
});

/** What every service built from the api image shares. */
function apiImage(service: ApiImageService, mode: string) {
  return {
    service,
    image: 'api',
    mode,
    start: apiImageStart(service),
    environment: (wiring: Wiring) => apiFamily(service, mode, wiring),
  } as const;
}

export const DIFY_SERVICES: Readonly<Record<DifyServiceName, DifyServiceRow>> = {
  ssrf_proxy: {
    service: 'ssrf_proxy',
    id: 'SsrfProxy',
    name: 'ssrf-proxy',
    description: 'Dify SSRF proxy: HTTP and HTTPS out',
    image: 'ssrfProxy',
    port: 3128,
    discoverable: true,
    health: { kind: 'tcp' },
    startPeriodSeconds: 30,
    // The image renders its own config into /etc/squid at start, which a read-only root forbids, and
    // its stock rules allow the metadata endpoints (pitfall 5): write ours to the writable volume.
    start: ({ vpcCidr, egress }) => {
      const config = squidConfig({ vpcCidr, egress, port: portOf('ssrf_proxy'), runDirectory: SQUID_RUN_DIRECTORY });
      const file = `${SQUID_RUN_DIRECTORY}/squid.conf`;
      return {
        entryPoint: ['/bin/bash', '-c'],
        command: [`set -eu\ncat > ${file} <<'SQUID_CONF'\n${config}SQUID_CONF\nexec squid -N -f ${file}`],
      };
    },
    hardening: {
      runsAsRootBecause:
        'squid starts as root to read its configuration and write its pid file, then switches to the proxy user for traffic',
      readonlyRootFilesystem: true,
      writablePaths: [
        { path: SQUID_RUN_DIRECTORY, why: 'the generated squid.conf and the pid file (pitfall 5)' },
        { path: '/var/spool/squid', why: 'squid’s state directory, checked at start even with caching off' },
        { path: '/var/log/squid', why: 'squid opens its log directory at start; logs go to stdout' },
      ],
      keepCapabilities: [
        { capability: 'SETUID', why: 'switches to the proxy user' },
        { capability: 'SETGID', why: 'switches to the proxy group' },
        { capability: 'CHOWN', why: 'hands its run and state directories to the proxy user' },
      ],
    },
    sizing: 'ssrfProxy',
    deployment: 'rolling',
    environment: () => ssrfProxyEnvironment(portOf('ssrf_proxy')),
  },
  sandbox: {
    service: 'sandbox',
    id: 'Sandbox',
    name: 'sandbox',
    description: 'Dify sandbox: no egress but the SSRF proxy',
    image: 'sandbox',
    port: 8194,
    discoverable: true,
    health: { kind: 'http', path: '/health', client: 'curl' },
    startPeriodSeconds: 60,
    // dify-sandbox's image: ENTRYPOINT ["/entrypoint.sh"], which unpacks Node.js and runs /main.
    imageCommand: ['/entrypoint.sh'],
    hardening: {
      runsAsRootBecause:
        'dify-sandbox runs user code in a chroot under an unprivileged uid it switches to with setuid; only root can do either',
      readonlyRootFilesystem: false,
      writableRootBecause:
        'dify-sandbox unpacks its runtimes into /opt and writes /var/sandbox, /dependencies and /conf at start and per run',
      writablePaths: [],
      keepCapabilities: [
        { capability: 'SYS_CHROOT', why: 'confines each run to its chroot' },
        { capability: 'SETUID', why: 'drops each run to the sandbox uid' },
        { capability: 'SETGID', why: 'drops each run to the sandbox gid' },
        { capability: 'CHOWN', why: 'hands the run directory to the sandbox uid' },
        { capability: 'DAC_OVERRIDE', why: 'prepares run directories owned by the sandbox uid' },
        { capability: 'FOWNER', why: 'sets modes on files owned by the sandbox uid' },
        { capability: 'KILL', why: 'kills runs (another uid) that pass WORKER_TIMEOUT' },
      ],
    },
    sizing: 'sandbox',
    deployment: 'rolling',
    environment: (wiring) => sandboxEnvironment(wiring, portOf('sandbox')),
  },
  plugin_daemon: {
    service: 'plugin_daemon',
    id: 'PluginDaemon',
    name: 'plugin-daemon',
    description: 'Dify plugin daemon',
    image: 'pluginDaemon',
    port: 5002,
    discoverable: true,
    health: { kind: 'http', path: '/health/check', client: 'python3' },
    startPeriodSeconds: 180,
    // The plugin daemon migrates its database, then serves (the contract's command, without tini:
    // the platform provides an init process).
    imageCommand: ['/bin/bash', '-c', '/app/commandline migrate && exec /app/main'],
    hardening: {
      runsAsRootBecause:
        'the dify-plugin-daemon image has no user of its own; it installs and runs plugins as root in its working path',
      readonlyRootFilesystem: true,
      writablePaths: [
        TMP,
        { path: '/app/storage', why: 'PLUGIN_WORKING_PATH: plugins are unpacked and run from local disk (pitfall 3)' },
        { path: '/root', why: 'uv and pip keep their caches and interpreters under $HOME while installing plugins' },
      ],
      keepCapabilities: [
        { capability: 'CHOWN', why: 'plugin packages unpack with their own owners' },
        { capability: 'DAC_OVERRIDE', why: 'cleans up read-only files that plugin packages ship' },
        { capability: 'FOWNER', why: 'sets modes on unpacked plugin files' },
      ],
    },
    sizing: 'pluginDaemon',
    deployment: 'rolling',
    // Plugins and their Python environments are unpacked on local disk.
    ephemeralStorageGiB: 50,
    edge: { paths: PLUGIN_ROUTES, rank: 2 },
    environment: (wiring) => pluginDaemonEnvironment(wiring, portOf('plugin_daemon')),
  },
  api: {
    ...apiImage('api', 'api'),
    id: 'Api',
    name: 'api',
    description: 'Dify api',
    port: 5001,
    discoverable: true,
    health: { kind: 'http', path: '/health', client: 'python' },
    startPeriodSeconds: 120,
    hardening: {
      user: DIFY_UID,
      readonlyRootFilesystem: true,
      writablePaths: [{ path: '/tmp', why: 'gunicorn worker heartbeats and upload spooling' }, API_STORAGE],
      keepCapabilities: [],
    },
    sizing: 'api',
    deployment: 'rolling',
    edge: { paths: API_ROUTES, rank: 1, requestsPerTarget: 200 },
    scales: true,
  },
  worker: {
    ...apiImage('worker', 'worker'),
    id: 'Worker',
    name: 'worker',
    description: 'Dify Celery worker',
    discoverable: false,
    health: { kind: 'process', words: ['celery', 'worker'] },
    startPeriodSeconds: 60,
    hardening: {
      user: DIFY_UID,
      readonlyRootFilesystem: true,
      writablePaths: [{ path: '/tmp', why: 'documents being indexed' }, API_STORAGE],
      keepCapabilities: [],
    },
    sizing: 'worker',
    deployment: 'rolling',
    interruptible: true,
    scales: true,
  },
  worker_beat: {
    ...apiImage('worker_beat', 'beat'),
    id: 'Beat',
    name: 'beat',
    description: 'Dify Celery beat: exactly one',
    discoverable: false,
    health: { kind: 'process', words: ['celery', 'beat'] },
    startPeriodSeconds: 60,
    hardening: {
      user: DIFY_UID,
      readonlyRootFilesystem: true,
      writablePaths: [{ path: '/tmp', why: 'celerybeat-schedule (see apiStartScript)' }],
      keepCapabilities: [],
    },
    sizing: 'beat',
    deployment: 'singleton',
  },
  web: {
    service: 'web',
    id: 'Web',
    name: 'web',
    description: 'Dify web front end',
    image: 'web',
    port: 3000,
    discoverable: false,
    health: { kind: 'http', path: '/apps', client: 'node' },
    startPeriodSeconds: 60,
    hardening: {
      user: DIFY_UID,
      readonlyRootFilesystem: true,
      writablePaths: [
        TMP,
        { path: '/.pm2', why: 'pm2, which the image starts Next.js with, keeps its state and logs in PM2_HOME=/.pm2' },
        { path: '/app/web/.next/cache', why: 'Next.js caches optimized images here' },
      ],
      keepCapabilities: [],
    },
    sizing: 'web',
    deployment: 'rolling',
    edge: { rank: 3, requestsPerTarget: 500 },
    scales: true,
    environment: (wiring) => webEnvironment(wiring, portOf('web')),
  },
  migration: {
    ...apiImage('migration', 'migration'),
    id: 'MigrationTask',
    name: 'migration',
    description: 'Dify database migration task',
    discoverable: false,
    health: { kind: 'process', words: ['flask', 'upgrade-db'] },
    startPeriodSeconds: 300,
    hardening: {
      user: DIFY_UID,
      readonlyRootFilesystem: true,
      writablePaths: [{ path: '/tmp', why: 'temporary files of flask upgrade-db and its Python runtime' }],
      keepCapabilities: [],
    },
    sizing: 'migration',
    deployment: 'one-off',
  },
};

/** Every row, in the order the platform creates them (the proxy and the services others call first). */
export const SERVICE_ROWS: readonly DifyServiceRow[] = Object.values(DIFY_SERVICES);

/** The host name a platform gives a discoverable service. @default `<name>.<serviceDomain>` */
export type HostOf = (row: DifyServiceRow) => string;

/** `http://<host>:<port>`: a discoverable service's in-VPC address. */
export function serviceUrl(service: DifyServiceName, hostOf: HostOf): string {
  const row = DIFY_SERVICES[service];
  if (!row.discoverable || row.port === undefined) throw new Error(`${service} is not reachable by name`);
  return `http://${hostOf(row)}:${row.port}`;
}

/** The wiring a service's environment reads, completed with the services' addresses. */
export function wire(platform: Omit<Wiring, 'urls'>, hostOf?: HostOf): Wiring {
  const host = hostOf ?? ((row: DifyServiceRow) => `${row.name}.${platform.serviceDomain}`);
  return {
    ...platform,
    urls: {
      api: serviceUrl('api', host),
      sandbox: serviceUrl('sandbox', host),
      pluginDaemon: serviceUrl('plugin_daemon', host),
      ssrfProxy: serviceUrl('ssrf_proxy', host),
    },
  };
}

/** The environment and secrets of one service under `wiring` (its row's `environment`). */
export function environmentOf(
  service: DifyServiceName,
  wiring: Omit<Wiring, 'urls'>,
  hostOf?: HostOf,
): ServiceEnvironment {
  return DIFY_SERVICES[service].environment(wire(wiring, hostOf));
}

/** Everything a flow can name besides Dify's services. */
export type Peer =
  /** Aurora PostgreSQL, on its port. */
  | 'database'
  /** Valkey, on its port. */
  | 'cache'
  /** The zero-trust LLM gateway, on its port. */
  | 'llm_gateway'
  /** The load balancer (edge) in front of the routed services. */
  | 'edge'
  /** Amazon Bedrock's runtime API, through its interface endpoint. */
  | 'bedrock'
  /** Any IPv4 address, on the listed ports. */
  | 'internet'
  /** The private package mirror's networks outside the VPC (mirrorPrivateCidrs), on 443. */
  | 'mirror';

/** One allowed connection: `from` opens connections to `to` on `ports`. Nothing else is allowed. */
export interface Flow {
  readonly from: DifyServiceName | Peer;
  readonly to: DifyServiceName | Peer;
  /** @default - the port of `to` */
  readonly ports?: readonly number[];
  /** The rule's description, as the security group (and later the NetworkPolicy) carries it. */
  readonly description: string;
  /** For a flow to `mirror`: its networks. */
  readonly networks?: readonly string[];
}

const TARGET_PHRASE: Partial<Record<DifyServiceName | Peer, string>> = {
  database: 'Aurora',
  cache: 'Valkey',
  ssrf_proxy: 'the SSRF proxy',
  sandbox: 'the sandbox',
  plugin_daemon: 'the plugin daemon',
};

const flow = (from: DifyServiceName, to: DifyServiceName | Peer): Flow => ({
  from,
  to,
  description: `Dify ${DIFY_SERVICES[from].name} to ${TARGET_PHRASE[to]}`,
});

/**
 * Who talks to whom on which port: the whole matrix, reviewed as one table. The security groups are
 * rendered from it, and every edge is checked against the synthesized template (test/sg-matrix.test.ts).
 */
export const FLOWS: readonly Flow[] = [
  // The api image's services and the plugin daemon keep their state in Aurora and Valkey and reach
  // the internet only through the SSRF proxy.
  ...(['api', 'worker', 'worker_beat', 'plugin_daemon', 'migration'] as const).flatMap((from) => [
    flow(from, 'database'),
    flow(from, 'cache'),
    flow(from, 'ssrf_proxy'),
  ]),
  // Beat only publishes scheduled tasks to the broker: it never calls the sandbox or the plugin daemon.
  ...(['api', 'worker'] as const).flatMap((from) => [flow(from, 'sandbox'), flow(from, 'plugin_daemon')]),
  { from: 'plugin_daemon', to: 'api', description: 'Dify plugin daemon to the api inner API' },
  // Model plugins call Bedrock from the plugin daemon; no other task reaches its endpoint.
  { from: 'plugin_daemon', to: 'bedrock', description: 'Dify plugin-daemon' },
  // Code in the sandbox reaches nothing but the proxy: no data tier, no other service, no internet.
  flow('sandbox', 'ssrf_proxy'),
  ...[80, 443].map((port) => ({
    from: 'ssrf_proxy' as const,
    to: 'internet' as const,
    ports: [port],
    description: `SSRF proxy to the internet on ${port}`,
  })),
  // The load balancer reaches the routed services on their ports, and nothing else.
  ...SERVICE_ROWS.filter((row) => row.edge !== undefined).map((row) => ({
    from: 'edge' as const,
    to: row.service,
    description: `Load balancer to ${row.id}`,
  })),
  // Model calls go through the zero-trust gateway; the load balancer never reaches it.
  ...(['api', 'worker', 'plugin_daemon'] as const).map((from) => ({
    from,
    to: 'llm_gateway' as const,
    description: 'Dify to the LLM gateway',
  })),
];

/**
 * The flows of a deployment with this egress: FLOWS, without the SSRF proxy's way to the internet
 * when there is none (egress=none), and with its way to a private package mirror when there is one
 * (HTTPS only, as the proxy allows the mirror by CONNECT to 443 only).
 */
export function flowsFor(egress: Egress): readonly Flow[] {
  return [
    ...FLOWS.filter((flow) => egress.internet || flow.to !== 'internet'),
    ...(egress.mirror
      ? [
          {
            from: 'ssrf_proxy' as const,
            to: 'mirror' as const,
            ports: [443],
            networks: egress.mirror.networks,
            description: 'SSRF proxy to the package mirror on 443',
          },
        ]
      : []),
  ];
}
