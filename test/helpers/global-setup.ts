import { LAMBDA_BUNDLE_DIR_ENV } from '../../contracts/lambda-bundles';
import { bundleLambdas } from '../../scripts/lambda-bundles';
import { setUpRun } from './test-run';

/**
 * jest.config.js's globalSetup: the run's own directory (test/helpers/test-run.ts), and every
 * Lambda's bundle in it, which each synth of the run deploys (lib/constructs/lambda-code.ts).
 */
export default async function globalSetup(): Promise<void> {
  setUpRun();
  await bundleLambdas(process.env[LAMBDA_BUNDLE_DIR_ENV]!);
}
