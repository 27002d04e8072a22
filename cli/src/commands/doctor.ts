import { GetDistributionConfigCommand } from '@aws-sdk/client-cloudfront';
import { DescribeClusterCommand } from '@aws-sdk/client-eks';
import { DescribeUsersCommand } from '@aws-sdk/client-elasticache';
import {
  DescribeListenersCommand,
  DescribeLoadBalancerAttributesCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { DescribeDBClustersCommand } from '@aws-sdk/client-rds';
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { ListSubscriptionsByTopicCommand } from '@aws-sdk/client-sns';
import { GetWebACLForResourceCommand } from '@aws-sdk/client-wafv2';
import type { Command, Options } from '../command';
import type { Context } from '../context';
import { CliError, explainError } from '../errors';
import { table } from '../io';
import { wholeNumber } from '../spec';
import { OUTPUTS } from '../../../contracts/stack-outputs';
import { scheduled, SECRETS, type SecretEntry } from '../../../contracts/secrets';
import {
  containersPolicy,
  CONTROL_PLANE_LOG_TYPES,
  DEFAULT_DENY_POLICY,
  NAMESPACES,
  type NamespaceSpec,
  podSecurityLabels,
  TRUSTED_IMAGES_POLICY,
} from '../../../contracts/kubernetes';
import { askCluster, platformOf } from '../cluster';
import { keyAgeDays, poolKeys, readPool } from './keys';
import { interruptedRotation } from './secrets';
import { pepperRotationBlockersOf } from './clients';
import { currentVersionOf } from '../../../contracts/rotation';
import { alarmChecks } from './doctor-alarms';

export interface Finding {
  readonly check: string;
  readonly target: string;
  readonly status: 'PASS' | 'WARN' | 'FAIL';
  readonly detail: string;
}

/** ALB policies that allow only TLS 1.2 and 1.3 with forward-secret ciphers. */
export const APPROVED_ALB_POLICIES = /^ELBSecurityPolicy-TLS13-1-[23]-/;
/** CloudFront's minimum viewer protocols at TLS 1.2 or later. */
const APPROVED_CLOUDFRONT = ['TLSv1.2_2018', 'TLSv1.2_2019', 'TLSv1.2_2021', 'TLSv1.3_2025'];

/**
 * Secrets the operator rotates with `dify-aws secrets rotate` (or by hand), by output, and what rotates
 * them: from the stack's secret catalogue (contracts/secrets.ts).
 */
const OPERATOR_ROTATED: Record<string, string> = Object.fromEntries(
  Object.values(SECRETS as Record<string, SecretEntry>).flatMap((entry) =>
    entry.rotation.by === 'cli' && entry.rotation.routine !== false ? [[entry.output, entry.rotation.name]] : [],
  ),
);

const DAY = 86_400_000;

/**
 * Checks a deployed stack against the posture this project deploys: TLS policies, WAF in front,
 * deletion protection in prod, secret rotation and ages, and someone subscribed to the alarms.
 * Prints a table and exits non-zero on any FAIL; WARN does not fail.
 */
export async function doctor(ctx: Context, options: Options) {
  const stack = await ctx.stack();
  const findings: Finding[] = [];
  const add = (check: string, target: string, status: Finding['status'], detail: string) =>
    findings.push({ check, target, status, detail });
  const guard = async (check: string, target: string, body: () => Promise<void>) => {
    try {
      await body();
    } catch (error) {
      add(check, target, 'FAIL', `could not check: ${explainError(error)}`);
    }
  };
  const now = ctx.now().getTime();
  // Both checked before any AWS call (DOCTOR below).
  const maxAgeDays = options['max-age-days'] === undefined ? 90 : Number(options['max-age-days']);
  // Provider keys cannot rotate themselves; GPT-Load's guide says to change keys every three to six months.
  const maxKeyAgeDays = options['max-key-age-days'] === undefined ? 180 : Number(options['max-key-age-days']);
  const lb = stack.get(OUTPUTS.loadBalancerArn);
  const distribution = stack.has(OUTPUTS.distributionId) ? stack.get(OUTPUTS.distributionId) : undefined;

  await guard('tls', 'load balancer', async () => {
    const listeners = (await ctx.elb().send(new DescribeListenersCommand({ LoadBalancerArn: lb }))).Listeners ?? [];
    for (const l of listeners) {
      if (l.Protocol === 'HTTPS') {
        const ok = APPROVED_ALB_POLICIES.test(l.SslPolicy ?? '');
        add(
          'tls',
          `listener ${l.Port}`,
          ok ? 'PASS' : 'FAIL',
          `${l.SslPolicy}${ok ? '' : ': expected ELBSecurityPolicy-TLS13-1-2-2021-06 or newer'}`,
        );
      } else if (l.DefaultActions?.some((a) => a.Type === 'redirect' && a.RedirectConfig?.Protocol === 'HTTPS')) {
        add('tls', `listener ${l.Port}`, 'PASS', 'HTTP redirects to HTTPS');
      } else if (distribution !== undefined) {
        add(
          'tls',
          `listener ${l.Port}`,
          'WARN',
          'HTTP inside the VPC from CloudFront only; set domainName to make this hop HTTPS',
        );
      } else add('tls', `listener ${l.Port}`, 'FAIL', 'plain HTTP served to clients');
    }
  });
  if (distribution !== undefined) {
    await guard('tls', 'cloudfront', async () => {
      const config = (await ctx.cloudFront().send(new GetDistributionConfigCommand({ Id: distribution })))
        .DistributionConfig;
      const certificate = config?.ViewerCertificate;
      if (certificate?.CloudFrontDefaultCertificate === true) {
        // Acceptable to try the stack out (dev); never for production, which synth refuses too.
        const prod = stack.get(OUTPUTS.profile) === 'prod';
        add(
          'tls',
          'cloudfront',
          prod ? 'FAIL' : 'WARN',
          `default *.cloudfront.net certificate: CloudFront then accepts TLS 1.0; set domainName${prod ? ' (required in profile prod)' : ''}`,
        );
      } else {
        const version = certificate?.MinimumProtocolVersion ?? '';
        add(
          'tls',
          'cloudfront',
          APPROVED_CLOUDFRONT.includes(version) ? 'PASS' : 'FAIL',
          version || 'no minimum protocol version',
        );
      }
      add(
        'waf',
        'cloudfront',
        config?.WebACLId ? 'PASS' : 'FAIL',
        config?.WebACLId ? 'web ACL attached' : 'no web ACL',
      );
    });
  } else {
    await guard('waf', 'load balancer', async () => {
      const acl = (await ctx.waf().send(new GetWebACLForResourceCommand({ ResourceArn: lb }))).WebACL;
      add('waf', 'load balancer', acl ? 'PASS' : 'FAIL', acl ? `web ACL ${acl.Name}` : 'no web ACL');
    });
  }

  if (stack.get(OUTPUTS.profile) === 'prod') {
    await guard('deletion protection', 'aurora', async () => {
      const cluster = (
        await ctx
          .rds()
          .send(new DescribeDBClustersCommand({ DBClusterIdentifier: stack.get(OUTPUTS.databaseClusterArn) }))
      ).DBClusters?.[0];
      add(
        'deletion protection',
        'aurora',
        cluster?.DeletionProtection ? 'PASS' : 'FAIL',
        cluster?.DeletionProtection ? 'on' : 'off',
      );
    });
    await guard('deletion protection', 'load balancer', async () => {
      const attributes =
        (await ctx.elb().send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerArn: lb }))).Attributes ?? [];
      const on = attributes.some((a) => a.Key === 'deletion_protection.enabled' && a.Value === 'true');
      add('deletion protection', 'load balancer', on ? 'PASS' : 'FAIL', on ? 'on' : 'off');
    });
  }

  await guard('rotation', 'aurora master secret', async () => {
    const secret = await ctx
      .secrets()
      .send(new DescribeSecretCommand({ SecretId: stack.get(OUTPUTS.databaseMasterSecretArn) }));
    const period = secret.RotationRules?.AutomaticallyAfterDays;
    if (secret.RotationEnabled !== true || period === undefined) {
      add('rotation', 'aurora master secret', 'FAIL', 'automatic rotation is off');
      return;
    }
    const last = (secret.LastRotatedDate ?? secret.CreatedDate ?? new Date(0)).getTime();
    const age = Math.floor((now - last) / DAY);
    // Two days of grace: the rotation window, and a retry if an attempt failed.
    add(
      'rotation',
      'aurora master secret',
      age <= period + 2 ? 'PASS' : 'FAIL',
      `every ${period} days; last ${age} days ago`,
    );
  });
  for (const { entry, name, kind } of scheduled()) {
    if (!stack.has(entry.output)) continue;
    await guard('rotation', name, async () => {
      const secret = await ctx.secrets().send(new DescribeSecretCommand({ SecretId: stack.get(entry.output) }));
      const rules = secret.RotationRules;
      const schedule =
        rules?.ScheduleExpression ??
        (rules?.AutomaticallyAfterDays ? `every ${rules.AutomaticallyAfterDays} days` : undefined);
      if (secret.RotationEnabled !== true || schedule === undefined) {
        add('rotation', name, 'FAIL', 'no rotation schedule: deploy the stack, which gives it one');
        return;
      }
      const pending = interruptedRotation(secret.VersionIdsToStages ?? {});
      if (pending !== undefined) {
        add(
          'rotation',
          name,
          'FAIL',
          pending.current
            ? `a rotation made version ${pending.version} live but did not finish (its readers may not all have restarted): run dify-aws secrets rotate ${name} to finish it`
            : `a rotation stopped with version ${pending.version} staged but not current (the old value is live): run dify-aws secrets rotate ${name} to finish it`,
        );
        return;
      }
      const last = secret.LastRotatedDate ?? secret.LastChangedDate ?? secret.CreatedDate;
      const days = last === undefined ? 'never' : `${Math.floor((now - last.getTime()) / DAY)} days ago`;
      const next = secret.NextRotationDate;
      // A day of grace past the scheduled start: the window, and Secrets Manager's retry.
      if (next !== undefined && next.getTime() + DAY < now) {
        add(
          'rotation',
          name,
          'FAIL',
          `overdue: the rotation due ${next.toISOString().slice(0, 10)} has not succeeded (last ${days}); the rotation function's log (output SecretRotationFunctionName) names the failing step`,
        );
        return;
      }
      add(
        'rotation',
        name,
        'PASS',
        `${schedule}; last ${days}${next !== undefined ? `; next ${next.toISOString().slice(0, 10)}` : ''}`,
      );
      if (kind === 'client-key-pepper') {
        const current = currentVersionOf(secret.VersionIdsToStages ?? {});
        const blockers = current === undefined ? [] : await pepperRotationBlockersOf(ctx, stack, current);
        if (blockers.length > 0) {
          add(
            'rotation',
            name,
            'WARN',
            `client ${blockers.join(', ')} has not signed in since the pepper last changed: the next pepper rotation${next !== undefined ? ` (${next.toISOString().slice(0, 10)})` : ''} refuses to run until each makes one request through the gateway, gets a new key (dify-aws clients rotate --id ID) or is revoked`,
          );
        }
      }
      if (kind === 'cache-user' && entry.cacheUserIdOutput !== undefined && stack.has(entry.cacheUserIdOutput)) {
        const userId = stack.get(entry.cacheUserIdOutput);
        const user = (await ctx.elastiCache().send(new DescribeUsersCommand({ UserId: userId }))).Users?.[0];
        const count = user?.Authentication?.PasswordCount ?? 0;
        if (count > 1) {
          add(
            'rotation',
            name,
            'WARN',
            `ElastiCache user ${userId} still accepts ${count} passwords: the last rotation's consumers did not settle in its window; run dify-aws secrets rotate ${name}, which leaves only the new one`,
          );
        }
      }
    });
  }
  for (const [output, how] of Object.entries(OPERATOR_ROTATED)) {
    if (!stack.has(output)) continue;
    await guard('secret age', output.replace(/SecretArn$/, ''), async () => {
      const secret = await ctx.secrets().send(new DescribeSecretCommand({ SecretId: stack.get(output) }));
      const changed = (secret.LastChangedDate ?? secret.CreatedDate ?? new Date(0)).getTime();
      const age = Math.floor((now - changed) / DAY);
      add(
        'secret age',
        output.replace(/SecretArn$/, ''),
        age <= maxAgeDays ? 'PASS' : 'FAIL',
        `${age} days old${age <= maxAgeDays ? '' : `: rotate ${how}`} (limit ${maxAgeDays})`,
      );
    });
  }

  if (stack.has(OUTPUTS.gatewayProviderKeysSecretArn)) {
    await guard('provider key age', 'gateway pool', async () => {
      const { pool } = await readPool(ctx);
      for (const { provider, k } of poolKeys(pool)) {
        const age = keyAgeDays(k.addedAt, ctx.now());
        const target = `${provider} ${k.id}`;
        if (age === undefined)
          add('provider key age', target, 'WARN', 'age unknown: the pool does not say when it was added');
        else
          add(
            'provider key age',
            target,
            age <= maxKeyAgeDays ? 'PASS' : 'WARN',
            `${age} days old (limit ${maxKeyAgeDays})${age <= maxKeyAgeDays ? '' : ': create a new key at the provider, `dify-aws keys add` it, then `keys remove` this one'}`,
          );
      }
    });
  }

  if ((await platformOf(ctx)) === 'eks') await eksChecks(ctx, add, guard);

  await guard('alarms', 'alarm topic', async () => {
    const subscriptions =
      (await ctx.sns().send(new ListSubscriptionsByTopicCommand({ TopicArn: stack.get(OUTPUTS.alarmTopicArn) })))
        .Subscriptions ?? [];
    const confirmed = subscriptions.filter(
      (s) => s.SubscriptionArn !== undefined && s.SubscriptionArn !== 'PendingConfirmation',
    );
    add(
      'alarms',
      'alarm topic',
      confirmed.length > 0 ? 'PASS' : 'FAIL',
      confirmed.length > 0
        ? `${confirmed.length} confirmed subscriber(s)`
        : 'nobody is notified: set alarmEmail and confirm the e-mail',
    );
  });

  await guard('alarms', 'signals', () => alarmChecks(ctx, add));

  const failed = findings.filter((f) => f.status === 'FAIL').length;
  ctx.print(
    { healthy: failed === 0, findings },
    `${table(findings as unknown as Array<Record<string, unknown>>)}\n\n${failed === 0 ? 'posture: as deployed' : `posture: ${failed} check(s) failed`}`,
  );
  if (failed > 0) throw new CliError(`doctor: ${failed} check(s) failed`, 4);
}

type Add = (check: string, target: string, status: Finding['status'], detail: string) => void;
type Guard = (check: string, target: string, body: () => Promise<void>) => Promise<void>;

/**
 * An EKS deployment's cluster as deployed: from the EKS API, a private endpoint only, all five
 * control-plane logs, envelope encryption with a key of ours and access entries only; from inside
 * (the cluster responder), each namespace's Pod Security labels, its default-deny NetworkPolicy,
 * and the admission policies with their bindings.
 */
async function eksChecks(ctx: Context, add: Add, guard: Guard) {
  const stack = await ctx.stack();
  const name = stack.get(OUTPUTS.eksClusterName);
  await guard('eks', name, async () => {
    const cluster = (await ctx.eks().send(new DescribeClusterCommand({ name }))).cluster;
    const vpc = cluster?.resourcesVpcConfig;
    const isPrivate = vpc?.endpointPublicAccess === false && vpc.endpointPrivateAccess === true;
    add(
      'eks endpoint',
      name,
      isPrivate ? 'PASS' : 'FAIL',
      isPrivate
        ? 'private only'
        : `public access ${vpc?.endpointPublicAccess ? 'on' : 'unknown'}: expected private only`,
    );
    const enabled = new Set(
      (cluster?.logging?.clusterLogging ?? []).filter((l) => l.enabled === true).flatMap((l) => l.types ?? []),
    );
    const missing = CONTROL_PLANE_LOG_TYPES.filter((type) => !enabled.has(type));
    add(
      'eks logging',
      name,
      missing.length === 0 ? 'PASS' : 'FAIL',
      missing.length === 0 ? 'all five control-plane logs' : `not logged: ${missing.join(', ')}`,
    );
    const encryption = (cluster?.encryptionConfig ?? []).find((e) => e.resources?.includes('secrets'));
    add(
      'eks encryption',
      name,
      encryption?.provider?.keyArn ? 'PASS' : 'FAIL',
      encryption?.provider?.keyArn
        ? `envelope encryption with ${encryption.provider.keyArn}`
        : 'no envelope encryption',
    );
    const mode = cluster?.accessConfig?.authenticationMode;
    add(
      'eks access',
      name,
      mode === 'API' ? 'PASS' : 'FAIL',
      mode === 'API' ? 'access entries only' : `${mode ?? 'unknown'}: the aws-auth ConfigMap can grant access too`,
    );
  });
  await guard('pod security', 'cluster', async () => {
    const posture = await askCluster(ctx, { action: 'inspect' });
    for (const spec of Object.values(NAMESPACES) as NamespaceSpec[]) {
      const found = posture.namespaces.find((n) => n.name === spec.name);
      if (found === undefined) {
        add('pod security', spec.name, 'FAIL', 'namespace missing');
        continue;
      }
      const wrong = Object.entries(podSecurityLabels(spec)).filter(([key, value]) => found.labels[key] !== value);
      add(
        'pod security',
        spec.name,
        wrong.length === 0 ? 'PASS' : 'FAIL',
        wrong.length === 0
          ? `enforce ${spec.enforce}, audit and warn restricted, ${found.labels['pod-security.kubernetes.io/enforce-version']}`
          : wrong.map(([key, value]) => `${key}=${found.labels[key] ?? '(none)'}, expected ${value}`).join('; '),
      );
      const policies = posture.networkPolicies[spec.name] ?? [];
      add(
        'network policy',
        spec.name,
        policies.includes(DEFAULT_DENY_POLICY) ? 'PASS' : 'FAIL',
        policies.includes(DEFAULT_DENY_POLICY)
          ? `${DEFAULT_DENY_POLICY} and ${policies.length - 1} allow(s)`
          : `no ${DEFAULT_DENY_POLICY}: everything not denied is allowed`,
      );
    }
    const expected = [TRUSTED_IMAGES_POLICY, ...Object.values(NAMESPACES).map((ns) => containersPolicy(ns.name))];
    const absent = expected.flatMap((policy) => [
      ...(posture.admissionPolicies.includes(policy) ? [] : [`policy ${policy}`]),
      ...(posture.admissionBindings.includes(policy) ? [] : [`binding ${policy}`]),
    ]);
    add(
      'admission',
      'cluster',
      absent.length === 0 ? 'PASS' : 'FAIL',
      absent.length === 0 ? `${expected.length} policies, each bound` : `missing: ${absent.join(', ')}`,
    );
  });
}

export const DOCTOR: Command = {
  name: 'doctor',
  summary: 'check the deployed posture against what this project deploys; exits 4 on any failure',
  form: {
    summary: 'check the deployed posture; exits 4 on any failure',
    description:
      'Checks TLS, WAF, deletion protection (prod), rotation and secret ages, provider key ages (warns past --max-key-age-days), alarm subscribers and the alarms themselves, and on EKS the cluster (private endpoint, logs, encryption, Pod Security, policies). Prints a table of findings (with --json, {"healthy", "findings"}); a check that could not run is a FAIL that says why.',
    options: [
      {
        name: 'max-age-days',
        value: 'N',
        description: 'fail a secret the operator rotates once it is older, 1 to 3650 days (default 90)',
        check: wholeNumber('max-age-days', 1, 3650, ' of days'),
      },
      {
        name: 'max-key-age-days',
        value: 'N',
        description: 'warn on a provider key once it is older, 1 to 3650 days (default 180)',
        check: wholeNumber('max-key-age-days', 1, 3650, ' of days'),
      },
    ],
    examples: ['dify-aws doctor', 'dify-aws doctor --max-age-days 30 --json > posture.json'],
  },
  run: (ctx, { options }) => doctor(ctx, options),
};
