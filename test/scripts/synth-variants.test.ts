import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSynthArgs, synthVariants } from '../../scripts/synth-variants';
import { VARIANTS } from '../helpers/synth';

// The pull-request diff is only as good as what it compares: every variant, each in its own assembly,
// with the checkout's own cdk.json under the variant's -c values; a base that cannot build a new
// variant is reported, never mistaken for "every stack removed".

describe('synth:variants', () => {
  let dir: string;
  let repo: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'synth-variants-'));
    // A checkout whose "app" writes the context it was given as its assembly, and fails on profile=prod,
    // as an older base refuses a key it does not know.
    repo = join(dir, 'repo');
    mkdirSync(join(repo, 'dist', 'bin'), { recursive: true });
    writeFileSync(
      join(repo, 'cdk.json'),
      JSON.stringify({ app: 'x', context: { '@aws-cdk/flag': true, profile: 'dev' } }),
    );
    writeFileSync(
      join(repo, 'dist', 'bin', 'dify.js'),
      [
        "const fs = require('fs');",
        'const context = JSON.parse(process.env.CDK_CONTEXT_JSON);',
        "if (context.profile === 'prod') { console.error('Invalid configuration: profile prod refused'); process.exit(1); }",
        'fs.mkdirSync(process.env.CDK_OUTDIR, { recursive: true });',
        "fs.writeFileSync(process.env.CDK_OUTDIR + '/manifest.json', JSON.stringify({ context }));",
      ].join('\n'),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("synthesizes each variant into its own folder, under the checkout's cdk.json context", async () => {
    const out = join(dir, 'out');
    const options = parseSynthArgs(['--repo', repo, '--out', out, '--jobs', '2', 'dev', 'dev-endpoints']);
    const lines: string[] = [];
    const results = await synthVariants(options, (line) => lines.push(line));
    expect(results.map((r) => [r.name, r.ok]).sort()).toEqual([
      ['dev', true],
      ['dev-endpoints', true],
    ]);
    const context = JSON.parse(readFileSync(join(out, 'dev-endpoints', 'manifest.json'), 'utf8')).context;
    expect(context).toEqual({ '@aws-cdk/flag': true, ...VARIANTS['dev-endpoints'] });
    expect(lines.sort()).toEqual([
      expect.stringMatching(/^synth dev-endpoints: ok \(/),
      expect.stringMatching(/^synth dev: ok \(/),
    ]);
  });

  it('with --keep-going, writes <variant>.error.txt for a variant that fails and goes on', async () => {
    const out = join(dir, 'keep-going');
    const results = await synthVariants(
      parseSynthArgs(['--repo', repo, '--out', out, '--keep-going', 'prod', 'dev']),
      () => undefined,
    );
    expect(results.map((r) => [r.name, r.ok]).sort()).toEqual([
      ['dev', true],
      ['prod', false],
    ]);
    expect(readFileSync(join(out, 'prod.error.txt'), 'utf8')).toMatch(
      /^exit 1\nInvalid configuration: profile prod refused/,
    );
    expect(existsSync(join(out, 'prod'))).toBe(false);
    expect(existsSync(join(out, 'dev', 'manifest.json'))).toBe(true);
  });

  it('synthesizes one assembly, "deployment", from --context', async () => {
    const out = join(dir, 'deployment');
    const options = parseSynthArgs([
      '--repo',
      repo,
      '--out',
      out,
      '--context',
      '{"profile":"dev","region":"eu-west-1"}',
    ]);
    expect(Object.keys(options.assemblies)).toEqual(['deployment']);
    await synthVariants(options, () => undefined);
    expect(JSON.parse(readFileSync(join(out, 'deployment', 'manifest.json'), 'utf8')).context.region).toBe('eu-west-1');
  });

  it('refuses bad arguments, naming the value and what is expected', () => {
    expect(() => parseSynthArgs(['--repo', repo])).toThrow(/--out is required\nusage: npm run synth:variants/);
    expect(() => parseSynthArgs(['--repo', repo, '--out', dir, 'dve'])).toThrow(
      /unknown variant\(s\) dve; expected any of dev, prod,/,
    );
    expect(() => parseSynthArgs(['--repo', repo, '--out', dir, '--jobs', '0'])).toThrow(
      '--jobs: got "0"; expected a whole number >= 1',
    );
    expect(() => parseSynthArgs(['--repo', repo, '--out', dir, '--context', '[1]'])).toThrow(
      /--context: got 3 characters that are not a JSON object/,
    );
    expect(() => parseSynthArgs(['--repo', dir, '--out', dir])).toThrow(
      /dist\/bin\/dify.js not found; expected a checkout built with/,
    );
  });
});
