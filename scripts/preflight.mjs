#!/usr/bin/env node
// `npm test`'s first step: checks every tool the tests run, in well under a second, and stops with
// what each missing one is for and the command that installs it, before any suite starts.
// `scripts/install-prerequisites.sh` installs them all (it is what `.ci/run` and the PR workflow use).
// Plain Node with no dependencies, so it runs before `npm ci`'s output is type-checked or built.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The first executable called `name` on PATH, or undefined. No process is started. */
export function onPath(name, path = process.env.PATH ?? '') {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Where the PostgreSQL server binaries are: Debian's and Ubuntu's layout, else `pg_config --bindir`. */
function postgresBin() {
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const version = readdirSync(debian).sort().at(-1);
    if (version && existsSync(join(debian, version, 'bin', 'postgres'))) return join(debian, version, 'bin');
  }
  if (onPath('pg_config')) {
    const result = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
    const bin = result.stdout?.trim();
    if (result.status === 0 && bin && existsSync(join(bin, 'postgres'))) return bin;
  }
  return undefined;
}

/**
 * Each prerequisite: what it is for, how to tell it is there, and how to install it. `check`
 * returns undefined when the tool is usable, or why it is not.
 */
export const PREREQUISITES = [
  {
    name: 'Node.js 20 or later',
    for: 'everything',
    check: () => {
      const major = Number(process.versions.node.split('.')[0]);
      return major >= 20 ? undefined : `this is Node.js ${process.versions.node}`;
    },
    debian: 'install Node.js 20 (https://nodejs.org/en/download)',
    macos: 'brew install node@20',
  },
  {
    name: 'node_modules',
    for: 'the type-check, the linters and jest',
    check: () => (existsSync(join(root, 'node_modules', '.package-lock.json')) ? undefined : 'npm ci has not run'),
    debian: 'npm ci',
    macos: 'npm ci',
  },
  {
    name: 'contracts/dify/services.json',
    for: "the Dify environment contract the services' tests compare against",
    check: () =>
      existsSync(join(root, 'contracts', 'dify', 'services.json'))
        ? undefined
        : 'the file is missing from the checkout',
    debian: 'git checkout -- contracts/dify/services.json',
    macos: 'git checkout -- contracts/dify/services.json',
  },
  {
    name: 'cfn-lint',
    for: 'linting every synthesized template (test/app/cfn-lint.test.ts)',
    check: () => (onPath('cfn-lint') ? undefined : 'not on PATH'),
    debian: "pipx install 'cfn-lint==1.51.0'",
    macos: "pipx install 'cfn-lint==1.51.0'",
  },
  {
    name: 'moto_server',
    for: "the AWS APIs the gateway's, the CLI's and the Lambda handlers' tests call on 127.0.0.1",
    check: () => (onPath('moto_server') ? undefined : 'not on PATH'),
    debian: "pipx install 'moto[server]==5.2.1'",
    macos: "pipx install 'moto[server]==5.2.1'",
  },
  {
    name: 'squid',
    for: "running the SSRF proxy's configuration in a real squid (test/constructs/dify/squid-config.test.ts)",
    check: () => (onPath('squid') || existsSync('/usr/sbin/squid') ? undefined : 'not on PATH'),
    debian: 'sudo apt-get install -y squid',
    macos: 'brew install squid',
  },
  {
    name: 'PostgreSQL server',
    for: "the database bootstrap's and the rotation's SQL against a real server",
    check: () =>
      postgresBin() ? undefined : 'no postgres binary under /usr/lib/postgresql/*/bin or pg_config --bindir',
    debian: 'sudo apt-get install -y postgresql',
    macos: 'brew install postgresql@16',
  },
  {
    name: 'redis-server',
    for: "the gateway's shared rate limit and the Valkey rotation against a real server",
    check: () => (onPath('redis-server') ? undefined : 'not on PATH'),
    debian: 'sudo apt-get install -y redis-server',
    macos: 'brew install redis',
  },
  {
    name: 'httpx for /usr/bin/python3',
    for: 'asking the HTTP client Dify uses where each URL goes (test/constructs/dify/ssrf-routes.test.ts)',
    check: () => {
      if (!existsSync('/usr/bin/python3')) return '/usr/bin/python3 is missing';
      const result = spawnSync('/usr/bin/python3', ['-c', 'import httpx'], { stdio: 'ignore' });
      return result.status === 0 ? undefined : 'python3 cannot import httpx';
    },
    debian: 'sudo apt-get install -y python3-httpx',
    macos: '/usr/bin/python3 -m pip install --user httpx',
  },
  {
    name: 'openssl',
    for: "the test certificates of the database's TLS test",
    check: () => (onPath('openssl') ? undefined : 'not on PATH'),
    debian: 'sudo apt-get install -y openssl',
    macos: 'brew install openssl',
  },
  {
    name: 'git',
    for: "listing the files the gateway's container image is built from (test/constructs/llm-gateway.test.ts)",
    check: () => (onPath('git') ? undefined : 'not on PATH'),
    debian: 'sudo apt-get install -y git',
    macos: 'xcode-select --install',
  },
];

/** The prerequisites that are missing, each with why. */
export function missingPrerequisites(prerequisites = PREREQUISITES) {
  return prerequisites.flatMap((prerequisite) => {
    const problem = prerequisite.check();
    return problem === undefined ? [] : [{ ...prerequisite, problem }];
  });
}

/** The report for the missing prerequisites: one paragraph each, then the command that installs all. */
export function report(missing, platform = process.platform) {
  const mac = platform === 'darwin';
  const lines = [`npm test: ${missing.length} prerequisite${missing.length === 1 ? ' is' : 's are'} missing:`, ''];
  for (const item of missing) {
    lines.push(`- ${item.name} (${item.problem}): needed for ${item.for}.`);
    lines.push(`    Debian/Ubuntu: ${item.debian}`);
    lines.push(`    macOS:         ${item.macos}`);
  }
  lines.push('');
  lines.push(
    mac
      ? 'Or install them all with: bash scripts/install-prerequisites.sh (Homebrew and pipx).'
      : 'Or install them all with: sudo bash scripts/install-prerequisites.sh (apt-get and pipx).',
  );
  lines.push('No test was run.');
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--list')) {
    // What the README's prerequisites table and the tests compare against.
    const list = PREREQUISITES.map(({ name, for: purpose, debian, macos }) => ({ name, for: purpose, debian, macos }));
    console.log(JSON.stringify(list, null, 2));
    process.exit(0);
  }
  const missing = missingPrerequisites();
  if (missing.length > 0) {
    console.error(report(missing));
    process.exit(1);
  }
}
