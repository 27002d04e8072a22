/**
 * Container health checks as exec commands (argv), which ECS (after `CMD`) and Kubernetes exec
 * probes both run. None goes through the proxies: each talks to loopback or looks at the container's
 * own processes.
 */

/** How a service shows it is healthy. */
export type HealthCheck =
  /** An HTTP GET on loopback answered below 500 (or 2xx-3xx), with the client the image ships. */
  | { readonly kind: 'http'; readonly path: string; readonly client: 'python' | 'python3' | 'node' | 'curl' }
  /** A process other than the check whose command line holds every one of `words`. */
  | { readonly kind: 'process'; readonly words: readonly string[] }
  /** The port accepts a TCP connection. */
  | { readonly kind: 'tcp' };

/** The exec command that runs `check` against a service listening on `port`. */
export function healthCommand(check: HealthCheck, port: number | undefined): string[] {
  switch (check.kind) {
    case 'http': {
      const url = `http://127.0.0.1:${requirePort(port, check)}${check.path}`;
      switch (check.client) {
        case 'python':
        case 'python3':
          return [
            check.client,
            '-c',
            `import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('${url}', timeout=4)`,
          ];
        case 'node':
          return [
            'node',
            '-e',
            `fetch('${url}',{redirect:'manual'}).then(r=>process.exit(r.status<500?0:1),()=>process.exit(1))`,
          ];
        case 'curl':
          return ['curl', '-fsS', '--noproxy', '*', '-o', '/dev/null', url];
      }
      break;
    }
    case 'process':
      return processCheck(check.words);
    case 'tcp':
      return ['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${requirePort(port, check)}`];
  }
}

function requirePort(port: number | undefined, check: HealthCheck): number {
  if (port === undefined) throw new Error(`a ${check.kind} health check needs the service's port`);
  return port;
}

/** Healthy while a process other than this check runs a command line with every one of `words`. */
function processCheck(words: readonly string[]): string[] {
  const needles = words.map((word) => `b'${word}'`).join(', ');
  return [
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
