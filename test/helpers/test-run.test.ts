import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { LAMBDA_BUNDLE_DIR_ENV } from '../../contracts/lambda-bundles';
import { RUN_DIR_ENV, setUpRun, tearDownRun } from './test-run';

// Why: each `npm test` used to leave about 70 cdk.out folders (2 GB after a few runs) in the
// system's temp directory. Nothing a test creates may outlive the run.
describe('the test run’s own directory', () => {
  it('is every test’s temp directory, so CDK’s cdk.out folders land in it', () => {
    const run = process.env[RUN_DIR_ENV];
    expect(run).toBeDefined();
    expect(tmpdir()).toBe(join(run!, 'tmp'));
    // An app without an outdir synthesizes into a fresh cdk.out folder of the temp directory.
    const app = new App();
    new CfnResource(new Stack(app, 'Probe'), 'Topic', { type: 'AWS::SNS::Topic' });
    const { directory } = app.synth();
    expect(directory.startsWith(`${tmpdir()}/cdk.out`)).toBe(true);
  });

  it('is removed by the teardown, which fails (under CI) on a cdk.out folder written around it', () => {
    // The hooks keep their state in environment variables: the real run's are put back after.
    const keys = ['TMPDIR', RUN_DIR_ENV, LAMBDA_BUNDLE_DIR_ENV, 'DIFY_TEST_SYSTEM_TMPDIR'];
    const saved = keys.map((key) => [key, process.env[key]] as const);
    // A stand-in for the system's temp directory, so the real run is left alone.
    const system = mkdtempSync(join(tmpdir(), 'system-'));
    try {
      setUpRun(system);
      const probeRun = process.env[RUN_DIR_ENV]!;
      expect(probeRun.startsWith(`${system}/`)).toBe(true);
      expect(() => tearDownRun(true)).not.toThrow();
      expect(readdirSync(system)).toEqual([]);

      setUpRun(system);
      mkdirSync(join(system, 'cdk.outAbC123'));
      expect(() => tearDownRun(true)).toThrow(/1 cdk\.out folder\(s\) appeared in .*system-.* \(cdk\.outAbC123\)/);
      expect(readdirSync(system)).toEqual(['cdk.outAbC123']);
    } finally {
      for (const [key, value] of saved) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      rmSync(system, { recursive: true, force: true });
    }
  });
});
