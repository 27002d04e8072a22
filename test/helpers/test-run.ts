import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAMBDA_BUNDLE_DIR_ENV } from '../../contracts/lambda-bundles';

/**
 * One directory per `jest` run for everything the tests write (jest.config.js: globalSetup and
 * globalTeardown). Nothing a test creates outlives the run:
 *
 * - `tmp/` is the run's TMPDIR, so whatever a test or a program it starts puts in the temp
 *   directory lands here: CDK's `cdk.out*` of every app synthesized without an outdir, `cdk synth`'s
 *   output in test/bin.test.ts, cfn-lint's templates, PostgreSQL's data directory. The workers are
 *   started after the global setup and inherit it.
 * - `bundles/` holds each Lambda's bundle, made once by the global setup (contracts/lambda-bundles.ts),
 *   which every synth of the run deploys.
 *
 * The teardown removes the directory, and looks for `cdk.out*` folders that appeared in the
 * system's temp directory meanwhile: something wrote around TMPDIR. Under CI (`CI` set, as in
 * .ci/run and GitHub Actions, where the run has the machine to itself) that fails the run; elsewhere
 * another program (another project's tests, a run started before this one) may have written them,
 * so it is a warning that names them.
 */
export const RUN_DIR_ENV = 'DIFY_TEST_RUN_DIR';

const SYSTEM_TMPDIR_ENV = 'DIFY_TEST_SYSTEM_TMPDIR';
const LITTER = /^cdk\.out/;

function isCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

export function litterIn(dir: string): string[] {
  return readdirSync(dir).filter((name) => LITTER.test(name));
}

export function setUpRun(systemTmpdir: string = tmpdir()): void {
  const run = mkdtempSync(join(systemTmpdir, 'dify-test-'));
  const tmp = join(run, 'tmp');
  const bundles = join(run, 'bundles');
  mkdirSync(tmp);
  mkdirSync(bundles);
  // Traversable, not listable: PostgreSQL runs as its own user (test/helpers/postgres.ts) and must
  // reach its data directory under tmp/; each test's own folder stays mkdtemp's 0700 or what it sets.
  for (const dir of [run, tmp]) chmodSync(dir, 0o711);
  process.env[SYSTEM_TMPDIR_ENV] = systemTmpdir;
  process.env[RUN_DIR_ENV] = run;
  process.env[LAMBDA_BUNDLE_DIR_ENV] = bundles;
  process.env.TMPDIR = tmp;
  (globalThis as { difyTestLitterBefore?: string[] }).difyTestLitterBefore = litterIn(systemTmpdir);
}

export function tearDownRun(strict: boolean = isCi()): void {
  const run = process.env[RUN_DIR_ENV];
  const systemTmpdir = process.env[SYSTEM_TMPDIR_ENV];
  if (run === undefined || systemTmpdir === undefined) return;
  rmSync(run, { recursive: true, force: true });
  process.env.TMPDIR = systemTmpdir;
  for (const name of [RUN_DIR_ENV, SYSTEM_TMPDIR_ENV, LAMBDA_BUNDLE_DIR_ENV]) delete process.env[name];
  const before = new Set((globalThis as { difyTestLitterBefore?: string[] }).difyTestLitterBefore ?? []);
  const left = litterIn(systemTmpdir).filter((name) => !before.has(name));
  if (left.length === 0) return;
  const message =
    `${left.length} cdk.out folder(s) appeared in ${systemTmpdir} during the test run (${left.slice(0, 5).join(', ')}${left.length > 5 ? ', …' : ''}): ` +
    `tests write under their run's TMPDIR (test/helpers/test-run.ts), so something wrote around it ` +
    `(an explicit path, a child process given an environment without TMPDIR, or another program on this machine). ` +
    `Find it, make it use os.tmpdir(), and remove the folders.`;
  if (strict) throw new Error(message);
  process.stderr.write(`warning: ${message}\n`);
}
