import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import { LAMBDA_BUNDLE_DIR_ENV, LAMBDA_BUNDLES, type LambdaBundleName } from '../../contracts/lambda-bundles';
import { lambdaCode, LAMBDA_HANDLER } from '../../lib/constructs/lambda-code';
import { repoPath } from '../../lib/paths';
import { bundleLambdas } from '../../scripts/lambda-bundles';
import { build, VARIANTS } from '../helpers/synth';

// Why: each Lambda used to be bundled by CDK's NodejsFunction, which started `npx esbuild` for every
// function at every synth (about half a second each). The app now deploys the bundles that
// `node scripts/build.mjs` writes (the tests' global setup writes the run's own), so these hold the
// bundles to what NodejsFunction made: one per Lambda, minified for Node.js 24, the AWS SDK left to
// the runtime, and the very code each function deploys.
const NAMES = Object.keys(LAMBDA_BUNDLES) as LambdaBundleName[];
const runBundles = (): string => process.env[LAMBDA_BUNDLE_DIR_ENV]!;
const bundleText = (dir: string, name: string): string => readFileSync(join(dir, name, 'index.js'), 'utf8');

describe('the Lambda bundles', () => {
  it('cover every function under lambda/, and nothing else', () => {
    const functions = readdirSync(repoPath('lambda')).filter((name) =>
      statSync(repoPath(`lambda/${name}`)).isDirectory(),
    );
    expect([...NAMES].sort()).toEqual(functions.sort());
  });

  it('are in the run’s own folder, one index.js per function', () => {
    expect(runBundles().startsWith(process.env.DIFY_TEST_RUN_DIR!)).toBe(true);
    for (const name of NAMES) expect(readdirSync(join(runBundles(), name))).toEqual(['index.js']);
  });

  it('are the same bytes each time they are built (the asset hash, hence the template, is stable)', async () => {
    const again = mkdtempSync(join(tmpdir(), 'bundles-'));
    try {
      await bundleLambdas(again);
      for (const name of NAMES) expect(bundleText(again, name)).toBe(bundleText(runBundles(), name));
    } finally {
      rmSync(again, { recursive: true, force: true });
    }
  });

  it('leave the AWS SDK to the runtime and export the handler', () => {
    for (const name of NAMES) {
      const text = bundleText(runBundles(), name);
      expect(text).toMatch(/handler:\(\)=>/);
      // Each SDK client it uses is required at run time, never bundled.
      const sdk = text.match(/require\("@aws-sdk\/[a-z0-9-]+"\)/g) ?? [];
      const bundledSdk = text.match(/@aws-sdk\/[a-z-]+\/dist-cjs/g) ?? [];
      expect({ name, bundledSdk }).toEqual({ name, bundledSdk: [] });
      if (name !== 'db-bootstrap' || sdk.length > 0) expect({ name, sdk: sdk.length > 0 }).toEqual({ name, sdk: true });
    }
  });

  it('inline the committed RDS CA bundle in db-bootstrap, and leave pg’s native binding out', () => {
    const text = bundleText(runBundles(), 'db-bootstrap');
    expect(text).toContain('-----BEGIN CERTIFICATE-----');
    expect(text).toMatch(/require\("pg-native"\)/);
  });

  it('refuses a missing bundle, naming the file and the command that writes it', () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-bundles-'));
    const saved = process.env[LAMBDA_BUNDLE_DIR_ENV];
    try {
      process.env[LAMBDA_BUNDLE_DIR_ENV] = empty;
      expect(() => lambdaCode('run-task')).toThrow(
        `the run-task Lambda's bundle ${join(empty, 'run-task', 'index.js')} is missing: \`node scripts/build.mjs\` writes every Lambda's bundle`,
      );
    } finally {
      process.env[LAMBDA_BUNDLE_DIR_ENV] = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('are what the app’s functions deploy, each in some variant, and nothing is bundled at synth', () => {
    // The S3 key CDK gives each bundle as an asset (its content hash).
    const keyOf = new Map(
      NAMES.map((name) => {
        const probe = new Stack(new App(), 'Probe');
        new lambda.Function(probe, name, {
          code: lambdaCode(name),
          handler: LAMBDA_HANDLER,
          runtime: lambda.Runtime.NODEJS_24_X,
        });
        const [fn] = Object.values(Template.fromStack(probe).findResources('AWS::Lambda::Function'));
        return [fn.Properties.Code.S3Key as string, name];
      }),
    );
    expect(keyOf.size).toBe(NAMES.length);
    const deployed = new Set<string>();
    for (const variant of ['prod-everything', 'eks-dev']) {
      const built = build(VARIANTS[variant]);
      // No NodejsFunction is left to start esbuild at synth.
      expect(built.app.node.findAll().filter((construct) => construct instanceof nodejs.NodejsFunction)).toEqual([]);
      for (const template of Object.values(built.templates)) {
        for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) {
          const name = keyOf.get(fn.Properties.Code.S3Key);
          if (name === undefined) continue;
          expect({ name, handler: fn.Properties.Handler, runtime: fn.Properties.Runtime }).toEqual({
            name,
            handler: LAMBDA_HANDLER,
            runtime: 'nodejs24.x',
          });
          deployed.add(name);
        }
      }
    }
    expect([...deployed].sort()).toEqual([...NAMES].sort());
  });
});
