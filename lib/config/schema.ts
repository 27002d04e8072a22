import { distance } from 'fastest-levenshtein';
import * as ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { AWS_COMMERCIAL_REGIONS, AWS_OTHER_PARTITION_REGIONS } from '../../contracts/aws-regions';
import { DIFY_RELEASE_TAGS } from '../../contracts/dify-release';
import { SYNTH_WARNING_IDS } from './warning-catalog';

/**
 * The one source of every configuration key: its type, its default and a one-line description.
 *
 * Values arrive from `cdk.json` context (JSON types) or from `-c key=value` (always strings), so
 * every non-string field accepts its string form too. The README's parameter table is generated
 * from this schema by `npm run docs`.
 */

/** `true`/`false` as a boolean or as the string `-c` delivers. Anything else is refused, not coerced. */
const bool = () =>
  z.preprocess(
    (value) => {
      if (typeof value !== 'string') return value;
      const normalized = value.trim().toLowerCase();
      if (normalized === 'true') return true;
      if (normalized === 'false') return false;
      return value;
    },
    // The value given is named by load.ts, once, in front of every message that starts with "expected".
    z.boolean({ error: 'expected true or false' }),
  );

/** A list given as a JSON array in cdk.json or as a comma-separated string with `-c`. */
const list = <T extends z.ZodType>(item: T) =>
  z.preprocess(
    (value) =>
      typeof value === 'string'
        ? value
            .split(',')
            .map((part) => part.trim())
            .filter((part) => part !== '')
        : value,
    z.array(item, { error: 'expected a comma-separated list (a JSON array in cdk.json)' }),
  );

/** A number as JSON or as the string `-c` delivers; `''` and words are refused, not read as 0 or NaN. */
const num = () =>
  z.preprocess(
    (value) =>
      typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)) ? Number(value) : value,
    z.number({ error: 'expected a number' }),
  );

/** Quarterly, as Dify's security guide asks: the first Sunday of January, April, July and October, 03:00 UTC. */
export const DEFAULT_ROTATION_SCHEDULE = 'cron(0 3 ? 1/3 SUN#1 *)';

/**
 * What is wrong with a rotation schedule, or undefined: `rate(N days)` for N from 1 to 1000, or a
 * six-field `cron(minutes hours day-of-month month day-of-week year)` at a whole hour, as Secrets
 * Manager accepts them (it checks the fields' contents at deploy).
 */
export function rotationScheduleProblem(expression: string): string | undefined {
  const rate = /^rate\((\d+) days?\)$/.exec(expression);
  if (rate !== null) {
    const days = Number(rate[1]);
    return days >= 1 && days <= 1000 ? undefined : `expected rate(N days) with N from 1 to 1000, not ${days}`;
  }
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (cron === null) {
    return 'expected rate(N days) or cron(minutes hours day-of-month month day-of-week year)';
  }
  const fields = cron[1].trim().split(/\s+/);
  if (fields.length !== 6)
    return `expected 6 cron fields (minutes hours day-of-month month day-of-week year), not ${fields.length}`;
  if (fields[0] !== '0')
    return `expected the cron minutes field to be 0 (rotation windows start on the hour), not '${fields[0]}'`;
  if (!/^([01]?\d|2[0-3])$/.test(fields[1]))
    return `expected one hour from 0 to 23 in the cron hours field, not '${fields[1]}'`;
  if (fields[2] !== '?' && fields[4] !== '?')
    return "expected '?' in either day-of-month or day-of-week, as cron requires";
  return undefined;
}

/** An exact release tag: 1.2.3, or 1.2.3-suffix. */
const RELEASE_TAG = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z][0-9A-Za-z.-]*)?$/;

/** Exact version tags only: a moving tag such as `latest` makes two deploys of one commit differ. */
const imageTag = (what: string, example: string) =>
  z.string().superRefine((tag, ctx) => {
    if (tag.trim().toLowerCase() === 'latest') {
      ctx.addIssue({
        code: 'custom',
        message: `expected an exact ${what} release tag such as ${example} ('latest' is refused: pin an exact ${what} release tag so that every deploy of a commit runs the same image)`,
      });
    } else if (!RELEASE_TAG.test(tag)) {
      ctx.addIssue({ code: 'custom', message: `expected an exact ${what} release tag such as ${example}` });
    }
  });

/**
 * What is wrong with a region name, or undefined: the app deploys to commercial AWS regions, the
 * ones contracts/aws-regions.ts lists. A near miss gets the nearest names; a region of another
 * partition is named as such rather than as a typo.
 */
export function regionProblem(region: string): string | undefined {
  if (Object.hasOwn(AWS_COMMERCIAL_REGIONS, region)) return undefined;
  const other = Object.hasOwn(AWS_OTHER_PARTITION_REGIONS, region) ? AWS_OTHER_PARTITION_REGIONS[region] : undefined;
  if (other !== undefined) {
    return `expected a commercial AWS region: that is ${other.description}, in the ${other.partition} partition, where this app is neither built nor tested (its CloudFront edge stack lives in us-east-1 of the aws partition)`;
  }
  const names = Object.keys(AWS_COMMERCIAL_REGIONS);
  const distances = names.map((name) => distance(region.toLowerCase(), name));
  const nearest = Math.min(...distances);
  if (nearest <= 2) {
    const guesses = names.filter((_name, index) => distances[index] === nearest).map((name) => `'${name}'`);
    const options = guesses.length === 1 ? guesses[0] : `${guesses.slice(0, -1).join(', ')} or ${guesses.at(-1)}`;
    return `expected an AWS region name; did you mean ${options}?`;
  }
  return `expected an AWS region name such as eu-west-1, one of: ${names.join(', ')}`;
}

/** An ACM certificate ARN; the first group is its region. */
const CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[0-9a-f-]{36}$/;

function cidr(family: 'ipv4' | 'ipv6') {
  const kind = family === 'ipv4' ? 'IPv4' : 'IPv6';
  const example = family === 'ipv4' ? '203.0.113.0/24' : '2001:db8::/32';
  return z.string().superRefine((value, ctx) => {
    let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
    try {
      parsed = ipaddr.parseCIDR(value);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: `'${value}' is not an ${kind} CIDR; expected a block such as ${example}`,
      });
      return;
    }
    const [address, prefix] = parsed;
    if (address.kind() !== family) {
      ctx.addIssue({
        code: 'custom',
        message: `'${value}' is not an ${kind} CIDR; expected a block such as ${example}`,
      });
      return;
    }
    const network =
      family === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(value) : ipaddr.IPv6.networkAddressFromCIDR(value);
    if (network.toString() !== address.toString()) {
      ctx.addIssue({
        code: 'custom',
        message: `'${value}' has host bits set; expected the network address, '${network.toString()}/${prefix}'`,
      });
    }
  });
}

/**
 * A private IPv4 network (RFC 1918 or shared address space), never link-local: where a route the
 * operator owns leads. `note` is added to the refusal.
 */
function privateCidr(note = '') {
  return cidr('ipv4').refine(
    (value) => {
      try {
        return ['private', 'carrierGradeNat'].includes(ipaddr.parseCIDR(value)[0].range());
      } catch {
        return true; // cidr() names the problem
      }
    },
    {
      error: (issue) =>
        `'${String(issue.input)}' is not a private network; expected a block inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10${note}`,
    },
  );
}

const hostname = z.string().regex(/^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, {
  error: 'expected a lower-case DNS name such as dify.example.com',
});

export const configSchema = z
  .object({
    platform: z
      .enum(['ecs', 'eks'])
      .default('ecs')
      .describe('Container platform for Dify: ECS Fargate (ecs) or EKS (eks).'),
    profile: z
      .enum(['dev', 'prod'])
      .default('dev')
      .describe('Sizing profile: sets capacity, Multi-AZ, deletion protection, retention, NAT count and endpoints.'),
    stackName: z
      .string()
      .regex(/^[A-Za-z](?:-?[A-Za-z0-9]){0,55}$/, {
        // The Aurora cluster identifier is `<stackName>-aurora`: 63 characters, no double or trailing hyphen.
        error: 'expected a letter, then letters, digits and single hyphens (not at the end), 56 characters at most',
      })
      .default('Dify')
      .describe('Name of the main CloudFormation stack; also prefixes log group names.'),
    account: z
      .string()
      .regex(/^\d{12}$/, { error: 'expected a 12-digit AWS account id' })
      .optional()
      .describe('AWS account to deploy to. Unset: environment-agnostic, resolved at deploy time.'),
    region: z
      .string()
      .superRefine((region, ctx) => {
        const problem = regionProblem(region);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default('us-east-1')
      .describe('AWS region of the main stack. A concrete default lets the us-east-1 edge stack reference it offline.'),
    edge: z
      .enum(['cloudfront', 'alb', 'internal'])
      .default('cloudfront')
      .describe(
        'Front door: CloudFront with a VPC origin to an internal ALB, an internet-facing ALB, or an internal ALB only.',
      ),
    domainName: hostname
      .optional()
      .describe(
        'Public name of Dify, e.g. dify.example.com; required in profile prod. Needs hostedZoneId and hostedZoneName, or certificateArn.',
      ),
    hostedZoneId: z
      .string()
      .regex(/^Z[A-Z0-9]{1,32}$/, { error: 'expected a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ' })
      .optional()
      .describe('Route 53 hosted zone id for domainName, used for DNS validation and alias records.'),
    hostedZoneName: hostname
      .optional()
      .describe('Route 53 hosted zone name that contains domainName, e.g. example.com.'),
    certificateArn: z
      .string()
      .regex(CERTIFICATE_ARN, {
        error: 'expected an ACM certificate ARN such as arn:aws:acm:eu-west-1:123456789012:certificate/<uuid>',
      })
      .optional()
      .describe('Existing ACM certificate for domainName, instead of a DNS-validated one.'),
    allowedIpv4Cidrs: list(cidr('ipv4'))
      .default([])
      .describe('IPv4 networks allowed to reach Dify. Empty: nobody. 0.0.0.0/0 is allowed but warned about.'),
    allowedIpv6Cidrs: list(cidr('ipv6'))
      .default([])
      .describe('IPv6 networks allowed to reach Dify. Empty: nobody. ::/0 is allowed but warned about.'),
    wafRateLimit: num()
      .refine((limit) => Number.isInteger(limit) && limit >= 10 && limit <= 2_000_000_000, {
        error:
          'expected a whole number of requests per 5 minutes per client IP, from 10 (the WAF minimum) to 2000000000 (the WAF maximum)',
      })
      .default(1000)
      .describe('WAF rate limit: requests per client IP in any 5 minutes before it is blocked.'),
    wafLoginRateLimit: num()
      .refine((limit) => Number.isInteger(limit) && limit >= 10 && limit <= 10_000, {
        error:
          'expected a whole number of console sign-in attempts per 5 minutes per client IP, from 10 (the WAF minimum) to 10000',
      })
      .default(30)
      .describe(
        'WAF sign-in limit: console sign-in attempts per client IP in any 5 minutes before it is refused (429), whatever the e-mail address.',
      ),
    wafAnonymousIpList: bool()
      .default(false)
      .describe('Also block VPNs, proxies, Tor and hosting providers (AWS managed anonymous-IP list).'),
    uploadFileSizeLimitMb: num()
      .refine((mb) => Number.isInteger(mb) && mb >= 1 && mb <= 1024, {
        error: 'expected whole megabytes from 1 to 1024',
      })
      .default(15)
      .describe("Dify's UPLOAD_FILE_SIZE_LIMIT; the front door lets bodies this large through on upload paths only."),
    cloudFrontPriceClass: z
      .enum(['PriceClass_100', 'PriceClass_200', 'PriceClass_All'])
      .optional()
      .describe('CloudFront price class (edge locations used). Unset: PriceClass_100. edge=cloudfront only.'),
    cloudFrontGeoAllowlist: list(
      z.string().regex(/^[A-Z]{2}$/, { error: 'expected an ISO 3166-1 alpha-2 country code such as DE or JP' }),
    )
      .default([])
      .describe('Countries CloudFront serves; empty: no geographic restriction. edge=cloudfront only.'),
    difyVersion: imageTag('Dify', DIFY_RELEASE_TAGS.dify)
      .default(DIFY_RELEASE_TAGS.dify)
      .describe(
        'Dify release (api, worker, beat, web images). Must be the one contracts/dify/services.json describes, unless difyVersionUnchecked=true.',
      ),
    pluginDaemonVersion: imageTag('dify-plugin-daemon', DIFY_RELEASE_TAGS.pluginDaemon)
      .default(DIFY_RELEASE_TAGS.pluginDaemon)
      .describe(
        "dify-plugin-daemon image tag: the one difyVersion's compose file runs (contracts/dify/services.json), unless difyVersionUnchecked=true.",
      ),
    sandboxVersion: imageTag('dify-sandbox', DIFY_RELEASE_TAGS.sandbox)
      .default(DIFY_RELEASE_TAGS.sandbox)
      .describe(
        "dify-sandbox image tag: the one difyVersion's compose file runs (contracts/dify/services.json), unless difyVersionUnchecked=true.",
      ),
    difyVersionUnchecked: bool()
      .default(false)
      .describe(
        'Deploy a difyVersion, pluginDaemonVersion or sandboxVersion that contracts/dify/services.json does not describe. Synth then warns (dify:difyVersionUnchecked) that their environment variables, ports, health checks and pairing are not checked.',
      ),
    acknowledgeWarnings: list(z.enum(SYNTH_WARNING_IDS))
      .default([])
      .describe(
        'Synth warning ids accepted on purpose (README: Synth warnings), e.g. dify:devProfile,dify:noAlarmEmail: an acknowledged warning is not shown and does not fail `cdk synth --strict`.',
      ),
    vpcCidr: cidr('ipv4')
      .refine((value) => Number(value.split('/')[1]) <= 18, {
        error: 'expected a prefix of /18 or larger: nine /22 subnets (three tiers in up to three zones) must fit',
      })
      .refine((value) => ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].some((range) => within(value, range)), {
        error: 'expected a private (RFC 1918) range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16',
      })
      .default('10.0.0.0/16')
      .describe('IPv4 range of the VPC.'),
    databaseMaxCapacity: num()
      .refine((acu) => acu >= 1 && acu <= 256 && Number.isInteger(acu * 2), {
        error: 'expected Aurora capacity units from 1 to 256, in steps of 0.5',
      })
      .optional()
      .describe('Upper bound of Aurora Serverless v2 capacity, in ACU. Unset: 4 in dev, 16 in prod.'),
    vpcInterfaceEndpoints: bool()
      .optional()
      .describe(
        'Extra interface endpoints (KMS, Bedrock runtime) in dev; always on in prod. ECR, Logs and Secrets Manager always have one.',
      ),
    enableExec: bool()
      .default(false)
      .describe(
        'ECS Exec into Dify containers, for incidents. Turns read-only root filesystems off (its agent writes there).',
      ),
    bedrockModels: list(
      z.string().regex(/^(?:[a-z]{2}\.)?[a-z0-9-]+\.[A-Za-z0-9._:-]+$/, {
        error: 'expected a Bedrock model id such as anthropic.claude-3-5-sonnet-20240620-v1:0',
      }),
    )
      .default([])
      .describe('Bedrock model ids the plugin daemon may invoke, and nothing else. Empty: no Bedrock access.'),
    pipMirrorUrl: z
      .url({ protocol: /^https$/, error: 'expected an https:// URL of a PyPI simple index' })
      .optional()
      .describe('PyPI mirror for plugin and sandbox installs. Unset: PyPI through the SSRF proxy.'),
    egress: z
      .enum(['nat', 'none'])
      .default('nat')
      .describe(
        'Way out of the VPC for the tasks: nat (NAT gateways; the SSRF proxy and the LLM gateway reach the internet) or none (no NAT, no internet; see Closed network in the README).',
      ),
    mirrorPrivateCidrs: list(privateCidr())
      .default([])
      .describe(
        "Private networks outside the VPC where pipMirrorUrl's host answers; the SSRF proxy lets HTTPS to that host there through. Required with egress=none.",
      ),
    fargateSpotWorker: bool()
      .default(false)
      .describe('Run the Celery worker on Fargate Spot (interruptible, cheaper). profile=dev only.'),
    gatewayProviderPrivateCidrs: list(privateCidr(' (link-local addresses, the metadata endpoints, are never allowed)'))
      .default([])
      .describe(
        'Private networks the LLM gateway may send provider keys to (an in-VPC model server). Empty: public provider addresses only.',
      ),
    eksIsolatedSandbox: bool()
      .default(false)
      .describe(
        'platform=eks: run the sandbox and the plugin daemon in a VM per pod (EKS Nitro Sandboxes, runtime class isolated-sandbox), not only on their own tainted nodes.',
      ),
    rotationSchedule: z
      .string()
      .superRefine((expression, ctx) => {
        const problem = rotationScheduleProblem(expression);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default(DEFAULT_ROTATION_SCHEDULE)
      .describe(
        'When the scheduled secrets rotate, in UTC: a Secrets Manager schedule expression, rate(N days) or cron(...). Default: the first Sunday of each quarter at 03:00.',
      ),
    rotationWindowHours: num()
      .refine((hours) => Number.isInteger(hours) && hours >= 1 && hours <= 24, {
        error: 'expected whole hours from 1 to 24',
      })
      .default(3)
      .describe('How long each rotation window lasts from the scheduled time, in hours.'),
    s3DataEvents: bool()
      .optional()
      .describe(
        'Record every object read and write of the storage buckets (CloudTrail data events, $0.10 per 100,000). Default: on in prod, off in dev.',
      ),
    guardDuty: bool()
      .default(false)
      .describe(
        'Create a GuardDuty detector with runtime monitoring (ECS and EKS) and EKS audit logs. Off: one detector per account and region, often run by the organization.',
      ),
    securityHub: bool()
      .default(false)
      .describe(
        'Enable Security Hub with AWS Foundational Security Best Practices. Off: one hub per account and region, often run by the organization.',
      ),
    email: bool()
      .default(false)
      .describe(
        "Send Dify's invitations and password resets through Amazon SES from domainName (needs hostedZoneId and hostedZoneName): DKIM records in the zone, SMTP credentials generated into Secrets Manager.",
      ),
    emailFrom: z
      .email({
        error: (issue) =>
          `expected an e-mail address such as no-reply@dify.example.com, got ${JSON.stringify(issue.input)}`,
      })
      .optional()
      .describe("Sender address of Dify's e-mail, at domainName. Unset: no-reply@<domainName>. email=true only."),
    emailCredentialsGeneration: num()
      .refine((generation) => Number.isInteger(generation) && generation >= 1, {
        error: (issue) => `expected a whole number from 1, got ${JSON.stringify(issue.input)}`,
      })
      .default(1)
      .describe('Raise it by one and deploy to replace the SES SMTP access key (README: Email). email=true only.'),
    alarmEmail: z
      .email({ error: 'expected an e-mail address such as ops@example.com' })
      .optional()
      .describe('Address subscribed to alarm notifications. Unset: alarms publish to a topic with no subscriber.'),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.platform === 'eks') {
      // Settings of ECS's own machinery have no meaning on EKS: refuse them rather than ignore them.
      for (const [key, why] of [
        [
          'enableExec',
          'ECS Exec; on EKS, respond to an incident with dify-aws as the incident-responder role (output ResponderRoleArn), or with kubectl from inside the VPC as the break-glass role (output BreakGlassRoleArn)',
        ],
        ['fargateSpotWorker', 'Fargate Spot; EKS Auto Mode chooses the worker nodes'],
      ] as const) {
        if (config[key])
          ctx.addIssue({ code: 'custom', path: [key], message: `is ${why}; unset it with platform=eks` });
      }
    } else if (config.eksIsolatedSandbox) {
      ctx.addIssue({
        code: 'custom',
        path: ['eksIsolatedSandbox'],
        message:
          'runs the sandbox in EKS Nitro Sandboxes; it needs platform=eks (ECS Fargate already gives every task its own VM)',
      });
    }
    const rateDays = /^rate\((\d+) days?\)$/.exec(config.rotationSchedule)?.[1];
    if (rateDays !== undefined && config.rotationWindowHours >= Number(rateDays) * 24) {
      ctx.addIssue({
        code: 'custom',
        path: ['rotationWindowHours'],
        message: `must be shorter than the rotation interval (${rateDays} day(s) from rotationSchedule); got ${config.rotationWindowHours} hours`,
      });
    }
    if (config.profile === 'prod' && config.domainName === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['domainName'],
        message:
          'required with profile=prod: without a domain of your own CloudFront serves its default *.cloudfront.net certificate, whose fixed policy still accepts TLS 1.0; pass domainName with hostedZoneId and hostedZoneName, or with certificateArn (profile=dev may go without)',
      });
    }
    if (config.hostedZoneId !== undefined && config.hostedZoneName === undefined) {
      ctx.addIssue({ code: 'custom', path: ['hostedZoneName'], message: 'required when hostedZoneId is set' });
    }
    if (config.hostedZoneName !== undefined && config.hostedZoneId === undefined) {
      ctx.addIssue({ code: 'custom', path: ['hostedZoneId'], message: 'required when hostedZoneName is set' });
    }
    if (config.domainName === undefined) {
      for (const key of ['hostedZoneId', 'hostedZoneName', 'certificateArn'] as const) {
        if (config[key] !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['domainName'],
            message: `required when ${key} is set: the name that the certificate covers and Dify's URLs use`,
          });
        }
      }
    } else {
      if (config.hostedZoneId === undefined && config.certificateArn === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['domainName'],
          message: 'needs either hostedZoneId and hostedZoneName (for a DNS-validated certificate) or certificateArn',
        });
      }
      const zone = config.hostedZoneName;
      if (zone !== undefined && config.domainName !== zone && !config.domainName.endsWith(`.${zone}`)) {
        ctx.addIssue({
          code: 'custom',
          path: ['domainName'],
          message: `'${config.domainName}' is not inside hostedZoneName '${zone}'; expected ${zone} or a name ending in .${zone}`,
        });
      }
    }
    // A malformed ARN is named by its own check; only a well-formed one has a region to compare.
    const certRegion =
      config.certificateArn === undefined ? undefined : CERTIFICATE_ARN.exec(config.certificateArn)?.[1];
    if (certRegion !== undefined) {
      if (certRegion !== config.region) {
        ctx.addIssue({
          code: 'custom',
          path: ['certificateArn'],
          message: `is in ${certRegion} but region is ${config.region}; a load balancer certificate must be in the stack's region`,
        });
      }
    }
    if (config.edge === 'cloudfront' && config.certificateArn !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['certificateArn'],
        message:
          'applies to edge=alb or edge=internal; edge=cloudfront issues its certificates by DNS in the hosted zone, so set hostedZoneId and hostedZoneName instead',
      });
    }
    if (config.edge !== 'cloudfront') {
      if (config.domainName === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['domainName'],
          message: `required with edge=${config.edge}: the load balancer serves HTTPS only and needs a certificate for a name (or use edge=cloudfront)`,
        });
      }
      if (config.allowedIpv6Cidrs.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['allowedIpv6Cidrs'],
          message: `applies to edge=cloudfront only: with edge=${config.edge} the load balancer is IPv4-only, so an IPv6 entry would admit nobody`,
        });
      }
      // CloudFront's own settings: with no distribution they would be ignored, so they are refused.
      for (const [key, what] of [
        ['cloudFrontPriceClass', "chooses CloudFront's edge locations"],
        ['cloudFrontGeoAllowlist', 'sets which countries CloudFront serves'],
      ] as const) {
        const value = config[key];
        if (value !== undefined && value.length > 0) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `expected no ${key} with edge=${config.edge}: it ${what}, and edge=${config.edge} has no CloudFront distribution; unset it, or use edge=cloudfront`,
          });
        }
      }
    }
    if (!config.difyVersionUnchecked) {
      const release = `Dify ${DIFY_RELEASE_TAGS.dify}`;
      const override =
        "Write the new release's contract first (npm run contract:refresh -- <services.json>), or set -c difyVersionUnchecked=true to deploy it with its environment variables, ports, health checks and pairing unchecked";
      for (const [key, , described] of uncheckedVersions(config)) {
        const what =
          key === 'difyVersion'
            ? 'the release contracts/dify/services.json describes'
            : `the ${key === 'pluginDaemonVersion' ? 'plugin daemon' : 'sandbox'} release that ${release}'s compose file runs (contracts/dify/services.json)`;
        ctx.addIssue({ code: 'custom', path: [key], message: `expected ${described}, ${what}. ${override}.` });
      }
    }
    if (config.profile === 'prod' && config.fargateSpotWorker) {
      ctx.addIssue({
        code: 'custom',
        path: ['fargateSpotWorker'],
        message:
          'is for profile=dev only: Spot can reclaim a worker mid-task, and prod keeps queued work on on-demand capacity',
      });
    }
    closedNetworkProblems(config).forEach((problem) => ctx.addIssue({ code: 'custom', ...problem }));
    const emailProblem = emailConfigProblem(config);
    if (emailProblem !== undefined) ctx.addIssue({ code: 'custom', ...emailProblem });
    if (config.profile === 'prod' && config.vpcInterfaceEndpoints === false) {
      ctx.addIssue({
        code: 'custom',
        path: ['vpcInterfaceEndpoints'],
        message:
          'cannot be false in profile prod: prod keeps AWS API traffic on interface endpoints; use profile=dev to turn them off',
      });
    }
  });

/**
 * What egress=none refuses, and what a private package mirror needs, as issues naming their key:
 * every setting that needs the internet from a task, and every way out that must be named instead.
 */
function closedNetworkProblems(config: {
  readonly egress: 'nat' | 'none';
  readonly platform: 'ecs' | 'eks';
  readonly vpcInterfaceEndpoints?: boolean;
  readonly pipMirrorUrl?: string;
  readonly mirrorPrivateCidrs: readonly string[];
  readonly bedrockModels: readonly string[];
  readonly gatewayProviderPrivateCidrs: readonly string[];
  readonly vpcCidr: string;
}): Array<{ path: string[]; message: string }> {
  const problems: Array<{ path: string[]; message: string }> = [];
  const refuse = (key: string, message: string) => problems.push({ path: [key], message });
  if (config.mirrorPrivateCidrs.length > 0 && config.pipMirrorUrl === undefined) {
    refuse('pipMirrorUrl', 'required when mirrorPrivateCidrs is set: the mirror those networks hold');
  }
  for (const network of config.mirrorPrivateCidrs) {
    if (overlaps(network, config.vpcCidr)) {
      refuse(
        'mirrorPrivateCidrs',
        `'${network}' overlaps vpcCidr ${config.vpcCidr}; expected networks outside the VPC (the SSRF proxy never lets traffic into the VPC)`,
      );
    }
  }
  if (config.mirrorPrivateCidrs.length > 0 && config.platform === 'eks') {
    refuse(
      'mirrorPrivateCidrs',
      "applies to platform=ecs only: on EKS the SSRF proxy's NetworkPolicy admits public addresses only",
    );
  }
  if (config.egress !== 'none') return problems;
  const closed = 'with egress=none (no NAT gateway, no internet from any task)';
  if (config.platform === 'eks') {
    refuse(
      'egress',
      `'none' is refused with platform=eks: EKS Auto Mode's nodes and add-ons (the CloudWatch agent, the Secrets Store CSI provider) call AWS APIs this deployment has no endpoint for, so the cluster would not run ${closed}; use platform=ecs or egress=nat`,
    );
  }
  if (config.vpcInterfaceEndpoints === false) {
    refuse(
      'vpcInterfaceEndpoints',
      `cannot be false ${closed}: KMS and Bedrock are then reachable only through their interface endpoints; leave it unset`,
    );
  }
  if (config.pipMirrorUrl === undefined) {
    refuse(
      'pipMirrorUrl',
      `required ${closed}: plugins and sandbox dependencies install from this mirror, as PyPI is out of reach`,
    );
  }
  if (config.mirrorPrivateCidrs.length === 0) {
    refuse(
      'mirrorPrivateCidrs',
      `required ${closed}: the private networks where pipMirrorUrl's host answers (reached over your Transit Gateway, VPN or peering route), the only place the SSRF proxy may connect to`,
    );
  }
  if (config.bedrockModels.length === 0 && config.gatewayProviderPrivateCidrs.length === 0) {
    refuse(
      'egress',
      `'none' needs a way to a model: set bedrockModels (Bedrock through its interface endpoint) or gatewayProviderPrivateCidrs (the LLM gateway's providers on private networks); ${closed} Dify has no other path to a model`,
    );
  }
  return problems;
}

/** Whether two IPv4 CIDRs share an address. */
function overlaps(a: string, b: string): boolean {
  return within(a, b) || within(b, a);
}

/**
 * What is wrong with the e-mail settings, or undefined. SES verifies the domain by DKIM records that
 * the stack writes into the hosted zone, so e-mail needs the zone; the sender must be at the domain
 * the identity verifies.
 */
function emailConfigProblem(config: {
  email: boolean;
  emailFrom?: string;
  emailCredentialsGeneration: number;
  domainName?: string;
  hostedZoneId?: string;
}): { path: string[]; message: string } | undefined {
  if (!config.email) {
    if (config.emailFrom !== undefined)
      return { path: ['emailFrom'], message: `applies to email=true only (email is false); got '${config.emailFrom}'` };
    if (config.emailCredentialsGeneration !== 1)
      return {
        path: ['emailCredentialsGeneration'],
        message: `applies to email=true only (email is false); got ${config.emailCredentialsGeneration}`,
      };
    return undefined;
  }
  if (config.domainName === undefined || config.hostedZoneId === undefined) {
    return {
      path: ['email'],
      message:
        'needs domainName with hostedZoneId and hostedZoneName: SES verifies the domain through DKIM records the stack writes into that Route 53 zone',
    };
  }
  if (config.emailFrom !== undefined && config.emailFrom.split('@')[1]?.toLowerCase() !== config.domainName) {
    return {
      path: ['emailFrom'],
      message: `'${config.emailFrom}' is not at domainName '${config.domainName}'; expected an address such as no-reply@${config.domainName} (SES sends only from the verified domain)`,
    };
  }
  return undefined;
}

/**
 * The image tags that differ from the ones the release contract describes, each as
 * `[key, given, described]`. Tags the schema refuses anyway (`latest`, a branch name) are left out.
 */
export function uncheckedVersions(config: {
  readonly difyVersion: string;
  readonly pluginDaemonVersion: string;
  readonly sandboxVersion: string;
}) {
  return (
    [
      ['difyVersion', config.difyVersion, DIFY_RELEASE_TAGS.dify],
      ['pluginDaemonVersion', config.pluginDaemonVersion, DIFY_RELEASE_TAGS.pluginDaemon],
      ['sandboxVersion', config.sandboxVersion, DIFY_RELEASE_TAGS.sandbox],
    ] as const
  ).filter(([, given, described]) => given !== described && RELEASE_TAG.test(String(given)));
}

/** The validated configuration, with defaults applied. */
export type Config = z.output<typeof configSchema>;

/** Every key the schema knows, in declaration order. */
export const CONFIG_KEYS = Object.keys(configSchema.shape) as (keyof Config)[];

function within(inner: string, outer: string): boolean {
  const [address, prefix] = ipaddr.parseCIDR(inner);
  const [outerAddress, outerPrefix] = ipaddr.parseCIDR(outer);
  return prefix >= outerPrefix && address.kind() === outerAddress.kind() && address.match(outerAddress, outerPrefix);
}
