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
import type { ExecuteStatementCommand } from '@aws-sdk/client-rds-data';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { freeLoopbackPort } from '../../../test/helpers/free-port';
import { bootstrap, type Clients } from '../src/index';

/**
 * The bootstrap's SQL against a real PostgreSQL on loopback, run as a role with CREATEROLE and
 * CREATEDB but not SUPERUSER, as Aurora's master user (rds_superuser) is. A mocked Data API cannot
 * tell whether PostgreSQL accepts a statement; this can.
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

  /** A Data API stand-in that runs each statement with psql as the non-superuser master. */
  function clients(): Clients {
    const send = async (command: ExecuteStatementCommand) => {
      const { sql, database, parameters } = command.input;
      let text = sql!;
      for (const p of parameters ?? [])
        text = text.replace(`:${p.name}`, `'${p.value!.stringValue!.replace(/'/g, "''")}'`);
      const result = psql(MASTER.user, MASTER.password, database!, text);
      if (result.status !== 0) throw Object.assign(new Error(result.stderr), { name: 'BadRequestException' });
      const rows = result.stdout.split('\n').filter((line) => line !== '');
      return { records: rows.map((row) => [{ stringValue: row }]) };
    };
    const secret = (arn: string) => {
      const username = arn.includes('plugin') ? 'dify_plugin' : 'dify';
      return { SecretString: JSON.stringify({ username, password: PASSWORDS[username] }) };
    };
    return {
      rdsData: { send } as unknown as Clients['rdsData'],
      secrets: {
        send: async (c: { input: { SecretId: string } }) => secret(c.input.SecretId),
      } as unknown as Clients['secrets'],
      sleep: async () => undefined,
      log: () => undefined,
    };
  }

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

  it('gives Dify ownership of its database and the extension in it', () => {
    expect(
      psql('dify', PASSWORDS.dify, 'dify', "SELECT extname FROM pg_extension WHERE extname = 'pgcrypto'").stdout.trim(),
    ).toBe('pgcrypto');
    expect(psql('dify', PASSWORDS.dify, 'dify', 'CREATE TABLE t (id int); DROP TABLE t;').status).toBe(0);
  });
});

function uid(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}
