// Bundles the gateway (and its benchmark) into single files with esbuild: the container runs
// gateway/dist/main.js with no node_modules, and the tests start that same file as a process.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'inline',
  logLevel: 'warning',
};
await build({ ...common, entryPoints: [join(here, 'src/main.ts')], outfile: join(here, 'dist/main.js') });
await build({ ...common, entryPoints: [join(here, 'bench/bench.ts')], outfile: join(here, 'dist/bench/bench.js') });
