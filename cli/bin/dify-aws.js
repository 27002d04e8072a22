#!/usr/bin/env node
// `npx dify-aws`: bundles cli/src/main.ts with esbuild on first use (about a tenth of a second), then runs it.
const { buildSync } = require('esbuild');
const { join } = require('node:path');
const out = join(__dirname, '..', 'dist', 'dify-aws.js');
buildSync({
  entryPoints: [join(__dirname, '..', 'src', 'main.ts')],
  outfile: out,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'error',
});
const { run } = require(out);
run(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
