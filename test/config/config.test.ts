import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { partition } from '@aws-sdk/core/client';
import { App } from 'aws-cdk-lib';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { AWS_COMMERCIAL_REGIONS, AWS_OTHER_PARTITION_REGIONS } from '../../contracts/aws-regions';
import { DIFY_RELEASE } from '../../contracts/dify-release';
import { createApp } from '../../lib/app';
import { ConfigError, parseConfig } from '../../lib/config/load';
import { CONFIG_KEYS } from '../../lib/config/schema';
import { sizingFor } from '../../lib/config/sizing';
import { acknowledgeHint, SYNTH_WARNING_IDS, type SynthWarningId } from '../../lib/config/warning-catalog';
import { configWarnings } from '../../lib/config/warnings';
import { upstreamImages } from '../../lib/constructs/dify/images';
import { repoPath } from '../../lib/paths';
import { refusal } from '../helpers/config';
import { build, CDK_JSON_CONTEXT, ZONE } from '../helpers/synth';

const CERTIFICATE = 'arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012';

/** Every .ts file under `dir`. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

describe('configuration: bad input is refused with a message naming the key and what is expected', () => {
  // Each row: given this context, the message must contain these fragments.
  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    ['a misspelt key', { plaform: 'ecs' }, ["unknown context key 'plaform'; did you mean 'platform'?"]],
    [
      'a Bedrock model id that is not one',
      { bedrockModels: 'claude' },
      ['context key \'bedrockModels\' (item 1): got "claude"; expected a Bedrock model id'],
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
      ['context key \'pluginDaemonVersion\': got "main"; expected an exact dify-plugin-daemon release tag'],
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
      ['context key \'vpcInterfaceEndpoints\': got "yes"; expected true or false'],
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
      ['context key \'guardDuty\': got "yes"; expected true or false'],
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
        'context key \'rotationSchedule\': got "every quarter"; expected rate(N days) or cron(minutes hours day-of-month month day-of-week year)',
      ],
    ],
    [
      'a rotation rate past a thousand days',
      { rotationSchedule: 'rate(1200 days)' },
      [
        'context key \'rotationSchedule\': got "rate(1200 days)"; expected rate(N days) with N from 1 to 1000, not 1200',
      ],
    ],
    [
      'a cron rotation schedule with five fields',
      { rotationSchedule: 'cron(0 3 1 * *)' },
      [
        "context key 'rotationSchedule'",
        'expected 6 cron fields (minutes hours day-of-month month day-of-week year), not 5',
      ],
    ],
    [
      'a cron rotation schedule off the hour',
      { rotationSchedule: 'cron(30 3 ? * SUN *)' },
      [
        "context key 'rotationSchedule'",
        "expected the cron minutes field to be 0 (rotation windows start on the hour), not '30'",
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
      difyVersionUnchecked: false,
      acknowledgeWarnings: [],
      vpcCidr: '10.0.0.0/16',
      region: 'us-east-1',
      rotationSchedule: 'cron(0 3 ? 1/3 SUN#1 *)',
      rotationWindowHours: 3,
      edge: 'cloudfront',
      wafRateLimit: 1000,
      wafLoginRateLimit: 30,
      wafAnonymousIpList: false,
      uploadFileSizeLimitMb: 15,
      cloudFrontGeoAllowlist: [],
      eksIsolatedSandbox: false,
      enableExec: false,
      bedrockModels: [],
      fargateSpotWorker: false,
      gatewayProviderPrivateCidrs: [],
      // NAT gateways, as before the closed-network option existed.
      egress: 'nat',
      mirrorPrivateCidrs: [],
      email: false,
      emailCredentialsGeneration: 1,
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

describe('configuration: every message names the key, the value given and what is expected, once', () => {
  /** The one problem line about `key` (and, for a list, its item), from the refusal of `context`. */
  function problemLine(context: Record<string, unknown>, key: string): string {
    const lines = refusal(context)
      .split('\n')
      .filter((line) => line.includes(`context key '${key}'`));
    expect(lines).toHaveLength(1);
    return lines[0];
  }
  const occurrences = (line: string, value: string) =>
    line.split(new RegExp(`["']${value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}["']`)).length - 1;

  // Each row: a context, the key it is wrong about, the value the message must name once, and what it
  // must say is expected. The first rows printed `got "abc" (got "abc")` before.
  it.each<[string, Record<string, string>, string, string, string]>([
    ['a word for a number', { wafRateLimit: 'abc' }, 'wafRateLimit', 'abc', 'expected a number'],
    [
      'a word for a boolean',
      { vpcInterfaceEndpoints: 'abc' },
      'vpcInterfaceEndpoints',
      'abc',
      'expected true or false',
    ],
    ['a word for a capacity', { databaseMaxCapacity: 'abc' }, 'databaseMaxCapacity', 'abc', 'expected a number'],
    ['a branch for a tag', { sandboxVersion: 'main' }, 'sandboxVersion', 'main', 'expected an exact dify-sandbox'],
    ['an unknown edge', { edge: 'nginx' }, 'edge', 'nginx', "expected one of 'cloudfront', 'alb', 'internal'"],
    ['a made-up region', { region: 'eu-west-9' }, 'region', 'eu-west-9', 'expected an AWS region name'],
    ['a rotation schedule in words', { rotationSchedule: 'weekly' }, 'rotationSchedule', 'weekly', 'expected rate('],
    ['an e-mail without an @', { alarmEmail: 'ops' }, 'alarmEmail', 'ops', 'expected an e-mail address'],
    [
      'an ARN of another service as certificate',
      { domainName: 'dify.example.com', edge: 'alb', certificateArn: 'arn:aws:iam::123456789012:role/x' },
      'certificateArn',
      'arn:aws:iam::123456789012:role/x',
      'expected an ACM certificate ARN',
    ],
  ])('names %s once', (_name, context, key, value, expected) => {
    const line = problemLine(context, key);
    expect(line).toContain(`context key '${key}': got ${JSON.stringify(value)}; ${expected}`);
    expect(occurrences(line, value)).toBe(1);
  });

  it('names a certificate ARN that is not an ARN without a region of "undefined"', () => {
    const message = refusal({ domainName: 'dify.example.com', edge: 'alb', certificateArn: 'not-an-arn' });
    expect(message).toContain('context key \'certificateArn\': got "not-an-arn"; expected an ACM certificate ARN');
    expect(message).not.toContain('undefined');
    expect(message).not.toContain('is in ');
  });

  it.each<[string, Record<string, string>, string, string, number]>([
    ['an IPv4 list', { allowedIpv4Cidrs: '203.0.113.0/24,198.51.100.0/24,nope' }, 'allowedIpv4Cidrs', 'nope', 3],
    [
      'a model list',
      { bedrockModels: 'anthropic.claude-v2,claude,amazon.titan-text-v1' },
      'bedrockModels',
      'claude',
      2,
    ],
    ['a country list', { cloudFrontGeoAllowlist: 'DE,Germany,FR' }, 'cloudFrontGeoAllowlist', 'Germany', 2],
    ['an IPv6 list', { allowedIpv6Cidrs: '2001:db8::/32,2001:db8::1/48' }, 'allowedIpv6Cidrs', '2001:db8::1/48', 2],
  ])('names the bad item of %s and its position, not the whole list', (_name, context, key, item, position) => {
    const line = problemLine(context, key);
    expect(line).toContain(`context key '${key}' (item ${position}):`);
    expect(occurrences(line, item)).toBe(1);
    expect(line).not.toContain(context[key]);
  });

  it.each<[Record<string, string>, string, string[]]>([
    [{ wafRateLimit: '5' }, 'wafRateLimit', ['got "5"', 'from 10 (the WAF minimum) to 2000000000']],
    [{ wafLoginRateLimit: '5' }, 'wafLoginRateLimit', ['got "5"', 'from 10 (the WAF minimum) to 10000']],
    [{ uploadFileSizeLimitMb: '2048' }, 'uploadFileSizeLimitMb', ['got "2048"', 'from 1 to 1024']],
    [{ databaseMaxCapacity: '300' }, 'databaseMaxCapacity', ['got "300"', 'from 1 to 256']],
    [{ rotationWindowHours: '30' }, 'rotationWindowHours', ['got "30"', 'from 1 to 24']],
    [{ vpcCidr: '10.0.0.0/24' }, 'vpcCidr', ['got "10.0.0.0/24"', 'a prefix of /18 or larger']],
  ])('names the value and the limits of a range: %j', (context, key, fragments) => {
    const line = problemLine(context, key);
    for (const fragment of fragments) expect(line).toContain(fragment);
  });
});

describe('configuration: settings that do not apply to the chosen edge or platform are refused, not ignored', () => {
  const alb = { edge: 'alb', ...ZONE };
  const internal = { edge: 'internal', domainName: 'dify.example.com', certificateArn: CERTIFICATE };

  it.each([
    ['edge=alb', alb],
    ['edge=internal', internal],
  ])('refuses cloudFrontPriceClass with %s, naming the value', (edge, context) => {
    const message = refusal({ ...context, cloudFrontPriceClass: 'PriceClass_All' });
    expect(message).toContain(
      `context key 'cloudFrontPriceClass': got "PriceClass_All"; expected no cloudFrontPriceClass with ${edge}`,
    );
    expect(message).toContain('has no CloudFront distribution; unset it, or use edge=cloudfront');
  });

  it('refuses a country list with edge=internal, naming the value', () => {
    expect(refusal({ ...internal, cloudFrontGeoAllowlist: 'DE,FR' })).toContain(
      'context key \'cloudFrontGeoAllowlist\': got "DE,FR"; expected no cloudFrontGeoAllowlist with edge=internal',
    );
  });

  it('refuses IPv6 networks with edge=alb, whose load balancer is IPv4-only', () => {
    expect(refusal({ ...alb, allowedIpv6Cidrs: '2001:db8::/32' })).toContain(
      "context key 'allowedIpv6Cidrs': applies to edge=cloudfront only",
    );
  });

  it('accepts CloudFront settings with edge=cloudfront, and edge=alb without them (a default is not a setting)', () => {
    expect(parseConfig({ cloudFrontPriceClass: 'PriceClass_All' }).cloudFrontPriceClass).toBe('PriceClass_All');
    expect(parseConfig(alb).cloudFrontPriceClass).toBeUndefined();
  });

  it.each([
    ['enableExec', { platform: 'eks', enableExec: 'true' }, 'unset it with platform=eks'],
    ['fargateSpotWorker', { platform: 'eks', fargateSpotWorker: 'true' }, 'unset it with platform=eks'],
    ['eksIsolatedSandbox', { platform: 'ecs', eksIsolatedSandbox: 'true' }, 'it needs platform=eks'],
  ])('refuses the platform-only key %s on the other platform', (key, context, fragment) => {
    expect(refusal(context)).toContain(`context key '${key}'`);
    expect(refusal(context)).toContain(fragment);
  });
});

describe('configuration: region', () => {
  it('refuses a region that does not exist, with the nearest real ones', () => {
    expect(refusal({ region: 'eu-west-9' })).toContain(
      "context key 'region': got \"eu-west-9\"; expected an AWS region name; did you mean 'eu-west-1', 'eu-west-2' or 'eu-west-3'?",
    );
    expect(refusal({ region: 'eu-centrl-1' })).toContain("did you mean 'eu-central-1'?");
  });

  it('lists the regions when a name is too far from any to guess', () => {
    expect(refusal({ region: 'Europe' })).toContain(
      `expected an AWS region name such as eu-west-1, one of: ${Object.keys(AWS_COMMERCIAL_REGIONS).join(', ')}`,
    );
  });

  it.each([
    ['us-gov-west-1', 'AWS GovCloud (US-West), in the aws-us-gov partition'],
    ['cn-north-1', 'China (Beijing), in the aws-cn partition'],
  ])('refuses %s as a region of another partition, not as a typo', (region, fragment) => {
    const message = refusal({ region });
    expect(message).toContain(`got "${region}"; expected a commercial AWS region: that is ${fragment}`);
    expect(message).not.toContain('did you mean');
  });

  it('accepts every commercial region', () => {
    for (const region of Object.keys(AWS_COMMERCIAL_REGIONS)) expect(parseConfig({ region }).region).toBe(region);
  });

  it('lists what the installed AWS SDK and CDK know: every region by its SDK name, and every commercial region CDK knows', () => {
    // The SDK describes only the regions it knows by name; a made-up one in a known pattern gets none.
    const known = (region: string) => partition(region) as { name: string; description?: string };
    expect(known('eu-west-9').description).toBeUndefined();
    for (const [region, description] of Object.entries(AWS_COMMERCIAL_REGIONS)) {
      expect([region, known(region).name, known(region).description]).toEqual([region, 'aws', description]);
    }
    for (const [region, { partition: name }] of Object.entries(AWS_OTHER_PARTITION_REGIONS)) {
      expect([region, partition(region).name]).toEqual([region, name]);
    }
    const cdkCommercial = RegionInfo.regions.filter((r) => r.partition === 'aws').map((r) => r.name);
    expect(Object.keys(AWS_COMMERCIAL_REGIONS)).toEqual(expect.arrayContaining(cdkCommercial));
  });
});

describe('configuration: the Dify release is the one the vendored contract describes', () => {
  it('defaults to the contract’s release and the plugin daemon and sandbox that go with it', () => {
    const config = parseConfig({});
    expect([config.difyVersion, config.pluginDaemonVersion, config.sandboxVersion]).toEqual([
      DIFY_RELEASE.difyVersion,
      DIFY_RELEASE.services.plugin_daemon.tag,
      DIFY_RELEASE.services.sandbox.tag,
    ]);
  });

  it('refuses a Dify release the contract does not describe, and names the way out', () => {
    expect(refusal({ difyVersion: '1.14.0' })).toContain(
      `context key 'difyVersion': got "1.14.0"; expected ${DIFY_RELEASE.difyVersion}, the release contracts/dify/services.json describes. Write the new release's contract first (npm run contract:refresh -- <services.json>), or set -c difyVersionUnchecked=true`,
    );
  });

  it.each([
    ['pluginDaemonVersion', '0.6.3-local', 'plugin daemon', DIFY_RELEASE.services.plugin_daemon.tag],
    ['sandboxVersion', '0.2.15', 'sandbox', DIFY_RELEASE.services.sandbox.tag],
  ])('refuses a %s that does not pair with the Dify release', (key, given, what, paired) => {
    expect(refusal({ [key]: given })).toContain(
      `context key '${key}': got "${given}"; expected ${paired}, the ${what} release that Dify ${DIFY_RELEASE.difyVersion}'s compose file runs (contracts/dify/services.json)`,
    );
  });

  it('reports each unpaired version of a new release together', () => {
    const problems = (() => {
      try {
        parseConfig({ difyVersion: '1.14.0', pluginDaemonVersion: '0.6.3-local' });
      } catch (error) {
        return (error as ConfigError).problems;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      "context key 'difyVersion'",
      "context key 'pluginDaemonVersion'",
    ]);
  });

  it('deploys an undescribed release with difyVersionUnchecked=true, and warns exactly what was not checked', () => {
    const config = parseConfig({
      difyVersion: '1.14.0',
      pluginDaemonVersion: '0.6.3-local',
      difyVersionUnchecked: 'true',
    });
    const warning = configWarnings(config).find((w) => w.id === 'dify:difyVersionUnchecked');
    expect(warning?.message).toContain(
      `difyVersion 1.14.0 (the contract describes ${DIFY_RELEASE.difyVersion}), pluginDaemonVersion 0.6.3-local (the contract describes ${DIFY_RELEASE.services.plugin_daemon.tag}): difyVersionUnchecked=true deploys a release that contracts/dify/services.json does not describe.`,
    );
    expect(warning?.message).toContain(
      'Not checked: the environment variables each container reads (names, required ones, secrets), the ports, the health checks, the secrets that must match across services, and whether the plugin daemon and sandbox releases go with this Dify release.',
    );
    expect(warning?.message).not.toContain('sandboxVersion');
  });

  it('has nothing to warn about when the override is set but every version is the contract’s', () => {
    const ids = configWarnings(parseConfig({ difyVersionUnchecked: 'true' })).map((w) => w.id);
    expect(ids).not.toContain('dify:difyVersionUnchecked');
  });

  it('still refuses a moving tag with the override', () => {
    expect(refusal({ difyVersion: 'latest', difyVersionUnchecked: 'true' })).toContain("'latest' is refused");
  });
});

describe('configuration: acknowledgeWarnings', () => {
  it('accepts catalogued ids from -c and from cdk.json', () => {
    expect(parseConfig({ acknowledgeWarnings: 'dify:devProfile, dify:noAlarmEmail' }).acknowledgeWarnings).toEqual([
      'dify:devProfile',
      'dify:noAlarmEmail',
    ]);
    expect(parseConfig({ acknowledgeWarnings: ['dify:devProfile'] }).acknowledgeWarnings).toEqual(['dify:devProfile']);
  });

  it('refuses an unknown id with the list of valid ones', () => {
    expect(refusal({ acknowledgeWarnings: 'dify:devProfile,dify:devprofile' })).toContain(
      `context key 'acknowledgeWarnings' (item 2): got "dify:devprofile"; expected one of ${SYNTH_WARNING_IDS.map((id) => `'${id}'`).join(', ')}; did you mean 'dify:devProfile'?`,
    );
  });

  it('has an id for every warning the configuration can raise, and every image synth can warn about', () => {
    const raised = configWarnings(
      parseConfig({
        allowedIpv4Cidrs: '0.0.0.0/0',
        allowedIpv6Cidrs: '::/0',
        enableExec: 'true',
        difyVersion: '1.14.0',
        difyVersionUnchecked: 'true',
      }),
    ).map((w) => w.id);
    const images = Object.keys(upstreamImages({ dify: 'x', pluginDaemon: 'y', sandbox: 'z' })).map(
      (name) => `dify:image-not-digest-pinned:${name}`,
    );
    expect([...raised, 'dify:nobodyAllowed', ...images].sort()).toEqual([...SYNTH_WARNING_IDS].sort());
  });

  it('is the only way synth warnings are added in lib/ (so that each has a catalogued id and says how to acknowledge it)', () => {
    const offenders = sourceFiles(repoPath('lib')).filter(
      (file) =>
        !file.endsWith('warning-catalog.ts') &&
        /\.addWarning(V2)?\(|Validations\.of\([^)]*\)\.addWarning/.test(readFileSync(file, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('is explained in the README: one row per id with how to acknowledge it', () => {
    const readme = readFileSync(repoPath('README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Synth warnings'));
    const rows = section
      .slice(0, section.indexOf('\n#'))
      .split('\n')
      .filter((line) => line.startsWith('| `dify:'));
    expect(rows.map((row) => /^\| `([^`]+)`/.exec(row)![1])).toEqual([...SYNTH_WARNING_IDS]);
    for (const [index, id] of SYNTH_WARNING_IDS.entries())
      expect(rows[index]).toContain(`\`-c acknowledgeWarnings=${id}\``);
  });
});

describe('synth warnings: each says how to acknowledge it, and an acknowledged one is gone', () => {
  /**
   * Every synth warning of the app, as [id, message]: the warning entries in the construct tree's
   * metadata, which is what the cloud assembly's manifest lists (reading them through
   * `Annotations.fromStack()` would synthesize the app again for each stack).
   */
  function warningsOf(app: App): Array<[string, string]> {
    return app.node
      .findAll()
      .flatMap((construct) => construct.node.metadata.filter((entry) => entry.type === 'aws:cdk:warning'))
      .map((entry): [string, string] => {
        const text = String(entry.data);
        return [/\[ack: ([^\]]+)\]$/.exec(text)?.[1] ?? text, text];
      });
  }
  const devIds = [
    'dify:nobodyAllowed',
    'dify:noAlarmEmail',
    'dify:devProfile',
    'dify:image-not-digest-pinned:api',
    'dify:image-not-digest-pinned:web',
    'dify:image-not-digest-pinned:sandbox',
    'dify:image-not-digest-pinned:pluginDaemon',
  ];

  it('on a dev synth: only catalogued ids, each message ending with how to acknowledge it', () => {
    const warnings = warningsOf(build({ profile: 'dev' }).app);
    expect(warnings.map(([id]) => id).sort()).toEqual([...devIds].sort());
    for (const [id, text] of warnings) {
      expect(text).toContain(acknowledgeHint(id as SynthWarningId));
      expect(text).toContain(`-c acknowledgeWarnings=${id} `);
    }
  });

  it('acknowledged on purpose: those warnings are gone, and the one left out still shows', () => {
    const kept = 'dify:noAlarmEmail';
    // Built, not synthesized: every warning is added while the app is built (test/bin.test.ts runs
    // the real `cdk synth --strict` with every warning of a dev synth acknowledged).
    const context = {
      ...CDK_JSON_CONTEXT,
      profile: 'dev',
      acknowledgeWarnings: devIds.filter((id) => id !== kept).join(','),
    };
    const app = new App({ context });
    createApp(app, parseConfig(context));
    expect(warningsOf(app).map(([id]) => id)).toEqual([kept]);
  });
});
