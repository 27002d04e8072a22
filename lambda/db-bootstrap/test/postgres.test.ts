import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
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
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { freeLoopbackPort } from '../../../test/helpers/free-port';
import { bootstrap, type Clients, verifiedConnection } from '../src/index';

/**
 * The bootstrap against a real PostgreSQL on loopback, through the same `pg` connection it uses in
 * the VPC: TLS only, with the server certificate verified against a CA (here one made for the test,
 * in Aurora the committed RDS bundle) and the host name. It runs as a role with CREATEROLE and
 * CREATEDB but not SUPERUSER, as Aurora's master user (rds_superuser) is. A fake connection cannot
 * tell whether PostgreSQL accepts a statement, or whether verification really refuses a stranger's
 * certificate; this can.
 */
const PG_BIN = (() => {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root).sort().at(-1);
  return version ? join(root, version, 'bin') : undefined;
})();

const PASSWORDS = { dify: 'AppPassw0rdForTheRealServer1234', dify_plugin: 'PluginPassw0rdForTheRealServer56' };
const MASTER = { user: 'dify_admin', password: 'MasterPassw0rdNotASuperuser789' };

describe('the database bootstrap against a real PostgreSQL', () => {
  if (PG_BIN === undefined) {
    it('needs PostgreSQL (apt-get install -y postgresql; .ci/run installs it)', () => {
      throw new Error('PostgreSQL is not installed: this suite would prove nothing without it');
    });
    return;
  }
  let dir: string;
  let port: number;
  /** The test CA that signed the server's certificate (for 127.0.0.1 only), and an unrelated one. */
  let ca: string;
  let otherCa: string;
  let server: ChildProcess;
  const asPostgres = (command: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, command), ...args], { stdio: 'pipe', cwd: '/' });

  function psql(user: string, password: string, database: string, sql: string) {
    return spawnSync(
      join(PG_BIN!, 'psql'),
      ['-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', database, '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql],
      {
        env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '5' },
        encoding: 'utf8',
      },
    );
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-'));
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    const pwfile = join(dir, 'pw');
    writeFileSync(pwfile, 'SuperuserOnlyForSetup1234\n');
    chownSync(dir, uid('postgres'), uid('postgres'));
    chownSync(pwfile, uid('postgres'), uid('postgres'));
    asPostgres('initdb', ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth', 'scram-sha-256']);
    ({ ca, otherCa } = makeCertificates(dir));
    for (const file of ['server.crt', 'server.key']) chownSync(join(dir, file), uid('postgres'), uid('postgres'));
    port = await freeLoopbackPort();
    server = spawn(
      'runuser',
      [
        '-u',
        'postgres',
        '--',
        join(PG_BIN!, 'postgres'),
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
      ],
      {
        stdio: 'ignore',
      },
    );
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
    expect(created.stderr).toBe('');
  }, 60000);

  afterAll(async () => {
    // Stop the postmaster by its own PID (runuser may not forward the signal), bounded in time.
    const pidFile = join(dir, 'data', 'postmaster.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      process.kill(pid, 'SIGTERM');
      for (let attempt = 0; attempt < 100 && existsSync(pidFile); attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    server?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  /** The production clients, but the master secret points at this server and trusts `trusted`. */
  function clients(trusted = ca, host = '127.0.0.1'): Clients {
    const secret = (arn: string) => {
      if (arn.endsWith(':master')) return { SecretString: JSON.stringify({ ...masterSecret(), host }) };
      const username = arn.includes('plugin') ? 'dify_plugin' : 'dify';
      return { SecretString: JSON.stringify({ username, password: PASSWORDS[username] }) };
    };
    return {
      secrets: {
        send: async (c: { input: { SecretId: string } }) => secret(c.input.SecretId),
      } as unknown as Clients['secrets'],
      connect: verifiedConnection(trusted),
      sleep: async () => undefined,
      log: () => undefined,
    };
  }
  const masterSecret = () => ({ username: MASTER.user, password: MASTER.password, port });

  const event = (type: 'Create' | 'Update') =>
    ({
      RequestType: type,
      PhysicalResourceId: 'dify-database-bootstrap',
      ResourceProperties: {
        ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
        ClusterArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:dify-aurora',
        MasterSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:master',
        Roles: [
          { SecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:app', Database: 'dify' },
          { SecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:plugin', Database: 'dify_plugin' },
        ],
        // pgvector is not packaged for this machine's PostgreSQL; pgcrypto is a trusted extension like it.
        Extensions: [{ Database: 'dify', Name: 'pgcrypto' }],
      },
    }) as unknown as CloudFormationCustomResourceEvent;

  it('creates the roles and databases as a non-superuser, and runs again on update without error', async () => {
    await expect(bootstrap(event('Create'), clients())).resolves.toMatchObject({ Data: { Roles: 'dify,dify_plugin' } });
    await expect(bootstrap(event('Update'), clients())).resolves.toMatchObject({ Data: { Roles: 'dify,dify_plugin' } });
    const roles = psql(
      MASTER.user,
      MASTER.password,
      'postgres',
      "SELECT rolname || ':' || rolsuper FROM pg_roles WHERE rolname LIKE 'dify%' ORDER BY 1",
    );
    expect(roles.stdout.trim().split('\n')).toEqual(['dify:false', 'dify_admin:false', 'dify_plugin:false']);
  });

  it('lets each role log in with its own password, sent to the server only as a SCRAM verifier', () => {
    expect(psql('dify', PASSWORDS.dify, 'dify', 'SELECT current_user').stdout.trim()).toBe('dify');
    expect(psql('dify_plugin', PASSWORDS.dify_plugin, 'dify_plugin', 'SELECT current_user').stdout.trim()).toBe(
      'dify_plugin',
    );
    const stored = psql(
      MASTER.user,
      MASTER.password,
      'postgres',
      "SELECT count(*) FROM pg_roles WHERE rolname = 'dify'",
    );
    expect(stored.stdout.trim()).toBe('1');
  });

  it('keeps each role out of the other’s database', () => {
    const denied = psql('dify_plugin', PASSWORDS.dify_plugin, 'dify', 'SELECT 1');
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toMatch(/permission denied for database "dify"/);
  });

  it('refuses a server whose certificate does not chain to the trusted CA, before sending any statement', async () => {
    await expect(bootstrap(event('Update'), clients(otherCa))).rejects.toThrow(
      /connecting to database postgres on 127\.0\.0\.1:\d+ as dify_admin failed: (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/,
    );
  });

  it('refuses a server whose certificate does not name the host it was reached by', async () => {
    await expect(bootstrap(event('Update'), clients(ca, 'localhost'))).rejects.toThrow(
      /as dify_admin failed: ERR_TLS_CERT_ALTNAME_INVALID/,
    );
  });

  it('gives Dify ownership of its database and the extension in it', () => {
    expect(
      psql('dify', PASSWORDS.dify, 'dify', "SELECT extname FROM pg_extension WHERE extname = 'pgcrypto'").stdout.trim(),
    ).toBe('pgcrypto');
    expect(psql('dify', PASSWORDS.dify, 'dify', 'CREATE TABLE t (id int); DROP TABLE t;').status).toBe(0);
  });
});

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
