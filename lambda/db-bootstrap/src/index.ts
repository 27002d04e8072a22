import { ExecuteStatementCommand, RDSDataClient, type SqlParameter } from '@aws-sdk/client-rds-data';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { scramSha256Verifier, VERIFIER_SHAPE } from './scram';

/**
 * Deploy-time bootstrap of Aurora for Dify, run by CloudFormation through the Provider framework.
 *
 * As the master user, over the RDS Data API (TLS, IAM-authorized, no network path to the database
 * needed), it makes sure that:
 * - each login role exists, with the password held in its own secret (sent as a SCRAM verifier,
 *   never in clear);
 * - each database exists, is owned by its role, and admits no other role;
 * - the listed extensions exist.
 *
 * It reads every credential at run time from Secrets Manager: the resource's properties hold only
 * ARNs. Every step checks before it acts, so an update re-runs safely; a delete does nothing,
 * because dropping a database is never a side effect of removing a stack.
 */

/** The properties CloudFormation passes (all values arrive as strings). */
export interface BootstrapProperties {
  readonly ClusterArn: string;
  readonly MasterSecretArn: string;
  readonly Roles: ReadonlyArray<{ readonly SecretArn: string; readonly Database: string }>;
  readonly Extensions: ReadonlyArray<{ readonly Database: string; readonly Name: string }>;
}

export interface BootstrapResult {
  readonly PhysicalResourceId: string;
  readonly Data?: Record<string, string>;
}

/** Postgres identifiers we create: lower-case, so they never need case-sensitive quoting. */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export class BootstrapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BootstrapError';
  }
}

export interface Clients {
  readonly rdsData: RDSDataClient;
  readonly secrets: SecretsManagerClient;
  /** Waits between retries while a paused Serverless v2 cluster resumes; injected by tests. */
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: (line: Record<string, unknown>) => void;
}

const defaultClients = (): Clients => ({
  rdsData: new RDSDataClient({}),
  secrets: new SecretsManagerClient({}),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  log: (line) => console.log(JSON.stringify(line)),
});

export async function handler(event: CloudFormationCustomResourceEvent): Promise<BootstrapResult> {
  return bootstrap(event, defaultClients());
}

export async function bootstrap(event: CloudFormationCustomResourceEvent, clients: Clients): Promise<BootstrapResult> {
  const physicalResourceId = 'PhysicalResourceId' in event ? event.PhysicalResourceId : 'dify-database-bootstrap';
  if (event.RequestType === 'Delete') {
    clients.log({ step: 'delete', action: 'none', why: 'databases and roles are kept; remove them deliberately' });
    return { PhysicalResourceId: physicalResourceId };
  }
  const props = parseProperties(event.ResourceProperties);
  const sql = new Sql(clients, props.ClusterArn, props.MasterSecretArn);

  const roles: string[] = [];
  for (const role of props.Roles) {
    const { username, password } = await readCredentials(clients, role.SecretArn);
    const verifier = scramSha256Verifier(password);
    if (!VERIFIER_SHAPE.test(verifier)) throw new BootstrapError('internal: password verifier has an unexpected shape');

    const exists = await sql.exists('postgres', 'SELECT 1 FROM pg_roles WHERE rolname = :name', { name: username });
    // ALTER ROLE may not name SUPERUSER or NOSUPERUSER unless the caller is a real superuser, which
    // Aurora's master (rds_superuser) is not; a role created here is never a superuser anyway.
    await sql.run(
      'postgres',
      exists
        ? `ALTER ROLE "${username}" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD '${verifier}'`
        : `CREATE ROLE "${username}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '${verifier}'`,
      {
        step: exists ? 'alter-role' : 'create-role',
        role: username,
      },
    );
    // Since PostgreSQL 16 a role's creator must be a member of it to hand it a database.
    await sql.run('postgres', `GRANT "${username}" TO CURRENT_USER`, { step: 'grant-membership', role: username });

    const database = role.Database;
    const dbExists = await sql.exists('postgres', 'SELECT 1 FROM pg_database WHERE datname = :name', {
      name: database,
    });
    if (dbExists) {
      await sql.run('postgres', `ALTER DATABASE "${database}" OWNER TO "${username}"`, {
        step: 'alter-database-owner',
        database,
      });
    } else {
      await sql.run('postgres', `CREATE DATABASE "${database}" OWNER "${username}"`, {
        step: 'create-database',
        database,
      });
    }
    // Least privilege between Dify's components: the plugin daemon's role cannot open Dify's
    // database, nor the other way round.
    await sql.run('postgres', `REVOKE ALL ON DATABASE "${database}" FROM PUBLIC`, { step: 'revoke-public', database });
    roles.push(username);
  }

  for (const extension of props.Extensions) {
    await sql.run(extension.Database, `CREATE EXTENSION IF NOT EXISTS "${extension.Name}"`, {
      step: 'create-extension',
      database: extension.Database,
      extension: extension.Name,
    });
  }
  return { PhysicalResourceId: physicalResourceId, Data: { Roles: roles.join(',') } };
}

export function parseProperties(raw: Record<string, unknown>): BootstrapProperties {
  const arn = (key: string, service: string): string => checkArn(raw[key], key, service);
  const rolesRaw = raw.Roles;
  const extensionsRaw = raw.Extensions ?? [];
  if (!Array.isArray(rolesRaw) || rolesRaw.length === 0)
    throw new BootstrapError('property Roles: expected a non-empty list');
  if (!Array.isArray(extensionsRaw)) throw new BootstrapError('property Extensions: expected a list');
  const roles = rolesRaw.map((role: unknown, index) => {
    const r = role as Record<string, unknown>;
    const database = r?.Database;
    if (typeof database !== 'string' || !IDENTIFIER.test(database)) {
      throw new BootstrapError(`property Roles[${index}].Database: expected a lower-case identifier`);
    }
    return { SecretArn: checkArn(r.SecretArn, `Roles[${index}].SecretArn`, 'secretsmanager'), Database: database };
  });
  const extensions = extensionsRaw.map((ext: unknown, index) => {
    const e = ext as Record<string, unknown>;
    if (
      typeof e?.Database !== 'string' ||
      !IDENTIFIER.test(e.Database) ||
      typeof e?.Name !== 'string' ||
      !IDENTIFIER.test(e.Name)
    ) {
      throw new BootstrapError(`property Extensions[${index}]: expected { Database, Name } as lower-case identifiers`);
    }
    return { Database: e.Database, Name: e.Name };
  });
  return {
    ClusterArn: arn('ClusterArn', 'rds'),
    MasterSecretArn: arn('MasterSecretArn', 'secretsmanager'),
    Roles: roles,
    Extensions: extensions,
  };
}

function checkArn(value: unknown, key: string, service: string): string {
  if (typeof value !== 'string' || !value.startsWith('arn:') || value.split(':')[2] !== service) {
    throw new BootstrapError(`property ${key}: expected an ${service} ARN`);
  }
  return value;
}

async function readCredentials(clients: Clients, secretArn: string): Promise<{ username: string; password: string }> {
  const response = await clients.secrets.send(new GetSecretValueCommand({ SecretId: secretArn }));
  let parsed: unknown;
  try {
    parsed = JSON.parse(response.SecretString ?? '');
  } catch {
    // Never include the secret string: it is the credential.
    throw new BootstrapError(`secret ${secretArn}: expected a JSON object with username and password`);
  }
  const { username, password } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof username !== 'string' || !IDENTIFIER.test(username)) {
    throw new BootstrapError(`secret ${secretArn}: field username must be a lower-case identifier`);
  }
  if (typeof password !== 'string' || password.length < 16) {
    throw new BootstrapError(`secret ${secretArn}: field password must be a string of 16 characters or more`);
  }
  return { username, password };
}

/** Thin wrapper over the Data API: retries while a paused cluster resumes, logs steps but never SQL text. */
class Sql {
  constructor(
    private readonly clients: Clients,
    private readonly clusterArn: string,
    private readonly secretArn: string,
  ) {}

  async exists(database: string, statement: string, params: Record<string, string>): Promise<boolean> {
    const response = await this.execute(database, statement, params);
    return (response.records?.length ?? 0) > 0;
  }

  async run(database: string, statement: string, logFields: Record<string, string>): Promise<void> {
    await this.execute(database, statement, {});
    this.clients.log({ ...logFields, ok: true });
  }

  private async execute(database: string, sql: string, params: Record<string, string>) {
    const parameters: SqlParameter[] = Object.entries(params).map(([name, value]) => ({
      name,
      value: { stringValue: value },
    }));
    const maxAttempts = 10;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.clients.rdsData.send(
          new ExecuteStatementCommand({
            resourceArn: this.clusterArn,
            secretArn: this.secretArn,
            database,
            sql,
            parameters: parameters.length > 0 ? parameters : undefined,
          }),
        );
      } catch (error) {
        const name = (error as { name?: string }).name;
        // A Serverless v2 cluster at 0 ACU answers DatabaseResumingException until it is up (~15 s).
        if (name === 'DatabaseResumingException' && attempt < maxAttempts) {
          this.clients.log({ step: 'wait-for-resume', attempt });
          await this.clients.sleep(Math.min(2000 * attempt, 10000));
          continue;
        }
        // The Data API's message can quote the statement, which may hold a password verifier.
        throw new BootstrapError(`Data API call failed on database ${database}: ${name ?? 'unknown error'}`);
      }
    }
  }
}
