import { createHash, createHmac } from 'node:crypto';
import { CreateAccessKeyCommand, DeleteAccessKeyCommand, IAMClient, ListAccessKeysCommand } from '@aws-sdk/client-iam';
import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';

/**
 * Deploy-time custom resources of the e-mail construct (lib/constructs/email.ts), behind one
 * Provider:
 *
 * - `Custom::DifySesSmtpCredentials`: an access key of the SMTP user, turned into its SES SMTP
 *   password and written to the SMTP secret as `{"username","password"}`. The secret access key
 *   exists only in this function's memory: it is never returned to CloudFormation, logged or stored.
 *   The physical id is a fingerprint of the access key id, so the key id is not shown either.
 * - `Custom::DifySmtpEndpointSubnets`: the subnets, of those given, in the zones where the region's
 *   SES SMTP endpoint service is offered (it is missing from some zones), for its interface endpoint.
 */

/** The fixed inputs of AWS's SES SMTP password derivation (SigV4 with a constant date and message). */
const SMTP_DATE = '11111111';
const SMTP_SERVICE = 'ses';
const SMTP_TERMINAL = 'aws4_request';
const SMTP_MESSAGE = 'SendRawEmail';
const SMTP_VERSION = 0x04;

/**
 * The SES SMTP password of a secret access key in `region`, as AWS documents it ("Obtaining Amazon
 * SES SMTP credentials", the SigV4 conversion): HMAC-SHA256 chained over the date, region, service,
 * terminal and message, prefixed with the version byte, in base64.
 */
export function smtpPassword(secretAccessKey: string, region: string): string {
  let signature: Buffer = Buffer.from(`AWS4${secretAccessKey}`, 'utf8');
  for (const part of [SMTP_DATE, region, SMTP_SERVICE, SMTP_TERMINAL, SMTP_MESSAGE]) {
    signature = createHmac('sha256', signature).update(part, 'utf8').digest();
  }
  return Buffer.concat([Buffer.from([SMTP_VERSION]), signature]).toString('base64');
}

/** What CloudFormation sees of a key: a fingerprint of its id, never the id or the secret. */
export function keyFingerprint(accessKeyId: string): string {
  return `smtp-key-${createHash('sha256').update(accessKeyId, 'utf8').digest('hex').slice(0, 20)}`;
}

export interface AccessKey {
  readonly accessKeyId: string;
  readonly created: Date;
}

/** The AWS calls the function makes; production binds them to the SDK clients (`sdkPorts`). */
export interface Ports {
  createAccessKey(userName: string): Promise<{ accessKeyId: string; secretAccessKey: string }>;
  listAccessKeys(userName: string): Promise<AccessKey[]>;
  deleteAccessKey(userName: string, accessKeyId: string): Promise<void>;
  putSecretValue(secretArn: string, value: string): Promise<void>;
  /** The access key id the secret holds now, or undefined when it holds none (or cannot be read). */
  currentUsername(secretArn: string): Promise<string | undefined>;
  /** The zones (names, as this account sees them) where an endpoint service is offered. */
  endpointServiceZones(serviceName: string): Promise<string[]>;
}

export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsError';
  }
}

interface Response {
  readonly PhysicalResourceId: string;
  readonly Data?: Record<string, string>;
}

const USER_NAME = /^[\w+=,.@-]{1,64}$/;
const REGION = /^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d$/;

interface CredentialProperties {
  readonly userName: string;
  readonly secretArn: string;
  readonly region: string;
  readonly generation: string;
}

function credentialProperties(properties: Record<string, unknown>, which: string): CredentialProperties {
  const { UserName, SecretArn, Region, Generation } = properties;
  if (typeof UserName !== 'string' || !USER_NAME.test(UserName)) {
    throw new CredentialsError(`${which} UserName: expected an IAM user name, got ${JSON.stringify(UserName)}`);
  }
  if (typeof SecretArn !== 'string' || !SecretArn.startsWith('arn:') || SecretArn.split(':')[2] !== 'secretsmanager') {
    throw new CredentialsError(`${which} SecretArn: expected a Secrets Manager ARN, got ${JSON.stringify(SecretArn)}`);
  }
  if (typeof Region !== 'string' || !REGION.test(Region)) {
    throw new CredentialsError(
      `${which} Region: expected an AWS region such as eu-west-1, got ${JSON.stringify(Region)}`,
    );
  }
  if (typeof Generation !== 'string' && typeof Generation !== 'number') {
    throw new CredentialsError(`${which} Generation: expected a number, got ${JSON.stringify(Generation)}`);
  }
  return { userName: UserName, secretArn: SecretArn, region: Region, generation: String(Generation) };
}

/** IAM allows two access keys per user: the one in use and the one that replaces it. */
const KEYS_PER_USER = 2;

/**
 * A new key for the user, its SMTP password into the secret. Keys other than `keep` are deleted first
 * (a rotation's leftover), so that the new one fits IAM's limit. If the secret cannot be written, the
 * new key is deleted again and nothing is left behind.
 */
async function issue(props: CredentialProperties, ports: Ports, keep: string | undefined): Promise<Response> {
  const existing = await ports.listAccessKeys(props.userName);
  const stale = existing.filter((key) => keyFingerprint(key.accessKeyId) !== keep);
  if (existing.length - stale.length + 1 > KEYS_PER_USER) {
    throw new CredentialsError(`user ${props.userName} has no room for a new access key`);
  }
  for (const key of stale) await ports.deleteAccessKey(props.userName, key.accessKeyId);
  const created = await ports.createAccessKey(props.userName);
  try {
    const value = JSON.stringify({
      username: created.accessKeyId,
      password: smtpPassword(created.secretAccessKey, props.region),
    });
    await ports.putSecretValue(props.secretArn, value);
  } catch (error) {
    await ports.deleteAccessKey(props.userName, created.accessKeyId);
    // The SDK's message names the secret and the refused action, never its value.
    throw new CredentialsError(
      `writing the SMTP credentials to ${props.secretArn} failed (${(error as Error).name}: ${(error as Error).message}); the new access key was deleted`,
    );
  }
  return { PhysicalResourceId: keyFingerprint(created.accessKeyId) };
}

/**
 * Create: a key and its secret. Update: a new key when the generation, the user or the secret
 * changed, else nothing; the key in use stays valid, because running tasks read the secret only when
 * they start. Delete: a key that a rotation replaced (the secret holds another key of the user) stays
 * until the consumers have restarted (README: Email); otherwise (the stack or the user goes) every
 * key of the user goes, which IAM requires before it deletes the user.
 */
export async function credentials(event: CloudFormationCustomResourceEvent, ports: Ports): Promise<Response> {
  if (event.RequestType === 'Delete') {
    let props: CredentialProperties;
    try {
      props = credentialProperties(event.ResourceProperties, 'property');
    } catch {
      // Nothing was created from properties that never validated; a failed delete would strand the stack.
      return { PhysicalResourceId: event.PhysicalResourceId };
    }
    const keys = await ports.listAccessKeys(props.userName);
    const current = await ports.currentUsername(props.secretArn);
    const named = keys.find((key) => keyFingerprint(key.accessKeyId) === event.PhysicalResourceId);
    const replaced =
      named !== undefined && named.accessKeyId !== current && keys.some((key) => key.accessKeyId === current);
    if (!replaced) {
      for (const key of keys) await ports.deleteAccessKey(props.userName, key.accessKeyId);
    }
    return { PhysicalResourceId: event.PhysicalResourceId };
  }
  const props = credentialProperties(event.ResourceProperties, 'property');
  if (event.RequestType === 'Create') return issue(props, ports, undefined);
  const old = credentialProperties(event.OldResourceProperties, 'old property');
  const unchanged =
    old.userName === props.userName && old.secretArn === props.secretArn && old.generation === props.generation;
  if (unchanged) return { PhysicalResourceId: event.PhysicalResourceId };
  return issue(props, ports, old.userName === props.userName ? event.PhysicalResourceId : undefined);
}

const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;

/** The subnets whose zone offers the endpoint service, comma-joined for `Fn::Split`. */
export async function endpointSubnets(event: CloudFormationCustomResourceEvent, ports: Ports): Promise<Response> {
  const physicalResourceId = 'dify-smtp-endpoint-subnets';
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalResourceId };
  const { ServiceName, Subnets } = event.ResourceProperties;
  if (typeof ServiceName !== 'string' || !/^com\.amazonaws\.[a-z0-9-]+\.[a-z0-9.-]+$/.test(ServiceName)) {
    throw new CredentialsError(
      `property ServiceName: expected an endpoint service name such as com.amazonaws.eu-west-1.email-smtp, got ${JSON.stringify(ServiceName)}`,
    );
  }
  const subnets = Array.isArray(Subnets) ? (Subnets as unknown[]) : [];
  const valid = (s: unknown): s is { Id: string; Zone: string } =>
    typeof s === 'object' &&
    s !== null &&
    typeof (s as { Id?: unknown }).Id === 'string' &&
    SUBNET_ID.test((s as { Id: string }).Id) &&
    typeof (s as { Zone?: unknown }).Zone === 'string';
  if (subnets.length === 0 || !subnets.every(valid)) {
    throw new CredentialsError(
      `property Subnets: expected a non-empty list of {Id: subnet-…, Zone}, got ${JSON.stringify(Subnets)}`,
    );
  }
  const zones = await ports.endpointServiceZones(ServiceName);
  const chosen = subnets.filter((subnet) => zones.includes(subnet.Zone));
  if (chosen.length === 0) {
    throw new CredentialsError(
      `${ServiceName} is offered in ${zones.join(', ') || 'no zone'} of this account, none of the VPC's zones (${subnets.map((s) => s.Zone).join(', ')}); choose a region or zones where it is`,
    );
  }
  return { PhysicalResourceId: physicalResourceId, Data: { SubnetIds: chosen.map((s) => s.Id).join(',') } };
}

/** The ports on the SDK's clients; `describeServiceZones` answers DescribeVpcEndpointServices. */
export function sdkPorts(
  iam: IAMClient,
  secrets: SecretsManagerClient,
  describeServiceZones?: (name: string) => Promise<string[]>,
): Ports {
  return {
    createAccessKey: async (UserName) => {
      const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName }));
      if (AccessKey?.AccessKeyId === undefined || AccessKey.SecretAccessKey === undefined) {
        throw new CredentialsError(`CreateAccessKey for ${UserName} returned no key`);
      }
      return { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey };
    },
    listAccessKeys: async (UserName) => {
      const { AccessKeyMetadata } = await iam.send(new ListAccessKeysCommand({ UserName }));
      return (AccessKeyMetadata ?? []).flatMap((key) =>
        key.AccessKeyId === undefined ? [] : [{ accessKeyId: key.AccessKeyId, created: key.CreateDate ?? new Date(0) }],
      );
    },
    deleteAccessKey: async (UserName, AccessKeyId) => {
      await iam.send(new DeleteAccessKeyCommand({ UserName, AccessKeyId }));
    },
    putSecretValue: async (SecretId, SecretString) => {
      await secrets.send(new PutSecretValueCommand({ SecretId, SecretString }));
    },
    currentUsername: async (SecretId) => {
      let text: string | undefined;
      try {
        ({ SecretString: text } = await secrets.send(
          new GetSecretValueCommand({ SecretId, VersionStage: 'AWSCURRENT' }),
        ));
      } catch (error) {
        if ((error as Error).name === 'ResourceNotFoundException') return undefined;
        throw error;
      }
      try {
        const username: unknown = JSON.parse(text ?? '').username;
        return typeof username === 'string' ? username : undefined;
      } catch {
        return undefined; // the placeholder CloudFormation generated before the first key
      }
    },
    endpointServiceZones: async (name) => {
      if (describeServiceZones === undefined) throw new CredentialsError('no EC2 client to describe endpoint services');
      return describeServiceZones(name);
    },
  };
}

export async function handler(event: CloudFormationCustomResourceEvent): Promise<Response> {
  // The Node.js runtime ships the AWS SDK v3 with every client; the bundle marks @aws-sdk/* external.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ec2 = require('@aws-sdk/client-ec2');
  const ec2Client = new ec2.EC2Client({});
  const ports = sdkPorts(new IAMClient({}), new SecretsManagerClient({}), async (name) => {
    const answer = await ec2Client.send(new ec2.DescribeVpcEndpointServicesCommand({ ServiceNames: [name] }));
    const details = (answer.ServiceDetails ?? []) as Array<{ ServiceName?: string; AvailabilityZones?: string[] }>;
    return details.find((detail) => detail.ServiceName === name)?.AvailabilityZones ?? [];
  });
  if (event.ResourceType === 'Custom::DifySmtpEndpointSubnets') return endpointSubnets(event, ports);
  if (event.ResourceType === 'Custom::DifySesSmtpCredentials') return credentials(event, ports);
  throw new CredentialsError(`unknown resource type ${event.ResourceType}`);
}
