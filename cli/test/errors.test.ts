import {
  awsError,
  AWS_CALL,
  CliError,
  CREDENTIAL_CHAIN,
  deniedAction,
  describeAwsError,
  recordAwsCall,
  REGION_HELP,
  toCliError,
  UsageError,
} from '../src/errors';
import { formatElapsed, iamAction } from '../src/context';

/** An SDK error as the SDK throws it: a name, and whatever else its class carries. */
const sdkError = (name: string, message: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { name, ...extra });

/** The same error, as the CLI's middleware (context.ts) leaves it: with the call and endpoint recorded. */
const recorded = (error: Error, operation: string, endpoint?: string) => {
  recordAwsCall(error, { operation, endpoint });
  return error;
};

/** A value that must never be printed, planted where SDK messages quote request parameters. */
const SECRET = 'sk-planted-provider-key-0123456789abcdefghij';

/**
 * errors.ts translates each known class of SDK error into what failed and what to do, by the error's
 * class (name, code, HTTP status) and never by echoing its message, which can quote a secret.
 */
describe('the error translation', () => {
  it('says how to set a region when none is set', () => {
    const described = describeAwsError(new Error('Region is missing'));
    expect(described).toEqual({ kind: 'region', text: `no AWS region is set; ${REGION_HELP}` });
    expect(REGION_HELP).toContain('--region REGION');
    expect(REGION_HELP).toContain('AWS_REGION');
    expect(REGION_HELP).toContain('AWS_PROFILE');
  });

  it('names the credential chain when there are no credentials', () => {
    const described = describeAwsError(
      sdkError('CredentialsProviderError', 'Could not load credentials from any providers'),
    );
    expect(described?.kind).toBe('credentials');
    expect(described?.text).toBe(`no AWS credentials found: ${CREDENTIAL_CHAIN}; set one of them`);
    for (const link of [
      'AWS_ACCESS_KEY_ID',
      'AWS_PROFILE',
      'aws sso login',
      'AWS_WEB_IDENTITY_TOKEN_FILE',
      'task role',
      'instance role',
    ]) {
      expect(CREDENTIAL_CHAIN).toContain(link);
    }
  });

  it('says to sign in again when the SSO session or the credentials have expired', () => {
    expect(describeAwsError(sdkError('TokenProviderError', 'The SSO session has expired'))).toEqual({
      kind: 'credentials',
      text: expect.stringContaining('aws sso login --profile NAME'),
    });
    expect(
      describeAwsError(sdkError('ExpiredTokenException', 'The security token included in the request is expired')),
    ).toEqual({
      kind: 'credentials',
      text: expect.stringContaining('the AWS credentials in use have expired (ExpiredTokenException); renew them'),
    });
  });

  it('says which credentials to check when AWS rejects them', () => {
    expect(
      describeAwsError(sdkError('InvalidClientTokenId', 'The security token included in the request is invalid')),
    ).toEqual({
      kind: 'credentials',
      text: expect.stringContaining('AWS rejected the credentials in use (InvalidClientTokenId)'),
    });
  });

  it('names the denied action and resource from an AccessDenied message, and nothing else of it', () => {
    const error = sdkError(
      'AccessDenied',
      'User: arn:aws:sts::123456789012:assumed-role/operators/alice is not authorized to perform: cloudformation:DescribeStacks on resource: arn:aws:cloudformation:us-east-1:123456789012:stack/Dify/* because no identity-based policy allows the cloudformation:DescribeStacks action',
      { $metadata: { httpStatusCode: 403 } },
    );
    const { kind, text } = describeAwsError(error)!;
    expect(kind).toBe('access-denied');
    expect(text).toBe(
      'access denied (AccessDenied): the role or user in use may not call cloudformation:DescribeStacks on arn:aws:cloudformation:us-east-1:123456789012:stack/Dify/*; grant cloudformation:DescribeStacks to that role or user, or use credentials that have it (AWS_PROFILE)',
    );
    expect(text).not.toContain('alice');
  });

  it('names the action of the call the middleware recorded when the message does not say', () => {
    const error = recorded(
      sdkError('AccessDeniedException', 'Access to KMS is not allowed'),
      'secretsmanager:GetSecretValue',
    );
    expect(describeAwsError(error)?.text).toContain('may not call secretsmanager:GetSecretValue;');
    expect(describeAwsError(sdkError('AccessDeniedException', 'denied'))?.text).toContain('may not make this call;');
  });

  it('says when an explicit deny blocks the call, such as a service control policy', () => {
    const error = sdkError(
      'AccessDeniedException',
      'User: arn:aws:iam::123456789012:user/bob is not authorized to perform: secretsmanager:PutSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:Dify/pool-AbCdEf with an explicit deny in a service control policy',
    );
    expect(describeAwsError(error)?.text).toContain(
      'may not call secretsmanager:PutSecretValue on arn:aws:secretsmanager:us-east-1:123456789012:secret:Dify/pool-AbCdEf (an explicit deny in a service control policy)',
    );
  });

  it('prints a denied action or resource only in its exact shape, never a value quoted in its place', () => {
    expect(deniedAction(`is not authorized to perform: kms:Decrypt on resource: ${SECRET}`)).toEqual({
      action: 'kms:Decrypt',
      resource: undefined,
    });
    expect(
      deniedAction(`is not authorized to perform: ${SECRET} on resource: arn:aws:kms:us-east-1:123456789012:key/abc`),
    ).toEqual({
      action: undefined,
      resource: 'arn:aws:kms:us-east-1:123456789012:key/abc',
    });
  });

  it.each([
    [
      'a name that does not resolve',
      sdkError('Error', 'getaddrinfo ENOTFOUND cloudformation.eu-west-9.amazonaws.com', {
        code: 'ENOTFOUND',
        hostname: 'cloudformation.eu-west-9.amazonaws.com',
      }),
      'network error (ENOTFOUND): could not resolve the name of cloudformation.eu-west-9.amazonaws.com',
    ],
    [
      'a refused connection',
      sdkError('Error', 'connect ECONNREFUSED 127.0.0.1:4566', {
        code: 'ECONNREFUSED',
        address: '127.0.0.1',
        port: 4566,
      }),
      'network error (ECONNREFUSED): the connection was refused by 127.0.0.1:4566',
    ],
    [
      'an error the SDK wrapped as text (from another realm), at the endpoint the middleware recorded',
      recorded(
        sdkError('Error', 'AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:4566'),
        'cloudformation:DescribeStacks',
        'http://127.0.0.1:4566',
      ),
      'network error (ECONNREFUSED): the connection was refused by http://127.0.0.1:4566 calling cloudformation:DescribeStacks',
    ],
    [
      'a timeout, at the endpoint the middleware recorded',
      recorded(
        sdkError('TimeoutError', 'Socket timed out without establishing a connection within 10000 ms'),
        'secretsmanager:GetSecretValue',
        'https://secretsmanager.us-east-1.amazonaws.com',
      ),
      'network error (ETIMEDOUT): no answer in time from https://secretsmanager.us-east-1.amazonaws.com calling secretsmanager:GetSecretValue',
    ],
  ])('names the endpoint of %s', (_, error, expected) => {
    const described = describeAwsError(error);
    expect(described?.kind).toBe('network');
    expect(described?.text).toContain(expected);
    expect(described?.text).toContain('HTTPS_PROXY');
  });

  it('says to wait after throttling, and to retry after a server error', () => {
    const throttled = recorded(sdkError('ThrottlingException', 'Rate exceeded'), 'ecs:DescribeServices');
    expect(describeAwsError(throttled)).toEqual({
      kind: 'throttled',
      text: "AWS throttled ecs:DescribeServices (ThrottlingException) after the SDK's retries; wait a minute and try again",
    });
    const server = sdkError('InternalFailure', 'x', { $fault: 'server', $metadata: { httpStatusCode: 500 } });
    expect(describeAwsError(server)).toEqual({
      kind: 'aws',
      text: 'AWS answered the call with a server error (InternalFailure); try again in a minute',
    });
  });

  it('says what to check when a resource is not found', () => {
    const error = recorded(
      sdkError('ResourceNotFoundException', `Secret ${SECRET} not found`),
      'secretsmanager:GetSecretValue',
    );
    expect(describeAwsError(error)).toEqual({
      kind: 'not-found',
      text: 'secretsmanager:GetSecretValue found no such resource (ResourceNotFoundException); check --stack and --region name the deployment, and that it is deployed',
    });
  });

  it('prints only the kind of an error it does not know, never its message', () => {
    const error = recorded(
      sdkError('ValidationException', `1 validation error: SecretString '${SECRET}' is too long`),
      'secretsmanager:PutSecretValue',
    );
    const translated = awsError('writing the provider key pool', error);
    expect(translated.message).toBe(
      'writing the provider key pool: secretsmanager:PutSecretValue failed with ValidationException',
    );
    expect([translated.exitCode, translated.kind]).toEqual([1, 'aws']);
    // Thrown by a command without its own words: named by the call and its kind.
    expect(toCliError(error)).toMatchObject({
      message: 'secretsmanager:PutSecretValue failed with ValidationException',
      kind: 'aws',
    });
    const unexpected = toCliError(new TypeError(`cannot read ${SECRET}`));
    expect(unexpected.message).toBe('unexpected TypeError; nothing more is printed so that no secret is');
    expect(unexpected.kind).toBe('unexpected');
  });

  it('keeps a CliError as it is, and gives a usage error exit code 2', () => {
    const mine = new CliError('deployment Dify has no output X');
    expect(awsError('reading', mine)).toBe(mine);
    expect(toCliError(mine)).toBe(mine);
    expect([new UsageError('x').exitCode, new UsageError('x').kind]).toEqual([2, 'usage']);
  });

  it('records the innermost call only, without making it part of what is printed or serialized', () => {
    const error = new Error('x');
    recordAwsCall(error, { operation: 'kms:Decrypt' });
    recordAwsCall(error, { operation: 'secretsmanager:GetSecretValue' });
    expect((error as unknown as Record<symbol, unknown>)[AWS_CALL]).toEqual({ operation: 'kms:Decrypt' });
    expect(Object.keys(error)).toEqual([]);
  });

  it("names a call's IAM action from its client and command", () => {
    expect(iamAction('CloudFormationClient', 'DescribeStacksCommand')).toBe('cloudformation:DescribeStacks');
    expect(iamAction('LambdaClient', 'InvokeCommand')).toBe('lambda:InvokeFunction');
    expect(iamAction('ApplicationAutoScalingClient', 'RegisterScalableTargetCommand')).toBe(
      'application-autoscaling:RegisterScalableTarget',
    );
    expect(iamAction('SomeOtherClient', 'XCommand')).toBeUndefined();
  });

  it('says elapsed time as a person reads it', () => {
    expect([0, 42_400, 125_000, 3_725_000].map(formatElapsed)).toEqual(['0 s', '42 s', '2 min 05 s', '1 h 02 min']);
  });
});
