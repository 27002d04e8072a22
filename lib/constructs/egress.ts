/**
 * How Dify's tasks may leave the VPC: the configuration keys egress, pipMirrorUrl and
 * mirrorPrivateCidrs, as the SSRF proxy, the services' environment and the LLM gateway read them.
 */
export interface Egress {
  /**
   * Public addresses are reachable, through the NAT gateways (egress=nat). False with egress=none:
   * the private subnets have no route out, and nothing is told it may try.
   */
  readonly internet: boolean;
  /**
   * The package mirror on private networks outside the VPC, which the SSRF proxy lets HTTPS
   * through to.
   * @default - no private mirror: a mirror, if any, is reached on the internet
   */
  readonly mirror?: PrivateMirror;
}

/** A package mirror reached over a route the operator owns (Transit Gateway, VPN, peering). */
export interface PrivateMirror {
  /** Its host name, from pipMirrorUrl: the only name the proxy connects to in `networks`. */
  readonly host: string;
  /** The private networks its addresses are in (mirrorPrivateCidrs). */
  readonly networks: readonly string[];
}

/** The egress of a configuration (already validated: a private mirror always has its URL). */
export function egressOf(config: {
  readonly egress: 'nat' | 'none';
  readonly pipMirrorUrl?: string;
  readonly mirrorPrivateCidrs: readonly string[];
}): Egress {
  const mirror =
    config.pipMirrorUrl !== undefined && config.mirrorPrivateCidrs.length > 0
      ? { host: new URL(config.pipMirrorUrl).hostname, networks: config.mirrorPrivateCidrs }
      : undefined;
  return { internet: config.egress === 'nat', ...(mirror ? { mirror } : {}) };
}

/** What an egress without a private mirror looks like with NAT: today's default. */
export const NAT_EGRESS: Egress = { internet: true };
