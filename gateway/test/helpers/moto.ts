import { freeLoopbackPort } from '../../../test/helpers/free-port';
import { startProcess, stopProcess, waitFor } from './processes';

export interface Moto {
  readonly endpoint: string;
  readonly pid: number;
  stop(): Promise<void>;
  reset(): Promise<void>;
}

/** Dummy credentials for the SDK: moto accepts any. Never real ones in tests. */
export const MOTO_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** A moto_server on a free loopback port, ready when `/moto-api/` answers. Stop it by PID. */
export async function startMoto(): Promise<Moto> {
  const port = await freeLoopbackPort();
  const { child } = startProcess('moto_server', ['-H', '127.0.0.1', '-p', String(port)]);
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitFor('moto_server', async () => (await fetch(`${endpoint}/moto-api/`)).ok);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return {
    endpoint,
    pid: child.pid!,
    stop: () => stopProcess(child),
    reset: async () => {
      await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
    },
  };
}
