import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '../lib/paths';
import { ZONE } from './helpers/synth';

/**
 * Runs the compiled app the way `cdk synth` does (the CLI passes `-c` values in CDK_CONTEXT_JSON and
 * the output folder in CDK_OUTDIR), with no AWS credentials and no network.
 */
function synth(context: Record<string, string>) {
  const outdir = mkdtempSync(join(tmpdir(), 'dify-synth-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CDK_OUTDIR: outdir,
    CDK_CONTEXT_JSON: JSON.stringify(context),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const result = spawnSync(process.execPath, [repoPath('dist/bin/dify.js')], {
    env,
    encoding: 'utf8',
    cwd: repoPath('.'),
  });
  return { ...result, outdir };
}

describe('bin/dify.ts', () => {
  beforeAll(() => {
    const build = spawnSync(process.execPath, [repoPath('scripts/build.mjs')], {
      cwd: repoPath('.'),
      encoding: 'utf8',
    });
    expect(build.status).toBe(0);
  });

  it('synthesizes the bare default offline, with all three nag packs run and passed', () => {
    const result = synth({ ...JSON.parse(readFileSync(repoPath('cdk.json'), 'utf8')).context });
    try {
      expect(result.status).toBe(0);
      // The report lists only plugins with findings: the nag packs must not be among them...
      const report = JSON.parse(readFileSync(join(result.outdir, 'validation-report.json'), 'utf8'));
      const plugins = (report.pluginReports as Array<{ pluginName: string }>).map((r) => r.pluginName);
      expect(plugins).not.toEqual(expect.arrayContaining([expect.stringMatching(/AwsSolutions|NIST|HIPAA/)]));
      const template = JSON.parse(readFileSync(join(result.outdir, 'Dify.template.json'), 'utf8'));
      expect(Object.keys(template.Resources).length).toBeGreaterThan(50);
      // ...and they did run: their aspect wrote each acknowledgement into the template.
      const acknowledged = Object.values(
        template.Resources as Record<string, { Metadata?: { cdk_nag?: unknown } }>,
      ).filter((resource) => resource.Metadata?.cdk_nag !== undefined);
      expect(acknowledged.length).toBeGreaterThan(10);
    } finally {
      rmSync(result.outdir, { recursive: true, force: true });
    }
  });

  it('synthesizes the same template twice, without lookups: no randomness, no clock, no account calls', () => {
    const context = {
      ...JSON.parse(readFileSync(repoPath('cdk.json'), 'utf8')).context,
      profile: 'prod',
      region: 'eu-west-1',
      account: '123456789012',
      ...ZONE,
    };
    const runs = [synth(context), synth(context)];
    try {
      for (const run of runs) expect(run.status).toBe(0);
      const [a, b] = runs.map((run) => readFileSync(join(run.outdir, 'Dify.template.json'), 'utf8'));
      expect(a).toBe(b);
      // A lookup the app wanted but could not make would be listed as `missing` in the manifest.
      const manifest = JSON.parse(readFileSync(join(runs[0].outdir, 'manifest.json'), 'utf8'));
      expect(manifest.missing).toBeUndefined();
    } finally {
      for (const run of runs) rmSync(run.outdir, { recursive: true, force: true });
    }
  });

  it('passes `cdk synth --strict` on dev once every warning is acknowledged on purpose (the real CDK CLI)', () => {
    // What a dev synth warns about (README: Synth warnings); --strict fails on any warning left.
    const acknowledged = [
      'dify:devProfile',
      'dify:noAlarmEmail',
      'dify:nobodyAllowed',
      'dify:image-not-digest-pinned:api',
      'dify:image-not-digest-pinned:web',
      'dify:image-not-digest-pinned:sandbox',
      'dify:image-not-digest-pinned:pluginDaemon',
    ];
    const dir = mkdtempSync(join(tmpdir(), 'dify-strict-'));
    try {
      // The CLI pinned in package.json (TOOLING.md: a newer CLI cannot read this library's assembly),
      // reading cdk.json's context from the repository; the app is the build beforeAll made.
      const result = spawnSync(
        process.execPath,
        [
          repoPath('node_modules/aws-cdk/bin/cdk'),
          'synth',
          '--strict',
          '--no-lookups',
          '--quiet',
          '--app',
          `node ${repoPath('dist/bin/dify.js')}`,
          '-c',
          'profile=dev',
          '-c',
          `acknowledgeWarnings=${acknowledged.join(',')}`,
          '-o',
          join(dir, 'cdk.out'),
        ],
        {
          cwd: repoPath('.'),
          encoding: 'utf8',
          env: {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            CDK_DISABLE_VERSION_CHECK: '1',
            AWS_EC2_METADATA_DISABLED: 'true',
          },
        },
      );
      expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
      expect(result.stderr).not.toContain('WARNING');
      expect(result.stderr).not.toContain('--strict');
      expect(readFileSync(join(dir, 'cdk.out', 'Dify.template.json'), 'utf8')).toContain('AWS::ECS::Service');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad -c value with the key and what is expected, without a stack trace', () => {
    const result = synth({ plaform: 'ecs', profile: 'staging' });
    rmSync(result.outdir, { recursive: true, force: true });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("unknown context key 'plaform'; did you mean 'platform'?");
    expect(result.stderr).toContain("context key 'profile': got \"staging\"; expected one of 'dev', 'prod'");
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
