import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '../../lib/paths';

interface Prerequisite {
  readonly name: string;
  readonly for: string;
  readonly debian: string;
  readonly macos: string;
}

const PREFLIGHT = repoPath('scripts/preflight.mjs');
const preflight = (path: string, ...args: string[]) =>
  spawnSync(process.execPath, [PREFLIGHT, ...args], { encoding: 'utf8', env: { ...process.env, PATH: path } });
const PREREQUISITES: Prerequisite[] = JSON.parse(preflight(process.env.PATH ?? '', '--list').stdout);

describe("npm test's preflight", () => {
  let empty: string;
  let stubs: string;
  beforeAll(() => {
    empty = mkdtempSync(join(tmpdir(), 'preflight-empty-'));
    stubs = mkdtempSync(join(tmpdir(), 'preflight-stubs-'));
    for (const tool of ['cfn-lint', 'moto_server', 'redis-server']) {
      writeFileSync(join(stubs, tool), '#!/bin/sh\nexit 0\n');
      chmodSync(join(stubs, tool), 0o755);
    }
  });
  afterAll(() => {
    rmSync(empty, { recursive: true, force: true });
    rmSync(stubs, { recursive: true, force: true });
  });

  it('passes silently on this machine, where every tool is installed', () => {
    const result = preflight(process.env.PATH ?? '');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('stops with each missing tool, what it is for and the commands that install it', () => {
    const result = preflight(empty);
    expect(result.status).toBe(1);
    for (const tool of ['cfn-lint', 'moto_server', 'redis-server', 'openssl', 'git']) {
      const entry = PREREQUISITES.find((prerequisite) => prerequisite.name === tool)!;
      expect(result.stderr).toContain(`- ${tool} (not on PATH): needed for ${entry.for}.`);
      expect(result.stderr).toContain(`Debian/Ubuntu: ${entry.debian}`);
      expect(result.stderr).toContain(`macOS:         ${entry.macos}`);
    }
    expect(result.stderr).toContain('bash scripts/install-prerequisites.sh');
    expect(result.stderr).toContain('No test was run.');
  });

  it('reads PATH: a tool that appears there is no longer reported', () => {
    const result = preflight(stubs);
    expect(result.status).toBe(1);
    for (const tool of ['cfn-lint', 'moto_server', 'redis-server']) expect(result.stderr).not.toContain(`- ${tool} (`);
    expect(result.stderr).toContain('- openssl (not on PATH)');
  });

  it('checks every package the install script installs', () => {
    const script = readFileSync(repoPath('scripts/install-prerequisites.sh'), 'utf8');
    const apt = [...script.matchAll(/system_packages\+=\(([\w.@-]+)\)/g)].map((match) => match[1]);
    const pipx = [...script.matchAll(/^(?:CFN_LINT|MOTO)='([^']+)'/gm)].map((match) => match[1]);
    expect(apt.length).toBeGreaterThan(5);
    expect(pipx).toEqual(['cfn-lint==1.51.0', 'moto[server]==5.2.1']);
    const commands = PREREQUISITES.flatMap((prerequisite) => [prerequisite.debian, prerequisite.macos]).join('\n');
    // pipx is how the script installs cfn-lint and moto_server, not a prerequisite of its own.
    for (const name of apt.filter((name) => name !== 'pipx'))
      expect(commands).toMatch(new RegExp(`install -y ${name}\\b|brew install ${name}\\b`));
    for (const spec of pipx) expect(commands).toContain(`pipx install '${spec}'`);
  });

  it('is what npm test and CI run first', () => {
    const scripts = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')).scripts;
    expect(scripts.test).toMatch(/^node scripts\/preflight\.mjs && /);
    const ci = readFileSync(repoPath('.ci/run'), 'utf8');
    expect(ci).toContain('bash scripts/install-prerequisites.sh');
  });

  it('is listed in the README, each prerequisite with both install commands', () => {
    const readme = readFileSync(repoPath('README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Prerequisites'), readme.indexOf('## Quick start'));
    for (const prerequisite of PREREQUISITES) {
      expect(section).toContain(prerequisite.name);
      expect(section).toContain(prerequisite.debian);
      expect(section).toContain(prerequisite.macos);
    }
  });

  it("leaves npm ci with no unreviewed install script: package.json's allowScripts names each one", () => {
    const lock = JSON.parse(readFileSync(repoPath('package-lock.json'), 'utf8'));
    const withScripts = Object.entries(lock.packages as Record<string, { hasInstallScript?: boolean }>)
      .filter(([path, entry]) => path !== '' && entry.hasInstallScript === true)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(withScripts.length).toBeGreaterThan(0);
    const reviewed = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')).allowScripts as Record<string, boolean>;
    const names = new Set(Object.keys(reviewed).map((key) => key.replace(/(?<=.)@[^@]*$/, '')));
    expect(withScripts.filter((name) => !names.has(name))).toEqual([]);
  });
});
