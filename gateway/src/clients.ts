import * as ipaddr from 'ipaddr.js';
import {
  clientIdOf,
  type Credential,
  credentialOf,
  hashClientKey,
  type Peppers,
  sameHash,
} from '../../contracts/client-keys';
import {
  type ClientRecord,
  type ClientsDocument,
  EMPTY_REHASH_DOCUMENT,
  type GuardrailAction,
  type Rehash,
  type RehashDocument,
} from '../../contracts/gateway-documents';

/** A client as the gateway uses it: its record, with its networks parsed once. */
export interface Client {
  readonly record: ClientRecord;
  readonly networks: ReadonlyArray<[ipaddr.IPv4 | ipaddr.IPv6, number]>;
}

/** Parses a record's networks once; throws on a CIDR that does not parse (the document is rejected). */
export function clientOf(record: ClientRecord): Client {
  return { record, networks: record.allowedCidrs.map((cidr) => ipaddr.parseCIDR(cidr)) };
}

/** A digest no key produces, compared against when the id is unknown so timing does not reveal ids. */
const DUMMY_HASH = '0'.repeat(64);

/**
 * The client records of one document version, checked under the pepper versions the gateway holds.
 * Lookup is by the id embedded in the key, then a constant-time comparison of keyed hashes; the key
 * itself is never kept. A key that matches under the previous pepper (or a record that does not say
 * which pepper it was made under) is accepted, and its hash under the current pepper goes to
 * `onRehash`, which the gateway stores (rehash.ts) so that the next rotation leaves it working.
 */
export class ClientRegistry {
  private readonly byId: Map<string, { client: Client; credential: Credential }>;

  constructor(
    document: ClientsDocument,
    private readonly peppers: Peppers,
    rehashes: RehashDocument = EMPTY_REHASH_DOCUMENT,
    private readonly onRehash: (clientId: string, rehash: Rehash) => void = () => undefined,
  ) {
    const held = (versionId: string) =>
      versionId === peppers.current.versionId || versionId === peppers.previous?.versionId;
    this.byId = new Map(
      document.clients.map((record) => [
        record.id,
        { client: clientOf(record), credential: credentialOf(record, rehashes, held) },
      ]),
    );
  }

  /** The enabled client this key belongs to, or undefined. */
  authenticate(key: string): Client | undefined {
    const id = clientIdOf(key);
    const entry = id === undefined ? undefined : this.byId.get(id);
    const { current, previous } = this.peppers;
    const underCurrent = hashClientKey(current.value, key);
    const underPrevious = previous === undefined ? undefined : hashClientKey(previous.value, key);
    const expected = entry?.credential.hash ?? DUMMY_HASH;
    const made = entry?.credential.pepperVersionId;
    let matched: string | undefined;
    if ((made === undefined || made === current.versionId) && sameHash(underCurrent, expected)) {
      matched = current.versionId;
    } else if (
      underPrevious !== undefined &&
      (made === undefined || made === previous!.versionId) &&
      sameHash(underPrevious, expected)
    ) {
      matched = previous!.versionId;
    }
    if (entry === undefined || matched === undefined || entry.client.record.disabled) return undefined;
    if (matched !== current.versionId || made === undefined) {
      this.onRehash(entry.client.record.id, {
        from: entry.client.record.keyHash,
        to: underCurrent,
        pepperVersionId: current.versionId,
      });
    }
    return entry.client;
  }

  get size(): number {
    return this.byId.size;
  }
}

/** Whether the TCP peer address is inside one of the client's networks (IPv4-mapped IPv6 counts as IPv4). */
export function sourceAllowed(client: Client, address: string): boolean {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address);
  } catch {
    return false;
  }
  return client.networks.some(([network, prefix]) => parsed.kind() === network.kind() && parsed.match(network, prefix));
}

export function modelAllowed(client: Client, model: string): boolean {
  return client.record.allowedModels.includes('*') || client.record.allowedModels.includes(model);
}

export function policyOf(client: Client): (detector: string) => GuardrailAction {
  return (detector) => client.record.guardrails[detector] ?? client.record.defaultGuardrailAction;
}
