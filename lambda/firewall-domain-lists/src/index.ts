import type { CloudFormationCustomResourceEvent } from 'aws-lambda';

/**
 * Deploy-time lookup of AWS's managed DNS Firewall domain lists by name. Their ids differ per region
 * and synth may look nothing up, so CloudFormation asks this function, through the Provider
 * framework, and the rule group takes the ids from its answer (`Data`, by list name).
 *
 * It only lists: `route53resolver:ListFirewallDomainLists`, which supports no resource-level
 * permission. A name that the region does not have fails the deploy with that name.
 */

/** One page of `ListFirewallDomainLists`, as the SDK returns it. */
export interface DomainListPage {
  readonly FirewallDomainLists?: ReadonlyArray<{ Id?: string; Name?: string; ManagedOwnerName?: string }>;
  readonly NextToken?: string;
}

/** Lists one page; production uses the Lambda runtime's Route 53 Resolver client. */
export type ListPage = (nextToken: string | undefined) => Promise<DomainListPage>;

export class LookupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LookupError';
  }
}

/** The managed lists' owner, as Route 53 Resolver names it. */
const MANAGED_OWNER = 'Route 53 Resolver DNS Firewall';
/** A bound on pagination: the managed lists are a handful, an account's own lists a few hundred. */
const MAX_PAGES = 50;

export async function lookup(event: CloudFormationCustomResourceEvent, listPage: ListPage) {
  const physicalResourceId = 'dify-firewall-domain-lists';
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalResourceId };
  const names = event.ResourceProperties.Names;
  if (
    !Array.isArray(names) ||
    names.length === 0 ||
    !names.every((n) => typeof n === 'string' && /^[A-Za-z0-9]+$/.test(n))
  ) {
    throw new LookupError('property Names: expected a non-empty list of managed domain list names');
  }
  const found: Record<string, string> = {};
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const answer = await listPage(token);
    for (const list of answer.FirewallDomainLists ?? []) {
      if (list.ManagedOwnerName === MANAGED_OWNER && list.Name !== undefined && list.Id !== undefined) {
        if (names.includes(list.Name)) found[list.Name] = list.Id;
      }
    }
    token = answer.NextToken;
    if (token === undefined) break;
  }
  const missing = (names as string[]).filter((name) => found[name] === undefined);
  if (missing.length > 0) {
    throw new LookupError(
      `AWS-managed DNS Firewall domain lists not found in this region: ${missing.join(', ')} (expected lists owned by '${MANAGED_OWNER}')`,
    );
  }
  return { PhysicalResourceId: physicalResourceId, Data: found };
}

export async function handler(event: CloudFormationCustomResourceEvent) {
  // The Node.js runtime ships the AWS SDK v3 with every client; the bundle marks @aws-sdk/* external.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sdk = require('@aws-sdk/client-route53resolver');
  const client = new sdk.Route53ResolverClient({});
  return lookup(event, (NextToken) =>
    client.send(new sdk.ListFirewallDomainListsCommand({ NextToken, MaxResults: 100 })),
  );
}
