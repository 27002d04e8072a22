import { CreateUserCommand, IAMClient, ListAccessKeysCommand } from '@aws-sdk/client-iam';
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { MOTO_CREDENTIALS, type Moto, startMoto } from '../../../gateway/test/helpers/moto';
import {
  credentials,
  CredentialsError,
  endpointSubnets,
  keyFingerprint,
  type Ports,
  sdkPorts,
  smtpPassword,
} from '../src/index';

/**
 * The SMTP credentials function against IAM and Secrets Manager in moto_server on loopback: the key
 * it creates is the one whose SES SMTP password lands in the secret, nothing secret reaches
 * CloudFormation, a rotation keeps the replaced key until the consumers restart, and a delete leaves
 * the user deletable.
 */

/**
 * Published vectors of the same conversion, from the Terraform AWS provider's tests
 * (internal/service/iam/access_key_test.go, TestSESSMTPPasswordFromSecretKeySigV4), whose
 * implementation is used to send through SES. Vectors computed by this code would prove nothing.
 */
const VECTORS = [
  { region: 'eu-central-1', secret: 'some+secret+key', expected: 'BMXhUYlu5Z3gSXVQORxlVa7XPaz91aGWdfHxvkOZdWZ2' },
  { region: 'eu-central-1', secret: 'another+secret+key', expected: 'BBbphbrQmrKMx42d1N6+C7VINYEBGI5v9VsZeTxwskfh' },
  { region: 'us-west-1', secret: 'some+secret+key', expected: 'BH+jbMzper5WwlwUar9E1ySBqHa9whi0GPo+sJ0mVYJj' },
  { region: 'us-west-1', secret: 'another+secret+key', expected: 'BKVmjjMDFk/qqw8EROW99bjCS65PF8WKvK5bSr4Y6EqF' },
];

describe('the SES SMTP password', () => {
  it.each(VECTORS)('matches the published vector for $secret in $region', ({ region, secret, expected }) => {
    expect(smtpPassword(secret, region)).toBe(expected);
  });

  it('differs per region: SMTP credentials are valid in one region only', () => {
    expect(smtpPassword('some+secret+key', 'eu-west-1')).not.toBe(smtpPassword('some+secret+key', 'us-east-1'));
  });
});

const REGION = 'eu-west-1';
const USER = 'dify-smtp-sender';

describe('the SMTP credentials custom resource, against moto_server', () => {
  let moto: Moto;
  let iam: IAMClient;
  let secrets: SecretsManagerClient;
  let secretArn: string;
  /** Every secret access key IAM handed out, as the function saw it (the test alone keeps them). */
  const issued: Array<{ accessKeyId: string; secretAccessKey: string }> = [];
  let ports: Ports;

  beforeAll(async () => {
    moto = await startMoto();
    const client = { endpoint: moto.endpoint, region: REGION, credentials: MOTO_CREDENTIALS };
    iam = new IAMClient(client);
    secrets = new SecretsManagerClient(client);
  });
  afterAll(async () => {
    iam?.destroy();
    secrets?.destroy();
    await moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    issued.length = 0;
    await iam.send(new CreateUserCommand({ UserName: USER }));
    // As CloudFormation creates it: a generated placeholder until the function writes the credentials.
    ({ ARN: secretArn } = (await secrets.send(
      new CreateSecretCommand({ Name: 'dify-smtp', SecretString: 'placeholder-generated-by-cloudformation' }),
    )) as { ARN: string });
    const real = sdkPorts(iam, secrets);
    ports = {
      ...real,
      createAccessKey: async (user) => {
        const key = await real.createAccessKey(user);
        issued.push(key);
        return key;
      },
    };
  });

  const properties = (generation = 1, secret = secretArn) => ({
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
    UserName: USER,
    SecretArn: secret,
    Region: REGION,
    Generation: String(generation),
  });
  const create = (props = properties()) =>
    ({ RequestType: 'Create', ResourceType: 'Custom::DifySesSmtpCredentials', ResourceProperties: props }) as never;
  const update = (id: string, props: object, old: object) =>
    ({
      RequestType: 'Update',
      ResourceType: 'Custom::DifySesSmtpCredentials',
      PhysicalResourceId: id,
      ResourceProperties: props,
      OldResourceProperties: old,
    }) as unknown as CloudFormationCustomResourceEvent;
  const remove = (id: string, props: object = properties()) =>
    ({
      RequestType: 'Delete',
      ResourceType: 'Custom::DifySesSmtpCredentials',
      PhysicalResourceId: id,
      ResourceProperties: props,
    }) as unknown as CloudFormationCustomResourceEvent;
  const keysOfUser = async () =>
    ((await iam.send(new ListAccessKeysCommand({ UserName: USER }))).AccessKeyMetadata ?? []).map((k) => k.AccessKeyId);
  const secretValue = async () =>
    JSON.parse(
      (await secrets.send(new GetSecretValueCommand({ SecretId: secretArn, VersionStage: 'AWSCURRENT' })))
        .SecretString!,
    ) as { username: string; password: string };

  it('creates one access key and stores its id and its SES SMTP password for the region in the secret', async () => {
    const response = await credentials(create(), ports);
    expect(issued).toHaveLength(1);
    const [key] = issued;
    expect(await keysOfUser()).toEqual([key.accessKeyId]);
    expect(await secretValue()).toEqual({
      username: key.accessKeyId,
      password: smtpPassword(key.secretAccessKey, REGION),
    });
    expect(response).toEqual({ PhysicalResourceId: keyFingerprint(key.accessKeyId) });
  });

  it('tells CloudFormation neither the secret key, nor the password, nor the key id', async () => {
    // Why: a custom resource's response is shown in the console and events of anyone who can read the stack.
    const response = JSON.stringify(await credentials(create(), ports));
    const [key] = issued;
    for (const value of [key.secretAccessKey, smtpPassword(key.secretAccessKey, REGION), key.accessKeyId]) {
      expect(response.includes(value)).toBe(false);
    }
    expect(response).not.toContain('Data');
  });

  it('changes nothing on an update that keeps the user, the secret and the generation', async () => {
    const { PhysicalResourceId } = await credentials(create(), ports);
    const before = await secretValue();
    const again = await credentials(update(PhysicalResourceId, properties(), properties()), ports);
    expect(again).toEqual({ PhysicalResourceId });
    expect(issued).toHaveLength(1);
    expect(await secretValue()).toEqual(before);
  });

  it('rotates on a new generation: the new key becomes current, the replaced one stays until the restart', async () => {
    const first = await credentials(create(), ports);
    const second = await credentials(update(first.PhysicalResourceId, properties(2), properties(1)), ports);
    expect(second.PhysicalResourceId).not.toBe(first.PhysicalResourceId);
    const [old, rotated] = issued;
    expect((await secretValue()).username).toBe(rotated.accessKeyId);
    // CloudFormation's clean-up of the replaced physical id: running tasks still use that key.
    await credentials(remove(first.PhysicalResourceId, properties(1)), ports);
    expect((await keysOfUser()).sort()).toEqual([old.accessKeyId, rotated.accessKeyId].sort());
    // The next rotation deletes the leftover first, so the user stays within IAM's two keys.
    const third = await credentials(update(second.PhysicalResourceId, properties(3), properties(2)), ports);
    expect((await keysOfUser()).sort()).toEqual([rotated.accessKeyId, issued[2].accessKeyId].sort());
    expect(third.PhysicalResourceId).toBe(keyFingerprint(issued[2].accessKeyId));
  });

  it('deletes every key of the user when the resource goes, so that CloudFormation can delete the user', async () => {
    const first = await credentials(create(), ports);
    const second = await credentials(update(first.PhysicalResourceId, properties(2), properties(1)), ports);
    expect(await keysOfUser()).toHaveLength(2);
    await credentials(remove(second.PhysicalResourceId, properties(2)), ports);
    expect(await keysOfUser()).toEqual([]);
  });

  it('deletes the new key again when the secret cannot be written, and says so without a secret', async () => {
    const missing = `arn:aws:secretsmanager:${REGION}:123456789012:secret:absent-AbCdEf`;
    let failure: unknown;
    try {
      await credentials(create(properties(1, missing)), ports);
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(CredentialsError);
    const message = (failure as Error).message;
    expect(message).toContain(`writing the SMTP credentials to ${missing} failed`);
    expect(message).toContain('the new access key was deleted');
    const [key] = issued;
    expect(message.includes(key.secretAccessKey)).toBe(false);
    expect(message.includes(key.accessKeyId)).toBe(false);
    expect(await keysOfUser()).toEqual([]);
  });

  it('refuses bad properties naming the property, the value and what is expected', async () => {
    await expect(credentials(create({ ...properties(), UserName: 'no spaces allowed' }), ports)).rejects.toThrow(
      'property UserName: expected an IAM user name, got "no spaces allowed"',
    );
    await expect(credentials(create({ ...properties(), Region: 'eu-west-9x' }), ports)).rejects.toThrow(
      'property Region: expected an AWS region such as eu-west-1, got "eu-west-9x"',
    );
    await expect(credentials(create({ ...properties(), SecretArn: 'dify-smtp' }), ports)).rejects.toThrow(
      'property SecretArn: expected a Secrets Manager ARN, got "dify-smtp"',
    );
    expect(issued).toEqual([]);
  });

  it('lets a delete of a resource that never validated succeed, touching nothing', async () => {
    await credentials(create(), ports);
    await expect(credentials(remove('request-id', { UserName: 'bad name' }), ports)).resolves.toEqual({
      PhysicalResourceId: 'request-id',
    });
    expect(await keysOfUser()).toHaveLength(1);
  });
});

describe('the SMTP endpoint subnets custom resource', () => {
  const event = (subnets: unknown, type: 'Create' | 'Delete' = 'Create') =>
    ({
      RequestType: type,
      ResourceType: 'Custom::DifySmtpEndpointSubnets',
      PhysicalResourceId: 'dify-smtp-endpoint-subnets',
      ResourceProperties: { ServiceName: 'com.amazonaws.us-east-1.email-smtp', Subnets: subnets },
    }) as unknown as CloudFormationCustomResourceEvent;
  const offeredIn = (zones: string[]) => {
    const asked: string[] = [];
    const ports = {
      endpointServiceZones: async (name: string) => {
        asked.push(name);
        return zones;
      },
    } as unknown as Ports;
    return { ports, asked };
  };
  const SUBNETS = [
    { Id: 'subnet-0aaaaaaaaaaaaaaaa', Zone: 'us-east-1a' },
    { Id: 'subnet-0bbbbbbbbbbbbbbbb', Zone: 'us-east-1b' },
    { Id: 'subnet-0cccccccccccccccc', Zone: 'us-east-1c' },
  ];

  it('keeps the subnets in zones where SES SMTP is offered', async () => {
    const { ports, asked } = offeredIn(['us-east-1a', 'us-east-1c', 'us-east-1d']);
    await expect(endpointSubnets(event(SUBNETS), ports)).resolves.toEqual({
      PhysicalResourceId: 'dify-smtp-endpoint-subnets',
      Data: { SubnetIds: 'subnet-0aaaaaaaaaaaaaaaa,subnet-0cccccccccccccccc' },
    });
    expect(asked).toEqual(['com.amazonaws.us-east-1.email-smtp']);
  });

  it('fails the deploy naming the zones when none of the VPC’s offers it', async () => {
    const { ports } = offeredIn(['us-east-1d']);
    await expect(endpointSubnets(event(SUBNETS), ports)).rejects.toThrow(
      "com.amazonaws.us-east-1.email-smtp is offered in us-east-1d of this account, none of the VPC's zones (us-east-1a, us-east-1b, us-east-1c)",
    );
  });

  it('refuses a malformed subnet list, and does nothing on delete', async () => {
    const { ports, asked } = offeredIn(['us-east-1a']);
    await expect(endpointSubnets(event([{ Id: 'vpc-1', Zone: 'a' }]), ports)).rejects.toThrow(
      'property Subnets: expected a non-empty list of {Id: subnet-…, Zone}',
    );
    await expect(endpointSubnets(event(SUBNETS, 'Delete'), ports)).resolves.toEqual({
      PhysicalResourceId: 'dify-smtp-endpoint-subnets',
    });
    expect(asked).toEqual([]);
  });
});
