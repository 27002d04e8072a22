import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '../../../lib/paths';

/**
 * Bundles the gateway with gateway/build.mjs, exactly as the Dockerfile does (`--main-only`), into a
 * directory of this suite's own, so suites running in parallel never share a half-written file.
 * Returns the path of main.js, which a test runs with `node`, as the container's CMD does.
 */
export function buildGateway(): string {
  const outdir = mkdtempSync(join(tmpdir(), 'gateway-build-'));
  execFileSync(process.execPath, [repoPath('gateway/build.mjs'), '--main-only', `--outdir=${outdir}`], {
    cwd: repoPath('.'),
    stdio: 'pipe',
  });
  return join(outdir, 'main.js');
}

/** The screening worker's bundle beside a built main.js. */
export function workerOf(main: string): string {
  return join(main, '..', 'screen-worker.js');
}
