import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { MASTER, PG_BIN, type Postgres, startPostgres } from '../../../test/helpers/postgres';
import { bootstrap, type Clients, verifiedConnection } from '../src/index';

/**
 * The bootstrap against a real PostgreSQL on loopback, through the same `pg` connection it uses in
 * the VPC: TLS only, with the server certificate verified against a CA (here one made for the test,
 * in Aurora the committed RDS bundle) and the host name. It runs as a role with CREATEROLE and
 * CREATEDB but not SUPERUSER, as Aurora's master user (rds_superuser) is. A fake connection cannot
 * tell whether PostgreSQL accepts a statement, or whether verification really refuses a stranger's
 * certificate; this can.
 */
const PASSWORDS = { dify: 'AppPassw0rdForTheRealServer1234', dify_plugin: 'PluginPassw0rdForTheRealServer56' };

describe('the database bootstrap against a real PostgreSQL', () => {
  if (PG_BIN === undefined) {
    it('needs PostgreSQL (apt-get install -y postgresql; .ci/run installs it)', () => {
      throw new Error('PostgreSQL is not installed: this suite would prove nothing without it');
    });
    return;
  }
  let pg: Postgres;
  let port: number;
  let ca: string;
  let otherCa: string;
  const psql = (user: string, password: string, database: string, sql: string) =>
    pg.psql(user, password, database, sql);

  beforeAll(async () => {
    pg = await startPostgres();
    ({ port, ca, otherCa } = pg);
  }, 60000);

  afterAll(async () => {
    await pg?.stop();
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
