// `npm run bench:synth`: wall time of a full synth, nag packs on, of each variant, the way
// `cdk synth` runs the app; and of the whole `npx cdk synth` command for the default variant.
// A benchmark prints figures; no test asserts on time.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '../lib/paths';
import { VARIANTS } from '../test/helpers/synth';

const RUNS = 3;
const cdkContext = JSON.parse(readFileSync(repoPath('cdk.json'), 'utf8')).context as Record<string, unknown>;

function timeCommand(command: string, args: string[], env: NodeJS.ProcessEnv): number {
  const outdir = mkdtempSync(join(tmpdir(), 'bench-synth-'));
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, {
    cwd: repoPath('.'),
    env: {
      ...process.env,
      CDK_OUTDIR: outdir,
      AWS_EC2_METADATA_DISABLED: 'true',
      CDK_DISABLE_VERSION_CHECK: '1',
      ...env,
    },
    encoding: 'utf8',
    timeout: 300_000,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  rmSync(outdir, { recursive: true, force: true });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${result.stderr}`);
  return seconds;
}

function summarize(times: number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  return `median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} s, min ${sorted[0].toFixed(2)} s, max ${sorted[sorted.length - 1].toFixed(2)} s`;
}

console.log(
  `synth benchmark: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}, ${RUNS} runs each`,
);
console.log('app synth (node dist/bin/dify.js, nag packs registered; what `cdk synth` runs after the 0.1 s build):');
const medians: Record<string, number> = {};
// `npm run bench:synth -- dev eks-dev` times only the variants named; no names: every variant.
const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in VARIANTS));
if (unknown.length > 0) {
  console.error(
    `bench:synth: unknown variant(s) ${unknown.join(', ')}; expected any of ${Object.keys(VARIANTS).join(', ')}`,
  );
  process.exit(2);
}
for (const [name, context] of Object.entries(VARIANTS).filter(([n]) => wanted.length === 0 || wanted.includes(n))) {
  const times = Array.from({ length: RUNS }, () =>
    timeCommand(process.execPath, [repoPath('dist/bin/dify.js')], {
      CDK_CONTEXT_JSON: JSON.stringify({ ...cdkContext, ...context }),
    }),
  );
  medians[name] = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
  console.log(`  ${name.padEnd(22)} ${summarize(times)}`);
}
// platform=eks beside platform=ecs, each with its defaults (the EKS synth stages the 60 MB kubectl and AWS CLI layers).
if (medians['eks-dev'] !== undefined && medians.dev !== undefined) {
  console.log(
    `EKS default / ECS default (eks-dev / dev): ${(medians['eks-dev'] / medians.dev).toFixed(2)}×  (target: at most 1.5×)`,
  );
}
const cli = Array.from({ length: RUNS }, () =>
  timeCommand(
    process.execPath,
    [repoPath('node_modules/aws-cdk/bin/cdk'), 'synth', '--no-lookups', '--quiet', '-o', 'cdk.out.bench'],
    {},
  ),
);
rmSync(repoPath('cdk.out.bench'), { recursive: true, force: true });
console.log(`full \`npx cdk synth\` of the default (build + app + CLI): ${summarize(cli)}  (target: under 10 s)`);
