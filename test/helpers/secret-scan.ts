/**
 * Finds values in a synthesized template that look like secrets written in clear. Dynamic
 * references (`{{resolve:secretsmanager:...}}`) and intrinsic functions are fine: they resolve at
 * deploy time and never show the value.
 */
const SECRET_KEY_NAME = /(password|passwd|authtoken|apikey|api_key|secretkey|secret_key|privatekey|accesskey)$/i;
const PATTERNS: Array<[string, RegExp]> = [
  ['AWS access key id', /\b(AKIA|ASIA)[0-9A-Z]{16}\b/],
  ['private key block', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
  ['OpenAI-style API key', /\bsk-[A-Za-z0-9_-]{20,}\b/],
  // A password that is a shell variable (`:$REDIS_PASSWORD@`, expanded in the container from an
  // injected secret) is a reference, not a value; anything else between `:` and `@` is a finding.
  ['credentials in a URL', /[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:(?!\$\{?[A-Z_][A-Z0-9_]*\}?@)[^/\s@]+@/i],
];

export interface SecretFinding {
  readonly path: string;
  readonly why: string;
}

function entropy(text: string): number {
  const counts = new Map<string, number>();
  for (const char of text) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= (n / text.length) * Math.log2(n / text.length);
  return bits;
}

/** High-entropy tokens: long, mixed-case, with several digits, and not hex (content hashes are hex). */
function looksGenerated(value: string, knownIds: ReadonlySet<string>): boolean {
  return value.split(/[^A-Za-z0-9+=_-]+/).some((token) => {
    if (token.length < 32 || knownIds.has(token) || /^[0-9a-f]+$/i.test(token)) return false;
    if ([...knownIds].some((id) => token.startsWith(id))) return false;
    // CDK's generated names: the construct path's words, then an 8-character upper-case hex hash.
    if (
      /^(?:[A-Z][a-z]+|[A-Z]+|[0-9])+[0-9A-F]{8}$/.test(token) &&
      !/[0-9][a-z]|[a-z][0-9][a-z]/.test(token.slice(0, -8))
    )
      return false;
    // Random tokens mix all three classes throughout; identifiers and rule ids are words with few digits.
    const count = (pattern: RegExp) => (token.match(pattern) ?? []).length;
    const mixed = count(/[a-z]/g) >= 4 && count(/[A-Z]/g) >= 4 && count(/[0-9]/g) >= 4;
    // Shannon entropy per character: 32 random alphanumerics score about 4.4-4.6; policy names and
    // hex ids, whose alphabets are small or repetitive, score under 4.2.
    return mixed && entropy(token) >= 4.25;
  });
}

export function scanForSecrets(template: Record<string, any>): SecretFinding[] {
  const findings: SecretFinding[] = [];
  const knownIds = new Set([...Object.keys(template.Resources ?? {}), ...Object.keys(template.Outputs ?? {})]);
  const walk = (value: unknown, path: string, key: string): void => {
    if (typeof value === 'string') {
      if (SECRET_KEY_NAME.test(key)) findings.push({ path, why: `literal value for a secret-named key '${key}'` });
      for (const [why, pattern] of PATTERNS) if (pattern.test(value)) findings.push({ path, why });
      if (!value.includes('{{resolve:') && looksGenerated(value, knownIds)) {
        findings.push({ path, why: 'a long high-entropy literal' });
      }
      return;
    }
    if (Array.isArray(value)) value.forEach((item, index) => walk(item, `${path}[${index}]`, key));
    else if (value !== null && typeof value === 'object') {
      for (const [childKey, child] of Object.entries(value)) walk(child, `${path}.${childKey}`, childKey);
    }
  };
  walk(template, '$', '');
  return findings;
}
