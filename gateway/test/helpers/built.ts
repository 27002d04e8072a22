import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { repoPath } from '../../../lib/paths';

/**
 * Bundles gateway/src/main.ts the way gateway/build.mjs does for the container (`node /app/main.js`),
 * into a directory of this suite's own, so suites running in parallel never share a half-written file.
 */
export function buildGateway(): string {
  const outfile = join(mkdtempSync(join(tmpdir(), 'gateway-build-')), 'main.js');
  buildSync({
    entryPoints: [repoPath('gateway/src/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
  });
  return outfile;
}
