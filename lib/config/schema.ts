import * as ipaddr from 'ipaddr.js';
import { z } from 'zod';

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
    z.boolean({ error: (issue) => `expected true or false, got ${JSON.stringify(issue.input)}` }),
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
    z.array(item, { error: 'expected a comma-separated list' }),
  );

/** A number as JSON or as the string `-c` delivers; `''` and words are refused, not read as 0 or NaN. */
const num = () =>
  z.preprocess(
    (value) =>
      typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)) ? Number(value) : value,
    z.number({ error: (issue) => `expected a number, got ${JSON.stringify(issue.input)}` }),
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
    return days >= 1 && days <= 1000 ? undefined : `expected rate(N days) with N from 1 to 1000, got ${days} days`;
  }
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (cron === null) {
    return `expected rate(N days) or cron(minutes hours day-of-month month day-of-week year), got '${expression}'`;
  }
  const fields = cron[1].trim().split(/\s+/);
  if (fields.length !== 6)
    return `expected 6 cron fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`;
  if (fields[0] !== '0')
    return `expected the cron minutes field to be 0 (rotation windows start on the hour), got '${fields[0]}'`;
  if (!/^([01]?\d|2[0-3])$/.test(fields[1]))
    return `expected one hour from 0 to 23 in the cron hours field, got '${fields[1]}'`;
  if (fields[2] !== '?' && fields[4] !== '?')
    return "expected '?' in either day-of-month or day-of-week, as cron requires";
  return undefined;
}

/** Exact version tags only: a moving tag such as `latest` makes two deploys of one commit differ. */
const imageTag = (what: string) =>
  z.string().superRefine((tag, ctx) => {
    if (tag.trim().toLowerCase() === 'latest') {
      ctx.addIssue({
        code: 'custom',
        message: `'latest' is refused: pin an exact ${what} release tag so that every deploy of a commit runs the same image`,
      });
    } else if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z][0-9A-Za-z.-]*)?$/.test(tag)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected an exact release tag such as 1.2.3 or 1.2.3-local, got '${tag}'`,
      });
    }
  });

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
      .regex(/^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d$/, { error: 'expected an AWS region name such as eu-west-1' })
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
      .regex(/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]{36}$/, {
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
        error: 'expected a whole number of requests per 5 minutes per client IP, from 10 (the WAF minimum)',
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
      .default('PriceClass_100')
      .describe('CloudFront price class (edge locations used). edge=cloudfront only.'),
    cloudFrontGeoAllowlist: list(
      z.string().regex(/^[A-Z]{2}$/, { error: 'expected ISO 3166-1 alpha-2 country codes such as DE or JP' }),
    )
      .default([])
      .describe('Countries CloudFront serves; empty: no geographic restriction. edge=cloudfront only.'),
    difyVersion: imageTag('Dify')
      .default('1.13.3')
      .describe('Dify release (api, worker, beat, web images). Must match contracts/dify/services.json.'),
    pluginDaemonVersion: imageTag('dify-plugin-daemon')
      .default('0.5.3-local')
      .describe('dify-plugin-daemon image tag that goes with difyVersion.'),
    sandboxVersion: imageTag('dify-sandbox').default('0.2.14').describe('dify-sandbox image tag.'),
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
        error: 'expected Bedrock model ids such as anthropic.claude-3-5-sonnet-20240620-v1:0',
      }),
    )
      .default([])
      .describe('Bedrock model ids the plugin daemon may invoke, and nothing else. Empty: no Bedrock access.'),
    pipMirrorUrl: z
      .url({ protocol: /^https$/, error: 'expected an https:// URL of a PyPI simple index' })
      .optional()
      .describe('PyPI mirror for plugin and sandbox installs. Unset: PyPI through the SSRF proxy.'),
    fargateSpotWorker: bool()
      .default(false)
      .describe('Run the Celery worker on Fargate Spot (interruptible, cheaper). profile=dev only.'),
    gatewayProviderPrivateCidrs: list(
      cidr('ipv4').refine(
        (value) => {
          try {
            return ['private', 'carrierGradeNat'].includes(ipaddr.parseCIDR(value)[0].range());
          } catch {
            return true; // cidr() names the problem
          }
        },
        {
          error: (issue) =>
            `'${String(issue.input)}' is not a private network; expected a block inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10 (link-local addresses, the metadata endpoints, are never allowed)`,
        },
      ),
    )
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
    if (config.certificateArn !== undefined && config.region !== undefined) {
      const certRegion = config.certificateArn.split(':')[3];
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
      for (const key of ['cloudFrontGeoAllowlist'] as const) {
        if (config[key].length > 0) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `applies to edge=cloudfront only (edge is ${config.edge})`,
          });
        }
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
    if (config.profile === 'prod' && config.vpcInterfaceEndpoints === false) {
      ctx.addIssue({
        code: 'custom',
        path: ['vpcInterfaceEndpoints'],
        message:
          'cannot be false in profile prod: prod keeps AWS API traffic on interface endpoints; use profile=dev to turn them off',
      });
    }
  });

/** The validated configuration, with defaults applied. */
export type Config = z.output<typeof configSchema>;

/** Every key the schema knows, in declaration order. */
export const CONFIG_KEYS = Object.keys(configSchema.shape) as (keyof Config)[];

function within(inner: string, outer: string): boolean {
  const [address, prefix] = ipaddr.parseCIDR(inner);
  const [outerAddress, outerPrefix] = ipaddr.parseCIDR(outer);
  return prefix >= outerPrefix && address.kind() === outerAddress.kind() && address.match(outerAddress, outerPrefix);
}
