import { Duration } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type { ContainerHardening, ContainerSpec } from '../runtime/fargate-service';
import {
  apiStartScript,
  type DifyServiceName,
  difyEnvironment,
  ENDPOINTS,
  type SecretRef,
  type Wiring,
} from './environment';
import type { DifyImages, ImageName } from './images';
import { squidConfig } from './squid-config';

/** The api image's user (dify-api and dify-web both create uid 1001 and switch to it). */
const DIFY_UID = '1001';
const SQUID_RUN_DIRECTORY = '/run/squid';
const TMP = { path: '/tmp', why: 'temporary files of the runtime (uploads in flight, caches)' };

/**
 * How each container is locked down. Non-root, read-only root filesystem and every capability dropped
 * are the rule; each exception names what in the image needs it.
 */
export const HARDENING: Record<DifyServiceName, ContainerHardening> = {
  api: {
    user: DIFY_UID,
    readonlyRootFilesystem: true,
    writablePaths: [
      { path: '/tmp', why: 'gunicorn worker heartbeats and upload spooling' },
      { path: '/app/api/storage', why: 'Dify writes local scratch files here even with S3 storage' },
    ],
    keepCapabilities: [],
  },
  worker: {
    user: DIFY_UID,
    readonlyRootFilesystem: true,
    writablePaths: [
      { path: '/tmp', why: 'documents being indexed' },
      { path: '/app/api/storage', why: 'Dify writes local scratch files here even with S3 storage' },
    ],
    keepCapabilities: [],
  },
  worker_beat: {
    user: DIFY_UID,
    readonlyRootFilesystem: true,
    writablePaths: [{ path: '/tmp', why: 'celerybeat-schedule (see apiStartScript)' }],
    keepCapabilities: [],
  },
  migration: {
    user: DIFY_UID,
    readonlyRootFilesystem: true,
    writablePaths: [{ path: '/tmp', why: 'temporary files of flask upgrade-db and its Python runtime' }],
    keepCapabilities: [],
  },
  web: {
    user: DIFY_UID,
    readonlyRootFilesystem: true,
    writablePaths: [
      TMP,
      { path: '/.pm2', why: 'pm2, which the image starts Next.js with, keeps its state and logs in PM2_HOME=/.pm2' },
      { path: '/app/web/.next/cache', why: 'Next.js caches optimized images here' },
    ],
    keepCapabilities: [],
  },
  sandbox: {
    runsAsRootBecause:
      'dify-sandbox runs user code in a chroot under an unprivileged uid it switches to with setuid; only root can do either',
    readonlyRootFilesystem: false,
    writableRootBecause:
      'dify-sandbox unpacks its runtimes into /opt and writes /var/sandbox, /dependencies and /conf at start and per run',
    writablePaths: [],
    keepCapabilities: [
      { capability: ecs.Capability.SYS_CHROOT, why: 'confines each run to its chroot' },
      { capability: ecs.Capability.SETUID, why: 'drops each run to the sandbox uid' },
      { capability: ecs.Capability.SETGID, why: 'drops each run to the sandbox gid' },
      { capability: ecs.Capability.CHOWN, why: 'hands the run directory to the sandbox uid' },
      { capability: ecs.Capability.DAC_OVERRIDE, why: 'prepares run directories owned by the sandbox uid' },
      { capability: ecs.Capability.FOWNER, why: 'sets modes on files owned by the sandbox uid' },
      { capability: ecs.Capability.KILL, why: 'kills runs (another uid) that pass WORKER_TIMEOUT' },
    ],
  },
  plugin_daemon: {
    runsAsRootBecause:
      'the dify-plugin-daemon image has no user of its own; it installs and runs plugins as root in its working path',
    readonlyRootFilesystem: true,
    writablePaths: [
      TMP,
      { path: '/app/storage', why: 'PLUGIN_WORKING_PATH: plugins are unpacked and run from local disk (pitfall 3)' },
      { path: '/root', why: 'uv and pip keep their caches and interpreters under $HOME while installing plugins' },
    ],
    keepCapabilities: [
      { capability: ecs.Capability.CHOWN, why: 'plugin packages unpack with their own owners' },
      { capability: ecs.Capability.DAC_OVERRIDE, why: 'cleans up read-only files that plugin packages ship' },
      { capability: ecs.Capability.FOWNER, why: 'sets modes on unpacked plugin files' },
    ],
  },
  ssrf_proxy: {
    runsAsRootBecause:
      'squid starts as root to read its configuration and write its pid file, then switches to the proxy user for traffic',
    readonlyRootFilesystem: true,
    writablePaths: [
      { path: SQUID_RUN_DIRECTORY, why: 'the generated squid.conf and the pid file (pitfall 5)' },
      { path: '/var/spool/squid', why: 'squid’s state directory, checked at start even with caching off' },
      { path: '/var/log/squid', why: 'squid opens its log directory at start; logs go to stdout' },
    ],
    keepCapabilities: [
      { capability: ecs.Capability.SETUID, why: 'switches to the proxy user' },
      { capability: ecs.Capability.SETGID, why: 'switches to the proxy group' },
      { capability: ecs.Capability.CHOWN, why: 'hands its run and state directories to the proxy user' },
    ],
  },
};

/** Container health checks. None goes through the proxies: each talks to loopback or looks at its own processes. */
function httpCheck(interpreter: 'python' | 'python3', port: number, path: string): string[] {
  return [
    'CMD',
    interpreter,
    '-c',
    `import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:${port}${path}', timeout=4)`,
  ];
}

/** Healthy while a process other than this check runs a command line with every one of `words`. */
function processCheck(words: string[]): string[] {
  const needles = words.map((word) => `b'${word}'`).join(', ');
  return [
    'CMD',
    'python',
    '-c',
    [
      'import glob, os, sys',
      'def cmdline(path):',
      '    try:',
      "        return open(path, 'rb').read()",
      '    except OSError:',
      "        return b''",
      "own = '/proc/%d/cmdline' % os.getpid()",
      `found = any(all(w in cmdline(p) for w in (${needles})) for p in glob.glob('/proc/[0-9]*/cmdline') if p != own)`,
      'sys.exit(0 if found else 1)',
    ].join('\n'),
  ];
}

const HEALTH: Record<DifyServiceName, { command: string[]; startPeriod: Duration }> = {
  api: { command: httpCheck('python', ENDPOINTS.api.port, '/health'), startPeriod: Duration.seconds(120) },
  worker: { command: processCheck(['celery', 'worker']), startPeriod: Duration.seconds(60) },
  worker_beat: { command: processCheck(['celery', 'beat']), startPeriod: Duration.seconds(60) },
  migration: { command: processCheck(['flask', 'upgrade-db']), startPeriod: Duration.seconds(300) },
  web: {
    command: [
      'CMD',
      'node',
      '-e',
      `fetch('http://127.0.0.1:${ENDPOINTS.web.port}/apps',{redirect:'manual'}).then(r=>process.exit(r.status<500?0:1),()=>process.exit(1))`,
    ],
    startPeriod: Duration.seconds(60),
  },
  sandbox: {
    command: [
      'CMD',
      'curl',
      '-fsS',
      '--noproxy',
      '*',
      '-o',
      '/dev/null',
      `http://127.0.0.1:${ENDPOINTS.sandbox.port}/health`,
    ],
    startPeriod: Duration.seconds(60),
  },
  plugin_daemon: {
    command: httpCheck('python3', ENDPOINTS.pluginDaemon.port, '/health/check'),
    startPeriod: Duration.seconds(180),
  },
  ssrf_proxy: {
    command: ['CMD', 'bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${ENDPOINTS.ssrfProxy.port}`],
    startPeriod: Duration.seconds(30),
  },
};

const IMAGE: Record<DifyServiceName, ImageName> = {
  api: 'api',
  worker: 'api',
  worker_beat: 'api',
  migration: 'api',
  web: 'web',
  sandbox: 'sandbox',
  plugin_daemon: 'pluginDaemon',
  ssrf_proxy: 'ssrfProxy',
};

const PORT: Partial<Record<DifyServiceName, number>> = {
  api: ENDPOINTS.api.port,
  web: ENDPOINTS.web.port,
  sandbox: ENDPOINTS.sandbox.port,
  plugin_daemon: ENDPOINTS.pluginDaemon.port,
  ssrf_proxy: ENDPOINTS.ssrfProxy.port,
};

export interface ContainerContext {
  readonly images: DifyImages;
  readonly wiring: Wiring;
  readonly vpcCidr: string;
  /** Turns a reference to one of the stack's secrets into ECS secret injection. */
  readonly secret: (ref: SecretRef) => ecs.Secret;
}

/** What ECS runs for one Dify service: image, start command, environment, secrets, health check, hardening. */
export function containerSpec(service: DifyServiceName, context: ContainerContext): ContainerSpec {
  const { environment, secrets } = difyEnvironment(service, context.wiring);
  const start = startCommand(service, context);
  return {
    image: context.images.image(IMAGE[service]),
    port: PORT[service],
    ...start,
    environment,
    secrets: Object.fromEntries(Object.entries(secrets).map(([name, ref]) => [name, context.secret(ref)])),
    healthCheck: HEALTH[service],
    hardening: HARDENING[service],
  };
}

function startCommand(
  service: DifyServiceName,
  context: ContainerContext,
): Pick<ContainerSpec, 'entryPoint' | 'command'> {
  switch (service) {
    case 'api':
    case 'worker':
    case 'worker_beat':
    case 'migration':
      return { entryPoint: ['/bin/bash', '-c'], command: [apiStartScript(service)] };
    case 'ssrf_proxy': {
      // The image renders its own config into /etc/squid at start, which a read-only root forbids, and
      // its stock rules allow the metadata endpoints (pitfall 5): write ours to the writable volume.
      const config = squidConfig({
        vpcCidr: context.vpcCidr,
        port: ENDPOINTS.ssrfProxy.port,
        runDirectory: SQUID_RUN_DIRECTORY,
      });
      const file = `${SQUID_RUN_DIRECTORY}/squid.conf`;
      return {
        entryPoint: ['/bin/bash', '-c'],
        command: [`set -eu\ncat > ${file} <<'SQUID_CONF'\n${config}SQUID_CONF\nexec squid -N -f ${file}`],
      };
    }
    default:
      return {};
  }
}
