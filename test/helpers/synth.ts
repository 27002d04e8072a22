import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { createApp, type DifyApp } from '../../lib/app';
import type { DifyServiceName } from '../../lib/constructs/dify/catalog';
import type { DifyService, DifyTask } from '../../lib/constructs/runtime/ecs-task';
import { parseConfig } from '../../lib/config/load';
import { nagPacks } from '../../lib/nag/acknowledge';
import { repoPath } from '../../lib/paths';
import { mergeDeployment, type TemplateJson } from './deployment-template';
import { RUN_DIR_ENV } from './test-run';

/** cdk.json's context (feature flags and CLI settings), as the CLI would hand it to the app. */
export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(readFileSync(repoPath('cdk.json'), 'utf8')).context;

/** The variants CI proves: every profile, each with the defaults a bare synth uses. */
export const ZONE = {
  domainName: 'dify.example.com',
  hostedZoneId: 'Z0123456789ABCDEFGHIJ',
  hostedZoneName: 'example.com',
};
const CERTIFICATE = 'arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012';

/**
 * The variants CI proves: every profile, every edge mode with and without a domain, and the risky
 * but allowed settings. Values are strings, as `-c` delivers them.
 */
export const VARIANTS: Record<string, Record<string, string>> = {
  dev: { profile: 'dev' },
  // Production needs a domain of its own (CloudFront's default certificate accepts TLS 1.0).
  prod: { profile: 'prod', ...ZONE },
  'dev-endpoints': { profile: 'dev', vpcInterfaceEndpoints: 'true' },
  'prod-pinned': {
    profile: 'prod',
    account: '123456789012',
    region: 'eu-west-1',
    alarmEmail: 'ops@example.com',
    ...ZONE,
  },
  'cloudfront-domain': {
    profile: 'prod',
    region: 'eu-west-1',
    ...ZONE,
    allowedIpv4Cidrs: '203.0.113.0/24',
    allowedIpv6Cidrs: '2001:db8::/32',
    cloudFrontGeoAllowlist: 'DE,FR',
    wafAnonymousIpList: 'true',
  },
  'alb-zone': { edge: 'alb', ...ZONE, allowedIpv4Cidrs: '203.0.113.0/24,198.51.100.0/24' },
  'alb-certificate-open': {
    edge: 'alb',
    profile: 'prod',
    domainName: 'dify.example.com',
    certificateArn: CERTIFICATE,
    allowedIpv4Cidrs: '0.0.0.0/0',
  },
  internal: {
    edge: 'internal',
    domainName: 'dify.example.com',
    certificateArn: CERTIFICATE,
    allowedIpv4Cidrs: '198.51.100.0/24',
  },
  // Every optional switch of the services at once: ECS Exec, Bedrock (a model and an inference
  // profile), Fargate Spot for the worker and a PyPI mirror, in a closed network (egress=none: no
  // NAT, the mirror and the gateway's providers on private networks). prod-everything holds the same
  // options with NAT.
  'dev-options': {
    profile: 'dev',
    enableExec: 'true',
    bedrockModels: 'anthropic.claude-3-5-sonnet-20240620-v1:0,us.anthropic.claude-3-7-sonnet-20250219-v1:0',
    fargateSpotWorker: 'true',
    pipMirrorUrl: 'https://pypi.example.com/simple',
    gatewayProviderPrivateCidrs: '10.20.0.0/16',
    egress: 'none',
    mirrorPrivateCidrs: '10.30.0.0/24',
  },
  // Every option on at once, in the profile that creates the most: the variant that sizes the stacks.
  'prod-everything': {
    profile: 'prod',
    account: '123456789012',
    region: 'eu-west-1',
    alarmEmail: 'ops@example.com',
    ...ZONE,
    allowedIpv4Cidrs: '203.0.113.0/24',
    allowedIpv6Cidrs: '2001:db8::/32',
    cloudFrontGeoAllowlist: 'DE,FR',
    wafAnonymousIpList: 'true',
    vpcInterfaceEndpoints: 'true',
    enableExec: 'true',
    bedrockModels: 'anthropic.claude-3-5-sonnet-20240620-v1:0,us.anthropic.claude-3-7-sonnet-20250219-v1:0',
    pipMirrorUrl: 'https://pypi.example.com/simple',
    gatewayProviderPrivateCidrs: '10.20.0.0/16',
    guardDuty: 'true',
    securityHub: 'true',
    email: 'true',
  },
  // Dify on EKS: both profiles, and the other edge modes with the VM-per-pod sandbox.
  'eks-dev': { platform: 'eks', profile: 'dev' },
  'eks-prod': { platform: 'eks', profile: 'prod', ...ZONE, alarmEmail: 'ops@example.com' },
  'eks-alb': { platform: 'eks', edge: 'alb', ...ZONE, eksIsolatedSandbox: 'true' },
  'eks-internal': {
    platform: 'eks',
    edge: 'internal',
    domainName: 'dify.example.com',
    certificateArn: CERTIFICATE,
    allowedIpv4Cidrs: '198.51.100.0/24',
  },
};

/** The ECS variants: the tests of ECS's own task definitions, services and roles read these. */
export const ECS_VARIANTS = Object.fromEntries(
  Object.entries(VARIANTS).filter(([, context]) => context.platform !== 'eks'),
);

export interface Built {
  readonly app: App;
  readonly stacks: DifyApp;
  /**
   * The deployment as one template: every stack but the us-east-1 ones, merged, with each reference
   * to another stack's output (`Fn::GetStackOutput`) replaced by the value that output carries. What
   * the stacks create together, so that a test of a property reads the same whichever stack holds it.
   */
  readonly template: Template;
  /** Every stack's template as synthesized, by stack name (with CloudFront, the us-east-1 one too). */
  readonly templates: Record<string, Template>;
}

const cache = new Map<string, Built>();

export interface BuildOptions {
  /** Everything in one stack (createApp's singleStack), for the test that the split changes nothing. */
  readonly singleStack?: boolean;
  /** Register the nag packs' acknowledgement writer, as `bin/` does. @default true */
  readonly nag?: boolean;
  /**
   * Run CDK's built-in template validation (the `CloudFormation-Validate` rules), which `cdk synth`
   * runs and fails on (cdk.json's `@aws-cdk/core:validateAgainstDefaultRules`).
   *
   * @default false: it reads the templates only after they are written, so they are byte-identical
   * without it, and it is most of a synth's time and memory (its WebAssembly engine starts afresh in
   * every test file). test/app/cfn-lint.test.ts runs it on every variant, beside cfn-lint, and
   * test/bin.test.ts runs `cdk synth`'s own path with it; no other suite needs it.
   */
  readonly validate?: boolean;
}

let scratch: string | undefined;

/**
 * A fresh folder for one app's cloud assembly. Under jest it lies in the run's TMPDIR, which the
 * run's teardown removes (test/helpers/test-run.ts); in a script (docs, cost) the folders go when
 * the process exits, so no `cdk.out*` is left in the temp directory either way.
 */
function assemblyDir(): string {
  if (scratch === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'dify-synth-'));
    if (process.env[RUN_DIR_ENV] === undefined) process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    scratch = dir;
  }
  return mkdtempSync(join(scratch, 'cdk.out-'));
}

/**
 * Builds the app exactly as `bin/dify.ts` does (context -> config -> createApp, nag packs registered),
 * with the same context values a user would pass with `-c`. Results are cached per context, since
 * a synth takes seconds.
 */
export function build(context: Record<string, string> = {}, options: BuildOptions = {}): Built {
  const key = JSON.stringify([context, options]);
  const cached = cache.get(key);
  if (cached) return cached;
  const fullContext = {
    ...CDK_JSON_CONTEXT,
    ...context,
    // One stack of everything exceeds CloudFormation's 500 resources with every option on; the
    // single-stack build exists only to be compared with the split.
    ...(options.singleStack ? { '@aws-cdk/core:stackResourceLimit': 0 } : {}),
    // The kubectl and AWS CLI layers are about 60 MB: the templates are the same without copying them.
    ...(context.platform === 'eks' ? { 'aws:cdk:disable-asset-staging': true } : {}),
  };
  const app = new App({
    context: fullContext,
    outdir: assemblyDir(),
    builtinCloudFormationValidation: options.validate === true,
  });
  const stacks = createApp(app, parseConfig(fullContext), { singleStack: options.singleStack });
  if (options.singleStack) {
    Validations.of(stacks.main).acknowledge({
      id: 'CloudFormation-Validate::F0007',
      reason: 'The single-stack build is never deployed; it exists to be compared with the split.',
    });
  }
  // The packs' aspects write each acknowledgement into the template, as in `bin/`; the findings
  // themselves are collected by nagFindings() instead of failing the synth, so a test can list them.
  if (options.nag !== false) nagPacks(app);
  // Synthesis prints the validation report (our own synth warnings) through console.error; the
  // warnings are asserted where they matter (test/config.test.ts), so keep test output readable.
  const printError = console.error;
  console.error = () => undefined;
  let json: Record<string, TemplateJson>;
  try {
    json = Object.fromEntries(stacks.stacks.map((stack) => [stack.stackName, Template.fromStack(stack).toJSON()]));
  } finally {
    console.error = printError;
  }
  const deployment = stacks.stacks
    .filter((stack) => stack !== stacks.global && stack !== stacks.globalAlarms)
    .map((stack) => stack.stackName);
  const built: Built = {
    app,
    stacks,
    template: Template.fromJSON(mergeDeployment(json, deployment)),
    templates: Object.fromEntries(Object.entries(json).map(([name, template]) => [name, Template.fromJSON(template)])),
  };
  cache.set(key, built);
  return built;
}

/** Every unacknowledged finding of the three packs, as `rule @ construct path`. */
export function nagFindings(app: App): string[] {
  return nagPacks().flatMap((pack) =>
    pack
      .validateScope(app)
      .violations.flatMap((violation) =>
        violation.violatingResources.map((resource) => `${violation.ruleName} @ ${resource.constructPath}`),
      ),
  );
}

/** The ECS task definition (and security group, roles, log group) a Dify service renders to. */
export function task(built: Built, service: DifyServiceName): DifyTask {
  return built.stacks.platform.taskOf(built.stacks.services[service]);
}

/** The ECS service of a long-running Dify service. */
export function ecsService(built: Built, service: DifyServiceName): DifyService {
  return built.stacks.platform.serviceOf(built.stacks.services[service]);
}
