import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { createApp, type DifyApp } from '../../lib/app';
import { parseConfig } from '../../lib/config/load';
import { nagPacks } from '../../lib/nag/acknowledge';
import { repoPath } from '../../lib/paths';

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
  // profile), Fargate Spot for the worker and a PyPI mirror.
  'dev-options': {
    profile: 'dev',
    enableExec: 'true',
    bedrockModels: 'anthropic.claude-3-5-sonnet-20240620-v1:0,us.anthropic.claude-3-7-sonnet-20250219-v1:0',
    fargateSpotWorker: 'true',
    pipMirrorUrl: 'https://pypi.example.com/simple',
    gatewayProviderPrivateCidrs: '10.20.0.0/16',
  },
};

export interface Built {
  readonly app: App;
  readonly stacks: DifyApp;
  /** The main stack's template. */
  readonly template: Template;
  /** Every stack's template, by stack name (the main stack and, with CloudFront, the us-east-1 one). */
  readonly templates: Record<string, Template>;
}

const cache = new Map<string, Built>();

/**
 * Builds the app exactly as `bin/dify.ts` does (context -> config -> createApp, nag packs registered),
 * with the same context values a user would pass with `-c`. Results are cached per context, since
 * a synth takes seconds.
 */
export function build(context: Record<string, string> = {}): Built {
  const key = JSON.stringify(context);
  const cached = cache.get(key);
  if (cached) return cached;
  const app = new App({ context: { ...CDK_JSON_CONTEXT, ...context } });
  const stacks = createApp(app, parseConfig({ ...CDK_JSON_CONTEXT, ...context }));
  // The packs' aspects write each acknowledgement into the template, as in `bin/`; the findings
  // themselves are collected by nagFindings() instead of failing the synth, so a test can list them.
  nagPacks(app);
  // Synthesis prints the validation report (our own synth warnings) through console.error; the
  // warnings are asserted where they matter (test/config.test.ts), so keep test output readable.
  const printError = console.error;
  console.error = () => undefined;
  let templates: Record<string, Template>;
  try {
    templates = Object.fromEntries(
      [stacks.main, stacks.global].flatMap((stack) => (stack ? [[stack.stackName, Template.fromStack(stack)]] : [])),
    );
  } finally {
    console.error = printError;
  }
  const built = { app, stacks, template: templates[stacks.main.stackName], templates };
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
