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
export const VARIANTS: Record<string, Record<string, string>> = {
  dev: { profile: 'dev' },
  prod: { profile: 'prod' },
  'dev-endpoints': { profile: 'dev', vpcInterfaceEndpoints: 'true' },
  'prod-pinned': {
    profile: 'prod',
    account: '123456789012',
    region: 'eu-west-1',
    alarmEmail: 'ops@example.com',
  },
};

export interface Built {
  readonly app: App;
  readonly stacks: DifyApp;
  readonly template: Template;
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
  const built = { app, stacks, template: Template.fromStack(stacks.main) };
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
