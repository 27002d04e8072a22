import { createConnection } from 'node:net';
import { freeLoopbackPort } from '../../../test/helpers/free-port';
import { startProcess, stopProcess, waitFor } from './processes';

export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

function ping(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    socket.setTimeout(500, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(false));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('PONG') || data.includes('-')) {
        socket.destroy();
        resolve(data.includes('PONG'));
      }
    });
    socket.on('connect', () => socket.write(password ? `AUTH ${password}\r\nPING\r\n` : 'PING\r\n'));
  });
}

/** A redis-server on a loopback port (free, or the given one), without persistence. Stop it by PID. */
export async function startRedis(options: { password?: string; port?: number } = {}): Promise<RedisServer> {
  const port = options.port ?? (await freeLoopbackPort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  if (options.password) args.push('--requirepass', options.password);
  const { child } = startProcess('redis-server', args);
  try {
    await waitFor('redis-server', () => ping(port, options.password));
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return { port, pid: child.pid!, stop: () => stopProcess(child) };
}
