/**
 * What went wrong, said so that the user can act on it: every error the CLI prints goes through here.
 * An AWS SDK error is translated by its class (its name, its Node.js error code, its HTTP status), never
 * by echoing its message: an SDK message can quote request parameters, and a request can carry a
 * secret value. The only parts of a message ever printed are an IAM action and a resource ARN, each
 * matched by its exact shape.
 */

/** The class of an error, for `--json` output and for tests; the exit code follows from it. */
export type ErrorKind =
  | 'usage'
  | 'cancelled'
  | 'region'
  | 'credentials'
  | 'network'
  | 'access-denied'
  | 'throttled'
  | 'not-found'
  | 'aws'
  | 'failed'
  | 'unexpected';

/** An error the user can act on: what went wrong and what to do. Never carries a secret value. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly kind: ErrorKind = 'failed',
  ) {
    super(message);
  }
}

/** The user answered no to a confirmation: exit code 3, nothing was changed after the question. */
export const cancelled = () => new CliError('cancelled', 3, 'cancelled');

/** A mistake on the command line, found before any AWS call: exit code 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2, 'usage');
  }
}

/** What the CLI's middleware (context.ts) records on an SDK error: the call it was and where it went. */
export interface AwsCall {
  /** The IAM action of the call, such as `cloudformation:DescribeStacks`. */
  readonly operation?: string;
  /** Scheme, host and port of the endpoint the request went to; never a path, query or user info. */
  readonly endpoint?: string;
}

/** The property the middleware sets on an error, read back by {@link describeAwsError}. */
export const AWS_CALL = Symbol.for('dify-aws.call');

/** Records on `error` which call failed and where it went, once (the innermost call wins). */
export function recordAwsCall(error: unknown, call: AwsCall): void {
  if (typeof error === 'object' && error !== null && !(AWS_CALL in error)) {
    Object.defineProperty(error, AWS_CALL, { value: call, enumerable: false });
  }
}

interface SdkError {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  hostname?: unknown;
  address?: unknown;
  port?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: number };
  [AWS_CALL]?: AwsCall;
}

const NETWORK_CODES: Record<string, string> = {
  ENOTFOUND: 'could not resolve the name of',
  EAI_AGAIN: 'could not resolve the name of',
  ECONNREFUSED: 'the connection was refused by',
  ECONNRESET: 'the connection was reset by',
  EPIPE: 'the connection was closed by',
  ETIMEDOUT: 'no answer in time from',
  ECONNABORTED: 'the connection was aborted to',
  EHOSTUNREACH: 'no route to',
  ENETUNREACH: 'no network route to',
  ERR_SOCKET_CONNECTION_TIMEOUT: 'no answer in time from',
  UND_ERR_CONNECT_TIMEOUT: 'no answer in time from',
};
const ACCESS_DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'AuthorizationError',
  'AuthorizationErrorException',
  'NotAuthorized',
]);
const EXPIRED = new Set(['ExpiredToken', 'ExpiredTokenException', 'RequestExpired', 'TokenRefreshRequired']);
const REJECTED_CREDENTIALS = new Set([
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'AuthFailure',
  'InvalidAccessKeyId',
]);
const THROTTLED = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'PriorRequestNotComplete',
]);

/** The credential chain the SDK tries, in its order, for every "no credentials" message. */
export const CREDENTIAL_CHAIN =
  'the AWS SDK looks, in order, at AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), ' +
  'the AWS_PROFILE profile in ~/.aws/config and ~/.aws/credentials (for SSO, run aws sso login --profile NAME first), ' +
  'a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), then the ECS task role or the EC2 instance role';

/** How to set a region, for every "no region" message. */
export const REGION_HELP =
  'pass --region REGION (such as us-east-1), set AWS_REGION, or set region in the AWS_PROFILE profile of ~/.aws/config';

const IAM_ACTION = /^[a-z0-9-]+:[A-Za-z0-9*]+$/;
const ARN = /^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(?:\d{12})?:[A-Za-z0-9_/:.+=@,*-]+$/;

/** The IAM action and resource an AccessDenied message names, each kept only if it has exactly that shape. */
export function deniedAction(message: string): { action?: string; resource?: string } {
  const action = /not authorized to perform:?\s+(\S+)/i.exec(message)?.[1]?.replace(/[.,;]+$/, '');
  const resource = /on resource:?\s+(\S+)/i.exec(message)?.[1]?.replace(/[.,;]+$/, '');
  return {
    action: action !== undefined && IAM_ACTION.test(action) ? action : undefined,
    resource: resource !== undefined && ARN.test(resource) ? resource : undefined,
  };
}

const deniedBy = (message: string) =>
  /explicit deny in an? (service control policy|resource control policy|permissions boundary|session policy|identity-based policy|resource-based policy)/i.exec(
    message,
  )?.[1];

/**
 * An SDK error as one sentence, with what to do, and the error's kind; `undefined` for an error that is
 * not one of the known classes (the caller then prints its name only).
 */
export function describeAwsError(error: unknown): { kind: ErrorKind; text: string } | undefined {
  const e = (typeof error === 'object' && error !== null ? error : {}) as SdkError;
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : '';
  const call = e[AWS_CALL] ?? {};
  const operation = call.operation;
  const status = e.$metadata?.httpStatusCode;

  if (name === 'Error' && /^Region is missing$/.test(message)) {
    return { kind: 'region', text: `no AWS region is set; ${REGION_HELP}` };
  }
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    const sso = /\bSSO\b/.test(message) ? 'the SSO session is missing or expired (aws sso login --profile NAME); ' : '';
    return { kind: 'credentials', text: `no AWS credentials found: ${sso}${CREDENTIAL_CHAIN}; set one of them` };
  }
  if (name === 'TokenProviderError') {
    return {
      kind: 'credentials',
      text: 'the SSO session of the AWS profile is missing or expired; run aws sso login --profile NAME and try again',
    };
  }
  if (EXPIRED.has(name)) {
    return {
      kind: 'credentials',
      text: `the AWS credentials in use have expired (${name}); renew them (aws sso login --profile NAME, or new temporary credentials) and try again`,
    };
  }
  if (REJECTED_CREDENTIALS.has(name)) {
    return {
      kind: 'credentials',
      text: `AWS rejected the credentials in use (${name}): the access key is unknown, its secret does not match, or this machine's clock is off; check which credentials apply (${CREDENTIAL_CHAIN})`,
    };
  }
  if (ACCESS_DENIED.has(name) || (status === 403 && !THROTTLED.has(name))) {
    const parsed = deniedAction(message);
    const action = parsed.action ?? operation;
    const by = deniedBy(message);
    const call = action === undefined ? 'make this call' : `call ${action}`;
    return {
      kind: 'access-denied',
      text: `access denied (${name}): the role or user in use may not ${call}${parsed.resource ? ` on ${parsed.resource}` : ''}${
        by ? ` (an explicit deny in a ${by})` : ''
      }; grant ${action ?? 'the missing permission'} to that role or user, or use credentials that have it (AWS_PROFILE)`,
    };
  }
  // The code, or in a message the SDK wrapped (it stringifies an error from another realm, as under jest).
  const network =
    code ??
    (name === 'TimeoutError' ? 'ETIMEDOUT' : undefined) ??
    Object.keys(NETWORK_CODES).find((candidate) => new RegExp(`\\b${candidate}\\b`).test(message));
  if (network !== undefined && NETWORK_CODES[network] !== undefined) {
    const host =
      call.endpoint ??
      (typeof e.hostname === 'string'
        ? e.hostname
        : typeof e.address === 'string'
          ? `${e.address}${typeof e.port === 'number' ? `:${e.port}` : ''}`
          : undefined);
    return {
      kind: 'network',
      text: `network error (${network}): ${NETWORK_CODES[network]} ${host ?? 'the AWS endpoint'}${
        operation ? ` calling ${operation}` : ''
      }; check the network, any proxy (HTTPS_PROXY), the region (--region) and any endpoint override (AWS_ENDPOINT_URL*)`,
    };
  }
  if (THROTTLED.has(name)) {
    return {
      kind: 'throttled',
      text: `AWS throttled ${operation ?? 'the call'} (${name}) after the SDK's retries; wait a minute and try again`,
    };
  }
  if (/NotFound|NoSuch/.test(name) || status === 404) {
    return {
      kind: 'not-found',
      text: `${operation ?? 'AWS'} found no such resource (${name}); check --stack and --region name the deployment, and that it is deployed`,
    };
  }
  if (e.$fault === 'server' || (status !== undefined && status >= 500)) {
    return {
      kind: 'aws',
      text: `AWS answered ${operation ?? 'the call'} with a server error (${name}); try again in a minute`,
    };
  }
  return undefined;
}

/**
 * An error as one sentence: ours by its message, a known SDK error translated, and any other SDK error
 * by the call that failed (when recorded) and its name only.
 */
export function explainError(error: unknown): string {
  if (error instanceof CliError) return error.message;
  const known = describeAwsError(error);
  if (known !== undefined) return known.text;
  const name = (error as { name?: unknown })?.name;
  const operation = (error as SdkError | undefined)?.[AWS_CALL]?.operation;
  return `${operation ? `${operation} failed with ` : ''}${typeof name === 'string' ? name : 'Error'}`;
}

/** Turns an AWS SDK error into a CliError naming what failed and what to do, without echoing request parameters. */
export function awsError(action: string, error: unknown): CliError {
  if (error instanceof CliError) return error;
  return new CliError(`${action}: ${explainError(error)}`, 1, describeAwsError(error)?.kind ?? 'aws');
}

/**
 * Any error as a CliError: ours as it is, an SDK error translated (or, unknown, named by its call and
 * kind), anything else by its kind alone.
 */
export function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  const known = describeAwsError(error);
  if (known !== undefined) return new CliError(known.text, 1, known.kind);
  if ((error as SdkError | undefined)?.[AWS_CALL] !== undefined) return new CliError(explainError(error), 1, 'aws');
  const name = (error as { name?: unknown })?.name;
  // Unexpected: name the kind only; the message of an SDK error can quote request parameters.
  return new CliError(
    `unexpected ${typeof name === 'string' ? name : 'error'}; nothing more is printed so that no secret is`,
    1,
    'unexpected',
  );
}
