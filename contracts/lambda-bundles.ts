/**
 * The Lambda functions the app deploys, each bundled from `lambda/<name>/src/index.ts` into
 * `<dir>/<name>/index.js` (exported `handler`) by scripts/lambda-bundles.ts: `node scripts/build.mjs`
 * writes them to `dist/lambda/`, which cdk.json's app runs before every synth, and the tests' global
 * setup writes them once per run. The app deploys those files as they are (lib/constructs/lambda-code.ts).
 *
 * Every bundle is minified for Node.js 24 (the functions' runtime) with the AWS SDK v3 left out, since
 * the runtime ships it; `external` and `loader` are what a function needs besides.
 */
export interface LambdaBundle {
  /** Imports left to the runtime besides `@aws-sdk/*`. */
  readonly external?: readonly string[];
  /** esbuild loaders by file extension, for committed files a function inlines. */
  readonly loader?: Readonly<Record<string, 'text'>>;
}

export const LAMBDA_BUNDLES = {
  'cluster-responder': {},
  // pg's optional native binding is never used; the committed RDS CA bundle is inlined as text.
  'db-bootstrap': { external: ['pg-native'], loader: { '.pem': 'text' } },
  'firewall-domain-lists': {},
  'run-task': {},
  'secret-rotation': {},
  'ses-smtp-credentials': {},
} as const satisfies Record<string, LambdaBundle>;

export type LambdaBundleName = keyof typeof LAMBDA_BUNDLES;

/** Where the tests' global setup put this run's bundles; unset, the app reads `dist/lambda/`. */
export const LAMBDA_BUNDLE_DIR_ENV = 'DIFY_LAMBDA_BUNDLE_DIR';
