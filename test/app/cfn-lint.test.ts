import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

describe('cfn-lint over every synthesized template', () => {
  const version = cfnLintVersion();

  it('is installed (CI installs it; without it this suite would prove nothing)', () => {
    expect(version).toMatch(/cfn-lint \d+\.\d+/);
  });

  const dir = mkdtempSync(join(tmpdir(), 'cfn-lint-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(Object.entries(VARIANTS))('finds no error and no warning but W3005 in variant %s', (name, context) => {
    if (version === undefined)
      throw new Error('cfn-lint is not on PATH: install it (pip install cfn-lint) to run this check');
    const files = Object.entries(build(context).templates).map(([stack, template]) => {
      const file = join(dir, `${name}-${stack}.template.json`);
      writeFileSync(file, JSON.stringify(template.toJSON()));
      return file;
    });
    // W3005: CDK writes a DependsOn that is also implied by a Ref; redundant, not wrong.
    const result = spawnSync('cfn-lint', ['--format', 'parseable', '--ignore-checks', 'W3005', '--', ...files], {
      encoding: 'utf8',
    });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
