import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { Client as PgClient } from 'pg';
// esbuild inlines the committed RDS CA bundle (lib/rds-ca.ts pins its SHA-256 at synth).
import RDS_CA_BUNDLE from '../../../images/api/rds-ca-bundle.pem';
import { alternateUser, baseUser } from '../../../contracts/rotation';
import { scramSha256Verifier, VERIFIER_SHAPE } from '../../../contracts/scram';

/**
 * Deploy-time bootstrap of Aurora for Dify, run by CloudFormation through the Provider framework.
 *
 * As the master user, over PostgreSQL's own protocol on 5432 from inside the VPC, with TLS and the
 * server certificate verified against the committed RDS CA bundle and the host name (the Data API
 * is off: nothing can run SQL from outside the VPC), it makes sure that:
 * - each login role exists, with the password held in its own secret (sent as a SCRAM verifier,
 *   never in clear);
 * - each database exists, is owned by its role, and admits no other role;
 * - the listed extensions exist.
 *
 * It reads every credential at run time from Secrets Manager: the resource's properties hold only
 * ARNs. Every step checks before it acts, so an update re-runs safely; a delete does nothing,
 * because dropping a database is never a side effect of removing a stack.
 *
 * The same function also sets and tests role passwords for the secret-rotation function
 * (lambda/secret-rotation), invoked directly with `{ "Action": "SetRolePassword" | "TestRolePassword",
 * ... }`, because only this function holds the master secret and reaches the database.
 *
 * Each role secret alternates between two logins, `name` and `name_clone` (AWS's alternating-users
 * strategy): `name` owns the database and its objects; `name_clone` is a member of it whose sessions
 * start as `name` (`ALTER ROLE name_clone SET role = name`), so whatever either login creates is
 * owned by `name`. A rotation changes the password of the login nobody uses, so running tasks never
 * hold a password the database rejects.
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

/** Where and as whom to connect: read from the master secret, which RDS fills with host and port. */
export interface ConnectionSettings {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

/** The little of a PostgreSQL connection the bootstrap uses; `pg.Client` in production. */
export interface SqlConnection {
  query(text: string, values?: string[]): Promise<{ rows: unknown[] }>;
  end(): Promise<void>;
}

export interface Clients {
  readonly secrets: SecretsManagerClient;
  /** Opens a verified TLS connection; injected by tests to point at a local server and its CA. */
  readonly connect: (settings: ConnectionSettings) => Promise<SqlConnection>;
  /** Waits between retries while a paused Serverless v2 cluster resumes; injected by tests. */
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: (line: Record<string, unknown>) => void;
}

/**
 * A `pg` connection that refuses anything but TLS with a certificate that chains to the RDS CA
 * bundle and names the host it connected to (libpq's verify-full).
 */
export function verifiedConnection(ca: string) {
  return async (settings: ConnectionSettings): Promise<SqlConnection> => {
    const client = new PgClient({
      ...settings,
      // pg checks the certificate's names against `host` (and sends it as SNI unless it is an IP).
      ssl: { ca, rejectUnauthorized: true },
      connectionTimeoutMillis: 10_000,
      // A statement never runs longer than the deploy's patience for it.
      statement_timeout: 60_000,
    });
    await client.connect();
    return client;
  };
}

const defaultClients = (): Clients => ({
  secrets: new SecretsManagerClient({}),
  connect: verifiedConnection(RDS_CA_BUNDLE),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  log: (line) => console.log(JSON.stringify(line)),
});

/**
 * The rotation's requests: set the login named by the role secret's pending version to that
 * version's password, or sign in with it. `VersionId` names the pending version (the rotation's
 * token); without it, the version staged AWSPENDING.
 */
export interface RolePasswordRequest {
  readonly Action: 'SetRolePassword' | 'TestRolePassword';
  readonly MasterSecretArn: string;
  readonly RoleSecretArn: string;
  readonly VersionId?: string;
}

export async function handler(
  event: CloudFormationCustomResourceEvent | RolePasswordRequest,
): Promise<BootstrapResult | { readonly Role: string; readonly Login: string }> {
  if ('Action' in event) {
    if (event.Action === 'SetRolePassword') return setRolePassword(event, defaultClients());
    if (event.Action === 'TestRolePassword') return testRolePassword(event, defaultClients());
    throw new BootstrapError(`Action: expected SetRolePassword or TestRolePassword`);
  }
  return bootstrap(event, defaultClients());
}

/**
 * Sets the pending login's password, as a SCRAM verifier, creating `name_clone` on first use. It
 * refuses while any session is signed in as that login: those are consumers that never restarted
 * since the previous rotation, and changing the password they hold would refuse their next
 * connection. The response names the role and login, never a value.
 */
export async function setRolePassword(
  request: RolePasswordRequest,
  clients: Clients,
): Promise<{ Role: string; Login: string }> {
  const master = checkArn(request.MasterSecretArn, 'MasterSecretArn', 'secretsmanager');
  const roleSecret = checkArn(request.RoleSecretArn, 'RoleSecretArn', 'secretsmanager');
  const { username, password } = await readCredentials(clients, roleSecret, 'AWSPENDING', request.VersionId);
  const role = baseUser(username);
  const verifier = scramSha256Verifier(password);
  if (!VERIFIER_SHAPE.test(verifier)) throw new BootstrapError('internal: password verifier has an unexpected shape');
  const sql = await Sql.open(clients, master);
  try {
    if (!(await sql.exists('postgres', 'SELECT 1 FROM pg_roles WHERE rolname = $1', [role]))) {
      throw new BootstrapError(`role ${role} does not exist: deploy the stack first`);
    }
    const sessions = await sql.count('postgres', 'SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1', [
      username,
    ]);
    if (sessions > 0) {
      throw new BootstrapError(
        `${sessions} session(s) are signed in as ${username}, whose password this rotation would change: its consumers have not restarted since the previous rotation. Restart them so they use ${alternateUser(username)}, then rotate again`,
      );
    }
    await ensureLogin(sql, username, verifier);
  } finally {
    await sql.close();
  }
  return { Role: role, Login: username };
}

/**
 * Creates or updates a login: the base role with its password, or the clone as a member of the base
 * role whose sessions act as it.
 */
async function ensureLogin(sql: Sql, username: string, verifier: string): Promise<void> {
  const role = baseUser(username);
  const exists = await sql.exists('postgres', 'SELECT 1 FROM pg_roles WHERE rolname = $1', [username]);
  // ALTER ROLE may not name SUPERUSER or NOSUPERUSER unless the caller is a real superuser, which
  // Aurora's master (rds_superuser) is not; a role created here is never a superuser anyway.
  if (exists) {
    await sql.run('postgres', `ALTER ROLE "${username}" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD '${verifier}'`, {
      step: 'alter-role',
      role: username,
    });
  } else {
    await sql.run(
      'postgres',
      `CREATE ROLE "${username}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE${username === role ? '' : ` IN ROLE "${role}"`} PASSWORD '${verifier}'`,
      { step: 'create-role', role: username },
    );
  }
  if (username !== role) {
    await sql.run('postgres', `ALTER ROLE "${username}" SET role = '${role}'`, {
      step: 'act-as-owner',
      role: username,
    });
  }
}

/**
 * Signs in as the pending login with its password, over verified TLS to the secret's own host and
 * database, and checks that the session acts as the owning role.
 */
export async function testRolePassword(
  request: RolePasswordRequest,
  clients: Clients,
): Promise<{ Role: string; Login: string }> {
  const roleSecret = checkArn(request.RoleSecretArn, 'RoleSecretArn', 'secretsmanager');
  const pending = await readCredentials(clients, roleSecret, 'AWSPENDING', request.VersionId);
  const { host, port } = connectionOf(pending, roleSecret);
  const database = pending.dbname;
  if (typeof database !== 'string' || !IDENTIFIER.test(database)) {
    throw new BootstrapError(`secret ${roleSecret}: field dbname must be a lower-case identifier`);
  }
  let connection: SqlConnection;
  try {
    connection = await clients.connect({ host, port, user: pending.username, password: pending.password, database });
  } catch (error) {
    throw new BootstrapError(
      `signing in to ${database} as ${pending.username} with the pending password failed: ${(error as { code?: string }).code ?? (error as Error).name}`,
    );
  }
  try {
    const { rows } = await connection.query('SELECT current_user AS acting');
    const acting = (rows[0] as { acting?: string } | undefined)?.acting;
    if (acting !== baseUser(pending.username)) {
      throw new BootstrapError(
        `${pending.username} signs in but acts as ${acting ?? 'nobody'}, not ${baseUser(pending.username)}: objects it creates would have the wrong owner`,
      );
    }
  } finally {
    await connection.end().catch(() => undefined);
  }
  return { Role: baseUser(pending.username), Login: pending.username };
}

export async function bootstrap(event: CloudFormationCustomResourceEvent, clients: Clients): Promise<BootstrapResult> {
  const physicalResourceId = 'PhysicalResourceId' in event ? event.PhysicalResourceId : 'dify-database-bootstrap';
  if (event.RequestType === 'Delete') {
    clients.log({ step: 'delete', action: 'none', why: 'databases and roles are kept; remove them deliberately' });
    return { PhysicalResourceId: physicalResourceId };
  }
  const props = parseProperties(event.ResourceProperties);
  const sql = await Sql.open(clients, props.MasterSecretArn);
  try {
    return await bootstrapWith(sql, props, physicalResourceId);
  } finally {
    await sql.close();
  }
}

async function bootstrapWith(
  sql: Sql,
  props: BootstrapProperties,
  physicalResourceId: string,
): Promise<BootstrapResult> {
  const clients = sql.clients;

  const roles: string[] = [];
  for (const role of props.Roles) {
    // The current login may be the role itself or its clone (after a rotation): the role owns the
    // database either way, and only the current login's password is set from its secret.
    const { username: login, password } = await readCredentials(clients, role.SecretArn);
    const username = baseUser(login);
    const verifier = scramSha256Verifier(password);
    if (!VERIFIER_SHAPE.test(verifier)) throw new BootstrapError('internal: password verifier has an unexpected shape');

    if (login === username) {
      await ensureLogin(sql, username, verifier);
    } else {
      if (!(await sql.exists('postgres', 'SELECT 1 FROM pg_roles WHERE rolname = $1', [username]))) {
        throw new BootstrapError(`secret ${role.SecretArn} names ${login}, but its role ${username} does not exist`);
      }
      await ensureLogin(sql, login, verifier);
    }
    // Since PostgreSQL 16 a role's creator must be a member of it to hand it a database.
    await sql.run('postgres', `GRANT "${username}" TO CURRENT_USER`, { step: 'grant-membership', role: username });

    const database = role.Database;
    const dbExists = await sql.exists('postgres', 'SELECT 1 FROM pg_database WHERE datname = $1', [database]);
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

async function readCredentials(
  clients: Clients,
  secretArn: string,
  stage: 'AWSCURRENT' | 'AWSPENDING' = 'AWSCURRENT',
  versionId?: string,
): Promise<{ username: string; password: string; host?: unknown; port?: unknown; dbname?: unknown }> {
  let response;
  try {
    response = await clients.secrets.send(
      new GetSecretValueCommand({ SecretId: secretArn, VersionStage: stage, VersionId: versionId }),
    );
  } catch (error) {
    throw new BootstrapError(`secret ${secretArn} (${stage}): ${(error as { name?: string }).name ?? 'read failed'}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(response.SecretString ?? '');
  } catch {
    // Never include the secret string: it is the credential.
    throw new BootstrapError(`secret ${secretArn}: expected a JSON object with username and password`);
  }
  const { username, password, host, port, dbname } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof username !== 'string' || !IDENTIFIER.test(username)) {
    throw new BootstrapError(`secret ${secretArn}: field username must be a lower-case identifier`);
  }
  if (typeof password !== 'string' || password.length < 16) {
    throw new BootstrapError(`secret ${secretArn}: field password must be a string of 16 characters or more`);
  }
  return { username, password, host, port, dbname };
}

/**
 * One verified connection per database, opened as the master user; retries while a paused cluster
 * resumes; logs steps but never SQL text (a statement may hold a password verifier).
 */
class Sql {
  private readonly connections = new Map<string, SqlConnection>();

  private constructor(
    readonly clients: Clients,
    private readonly master: { host: string; port: number; user: string; password: string },
  ) {}

  static async open(clients: Clients, masterSecretArn: string): Promise<Sql> {
    const { username, password, host, port } = await readMasterCredentials(clients, masterSecretArn);
    return new Sql(clients, { host, port, user: username, password });
  }

  async exists(database: string, statement: string, values: string[]): Promise<boolean> {
    const result = await this.execute(database, statement, values);
    return result.rows.length > 0;
  }

  async count(database: string, statement: string, values: string[]): Promise<number> {
    const result = await this.execute(database, statement, values);
    return Number((result.rows[0] as { n?: unknown } | undefined)?.n ?? 0);
  }

  async run(database: string, statement: string, logFields: Record<string, string>): Promise<void> {
    await this.execute(database, statement, []);
    this.clients.log({ ...logFields, ok: true });
  }

  async close(): Promise<void> {
    for (const connection of this.connections.values()) await connection.end().catch(() => undefined);
    this.connections.clear();
  }

  private async connection(database: string): Promise<SqlConnection> {
    const open = this.connections.get(database);
    if (open !== undefined) return open;
    const maxAttempts = 10;
    for (let attempt = 1; ; attempt++) {
      try {
        const connection = await this.clients.connect({ ...this.master, database });
        this.connections.set(database, connection);
        return connection;
      } catch (error) {
        const code = (error as { code?: string }).code;
        // A Serverless v2 cluster at 0 ACU refuses or times out connections until it is up (~15 s).
        const resuming = code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === '57P03';
        if (resuming && attempt < maxAttempts) {
          this.clients.log({ step: 'wait-for-resume', attempt });
          await this.clients.sleep(Math.min(2000 * attempt, 10000));
          continue;
        }
        // Never the error's message: a TLS or authentication failure is named by its code only.
        throw new BootstrapError(
          `connecting to database ${database} on ${this.master.host}:${this.master.port} as ${this.master.user} failed: ${code ?? (error as Error).name}`,
        );
      }
    }
  }

  private async execute(database: string, sql: string, values: string[]) {
    const connection = await this.connection(database);
    try {
      return await connection.query(sql, values.length > 0 ? values : undefined);
    } catch (error) {
      // PostgreSQL's message can quote the statement, which may hold a password verifier.
      const code = (error as { code?: string }).code;
      throw new BootstrapError(`a statement failed on database ${database}: SQLSTATE ${code ?? 'unknown'}`);
    }
  }
}

async function readMasterCredentials(clients: Clients, secretArn: string) {
  const credentials = await readCredentials(clients, secretArn);
  return { username: credentials.username, password: credentials.password, ...connectionOf(credentials, secretArn) };
}

/** The host and port a secret names (RDS fills both in). */
function connectionOf(credentials: { host?: unknown; port?: unknown }, secretArn: string) {
  const { host, port } = credentials;
  if (typeof host !== 'string' || host === '') {
    throw new BootstrapError(`secret ${secretArn}: field host must name the cluster endpoint`);
  }
  const portNumber = Number(port);
  if (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65_535) {
    throw new BootstrapError(`secret ${secretArn}: field port must be a TCP port`);
  }
  return { host, port: portNumber };
}
