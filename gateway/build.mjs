// Bundles the gateway (and its benchmark) into single files with esbuild: the container runs
// gateway/dist/main.js with no node_modules, and the tests start that same bundle as a process.
//
//   node gateway/build.mjs                      dist/main.js, dist/screen-worker.js and the two benchmarks in dist/bench
//   node gateway/build.mjs --main-only          the gateway's two files only (the Docker build: no bench in its context)
//   node gateway/build.mjs --outdir=<dir>       into <dir> instead of gateway/dist (tests, one dir each)
//   node gateway/build.mjs --no-minify          readable function names, for a CPU profile
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outdirArg = process.argv.find((arg) => arg.startsWith('--outdir='));
const outdir = outdirArg === undefined ? join(here, 'dist') : resolve(outdirArg.slice('--outdir='.length));
// Minified and without an inline source map: every gateway process holds its bundle in memory, and
// an inline map would more than double it. Stack traces are not needed to read the audit log.
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // --no-minify: readable names in a CPU profile (npm run bench:gateway -- --profile builds so).
  minify: !process.argv.includes('--no-minify'),
  legalComments: 'none',
  logLevel: 'warning',
};
await build({ ...common, entryPoints: [join(here, 'src/main.ts')], outfile: join(outdir, 'main.js') });
// The screening worker (src/screening.ts) runs a bundle of its own: the guardrails, not the server.
await build({
  ...common,
  entryPoints: [join(here, 'src/screen-worker.ts')],
  outfile: join(outdir, 'screen-worker.js'),
});
if (!process.argv.includes('--main-only')) {
  await build({ ...common, entryPoints: [join(here, 'bench/bench.ts')], outfile: join(outdir, 'bench/bench.js') });
  await build({
    ...common,
    entryPoints: [join(here, 'bench/guardrails.ts')],
    outfile: join(outdir, 'bench/guardrails.js'),
  });
}
