import { ConfigError, parseConfig } from '../../lib/config/load';
import { CONFIG_KEYS } from '../../lib/config/schema';
import { sizingFor } from '../../lib/config/sizing';
import { configWarnings } from '../../lib/config/warnings';

/** The message a context (as `-c key=value` delivers it) is refused with. */
function refusal(context: Record<string, unknown>): string {
  try {
    parseConfig(context);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(context)} to be refused`);
}

describe('configuration: bad input is refused with a message naming the key and what is expected', () => {
  // Each row: given this context, the message must contain these fragments.
  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    ['a misspelt key', { plaform: 'ecs' }, ["unknown context key 'plaform'; did you mean 'platform'?"]],
    [
      'a Bedrock model id that is not one',
      { bedrockModels: 'claude' },
      ["context key 'bedrockModels' (item 1)", 'expected Bedrock model ids'],
    ],
    [
      'a link-local network for the gateway’s providers (the metadata endpoints)',
      { gatewayProviderPrivateCidrs: '10.1.0.0/16,169.254.0.0/16' },
      ["context key 'gatewayProviderPrivateCidrs' (item 2)", "'169.254.0.0/16' is not a private network", 'link-local'],
    ],
    [
      'a public network for the gateway’s private providers',
      { gatewayProviderPrivateCidrs: '8.8.8.0/24' },
      ["context key 'gatewayProviderPrivateCidrs' (item 1)", 'expected a block inside 10.0.0.0/8'],
    ],
    [
      'a PyPI mirror over plain HTTP',
      { pipMirrorUrl: 'http://pypi.example.com/simple' },
      ["context key 'pipMirrorUrl'", 'expected an https:// URL'],
    ],
    [
      'prod without a domain of its own',
      { profile: 'prod' },
      [
        "context key 'domainName'",
        'required with profile=prod',
        'accepts TLS 1.0',
        'hostedZoneId and hostedZoneName, or with certificateArn',
      ],
    ],
    [
      'Fargate Spot in prod',
      { profile: 'prod', fargateSpotWorker: 'true' },
      ["context key 'fargateSpotWorker'", 'profile=dev only'],
    ],
    ['ECS Exec as a word', { enableExec: 'yes' }, ["context key 'enableExec'", 'expected true or false']],

    ['a misspelt key, case aside', { ProFile: 'dev' }, ["unknown context key 'ProFile'; did you mean 'profile'?"]],
    [
      'an unknown platform',
      { platform: 'k8s' },
      ["context key 'platform'", 'got "k8s"', "expected one of 'ecs', 'eks'"],
    ],
    [
      'ECS Exec on EKS',
      { platform: 'eks', enableExec: 'true' },
      [
        "context key 'enableExec'",
        'is ECS Exec',
        'incident-responder role (output ResponderRoleArn)',
        'break-glass role (output BreakGlassRoleArn)',
        'unset it with platform=eks',
      ],
    ],
    [
      'Fargate Spot on EKS',
      { platform: 'eks', fargateSpotWorker: 'true' },
      ["context key 'fargateSpotWorker'", 'is Fargate Spot', 'unset it with platform=eks'],
    ],
    [
      'Nitro Sandboxes on ECS',
      { eksIsolatedSandbox: 'true' },
      ["context key 'eksIsolatedSandbox'", 'it needs platform=eks'],
    ],
    [
      'Nitro Sandboxes as a word',
      { platform: 'eks', eksIsolatedSandbox: 'vm' },
      ["context key 'eksIsolatedSandbox'", 'expected true or false'],
    ],
    ['an unknown profile', { profile: 'production' }, ["context key 'profile'", "expected one of 'dev', 'prod'"]],
    ['a short account id', { account: '12345' }, ["context key 'account'", 'expected a 12-digit AWS account id']],
    ['a made-up region', { region: 'Europe' }, ["context key 'region'", 'expected an AWS region name']],
    [
      'Dify at latest',
      { difyVersion: 'latest' },
      ["context key 'difyVersion'", "'latest' is refused", 'pin an exact Dify release'],
    ],
    [
      'a branch as plugin daemon tag',
      { pluginDaemonVersion: 'main' },
      ["context key 'pluginDaemonVersion'", 'expected an exact release tag'],
    ],
    ['sandbox at LATEST', { sandboxVersion: 'LATEST' }, ["context key 'sandboxVersion'", "'latest' is refused"]],
    [
      'an IPv4 CIDR with host bits',
      { allowedIpv4Cidrs: '10.0.0.1/8' },
      ["context key 'allowedIpv4Cidrs' (item 1)", "expected the network address, '10.0.0.0/8'"],
    ],
    [
      'garbage in the IPv4 list',
      { allowedIpv4Cidrs: '203.0.113.0/24,nope' },
      ["context key 'allowedIpv4Cidrs' (item 2)", "'nope' is not an IPv4 CIDR"],
    ],
    ['IPv6 in the IPv4 list', { allowedIpv4Cidrs: '2001:db8::/32' }, ["'2001:db8::/32' is not an IPv4 CIDR"]],
    [
      'IPv4 in the IPv6 list',
      { allowedIpv6Cidrs: '10.0.0.0/8' },
      ["context key 'allowedIpv6Cidrs'", "'10.0.0.0/8' is not an IPv6 CIDR"],
    ],
    ['a public VPC range', { vpcCidr: '8.8.0.0/16' }, ["context key 'vpcCidr'", 'expected a private (RFC 1918) range']],
    [
      'a VPC too small for nine subnets',
      { vpcCidr: '10.0.0.0/24' },
      ["context key 'vpcCidr'", 'expected a prefix of /18 or larger'],
    ],
    [
      'a non-boolean toggle',
      { vpcInterfaceEndpoints: 'yes' },
      ["context key 'vpcInterfaceEndpoints'", 'expected true or false, got "yes"'],
    ],
    [
      'prod without endpoints',
      { profile: 'prod', vpcInterfaceEndpoints: 'false' },
      ["context key 'vpcInterfaceEndpoints'", 'cannot be false in profile prod'],
    ],
    [
      'an upper-case domain',
      { domainName: 'Dify.Example.com', certificateArn: undefined },
      ["context key 'domainName'", 'expected a lower-case DNS name'],
    ],
    [
      'a domain with no way to get a certificate',
      { domainName: 'dify.example.com' },
      ["context key 'domainName'", 'needs either hostedZoneId and hostedZoneName'],
    ],
    [
      'a zone id without its name',
      { domainName: 'dify.example.com', hostedZoneId: 'Z0123456789ABC' },
      ["context key 'hostedZoneName': required when hostedZoneId is set"],
    ],
    [
      'a domain outside its zone',
      { domainName: 'dify.example.org', hostedZoneId: 'Z0123456789ABC', hostedZoneName: 'example.com' },
      ["'dify.example.org' is not inside hostedZoneName 'example.com'"],
    ],
    [
      'a malformed hosted zone id',
      { domainName: 'dify.example.com', hostedZoneId: 'abc', hostedZoneName: 'example.com' },
      ["context key 'hostedZoneId'", 'expected a Route 53 hosted zone id'],
    ],
    [
      'a malformed certificate ARN',
      { domainName: 'dify.example.com', certificateArn: 'arn:aws:iam::123456789012:role/x' },
      ["context key 'certificateArn'", 'expected an ACM certificate ARN'],
    ],
    [
      'a certificate without a domain',
      { certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012' },
      ["context key 'domainName': required when certificateArn is set"],
    ],
    [
      'a certificate in another region',
      {
        region: 'us-east-1',
        domainName: 'dify.example.com',
        certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012',
      },
      ["context key 'certificateArn': is in eu-west-1 but region is us-east-1"],
    ],
    [
      'an IPv6 CIDR with host bits',
      { allowedIpv6Cidrs: '2001:db8::1/32' },
      ["context key 'allowedIpv6Cidrs' (item 1)", "expected the network address, '2001:db8::/32'"],
    ],
    [
      'a zone pinned by a key we do not have',
      { availabilityZones: 'eu-west-1a' },
      ["unknown context key 'availabilityZones'"],
    ],
    [
      'a sign-in limit below the WAF minimum',
      { wafLoginRateLimit: '5' },
      ["context key 'wafLoginRateLimit'", 'from 10 (the WAF minimum) to 10000'],
    ],
    [
      'a GuardDuty switch that is not a boolean',
      { guardDuty: 'yes' },
      ["context key 'guardDuty'", 'expected true or false, got "yes"'],
    ],
    [
      'a malformed e-mail',
      { alarmEmail: 'ops-at-example' },
      ["context key 'alarmEmail'", 'expected an e-mail address'],
    ],
    [
      'a stack name CloudFormation refuses',
      { stackName: '1-dify' },
      ["context key 'stackName'", 'expected a letter, then letters, digits and single hyphens'],
    ],
    [
      'a rotation schedule that is neither rate nor cron',
      { rotationSchedule: 'every quarter' },
      [
        "context key 'rotationSchedule'",
        "expected rate(N days) or cron(minutes hours day-of-month month day-of-week year), got 'every quarter'",
      ],
    ],
    [
      'a rotation rate past a thousand days',
      { rotationSchedule: 'rate(1200 days)' },
      ["context key 'rotationSchedule'", 'expected rate(N days) with N from 1 to 1000, got 1200 days'],
    ],
    [
      'a cron rotation schedule with five fields',
      { rotationSchedule: 'cron(0 3 1 * *)' },
      [
        "context key 'rotationSchedule'",
        'expected 6 cron fields (minutes hours day-of-month month day-of-week year), got 5',
      ],
    ],
    [
      'a cron rotation schedule off the hour',
      { rotationSchedule: 'cron(30 3 ? * SUN *)' },
      [
        "context key 'rotationSchedule'",
        "expected the cron minutes field to be 0 (rotation windows start on the hour), got '30'",
      ],
    ],
    [
      'a rotation window as long as its daily interval',
      { rotationSchedule: 'rate(1 day)', rotationWindowHours: '24' },
      [
        "context key 'rotationWindowHours': must be shorter than the rotation interval (1 day(s) from rotationSchedule); got 24 hours",
      ],
    ],
    [
      'a rotation window longer than a day',
      { rotationWindowHours: '30' },
      ["context key 'rotationWindowHours'", 'expected whole hours from 1 to 24'],
    ],
    [
      'a number where cdk.json needs a list',
      { allowedIpv4Cidrs: 42 },
      ["context key 'allowedIpv4Cidrs'", 'expected a comma-separated list'],
    ],
  ];

  it.each(cases)('refuses %s', (_name, context, fragments) => {
    const message = refusal(context);
    for (const fragment of fragments) expect(message).toContain(fragment);
  });

  it('has at least twenty distinct refusals', () => {
    expect(new Set(cases.map(([, context]) => JSON.stringify(context))).size).toBeGreaterThanOrEqual(20);
  });

  it('reports every mistake at once, not only the first', () => {
    const error = (() => {
      try {
        parseConfig({ plaform: 'ecs', profile: 'production', difyVersion: 'latest' });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error.problems).toHaveLength(3);
  });

  it('lists the valid keys when a key is too far from any of them to guess', () => {
    const message = refusal({ zzzzzzzzzz: '1' });
    expect(message).not.toContain('did you mean');
    expect(message).toContain(`Valid keys: ${CONFIG_KEYS.join(', ')}`);
  });
});

describe('configuration: defaults', () => {
  it('gives a deployable dev stack on ECS with pinned releases and nobody allowed in', () => {
    const config = parseConfig({});
    expect(config).toEqual({
      platform: 'ecs',
      profile: 'dev',
      stackName: 'Dify',
      allowedIpv4Cidrs: [],
      allowedIpv6Cidrs: [],
      difyVersion: '1.13.3',
      pluginDaemonVersion: '0.5.3-local',
      sandboxVersion: '0.2.14',
      vpcCidr: '10.0.0.0/16',
      region: 'us-east-1',
      rotationSchedule: 'cron(0 3 ? 1/3 SUN#1 *)',
      rotationWindowHours: 3,
      edge: 'cloudfront',
      wafRateLimit: 1000,
      wafLoginRateLimit: 30,
      wafAnonymousIpList: false,
      uploadFileSizeLimitMb: 15,
      cloudFrontPriceClass: 'PriceClass_100',
      cloudFrontGeoAllowlist: [],
      eksIsolatedSandbox: false,
      enableExec: false,
      bedrockModels: [],
      fargateSpotWorker: false,
      gatewayProviderPrivateCidrs: [],
      guardDuty: false,
      securityHub: false,
    });
  });

  it('accepts platform=eks, with the VM-per-pod sandbox off unless asked for', () => {
    expect(parseConfig({ platform: 'eks' })).toMatchObject({ platform: 'eks', eksIsolatedSandbox: false });
    expect(parseConfig({ platform: 'eks', eksIsolatedSandbox: 'true' }).eksIsolatedSandbox).toBe(true);
  });

  it('ignores CDK feature flags and CLI keys, which are not ours', () => {
    expect(() =>
      parseConfig({
        '@aws-cdk/core:checkSecretUsage': true,
        'aws:cdk:enable-path-metadata': true,
        'cli-telemetry': false,
        'acknowledged-issue-numbers': [1],
      }),
    ).not.toThrow();
  });
});

describe('configuration: -c strings are parsed into their types', () => {
  it('splits comma lists and trims each item', () => {
    const config = parseConfig({
      allowedIpv4Cidrs: '203.0.113.0/24, 198.51.100.0/24',
      allowedIpv6Cidrs: '2001:db8::/32',
    });
    expect(config.allowedIpv4Cidrs).toEqual(['203.0.113.0/24', '198.51.100.0/24']);
    expect(config.allowedIpv6Cidrs).toEqual(['2001:db8::/32']);
  });

  it('reads an empty -c list as no entries', () => {
    expect(parseConfig({ allowedIpv4Cidrs: '' }).allowedIpv4Cidrs).toEqual([]);
  });

  it('accepts JSON arrays and booleans from cdk.json as they are', () => {
    const config = parseConfig({ allowedIpv4Cidrs: ['203.0.113.0/24'], vpcInterfaceEndpoints: true });
    expect(config.allowedIpv4Cidrs).toEqual(['203.0.113.0/24']);
    expect(config.vpcInterfaceEndpoints).toBe(true);
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    [' false ', false],
  ])('reads the boolean string %j as %j', (text, value) => {
    expect(parseConfig({ vpcInterfaceEndpoints: text }).vpcInterfaceEndpoints).toBe(value);
  });

  it.each([
    ['8', 8],
    ['2.5', 2.5],
    [' 64 ', 64],
  ])('reads the number string %j as %j', (text, value) => {
    expect(parseConfig({ databaseMaxCapacity: text }).databaseMaxCapacity).toBe(value);
    expect(sizingFor(parseConfig({ databaseMaxCapacity: text })).database.maxCapacity).toBe(value);
  });

  it('accepts a full custom-domain configuration', () => {
    const config = parseConfig({
      profile: 'prod',
      region: 'eu-west-1',
      account: '123456789012',
      domainName: 'dify.example.com',
      hostedZoneId: 'Z0123456789ABCDEFGHIJ',
      hostedZoneName: 'example.com',
      alarmEmail: 'ops@example.com',
    });
    expect(config.domainName).toBe('dify.example.com');
    expect(config.hostedZoneName).toBe('example.com');
  });
});

describe('configuration: profiles and warnings', () => {
  it('sizes dev small and prod for availability', () => {
    const dev = sizingFor({ profile: 'dev' });
    const prod = sizingFor({ profile: 'prod' });
    expect([dev.network.azCount, dev.network.natGateways, dev.network.interfaceEndpoints]).toEqual([2, 1, false]);
    expect([prod.network.azCount, prod.network.natGateways, prod.network.interfaceEndpoints]).toEqual([3, 3, true]);
    expect([dev.database.minCapacity, prod.database.minCapacity]).toEqual([0, 1]);
    expect([dev.database.backupRetention.toDays(), prod.database.backupRetention.toDays()]).toEqual([7, 35]);
    expect([dev.database.deletionProtection, prod.database.deletionProtection]).toEqual([false, true]);
    expect([dev.cache.multiAz, prod.cache.multiAz]).toEqual([false, true]);
    expect(sizingFor({ profile: 'dev', vpcInterfaceEndpoints: true }).network.interfaceEndpoints).toBe(true);
    // Pitfall 10: the api crash-loops below about 4 GiB once plugins are installed; prod gets a full vCPU.
    expect([dev.services.api.memoryMiB, prod.services.api.memoryMiB]).toEqual([4096, 4096]);
    expect(prod.services.api.cpu).toBeGreaterThanOrEqual(1024);
    // Pitfall 9: exactly one beat, in every profile.
    expect([dev.services.beat, prod.services.beat].map((b) => [b.minTasks, b.maxTasks])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(prod.services.api.minTasks).toBeGreaterThanOrEqual(2);
    expect(sizingFor({ profile: 'dev', fargateSpotWorker: true }).services.spotWorker).toBe(true);
    expect(sizingFor({ profile: 'prod', fargateSpotWorker: true }).services.spotWorker).toBe(false);
  });

  it('warns that ECS Exec is on and what it turns off', () => {
    const warning = configWarnings(parseConfig({ enableExec: 'true' })).find((w) => w.id === 'dify:execEnabled');
    expect(warning?.message).toContain('root filesystems are writable');
  });

  it('warns about an allow-list open to the whole internet, but accepts it', () => {
    const ids = configWarnings(parseConfig({ allowedIpv4Cidrs: '0.0.0.0/0', allowedIpv6Cidrs: '::/0' })).map(
      (w) => w.id,
    );
    expect(ids).toEqual(expect.arrayContaining(['dify:openIpv4', 'dify:openIpv6']));
    expect(ids).not.toContain('dify:nobodyAllowed');
  });

  it('warns that nobody is admitted when both allow-lists are empty, and says what to set', () => {
    const warning = configWarnings(parseConfig({})).find((w) => w.id === 'dify:nobodyAllowed');
    expect(warning?.message).toContain('-c allowedIpv4Cidrs=');
  });

  it('does not warn about what is configured safely', () => {
    const ids = configWarnings(
      parseConfig({
        profile: 'prod',
        allowedIpv4Cidrs: '203.0.113.0/24',
        alarmEmail: 'ops@example.com',
        domainName: 'dify.example.com',
        hostedZoneId: 'Z0123456789ABCDEFGHIJ',
        hostedZoneName: 'example.com',
      }),
    ).map((w) => w.id);
    expect(ids).toEqual([]);
  });
});
