/**
 * The last check before a value read from the logs is printed. The queries of `dify-aws investigate`
 * select identifier fields only (a client id, an address, a path, a key id); this catches a log line
 * that put a credential or free text where an identifier belongs. It errs towards withholding: an
 * identifier that merely looks random is withheld too.
 */

/** What a withheld value is printed as. */
export const WITHHELD = '[withheld]';

/** Credentials by shape, each named so a test can say which one a value tripped. */
const SECRET_SHAPES: ReadonlyArray<readonly [string, RegExp]> = [
  // contracts/client-keys.ts: dgw_<client id>_<43 base64url characters>.
  ['gateway client key', /dgw_[a-z][a-z0-9-]{0,31}_[A-Za-z0-9_-]{16,}/],
  // OpenAI (sk-, sk-proj-) and Anthropic (sk-ant-) keys.
  ['provider key', /(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}/],
  ['AWS access key id', /(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])/],
  ['JSON web token', /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/],
  ['private key', /-----BEGIN [A-Z0-9 ]*PRIVATE KEY/],
  // Dify's app and knowledge API keys: app-<24 characters>, dataset-<24 characters>.
  ['Dify API key', /(?<![A-Za-z0-9])(?:app|dataset)-[A-Za-z0-9]{20,}/],
  ['credentials in a URL', /\/\/[^/\s@:]+:[^/\s@]+@/],
  ['bearer token', /bearer\s+\S/i],
];

/** A run this long of token characters that mixes letters and digits reads as a random secret. */
const TOKEN_RUN = /[A-Za-z0-9+_=-]{32,}/g;
/** Identifiers are short and have no spaces; a prompt is prose. */
const MAX_IDENTIFIER = 256;

/** Why `value` must not be printed, or undefined when it may be. */
export function secretReason(value: string): string | undefined {
  for (const [name, shape] of SECRET_SHAPES) if (shape.test(value)) return name;
  for (const run of value.match(TOKEN_RUN) ?? []) {
    if (/[0-9]/.test(run) && /[A-Za-z]/.test(run)) return 'long random token';
  }
  if (/\s/.test(value)) return 'free text';
  if (value.length > MAX_IDENTIFIER) return 'too long for an identifier';
  return undefined;
}

/**
 * Every string cell of `rows` checked: one that looks like a secret becomes {@link WITHHELD}.
 * Numbers (the counts the command computed) and the caller's own `labels` pass as they are. Returns
 * new rows and how many cells were withheld.
 */
export function withholdSecrets<T extends Record<string, string | number>>(
  rows: readonly T[],
  labels: ReadonlySet<string> = new Set(),
): { rows: T[]; withheld: number } {
  let withheld = 0;
  const checked = rows.map((row) => {
    const out: Record<string, string | number> = {};
    for (const [key, value] of Object.entries(row)) {
      if (typeof value === 'string' && !labels.has(value) && secretReason(value) !== undefined) {
        withheld += 1;
        out[key] = WITHHELD;
      } else out[key] = value;
    }
    return out as T;
  });
  return { rows: checked, withheld };
}
