import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from './free-port';

/**
 * Where the server binaries are: Debian's and Ubuntu's `postgresql` package (the newest server),
 * else `pg_config --bindir` (Homebrew and most others); undefined without a server.
 */
export const PG_BIN = (() => {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const version = readdirSync(root).sort().at(-1);
    if (version) return join(root, version, 'bin');
  }
  const bindir = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const bin = bindir.status === 0 ? bindir.stdout.trim() : '';
  return bin !== '' && existsSync(join(bin, 'postgres')) ? bin : undefined;
})();

/**
 * PostgreSQL refuses to run as root: as root (CI), the server runs as the `postgres` system user
 * through runuser; as anyone else (a developer's machine), as that user.
 */
const AS_ROOT = process.getuid?.() === 0;
const serverCommand = (bin: string, command: string, args: string[]): [string, string[]] =>
  AS_ROOT ? ['runuser', ['-u', 'postgres', '--', join(bin, command), ...args]] : [join(bin, command), args];
const giveToPostgres = (path: string) => {
  if (AS_ROOT) chownSync(path, uid('postgres'), uid('postgres'));
};

/** The stand-in for Aurora's master user: CREATEROLE and CREATEDB, not SUPERUSER (rds_superuser). */
export const MASTER = { user: 'dify_admin', password: 'MasterPassw0rdNotASuperuser789' };

export interface Postgres {
  readonly port: number;
  /** The test CA that signed the server's certificate (for 127.0.0.1 only), and an unrelated one. */
  readonly ca: string;
  readonly otherCa: string;
  /** Runs one statement with psql over TCP; never throws, the caller reads status and output. */
  psql(user: string, password: string, database: string, sql: string): SpawnSyncReturns<string>;
  /** Ends the postmaster by its PID, bounded in time, and removes the data directory. */
  stop(): Promise<void>;
}

/**
 * A real PostgreSQL on a free loopback port with TLS on, run as the `postgres` system user, and
 * the master stand-in created. The caller stops it in afterAll.
 */
export async function startPostgres(): Promise<Postgres> {
  if (PG_BIN === undefined)
    throw new Error('PostgreSQL is not installed (sudo apt-get install -y postgresql, or brew install postgresql@16)');
  const bin = PG_BIN;
  const dir = mkdtempSync(join(tmpdir(), 'pg-'));
  chmodSync(dir, 0o755);
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, 'SuperuserOnlyForSetup1234\n');
  giveToPostgres(dir);
  giveToPostgres(pwfile);
  const asPostgres = (command: string, args: string[]) =>
    execFileSync(...serverCommand(bin, command, args), { stdio: 'pipe', cwd: '/' });
  asPostgres('initdb', ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth', 'scram-sha-256']);
  const { ca, otherCa } = makeCertificates(dir);
  for (const file of ['server.crt', 'server.key']) giveToPostgres(join(dir, file));
  const port = await freeLoopbackPort();
  const server = spawn(
    ...serverCommand(bin, 'postgres', [
      '-D',
      data,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${dir}`,
      '-c',
      'ssl=on',
      '-c',
      `ssl_cert_file=${join(dir, 'server.crt')}`,
      '-c',
      `ssl_key_file=${join(dir, 'server.key')}`,
    ]),
    { stdio: 'ignore' },
  );
  const psql = (user: string, password: string, database: string, sql: string) =>
    spawnSync(
      join(bin, 'psql'),
      ['-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', database, '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql],
      { env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '5' }, encoding: 'utf8' },
    );
  const stop = async () => {
    // By the postmaster's own PID (runuser may not forward the signal), bounded in time.
    const pidFile = join(data, 'postmaster.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      process.kill(pid, 'SIGTERM');
      for (let attempt = 0; attempt < 100 && existsSync(pidFile); attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let attempt = 0; attempt < 100; attempt++) {
      if (psql('postgres', 'SuperuserOnlyForSetup1234', 'postgres', 'SELECT 1').status === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const created = psql(
      'postgres',
      'SuperuserOnlyForSetup1234',
      'postgres',
      `CREATE ROLE ${MASTER.user} LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD '${MASTER.password}'`,
    );
    if (created.status !== 0) throw new Error(`creating the master stand-in failed: ${created.stderr}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, ca, otherCa, psql, stop };
}

/** A CA, a server certificate it signs for 127.0.0.1 only, and an unrelated CA; keys stay in `dir`. */
function makeCertificates(dir: string): { ca: string; otherCa: string } {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  for (const name of ['ca', 'other-ca']) {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=test ${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
    );
  }
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  );
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'san.cnf',
    '-out',
    'server.crt',
  );
  chmodSync(join(dir, 'server.key'), 0o600);
  return { ca: readFileSync(join(dir, 'ca.crt'), 'utf8'), otherCa: readFileSync(join(dir, 'other-ca.crt'), 'utf8') };
}

function uid(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}
