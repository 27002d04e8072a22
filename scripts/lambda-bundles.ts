// Bundles every Lambda of contracts/lambda-bundles.ts with esbuild's API, in this process: about a
// second for all of them, where CDK's NodejsFunction started `npx esbuild` once per function at every
// synth (half a second each, most of it npx). scripts/build.mjs calls it for `dist/lambda/`, and
// test/helpers/global-setup.ts for the test run's own folder.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { LAMBDA_BUNDLES, type LambdaBundle } from '../contracts/lambda-bundles';
import { repoPath } from '../lib/paths';

/**
 * Writes `<outdir>/<name>/index.js` for each Lambda, all at once (esbuild spreads them over the
 * cores); rejects with esbuild's errors if one does not build.
 */
export async function bundleLambdas(outdir: string): Promise<void> {
  const bundles = Object.entries(LAMBDA_BUNDLES) as Array<[string, LambdaBundle]>;
  // A folder holds exactly one bundle: its contents are the asset CDK hashes and uploads.
  for (const [name] of bundles) rmSync(join(outdir, name), { recursive: true, force: true });
  await Promise.all(
    bundles.map(([name, bundle]) =>
      build({
        absWorkingDir: repoPath('.'),
        entryPoints: [`lambda/${name}/src/index.ts`],
        outfile: join(outdir, name, 'index.js'),
        bundle: true,
        minify: true,
        platform: 'node',
        target: 'node24',
        format: 'cjs',
        external: ['@aws-sdk/*', ...(bundle.external ?? [])],
        loader: bundle.loader,
        logLevel: 'warning',
      }),
    ),
  );
}
