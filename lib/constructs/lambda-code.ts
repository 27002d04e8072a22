import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LAMBDA_BUNDLE_DIR_ENV, type LambdaBundleName } from '../../contracts/lambda-bundles';
import { repoPath } from '../paths';

/**
 * The code of one of the app's Lambda functions: its bundle as `node scripts/build.mjs` wrote it
 * (contracts/lambda-bundles.ts), deployed as it is. The handler is `index.handler`.
 */
export function lambdaCode(name: LambdaBundleName): lambda.Code {
  const dir = join(process.env[LAMBDA_BUNDLE_DIR_ENV] ?? repoPath('dist/lambda'), name);
  const file = join(dir, 'index.js');
  if (!existsSync(file)) {
    throw new Error(
      `the ${name} Lambda's bundle ${file} is missing: \`node scripts/build.mjs\` writes every Lambda's bundle, ` +
        'and `npx cdk synth` runs it first (cdk.json\'s "app"); run it, then synthesize again',
    );
  }
  return lambda.Code.fromAsset(dir);
}

/** The handler every bundle exports. */
export const LAMBDA_HANDLER = 'index.handler';
