import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { lookup, LookupError, type DomainListPage } from '../src/index';

const OWNER = 'Route 53 Resolver DNS Firewall';
const event = (type: 'Create' | 'Update' | 'Delete', names: unknown = ['AWSManagedDomainsMalwareDomainList']) =>
  ({
    RequestType: type,
    ResourceProperties: { ServiceToken: 'arn', Names: names },
    ...(type === 'Create' ? {} : { PhysicalResourceId: 'dify-firewall-domain-lists' }),
  }) as unknown as CloudFormationCustomResourceEvent;

/** Pages as Route 53 Resolver would serve them, recording the tokens asked for. */
function pages(served: DomainListPage[]) {
  const asked: Array<string | undefined> = [];
  return {
    asked,
    list: async (token: string | undefined) => {
      asked.push(token);
      return served[token === undefined ? 0 : Number(token)];
    },
  };
}

describe('the DNS Firewall domain-list lookup', () => {
  it('finds the managed lists by name across pages, and ignores an account’s own list of the same name', async () => {
    const { list, asked } = pages([
      {
        FirewallDomainLists: [
          { Id: 'rslvr-fdl-own', Name: 'AWSManagedDomainsMalwareDomainList', ManagedOwnerName: undefined },
          { Id: 'rslvr-fdl-other', Name: 'AWSManagedDomainsAggregateThreatList', ManagedOwnerName: OWNER },
        ],
        NextToken: '1',
      },
      {
        FirewallDomainLists: [
          { Id: 'rslvr-fdl-malware', Name: 'AWSManagedDomainsMalwareDomainList', ManagedOwnerName: OWNER },
          { Id: 'rslvr-fdl-botnet', Name: 'AWSManagedDomainsBotnetCommandandControl', ManagedOwnerName: OWNER },
        ],
      },
    ]);
    const result = await lookup(
      event('Create', ['AWSManagedDomainsMalwareDomainList', 'AWSManagedDomainsBotnetCommandandControl']),
      list,
    );
    expect(result).toEqual({
      PhysicalResourceId: 'dify-firewall-domain-lists',
      Data: {
        AWSManagedDomainsMalwareDomainList: 'rslvr-fdl-malware',
        AWSManagedDomainsBotnetCommandandControl: 'rslvr-fdl-botnet',
      },
    });
    expect(asked).toEqual([undefined, '1']);
  });

  it('fails the deploy naming every list the region lacks', async () => {
    const { list } = pages([{ FirewallDomainLists: [] }]);
    await expect(
      lookup(event('Update', ['AWSManagedDomainsMalwareDomainList', 'AWSManagedDomainsBotnetCommandandControl']), list),
    ).rejects.toThrow(
      "not found in this region: AWSManagedDomainsMalwareDomainList, AWSManagedDomainsBotnetCommandandControl (expected lists owned by 'Route 53 Resolver DNS Firewall')",
    );
  });

  it.each([[[]], ['AWSManagedDomainsMalwareDomainList'], [['bad name; DROP']]])(
    'refuses Names = %j with a clear message',
    async (names) => {
      const { list, asked } = pages([{}]);
      await expect(lookup(event('Create', names), list)).rejects.toThrow(LookupError);
      await expect(lookup(event('Create', names), list)).rejects.toThrow(
        'property Names: expected a non-empty list of managed domain list names',
      );
      expect(asked).toEqual([]);
    },
  );

  it('does nothing on delete', async () => {
    const { list, asked } = pages([]);
    await expect(lookup(event('Delete'), list)).resolves.toEqual({ PhysicalResourceId: 'dify-firewall-domain-lists' });
    expect(asked).toEqual([]);
  });
});
