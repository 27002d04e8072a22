import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { freeLoopbackPort } from '../../../test/helpers/free-port';

/** A redis-server a test started on loopback; stop it by `stop()` (by PID). */
export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. Safe to call twice, or after it died. */
  stop(): Promise<void>;
}

const exitedAlready = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** Sends PING (after AUTH when given) and resolves true on PONG; false on anything else or after 500 ms. */
function ping(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      if (data.includes('+PONG')) done(true);
      else if (data.includes('-')) done(false);
    });
    socket.on('connect', () => {
      const auth =
        password === undefined ? '' : `*2\r\n$4\r\nAUTH\r\n$${Buffer.byteLength(password)}\r\n${password}\r\n`;
      socket.write(`${auth}*1\r\n$4\r\nPING\r\n`);
    });
  });
}

function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (exitedAlready(child) || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

class PortTaken extends Error {}

/** One redis-server on `port`, once it answers PING; stopped again if it never does. */
async function launch(port: number, password: string | undefined, config = ''): Promise<RedisServer> {
  const args = ['-', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = spawn('redis-server', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  const collect = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-2000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  // A server that exits at once closes its stdin under our feet: that shows as the exit, not as EPIPE.
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(`${password === undefined ? '' : `requirepass "${password}"\n`}${config}`);

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (spawnError !== undefined) throw new Error(`redis-server could not be started: ${spawnError.message}`);
    const answered = !exitedAlready(child) && (await ping(port, password));
    // Checked after PING too: if ours has exited, whatever answered on the port is not ours.
    if (exitedAlready(child)) {
      const message = `redis-server exited before it answered on port ${port}:\n${log}`;
      throw log.includes('Address already in use') ? new PortTaken(message) : new Error(message);
    }
    if (answered) return { port, pid: child.pid!, stop: () => stopChild(child) };
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`redis-server did not answer PING on port ${port} within 10 s:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts redis-server on 127.0.0.1 (on a free port, or the given one, e.g. to restart a server where
 * it was), with no persistence, and waits until it answers PING, for at most 10 s. The password, if any,
 * goes in through stdin as configuration, not through the command line. A free port taken by someone
 * else in the meantime is replaced by another, up to three times. If the server exits or never
 * answers, it is stopped and the error carries the tail of its log. Otherwise the caller stops it, in
 * afterAll or in a finally block, so that a failing test leaves no process behind.
 */
export async function startRedis(
  options: {
    password?: string;
    port?: number;
    /** More configuration lines, e.g. ACL `user` rules. */ config?: string;
  } = {},
): Promise<RedisServer> {
  if (options.password !== undefined && !/^[\w.-]{1,128}$/.test(options.password)) {
    throw new Error('startRedis: a test password is 1-128 letters, digits, _, . or -');
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(options.port ?? (await freeLoopbackPort()), options.password, options.config);
    } catch (error) {
      if (!(error instanceof PortTaken) || options.port !== undefined || attempt >= 3) throw error;
    }
  }
}
