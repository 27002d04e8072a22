import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

/** AWS credentials, as Lambda gives them to the function in its environment. */
export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** SHA-256 (and HMAC-SHA-256 with a key) for the signer, from node:crypto. */
class Sha256 {
  private hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash =
      secret === undefined
        ? createHash('sha256')
        : createHmac('sha256', typeof secret === 'string' ? secret : Buffer.from(secret as ArrayBuffer));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === 'string' ? data : Buffer.from(data as Uint8Array));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    throw new Error('Sha256: not resettable');
  }
}

/** How long EKS accepts a token: it honours 60 seconds at most, whatever the URL says. */
export const TOKEN_LIFETIME_S = 60;

/**
 * A bearer token for the EKS API, as `aws eks get-token` makes one: a pre-signed STS
 * GetCallerIdentity URL, bound to the cluster by the signed `x-k8s-aws-id` header, base64url-encoded
 * after `k8s-aws-v1.`. EKS calls the URL to learn who holds it; the token carries no secret of ours
 * beyond its one-minute signature.
 */
export async function eksToken(
  clusterName: string,
  region: string,
  credentials: Credentials,
  now: Date,
): Promise<string> {
  const hostname = `sts.${region}.amazonaws.com`;
  const signer = new SignatureV4({ service: 'sts', region, credentials, sha256: Sha256 });
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: 'https:',
      hostname,
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
      headers: { host: hostname, 'x-k8s-aws-id': clusterName },
    },
    { expiresIn: TOKEN_LIFETIME_S, signingDate: now },
  );
  const query = new URLSearchParams(signed.query as Record<string, string>).toString();
  const url = `https://${hostname}/?${query}`;
  return `k8s-aws-v1.${Buffer.from(url).toString('base64url')}`;
}

/** The function's own credentials, from the variables Lambda sets. */
export function credentialsFromEnvironment(env: NodeJS.ProcessEnv): Credentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new Error('no AWS credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)');
  }
  return { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN };
}
