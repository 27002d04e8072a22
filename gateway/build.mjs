// Bundles the gateway (and its benchmark) into single files with esbuild: the container runs
// gateway/dist/main.js with no node_modules, and the tests start that same file as a process.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Minified and without an inline source map: every gateway process holds its bundle in memory, and
// an inline map would more than double it. Stack traces are not needed to read the audit log.
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
};
await build({ ...common, entryPoints: [join(here, 'src/main.ts')], outfile: join(here, 'dist/main.js') });
// The container build (gateway/Dockerfile) passes --main-only: its context has no bench or test files.
if (!process.argv.includes('--main-only')) {
  await build({ ...common, entryPoints: [join(here, 'bench/bench.ts')], outfile: join(here, 'dist/bench/bench.js') });
}
