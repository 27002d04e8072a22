import { createHash } from 'node:crypto';
import { cpSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AssetStaging, type BundlingOptions } from 'aws-cdk-lib';
import { BUNDLE_CACHE_ENV } from './test-run';

/**
 * Bundles each Lambda once per `jest` run instead of at every synth.
 *
 * Every synth of the app bundles its Lambdas with esbuild (a few seconds), and the suites synthesize
 * the app many times over. The code is bundled for real, by CDK's own bundling, the first time
 * a bundle is asked for in the run; that output is kept in the run's directory (test/helpers/test-run.ts),
 * and a later synth that asks for the same bundle (the same source folder and the same bundling
 * options, esbuild's whole command line among them) in any suite gets a copy of it. CDK then hashes
 * that copy as it would its own output, so asset hashes and templates are byte-identical to a synth
 * that bundles, and a bundle that does not build still fails the synth that first asks for it.
 *
 * The source cannot change between two synths of one run, so a cached bundle is never stale; the
 * cache goes with the run directory. Outside jest (the docs and cost scripts) nothing is cached.
 *
 * It wraps `AssetStaging.prototype.bundle`, a private method of aws-cdk-lib 2.276 (the step that
 * fills the bundle folder, before CDK hashes and stages it), and refuses to run if that is gone.
 */
type Bundle = (this: AssetStaging, options: BundlingOptions, bundleDir: string) => void;

const WRAPPED = Symbol.for('dify.test.bundleCache');

/** Installs the cache in this module registry (each test file has its own copy of aws-cdk-lib). */
export function useBundleCache(cacheDir: string | undefined = process.env[BUNDLE_CACHE_ENV]): void {
  if (cacheDir === undefined) return;
  const prototype = AssetStaging.prototype as unknown as { bundle?: Bundle; [WRAPPED]?: boolean };
  if (prototype[WRAPPED]) return;
  const bundle = prototype.bundle;
  if (typeof bundle !== 'function') {
    throw new Error(
      'test/helpers/bundle-cache.ts wraps AssetStaging.prototype.bundle, which this aws-cdk-lib no longer has: adapt the wrapper to the new version or remove it',
    );
  }
  prototype.bundle = function cachedBundle(this: AssetStaging, options: BundlingOptions, bundleDir: string): void {
    // CDK's own shortcut: the folder is already filled (an earlier asset of this app).
    if (existsSync(bundleDir)) return;
    const cached = join(cacheDir, bundleKey(this.sourcePath, options));
    if (existsSync(cached)) {
      cpSync(cached, bundleDir, { recursive: true });
      return;
    }
    withoutBundlingBanner(() => bundle.call(this, options, bundleDir));
    // Published by an atomic rename, so a reader in another worker never sees half a bundle; when two
    // workers bundle the same code at once, the first rename wins and the bundles are the same.
    const building = `${cached}.${process.pid}`;
    cpSync(bundleDir, building, { recursive: true });
    try {
      renameSync(building, cached);
    } catch {
      rmSync(building, { recursive: true, force: true });
    }
  };
  prototype[WRAPPED] = true;
}

/**
 * What determines a bundle: the folder bundled from and every bundling option, the full esbuild
 * command line (entry, target, externals, loaders, minification) included.
 */
function bundleKey(sourcePath: string, options: BundlingOptions): string {
  const seen = new WeakSet<object>();
  const json = JSON.stringify([sourcePath, options], (_key, value: unknown) => {
    if (typeof value === 'object' && value !== null) {
      if (seen.has(value)) return '[seen]';
      seen.add(value);
    }
    return value;
  });
  return createHash('sha256').update(json).digest('hex');
}

/**
 * CDK writes `Bundling asset <path>...` straight to stderr before each bundle, a line per Lambda per
 * synth. esbuild's own output is not touched (the functions set its log level to warnings): an error
 * still reaches the test output, and fails the synth.
 */
function withoutBundlingBanner(run: () => void): void {
  const write = process.stderr.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
    typeof chunk === 'string' && chunk.startsWith('Bundling asset ')
      ? true
      : (write as (...args: unknown[]) => boolean).call(process.stderr, chunk, ...rest)) as typeof write;
  try {
    run();
  } finally {
    process.stderr.write = write;
  }
}
