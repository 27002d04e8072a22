import { createHmac, timingSafeEqual } from 'node:crypto';
import { CLIENT_KEY_PATTERN } from './gateway-documents';

/** Hex HMAC-SHA256 of a whole client key under the pepper: the only form in which a key is stored. */
export function hashClientKey(pepper: string, key: string): string {
  return createHmac('sha256', pepper).update(key, 'utf8').digest('hex');
}

/** A new key for a client: `dgw_<id>_<43 base64url characters>` from 32 random bytes. */
export function generateClientKey(clientId: string, randomBytes: (size: number) => Buffer): string {
  const key = `dgw_${clientId}_${randomBytes(32).toString('base64url')}`;
  if (!CLIENT_KEY_PATTERN.test(key)) throw new Error(`'${clientId}' is not a valid client id`);
  return key;
}

/** The client id a key claims, or undefined when the key is not in the client-key format. */
export function clientIdOf(key: string): string | undefined {
  return CLIENT_KEY_PATTERN.exec(key)?.[1];
}

/** Constant-time comparison of two hex digests of equal length. */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}
