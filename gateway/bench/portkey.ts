/**
 * Portkey's open-source gateway (npm `@portkey-ai/gateway`, pinned in ./portkey/package.json) for the
 * benchmark's `--compare` mode: installed on demand into gateway/bench/portkey, which has its own lockfile
 * and is no workspace, so the project's own install never pulls it in; run with the bench's own node.
 *
 * What Portkey 1.15.2's `build/start-server.js` (its `bin`, an ES module) does, read from its source:
 * - the port comes only from `--port=<n>` (`--port <n>` and PORT are ignored: it would listen on 8787);
 * - no host can be given: Hono's `serve()` calls `listen(port, undefined)`, i.e. all interfaces; a
 *   preload pins that call to 127.0.0.1 (see LOOPBACK_PRELOAD);
 * - without `--headless` it also serves a log-viewer UI; it prints a spinner for 1 s and a banner;
 * - it refuses private and loopback custom hosts except those in TRUSTED_CUSTOM_HOSTS (a comma list that
 *   replaces the default `localhost,127.0.0.1,::1,host.docker.internal`), so https://127.0.0.1 passes;
 * - it connects nowhere but to the custom host, at start or per request, and writes no file (with
 *   REDIS_CONNECTION_STRING unset), checked with strace.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The path Portkey serves OpenAI chat completions on (the same as OpenAI's). */
export const PORTKEY_PATH = '/v1/chat/completions';

const INSTALL_TIMEOUT_MS = 5 * 60_000;
const START_TIMEOUT_MS = 30_000;
const ENTRY = join('node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
/** Kept of a child's output for error messages: enough for npm's or Node's last words. */
const TAIL_BYTES = 4096;

/**
 * Replaces Hono's host-less `listen(port, undefined, callback)` with `listen(port, '127.0.0.1', callback)`:
 * Portkey has no option for its host, and a benchmark must not listen beyond loopback. Other listen
 * calls (none at start) keep their arguments.
 */
const LOOPBACK_PRELOAD = `import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (port, host, ...rest) {
  return listen.call(this, port, typeof port === 'number' && host === undefined ? '127.0.0.1' : host, ...rest);
};`;

/**
 * The folder holding Portkey's package.json: next to this file when run from source, and
 * gateway/bench/portkey seen from the bundle in gateway/dist/bench.
 */
function portkeyDir(): string {
  const candidates = [join(__dirname, 'portkey'), join(__dirname, '..', '..', 'bench', 'portkey')];
  const found = candidates.find((dir) => existsSync(join(dir, 'package-lock.json')));
  if (found === undefined) throw new Error(`Portkey's package-lock.json not found in ${candidates.join(' or ')}`);
  return found;
}

/** Keeps the last TAIL_BYTES of a stream, so that a failure can say why without holding all output. */
function tailOf(stream: NodeJS.ReadableStream | null): () => string {
  let tail = '';
  stream?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-TAIL_BYTES);
  });
  return () => tail.trim();
}

/** `npm ci` in `dir`, bounded in time; rejects with npm's last output. */
function npmCi(dir: string): Promise<void> {
  // --ignore-scripts: Portkey's only install script is `patch-package`, and its package ships no patches.
  // --loglevel: `npm run -s` hands its `silent` down through the environment, and npm's errors are the message.
  const args = ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'];
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: INSTALL_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    const stdout = tailOf(child.stdout);
    const stderr = tailOf(child.stderr);
    child.on('error', (error) => reject(new Error(`cannot run npm to install Portkey in ${dir}: ${error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const why = signal === null ? `exit code ${code}` : `killed by ${signal} (limit ${INSTALL_TIMEOUT_MS / 1000} s)`;
      reject(new Error(`npm ${args.join(' ')} in ${dir} failed (${why}):\n${stderr() || stdout()}`));
    });
  });
}

/**
 * Installs Portkey's gateway from its lockfile unless already there, and returns the path of its start
 * script, `build/start-server.js`, to be run with node.
 *
 * @returns the absolute path of Portkey's start script
 * @throws if npm fails or takes more than 5 minutes (no registry reachable, for instance)
 */
export async function ensurePortkeyInstalled(): Promise<string> {
  const dir = portkeyDir();
  const entry = join(dir, ENTRY);
  // npm writes node_modules/.package-lock.json last: without it, an earlier install was interrupted.
  if (existsSync(entry) && existsSync(join(dir, 'node_modules', '.package-lock.json'))) return entry;
  await npmCi(dir);
  if (!existsSync(entry)) throw new Error(`npm ci in ${dir} succeeded but ${entry} is missing`);
  return entry;
}

/** What Portkey answers on `GET /`: telling it from another server that may hold the port. */
const GREETING = 'AI Gateway says hey!';

/** Whether Portkey answers its greeting at `url`, within a second. */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body === GREETING));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * Polls `url` until Portkey answers; rejects as soon as `stopped()` gives a reason (checked first, as
 * Portkey exits when its port is taken), or after START_TIMEOUT_MS.
 */
async function waitUntilAnswering(url: string, stopped: () => string | undefined): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const reason = stopped();
    if (reason !== undefined) throw new Error(`Portkey stopped before answering at ${url}: ${reason}`);
    if (await answers(url)) return;
    if (Date.now() > deadline) throw new Error(`Portkey did not answer at ${url} within ${START_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Why `child` is no longer running, with its last stderr, or undefined while it runs. */
function watchStopped(child: ChildProcess): () => string | undefined {
  const stderr = tailOf(child.stderr);
  let spawnError: string | undefined;
  // Without a listener, a failed spawn would throw in the event loop instead of failing the start.
  child.on('error', (error) => (spawnError = error.message));
  return () => {
    if (spawnError !== undefined) return spawnError;
    if (child.exitCode === null && child.signalCode === null) return undefined;
    return `exit ${child.exitCode ?? child.signalCode}\n${stderr()}`;
  };
}

/**
 * Starts Portkey's gateway (installing it first if needed) as a child process of this node, listening
 * on 127.0.0.1:`port`, and resolves once it answers. The caller stops it by PID, also on failure; if it
 * does not start, it is killed here.
 *
 * @param options.port - the loopback port to listen on
 * @param options.env - the child's whole environment (default: PATH only). Give it NODE_EXTRA_CA_CERTS
 *   to trust an https upstream's certificate; leave out HTTP(S)_PROXY and REDIS_CONNECTION_STRING, which
 *   Portkey reads; TRUSTED_CUSTOM_HOSTS, if set, must still list 127.0.0.1 for a loopback upstream.
 * @returns Portkey's base URL (`http://127.0.0.1:<port>`) and its process
 */
export async function startPortkey(options: {
  port: number;
  env?: NodeJS.ProcessEnv;
}): Promise<{ url: string; child: ChildProcess }> {
  const entry = await ensurePortkeyInstalled();
  const preload = `--import=data:text/javascript,${encodeURIComponent(LOOPBACK_PRELOAD)}`;
  const child = spawn(process.execPath, [preload, entry, `--port=${options.port}`, '--headless'], {
    // Portkey's file cache, if ever configured, writes ./data/cache.json: never into the repo.
    cwd: tmpdir(),
    env: options.env ?? { PATH: process.env.PATH },
    // stdout carries only the spinner and banner: dropped, so no unread pipe can ever block it.
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stopped = watchStopped(child);
  const url = `http://127.0.0.1:${options.port}`;
  try {
    await waitUntilAnswering(url, stopped);
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw error;
  }
  return { url, child };
}

/**
 * The headers that make Portkey forward an OpenAI-style request to an OpenAI-compatible host instead of
 * OpenAI: provider `openai`, whose endpoint paths (`/chat/completions`) Portkey appends to the custom
 * host, hence the `/v1` here, and the provider key, which Portkey passes on as `Authorization`.
 *
 * @param upstreamBaseUrl - the provider's origin, without `/v1`, e.g. `https://127.0.0.1:8443`
 * @param providerKey - the key the provider expects as a bearer token
 */
export function portkeyHeaders(upstreamBaseUrl: string, providerKey: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    authorization: `Bearer ${providerKey}`,
    'x-portkey-provider': 'openai',
    'x-portkey-custom-host': `${upstreamBaseUrl.replace(/\/+$/, '')}/v1`,
  };
}
