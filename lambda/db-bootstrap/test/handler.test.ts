import { ExecuteStatementCommand, RDSDataClient } from '@aws-sdk/client-rds-data';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { bootstrap, BootstrapError, type Clients, parseProperties } from '../src/index';

const ARN = {
  cluster: 'arn:aws:rds:eu-west-1:123456789012:cluster:dify-aurora',
  master: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:master-AbCdEf',
  app: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf',
  plugin: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:plugin-AbCdEf',
};
const PASSWORDS = { dify: 'AppPassw0rdThatMustNeverLeak1234', dify_plugin: 'PluginPassw0rdThatMustNeverLeak56' };

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
  const rdsData = mockClient(RDSDataClient);
  const secrets = mockClient(SecretsManagerClient);
  let logs: string[];
  let sleeps: number[];
  let clients: Clients;

  /** Which roles and databases the fake cluster already has. */
  function cluster(existing: { roles: string[]; databases: string[] }) {
    rdsData.on(ExecuteStatementCommand).callsFake((input) => {
      const name = input.parameters?.[0]?.value?.stringValue;
      if (input.sql.includes('FROM pg_roles'))
        return { records: existing.roles.includes(name) ? [[{ longValue: 1 }]] : [] };
      if (input.sql.includes('FROM pg_database'))
        return { records: existing.databases.includes(name) ? [[{ longValue: 1 }]] : [] };
      return { numberOfRecordsUpdated: 0 };
    });
  }

  const statements = () => rdsData.commandCalls(ExecuteStatementCommand).map((call) => call.args[0].input);
  const ddl = () =>
    statements()
      .filter((s) => !s.sql!.startsWith('SELECT'))
      .map((s) => `${s.database}: ${s.sql!.replace(/PASSWORD '[^']*'/, "PASSWORD '<verifier>'")}`);

  beforeEach(() => {
    rdsData.reset();
    secrets.reset();
    secrets.on(GetSecretValueCommand, { SecretId: ARN.app }).resolves({
      SecretString: JSON.stringify({ username: 'dify', password: PASSWORDS.dify, host: 'h', port: 5432 }),
    });
    secrets.on(GetSecretValueCommand, { SecretId: ARN.plugin }).resolves({
      SecretString: JSON.stringify({ username: 'dify_plugin', password: PASSWORDS.dify_plugin }),
    });
    logs = [];
    sleeps = [];
    clients = {
      rdsData: new RDSDataClient({ region: 'eu-west-1' }),
      secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
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

  it('authenticates every statement as the master user through the Data API, on this cluster only', async () => {
    cluster({ roles: [], databases: [] });
    await bootstrap(event('Create'), clients);
    for (const statement of statements()) {
      expect(statement.resourceArn).toBe(ARN.cluster);
      expect(statement.secretArn).toBe(ARN.master);
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
    expect(statements().some((s) => /DROP/i.test(s.sql!))).toBe(false);
  });

  it('never sends, logs or reports a password', async () => {
    cluster({ roles: [], databases: [] });
    await bootstrap(event('Create'), clients);
    const everything = JSON.stringify(statements()) + logs.join('\n');
    for (const password of Object.values(PASSWORDS)) expect(everything).not.toContain(password);
    // Parameters carry only names.
    for (const s of statements()) for (const p of s.parameters ?? []) expect(p.value?.stringValue).toMatch(/^[a-z_]+$/);
  });

  it('waits while a paused Serverless v2 cluster resumes, with a bounded number of attempts', async () => {
    let resuming = 2;
    rdsData.on(ExecuteStatementCommand).callsFake(() => {
      if (resuming-- > 0) throw Object.assign(new Error('resuming'), { name: 'DatabaseResumingException' });
      return { records: [] };
    });
    await bootstrap(event('Create'), clients);
    expect(sleeps).toEqual([2000, 4000]);
  });

  it('gives up after ten attempts on a cluster that never resumes', async () => {
    rdsData
      .on(ExecuteStatementCommand)
      .rejects(Object.assign(new Error('resuming'), { name: 'DatabaseResumingException' }));
    await expect(bootstrap(event('Create'), clients)).rejects.toThrow(
      'Data API call failed on database postgres: DatabaseResumingException',
    );
    expect(sleeps).toHaveLength(9);
  });

  it('reports a Data API failure without the statement text, which may hold a verifier', async () => {
    rdsData.on(ExecuteStatementCommand).callsFake((input) => {
      if (input.sql.includes('CREATE ROLE')) {
        throw Object.assign(new Error(`syntax error at PASSWORD 'SCRAM-SHA-256$4096:abc'`), {
          name: 'BadRequestException',
        });
      }
      return { records: [] };
    });
    const error = await bootstrap(event('Create'), clients).catch((e: Error) => e);
    expect(error).toBeInstanceOf(BootstrapError);
    expect((error as Error).message).toBe('Data API call failed on database postgres: BadRequestException');
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
    expect(statements().filter((s) => !s.sql!.startsWith('SELECT'))).toEqual([]);
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
