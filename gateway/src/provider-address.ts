/**
 * Where the gateway may connect with a provider key: public unicast addresses only, unless the
 * deployment names a private network it trusts (an in-VPC model server). Loopback, link-local (the
 * instance and task metadata endpoints above all), multicast and reserved addresses are refused
 * whatever the setting, for an IP literal in a base URL and for every address a name resolves to, at
 * connect time, so a name that later resolves elsewhere (DNS rebinding) is refused as well.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import * as ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** A provider address the policy refuses; the message names the host and why, never a key. */
export class ProviderAddressError extends Error {
  readonly code = 'PROVIDER_ADDRESS_REFUSED';
  constructor(host: string, why: string) {
    super(`provider address ${host} refused: ${why}`);
    this.name = 'ProviderAddressError';
  }
}

/** Ranges that no setting opens: link-local (metadata endpoints), unspecified, multicast, broadcast, reserved. */
const NEVER = new Set(['linkLocal', 'unspecified', 'multicast', 'broadcast', 'reserved']);

export interface AddressPolicy {
  /** Private networks the deployment allows providers in (PROVIDER_ALLOWED_PRIVATE_CIDRS). */
  readonly allowed: ReadonlyArray<[Address, number]>;
  /**
   * Public addresses are refused too (PROVIDER_PUBLIC_ADDRESSES=refuse): the deployment has no way
   * to the internet (egress=none), so a public provider fails here, naming the host, not by timeout.
   */
  readonly refusePublic?: boolean;
}

/**
 * Parses a comma-separated CIDR list; throws naming the entry that does not parse or can never be
 * allowed. With `refusePublic`, only those networks are allowed.
 */
export function parseAllowedNetworks(list: string | undefined, refusePublic = false): AddressPolicy {
  const allowed: Array<[Address, number]> = [];
  for (const entry of (list ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    let network: [Address, number];
    try {
      network = ipaddr.parseCIDR(entry);
    } catch {
      throw new Error(`'${entry.slice(0, 64)}' is not a CIDR (expected e.g. 10.1.0.0/16)`);
    }
    const range = network[0].range();
    if (NEVER.has(range))
      throw new Error(`'${entry.slice(0, 64)}' is a ${range} range, which a provider may never use`);
    allowed.push(network);
  }
  return { allowed, refusePublic };
}

/** Why an address is refused, or undefined when a provider may use it. */
export function refusal(address: string, policy: AddressPolicy): string | undefined {
  let parsed: Address;
  try {
    parsed = ipaddr.process(address.replace(/^\[|\]$/g, ''));
  } catch {
    return 'not an IP address';
  }
  const range = parsed.range();
  if (NEVER.has(range)) return `a ${range} address`;
  if (range === 'unicast')
    return policy.refusePublic ? 'a public address, and this deployment has no internet egress' : undefined;
  const inAllowed = policy.allowed.some(
    ([network, bits]) => parsed.kind() === network.kind() && parsed.match(network, bits),
  );
  return inAllowed ? undefined : `a ${range} address, outside PROVIDER_ALLOWED_PRIVATE_CIDRS`;
}

/** Checks a base URL's host when it is an IP literal (a name is checked when it resolves). */
export function checkBaseUrlHost(baseUrl: string, policy: AddressPolicy): void {
  const host = new URL(baseUrl).hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) === 0) return;
  const why = refusal(host, policy);
  if (why !== undefined) throw new ProviderAddressError(host, why);
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net and tls connections that resolves as usual and refuses the connection if any
 * address of the name is refused: a name that answers with one public and one private address is
 * not used at all.
 */
export function guardedLookup(policy: AddressPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      for (const { address } of addresses) {
        const why = refusal(address, policy);
        if (why !== undefined) return callback(new ProviderAddressError(hostname, `it resolves to ${why}`), []);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}
