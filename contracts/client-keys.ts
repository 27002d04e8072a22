import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ClientRecord, ClientsDocument, RehashDocument } from './gateway-documents';
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

/** One version of the pepper secret. */
export interface PepperVersion {
  readonly versionId: string;
  readonly value: string;
}

/** The pepper versions the gateway checks keys under: AWSCURRENT, and AWSPREVIOUS once it rotated. */
export interface Peppers {
  readonly current: PepperVersion;
  readonly previous?: PepperVersion;
}

/**
 * The hash a client's key is checked against, and the pepper version it was made under (undefined
 * for a record made before peppers rotated, which may be under the current or the previous one).
 */
export interface Credential {
  readonly hash: string;
  readonly pepperVersionId?: string;
}

/**
 * A client's credential: the gateway's rehash of its key when there is one for the record's present
 * `keyHash` (and, with `held`, under a pepper version the caller holds), else the record's own.
 */
export function credentialOf(
  record: Pick<ClientRecord, 'id' | 'keyHash' | 'pepperVersionId'>,
  rehashes: RehashDocument,
  held: (versionId: string) => boolean = () => true,
): Credential {
  const rehash = Object.hasOwn(rehashes.clients, record.id) ? rehashes.clients[record.id] : undefined;
  if (rehash !== undefined && rehash.from === record.keyHash && held(rehash.pepperVersionId)) {
    return { hash: rehash.to, pepperVersionId: rehash.pepperVersionId };
  }
  return { hash: record.keyHash, pepperVersionId: record.pepperVersionId };
}

/**
 * The enabled clients whose key is not known to be hashed under the current pepper version: after
 * one more rotation the gateway would no longer hold their pepper, and they could not sign in. The
 * pepper rotation refuses while there are any (lambda/secret-rotation); `doctor` lists them.
 */
export function pepperRotationBlockers(
  clients: ClientsDocument,
  rehashes: RehashDocument,
  currentVersionId: string,
): string[] {
  return clients.clients
    .filter((record) => !record.disabled && credentialOf(record, rehashes).pepperVersionId !== currentVersionId)
    .map((record) => record.id);
}
