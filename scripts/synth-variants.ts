// `npm run synth:variants -- --out <dir>`: synthesizes every variant CI proves (test/helpers/synth.ts's
// VARIANTS) into a cloud assembly of its own, <dir>/<variant>, the way `cdk synth` runs the app: the
// compiled `dist/bin/dify.js`, cdk.json's context plus the variant's `-c` values, the nag packs
// registered (an unacknowledged finding fails the variant). Offline: nothing is looked up.
//
//   --repo <dir>      synthesize another checkout's app (the pull request's base, in a git worktree, after
//                     `npm ci && node scripts/build.mjs` there) with its own cdk.json; default: this one
//   --context <json>  one assembly, <dir>/deployment, from these `-c` values instead of the variants
//                     (the deployment's configuration, for a diff against the deployed stacks)
//   --keep-going      a variant that fails writes <dir>/<variant>.error.txt and the others go on (for the
//                     base, which may not know a key a new variant sets); default: exit 1 on the first
//   --jobs <n>        synths at once (default: the number of cores, at most 4)
//   [variant ...]     only these variants
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { repoPath } from '../lib/paths';
import { VARIANTS } from '../test/helpers/synth';

/** What to synthesize, parsed from the command line. */
export interface SynthOptions {
  readonly out: string;
  readonly repo: string;
  readonly assemblies: Record<string, Record<string, unknown>>;
  readonly keepGoing: boolean;
  readonly jobs: number;
}

/** The usage line every argument error ends with. */
export const SYNTH_USAGE =
  'usage: npm run synth:variants -- --out <dir> [--repo <dir>] [--context <json>] [--keep-going] [--jobs <n>] [variant ...]';

/** Parses the arguments; throws an error naming the bad argument, the value given and what is expected. */
export function parseSynthArgs(argv: readonly string[]): SynthOptions {
  let out: string | undefined;
  let repo = repoPath('.');
  let context: Record<string, unknown> | undefined;
  let keepGoing = false;
  let jobs = Math.min(availableParallelism(), 4);
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined || next.startsWith('--')) throw new Error(`${arg} needs a value\n${SYNTH_USAGE}`);
      return next;
    };
    if (arg === '--out') out = resolve(value());
    else if (arg === '--repo') repo = resolve(value());
    else if (arg === '--keep-going') keepGoing = true;
    else if (arg === '--jobs') {
      const given = value();
      jobs = Number(given);
      if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs: got "${given}"; expected a whole number >= 1`);
    } else if (arg === '--context') {
      const given = value();
      let parsed: unknown;
      try {
        parsed = JSON.parse(given);
      } catch {
        parsed = undefined;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        // The context is configuration, not a secret, but it is not echoed whole: name its length only.
        throw new Error(
          `--context: got ${given.length} characters that are not a JSON object; expected the deployment's -c values as {"key": "value", ...}`,
        );
      }
      context = parsed as Record<string, unknown>;
    } else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}\n${SYNTH_USAGE}`);
    else names.push(arg);
  }
  if (out === undefined) throw new Error(`--out is required\n${SYNTH_USAGE}`);
  if (!existsSync(join(repo, 'dist', 'bin', 'dify.js'))) {
    throw new Error(
      `--repo ${repo}: dist/bin/dify.js not found; expected a checkout built with \`npm ci && node scripts/build.mjs\``,
    );
  }
  const unknown = names.filter((name) => !(name in VARIANTS));
  if (unknown.length > 0) {
    throw new Error(`unknown variant(s) ${unknown.join(', ')}; expected any of ${Object.keys(VARIANTS).join(', ')}`);
  }
  if (context !== undefined && names.length > 0) throw new Error('--context synthesizes one assembly: name no variant');
  const assemblies =
    context !== undefined
      ? { deployment: context }
      : Object.fromEntries(Object.entries(VARIANTS).filter(([name]) => names.length === 0 || names.includes(name)));
  return { out, repo, assemblies, keepGoing, jobs };
}

/** The result of one variant's synth. */
export interface SynthResult {
  readonly name: string;
  readonly ok: boolean;
  readonly seconds: number;
  /** The last lines of the app's output, when it failed. */
  readonly error?: string;
}

function synthOne(repo: string, outdir: string, context: Record<string, unknown>): Promise<string | undefined> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(repo, 'dist', 'bin', 'dify.js')], {
      cwd: repo,
      env: {
        ...process.env,
        CDK_OUTDIR: outdir,
        CDK_CONTEXT_JSON: JSON.stringify(context),
        AWS_EC2_METADATA_DISABLED: 'true',
        CDK_DISABLE_VERSION_CHECK: '1',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      // Only the tail is reported; keep memory bounded however much the app prints.
      stderr = (stderr + chunk.toString('utf8')).slice(-20_000);
    });
    child.on('close', (code, signal) => {
      if (code === 0) done(undefined);
      else done(`exit ${code ?? signal}\n${stderr.split('\n').slice(-40).join('\n')}`);
    });
  });
}

/** Synthesizes each assembly into `<out>/<name>`, `jobs` at a time, logging one line per assembly. */
export async function synthVariants(
  options: SynthOptions,
  log: (line: string) => void = console.log,
): Promise<SynthResult[]> {
  const cdkContext = JSON.parse(readFileSync(join(options.repo, 'cdk.json'), 'utf8')).context ?? {};
  mkdirSync(options.out, { recursive: true });
  const queue = Object.entries(options.assemblies);
  const results: SynthResult[] = [];
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const [name, context] = next;
      const outdir = join(options.out, name);
      rmSync(outdir, { recursive: true, force: true });
      rmSync(`${outdir}.error.txt`, { force: true });
      const started = process.hrtime.bigint();
      const error = await synthOne(options.repo, outdir, { ...cdkContext, ...context });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (error !== undefined) {
        rmSync(outdir, { recursive: true, force: true });
        writeFileSync(`${outdir}.error.txt`, `${error}\n`);
      }
      results.push({ name, ok: error === undefined, seconds, error });
      log(`synth ${name}: ${error === undefined ? 'ok' : 'FAILED'} (${seconds.toFixed(1)} s)`);
      if (error !== undefined && !options.keepGoing) {
        queue.length = 0;
      }
    }
  };
  await Promise.all(Array.from({ length: options.jobs }, worker));
  return results;
}

async function main(): Promise<void> {
  let options: SynthOptions;
  try {
    options = parseSynthArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`synth:variants: ${(error as Error).message}`);
    process.exit(2);
  }
  const results = await synthVariants(options);
  const failed = results.filter((result) => !result.ok);
  for (const result of failed) console.error(`synth:variants: ${result.name} failed: ${result.error}`);
  console.log(`${results.length - failed.length} of ${results.length} synthesized into ${options.out}`);
  if (failed.length > 0 && !options.keepGoing) process.exit(1);
}

if (require.main === module) void main();
