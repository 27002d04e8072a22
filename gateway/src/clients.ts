import * as ipaddr from 'ipaddr.js';
import { clientIdOf, hashClientKey, sameHash } from '../../contracts/client-keys';
import type { ClientRecord, ClientsDocument, GuardrailAction } from '../../contracts/gateway-documents';

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
 * The client records of one document version. Lookup is by the id embedded in the key, then a
 * constant-time comparison of keyed hashes; the key itself is never kept.
 */
export class ClientRegistry {
  private readonly byId: Map<string, Client>;

  constructor(
    document: ClientsDocument,
    private readonly pepper: string,
  ) {
    this.byId = new Map(document.clients.map((record) => [record.id, clientOf(record)]));
  }

  /** The enabled client this key belongs to, or undefined. */
  authenticate(key: string): Client | undefined {
    const id = clientIdOf(key);
    const client = id === undefined ? undefined : this.byId.get(id);
    const presented = hashClientKey(this.pepper, key);
    const matches = sameHash(presented, client?.record.keyHash ?? DUMMY_HASH);
    return client !== undefined && matches && !client.record.disabled ? client : undefined;
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
