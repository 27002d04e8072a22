// Transpiles the CDK app (bin/, lib/, scripts/*.ts) to dist/ with esbuild, file by file, so that
// `cdk synth` runs plain JavaScript: no type-check on the synth path (that is `npm run typecheck`),
// and about a tenth of a second instead of the seconds ts-node takes. Then bundles each Lambda into
// dist/lambda/ (scripts/lambda-bundles.ts).
import { cpSync, readdirSync, rmSync, statSync } from 'node:fs';
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
  // contracts/ holds what the app agrees on with the gateway, the CLI and the Lambdas (output names,
  // the secret catalogue, the documents' placeholder); it is transpiled beside the app so dist/ resolves it.
  entryPoints: ['bin', 'lib', 'scripts', 'test/helpers', 'contracts'].flatMap(tsFiles),
  outdir: 'dist',
  outbase: '.',
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: 'inline',
  logLevel: 'warning',
});
// The release contract and other JSON the contracts import, beside their transpiled modules.
cpSync('contracts/dify', 'dist/contracts/dify', { recursive: true });
// Every Lambda's bundle, which the app deploys from dist/lambda/ (lib/constructs/lambda-code.ts).
const { bundleLambdas } = await import('../dist/scripts/lambda-bundles.js');
await bundleLambdas('dist/lambda');
