import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
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

export interface BundledFunctionProps extends Omit<
  lambda.FunctionProps,
  'code' | 'handler' | 'runtime' | 'architecture' | 'memorySize' | 'loggingFormat'
> {
  /** The bundle it runs (contracts/lambda-bundles.ts). */
  readonly bundle: LambdaBundleName;
}

/**
 * One of the app's own functions: its bundle, on Node.js 24 (which ships the AWS SDK v3 the bundles
 * leave out), on Graviton, with 256 MB and JSON log lines. The rest (role, VPC, log group, timeout) is
 * the caller's.
 */
export class BundledFunction extends lambda.Function {
  constructor(scope: Construct, id: string, props: BundledFunctionProps) {
    const { bundle, ...rest } = props;
    super(scope, id, {
      ...rest,
      code: lambdaCode(bundle),
      handler: LAMBDA_HANDLER,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      loggingFormat: lambda.LoggingFormat.JSON,
    });
  }
}
