// Transpiles the CDK app (bin/, lib/, scripts/*.ts) to dist/ with esbuild, file by file, so that
// `cdk synth` runs plain JavaScript: no type-check on the synth path (that is `npm run typecheck`),
// and about a tenth of a second instead of the seconds ts-node takes.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

function tsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

rmSync('dist', { recursive: true, force: true });
await build({
  // gateway/src/records.ts is the contract the app shares with the gateway and the CLI (the empty
  // documents' placeholder); it is transpiled beside the app so that dist/ resolves it.
  entryPoints: [...['bin', 'lib', 'scripts', 'test/helpers'].flatMap(tsFiles), 'gateway/src/records.ts'],
  outdir: 'dist',
  outbase: '.',
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: 'inline',
  logLevel: 'warning',
});
