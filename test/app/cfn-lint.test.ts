import { createHash } from 'node:crypto';
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, VARIANTS } from '../helpers/synth';

function cfnLintVersion(): string | undefined {
  try {
    return execFileSync('cfn-lint', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

// The two template checkers, over every stack of every variant. CDK's own validation is what
// `cdk synth` runs and fails on; the other suites build without it (test/helpers/synth.ts), so this
// suite is where every variant still passes it. cfn-lint is the stricter of the two: its warnings
// fail too.
describe('CDK’s template validation and cfn-lint over every synthesized template', () => {
  const version = cfnLintVersion();

  it('is installed (CI installs it; without it this suite would prove nothing)', () => {
    expect(version).toMatch(/cfn-lint \d+\.\d+/);
  });

  const dir = mkdtempSync(join(tmpdir(), 'cfn-lint-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Variants share some stacks byte for byte: each distinct template is written, and linted, once.
  const templateFiles = (context: Record<string, string>): string[] =>
    Object.values(build(context, { validate: true }).templates).map((template) => {
      const text = JSON.stringify(template.toJSON());
      const file = join(dir, `${createHash('sha256').update(text).digest('hex').slice(0, 16)}.template.json`);
      if (!existsSync(file)) writeFileSync(file, text);
      return file;
    });

  it.each(Object.entries(VARIANTS))(
    'finds no error in variant %s with CDK’s validation on, as cdk synth',
    (_name, context) => {
      // The synth throws the validation report on any error that is not acknowledged where it arises.
      expect(() => build(context, { validate: true })).not.toThrow();
    },
  );

  // One cfn-lint process for every template: its start-up (Python and the rule set) is paid once.
  let lint: SpawnSyncReturns<string> | undefined;
  const lintEverything = (): SpawnSyncReturns<string> => {
    if (lint === undefined) {
      // A variant that does not build fails its own tests above and below; the others are linted.
      const files = Object.values(VARIANTS).flatMap((context) => {
        try {
          return templateFiles(context);
        } catch {
          return [];
        }
      });
      // W3005: CDK writes a DependsOn that is also implied by a Ref; redundant, not wrong.
      lint = spawnSync('cfn-lint', ['--format', 'parseable', '--ignore-checks', 'W3005', '--', ...new Set(files)], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
    }
    return lint;
  };

  it.each(Object.entries(VARIANTS))(
    'finds no error and no warning but W3005 in variant %s',
    (_name, context) => {
      if (version === undefined)
        throw new Error('cfn-lint is not on PATH: install it (pip install cfn-lint) to run this check');
      const files = templateFiles(context);
      const result = lintEverything();
      // `--format parseable` writes one line per finding, starting with the template's path.
      const lines = result.stdout.split('\n').filter((line) => line !== '');
      expect(lines.filter((line) => files.some((file) => line.startsWith(`${file}:`)))).toEqual([]);
      // Nothing on stderr and no line that names no template. The exit status has bit 1 set when
      // cfn-lint itself failed, and is 0 when it found nothing at all; a finding in another variant
      // sets its other bits, and is that variant's failure.
      expect({ stderr: result.stderr, unattributed: lines.filter((line) => !line.startsWith(`${dir}/`)) }).toEqual({
        stderr: '',
        unattributed: [],
      });
      expect(result.error).toBeUndefined();
      expect({
        ran: result.status !== null && (result.status & 1) === 0,
        clean: lines.length > 0 || result.status === 0,
      }).toEqual({ ran: true, clean: true });
    },
    // The first test lints every template (about a minute on two idle cores); not a timing assertion.
    600_000,
  );
});
