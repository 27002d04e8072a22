// `npm run contract:refresh -- [path]`: replaces contracts/dify/services.json, the pinned Dify
// release's contract, with the one at `path` (default: ../shared/dify/services.json, beside the clone), after checking
// that it has the shape the tests read. Prints the versions before and after; run `npm test` next.
//
//   node scripts/refresh-dify-contract.mjs [source] [--out <file>]   (--out: tests write elsewhere)
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const out = outAt >= 0 ? resolve(args[outAt + 1]) : join(root, 'contracts', 'dify', 'services.json');
const source = resolve(
  args.find((arg, i) => !arg.startsWith('--') && i !== outAt + 1) ??
    join(root, '..', 'shared', 'dify', 'services.json'),
);

function fail(message) {
  console.error(`contract:refresh: ${message}`);
  process.exit(1);
}

let text;
try {
  text = readFileSync(source, 'utf8');
} catch {
  fail(`cannot read ${source}; pass the path of the release's services.json`);
}
let contract;
try {
  contract = JSON.parse(text);
} catch {
  fail(`${source} is not JSON`);
}
for (const [field, check] of [
  ['difyVersion', (v) => typeof v === 'string' && /^\d+\.\d+\.\d+/.test(v)],
  ['sharedSecretsMustMatch', Array.isArray],
  [
    'services',
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      ['api', 'worker', 'web', 'sandbox', 'plugin_daemon'].every((s) => typeof v[s]?.env === 'object'),
  ],
]) {
  if (!check(contract[field]))
    fail(
      `${source}: '${field}' is missing or has the wrong shape; expected the contract format of contracts/dify/services.json`,
    );
}
let before = '(none)';
try {
  before = JSON.parse(readFileSync(out, 'utf8')).difyVersion;
} catch {
  // first time
}
writeFileSync(out, text);
console.log(`contract for Dify ${contract.difyVersion} written to ${out} (was ${before}); run npm test`);
