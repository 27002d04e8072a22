import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import {
  bootstrap,
  BootstrapError,
  type Clients,
  type ConnectionSettings,
  parseProperties,
  setRolePassword,
} from '../src/index';

const ARN = {
  cluster: 'arn:aws:rds:eu-west-1:123456789012:cluster:dify-aurora',
  master: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:master-AbCdEf',
  app: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf',
  plugin: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:plugin-AbCdEf',
};
const PASSWORDS = { dify: 'AppPassw0rdThatMustNeverLeak1234', dify_plugin: 'PluginPassw0rdThatMustNeverLeak56' };
const MASTER = {
  username: 'dify_admin',
  password: 'MasterPassw0rdThatMustNeverLeak9',
  host: 'cluster.example',
  port: 5432,
};

/** One statement as the fake server received it. */
interface Statement {
  readonly database: string;
  readonly sql: string;
  readonly values: string[];
  readonly as: ConnectionSettings;
}

const properties = {
  ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
  ClusterArn: ARN.cluster,
  MasterSecretArn: ARN.master,
  Roles: [
    { SecretArn: ARN.app, Database: 'dify' },
    { SecretArn: ARN.plugin, Database: 'dify_plugin' },
  ],
  Extensions: [{ Database: 'dify', Name: 'vector' }],
};

function event(type: 'Create' | 'Update' | 'Delete', props: Record<string, unknown> = properties) {
  return {
    RequestType: type,
    ResourceProperties: props,
    ...(type === 'Create' ? {} : { PhysicalResourceId: 'dify-database-bootstrap' }),
    StackId: 'stack',
    RequestId: 'request',
    LogicalResourceId: 'Bootstrap',
    ResourceType: 'Custom::DifyDatabaseBootstrap',
    ResponseURL: 'https://example.invalid/response',
    ServiceToken: properties.ServiceToken,
  } as unknown as CloudFormationCustomResourceEvent;
}

describe('the database bootstrap', () => {
  const secrets = mockClient(SecretsManagerClient);
  let logs: string[];
  let sleeps: number[];
  let clients: Clients;
  let received: Statement[];
  /** What the fake server answers to each statement; tests replace it. */
  let answer: (statement: Statement) => { rows: unknown[] };
  /** Errors the next connection attempts throw (a paused cluster refuses them). */
  let connectErrors: Error[];

  /** Which roles and databases the fake cluster already has. */
  function cluster(existing: { roles: string[]; databases: string[] }) {
    answer = ({ sql, values }) => {
      if (sql.includes('FROM pg_roles')) return { rows: existing.roles.includes(values[0]) ? [{ '?column?': 1 }] : [] };
      if (sql.includes('FROM pg_database'))
        return { rows: existing.databases.includes(values[0]) ? [{ '?column?': 1 }] : [] };
      return { rows: [] };
    };
  }

  const statements = () => received;
  const ddl = () =>
    statements()
      .filter((s) => !s.sql.startsWith('SELECT'))
      .map((s) => `${s.database}: ${s.sql.replace(/PASSWORD '[^']*'/, "PASSWORD '<verifier>'")}`);

  beforeEach(() => {
    secrets.reset();
    secrets.on(GetSecretValueCommand, { SecretId: ARN.master }).resolves({ SecretString: JSON.stringify(MASTER) });
    secrets.on(GetSecretValueCommand, { SecretId: ARN.app }).resolves({
      SecretString: JSON.stringify({ username: 'dify', password: PASSWORDS.dify, host: 'h', port: 5432 }),
    });
    secrets.on(GetSecretValueCommand, { SecretId: ARN.plugin }).resolves({
      SecretString: JSON.stringify({ username: 'dify_plugin', password: PASSWORDS.dify_plugin }),
    });
    logs = [];
    sleeps = [];
    received = [];
    connectErrors = [];
    cluster({ roles: [], databases: [] });
    clients = {
      secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
      connect: async (settings) => {
        const error = connectErrors.shift();
        if (error !== undefined) throw error;
        return {
          query: async (sql: string, values?: string[]) => {
            const statement = { database: settings.database, sql, values: values ?? [], as: settings };
            received.push(statement);
            return answer(statement);
          },
          end: async () => undefined,
        };
      },
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      log: (line) => logs.push(JSON.stringify(line)),
    };
  });

  it('creates each role, its own database and the vector extension on a fresh cluster', async () => {
    cluster({ roles: [], databases: [] });
    const result = await bootstrap(event('Create'), clients);
    expect(ddl()).toEqual([
      `postgres: CREATE ROLE "dify" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '<verifier>'`,
      'postgres: GRANT "dify" TO CURRENT_USER',
      'postgres: CREATE DATABASE "dify" OWNER "dify"',
      'postgres: REVOKE ALL ON DATABASE "dify" FROM PUBLIC',
      `postgres: CREATE ROLE "dify_plugin" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '<verifier>'`,
      'postgres: GRANT "dify_plugin" TO CURRENT_USER',
      'postgres: CREATE DATABASE "dify_plugin" OWNER "dify_plugin"',
      'postgres: REVOKE ALL ON DATABASE "dify_plugin" FROM PUBLIC',
      'dify: CREATE EXTENSION IF NOT EXISTS "vector"',
    ]);
    expect(result).toEqual({ PhysicalResourceId: 'dify-database-bootstrap', Data: { Roles: 'dify,dify_plugin' } });
  });

  it('connects as the master user to the host and port its secret names, for every statement', async () => {
    cluster({ roles: [], databases: [] });
    await bootstrap(event('Create'), clients);
    expect(statements().length).toBeGreaterThan(0);
    for (const statement of statements()) {
      expect(statement.as).toMatchObject({ host: MASTER.host, port: MASTER.port, user: MASTER.username });
    }
  });

  it('is idempotent: on update it alters what exists and creates nothing', async () => {
    cluster({ roles: ['dify', 'dify_plugin'], databases: ['dify', 'dify_plugin'] });
    await bootstrap(event('Update'), clients);
    const sql = ddl();
    expect(sql.filter((s) => s.includes('CREATE ROLE') || s.includes('CREATE DATABASE'))).toEqual([]);
    expect(sql).toContain(
      // No NOSUPERUSER: only a real superuser may name that attribute in ALTER ROLE.
      `postgres: ALTER ROLE "dify" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD '<verifier>'`,
    );
    expect(sql).toContain('postgres: ALTER DATABASE "dify_plugin" OWNER TO "dify_plugin"');
    expect(sql).toContain('dify: CREATE EXTENSION IF NOT EXISTS "vector"');
  });

  it('does nothing destructive on delete: no statement at all', async () => {
    cluster({ roles: ['dify'], databases: ['dify'] });
    const result = await bootstrap(event('Delete'), clients);
    expect(statements()).toEqual([]);
    expect(result.PhysicalResourceId).toBe('dify-database-bootstrap');
    expect(statements().some((s) => /DROP/i.test(s.sql))).toBe(false);
  });

  it('never sends, logs or reports a password', async () => {
    cluster({ roles: [], databases: [] });
    await bootstrap(event('Create'), clients);
    const everything = JSON.stringify(statements()) + logs.join('\n');
    for (const password of Object.values(PASSWORDS)) expect(everything).not.toContain(password);
    // Parameters carry only names.
    for (const s of statements()) for (const value of s.values) expect(value).toMatch(/^[a-z_]+$/);
  });

  it('waits while a paused Serverless v2 cluster resumes, with a bounded number of attempts', async () => {
    connectErrors = [1, 2].map(() => Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
    await bootstrap(event('Create'), clients);
    expect(sleeps).toEqual([2000, 4000]);
  });

  it('gives up after ten attempts on a cluster that never resumes', async () => {
    connectErrors = Array.from({ length: 20 }, () => Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
    await expect(bootstrap(event('Create'), clients)).rejects.toThrow(
      'connecting to database postgres on cluster.example:5432 as dify_admin failed: ECONNREFUSED',
    );
    expect(sleeps).toHaveLength(9);
  });

  it('fails at once, without retrying or quoting the cause, when the server certificate does not verify', async () => {
    connectErrors = [
      Object.assign(new Error(`Hostname/IP does not match certificate's altnames: ${MASTER.password}`), {
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      }),
    ];
    const error = (await bootstrap(event('Create'), clients).catch((e: Error) => e)) as Error;
    expect(error.message).toBe(
      'connecting to database postgres on cluster.example:5432 as dify_admin failed: ERR_TLS_CERT_ALTNAME_INVALID',
    );
    expect(sleeps).toEqual([]);
  });

  it('reports a failed statement without its text, which may hold a verifier', async () => {
    answer = ({ sql }) => {
      if (sql.includes('CREATE ROLE')) {
        throw Object.assign(new Error(`syntax error at PASSWORD 'SCRAM-SHA-256$4096:abc'`), { code: '42601' });
      }
      return { rows: [] };
    };
    const error = await bootstrap(event('Create'), clients).catch((e: Error) => e);
    expect(error).toBeInstanceOf(BootstrapError);
    expect((error as Error).message).toBe('a statement failed on database postgres: SQLSTATE 42601');
  });

  it('sets a role’s password from its secret’s AWSPENDING version only, for the rotation', async () => {
    cluster({ roles: ['dify'], databases: ['dify'] });
    const pending = 'PendingPassw0rdThatMustNeverLeak7';
    secrets
      .on(GetSecretValueCommand, { SecretId: ARN.app, VersionStage: 'AWSPENDING' })
      .resolves({ SecretString: JSON.stringify({ username: 'dify', password: pending }) });
    const result = await setRolePassword(
      { Action: 'SetRolePassword', MasterSecretArn: ARN.master, RoleSecretArn: ARN.app },
      clients,
    );
    expect(result).toEqual({ Role: 'dify', Login: 'dify' });
    expect(ddl()).toEqual([`postgres: ALTER ROLE "dify" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD '<verifier>'`]);
    expect(JSON.stringify(statements()) + logs.join('')).not.toContain(pending);
  });

  it('refuses to set the password of a role that does not exist', async () => {
    cluster({ roles: [], databases: [] });
    secrets
      .on(GetSecretValueCommand, { SecretId: ARN.app, VersionStage: 'AWSPENDING' })
      .resolves({ SecretString: JSON.stringify({ username: 'dify', password: 'x'.repeat(32) }) });
    await expect(
      setRolePassword({ Action: 'SetRolePassword', MasterSecretArn: ARN.master, RoleSecretArn: ARN.app }, clients),
    ).rejects.toThrow('role dify does not exist: deploy the stack first');
    expect(ddl()).toEqual([]);
  });

  it('refuses a secret that is not JSON, without quoting it', async () => {
    cluster({ roles: [], databases: [] });
    secrets.on(GetSecretValueCommand, { SecretId: ARN.app }).resolves({ SecretString: 'not-json-but-a-Passw0rd' });
    const error = (await bootstrap(event('Create'), clients).catch((e: Error) => e)) as Error;
    expect(error.message).toBe(`secret ${ARN.app}: expected a JSON object with username and password`);
    expect(error.message).not.toContain('Passw0rd');
  });

  it.each([
    [
      'a username that could inject SQL',
      { username: 'dify"; DROP DATABASE dify; --', password: 'x'.repeat(32) },
      'field username must be a lower-case identifier',
    ],
    [
      'a short password',
      { username: 'dify', password: 'short' },
      'field password must be a string of 16 characters or more',
    ],
    ['a missing password', { username: 'dify' }, 'field password must be a string of 16 characters or more'],
  ])('refuses %s', async (_name, secret, message) => {
    cluster({ roles: [], databases: [] });
    secrets.on(GetSecretValueCommand, { SecretId: ARN.app }).resolves({ SecretString: JSON.stringify(secret) });
    await expect(bootstrap(event('Create'), clients)).rejects.toThrow(`secret ${ARN.app}: ${message}`);
    expect(statements().filter((s) => !s.sql.startsWith('SELECT'))).toEqual([]);
  });

  it.each([
    ['a cluster ARN of another service', { ClusterArn: ARN.master }, 'property ClusterArn: expected an rds ARN'],
    ['no roles', { Roles: [] }, 'property Roles: expected a non-empty list'],
    [
      'a database name that needs quoting',
      { Roles: [{ SecretArn: ARN.app, Database: 'Dify DB' }] },
      'property Roles[0].Database: expected a lower-case identifier',
    ],
    [
      'an extension name that could inject SQL',
      { Extensions: [{ Database: 'dify', Name: 'vector"; DROP' }] },
      'property Extensions[0]',
    ],
  ])('refuses properties with %s', (_name, override, message) => {
    expect(() => parseProperties({ ...properties, ...override })).toThrow(message);
  });
});
