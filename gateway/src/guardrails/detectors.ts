import type { CustomDetector } from '../records';

/** A match's position in the screened text; the text itself is never returned from this module. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

export interface Detector {
  readonly name: string;
  find(text: string): Span[];
}

/** At most this many matches per detector and text: enough to decide, bounded on hostile input. */
export const MAX_MATCHES = 1000;

function regexDetector(name: string, pattern: RegExp, valid: (match: string) => boolean = () => true): Detector {
  return {
    name,
    find(text) {
      const spans: Span[] = [];
      const re = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
      for (let m = re.exec(text); m !== null && spans.length < MAX_MATCHES; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex += 1;
          continue;
        }
        if (valid(m[0])) spans.push({ start: m.index, end: m.index + m[0].length });
      }
      return spans;
    },
  };
}

const digits = (s: string) => s.replace(/\D/g, '');

/** The Luhn checksum that every payment card number satisfies. */
export function luhnValid(number: string): boolean {
  const d = digits(number);
  if (d.length < 13 || d.length > 19) return false;
  let sum = 0;
  for (let i = 0; i < d.length; i++) {
    let n = Number(d[d.length - 1 - i]);
    if (i % 2 === 1) {
      n *= 2;
      if (n > 9) n -= 9;
    }
    sum += n;
  }
  return sum % 10 === 0;
}

/**
 * The check digit of a Japanese Individual Number (My Number): weights n+1 for the 1st to 6th digit
 * from the right (excluding the check digit) and n-5 for the 7th to 11th; remainder r of the sum by
 * 11; check digit 0 when r <= 1, else 11 - r.
 */
export function myNumberValid(number: string): boolean {
  const d = digits(number);
  if (d.length !== 12) return false;
  const body = d.slice(0, 11);
  let sum = 0;
  for (let n = 1; n <= 11; n++) {
    const p = Number(body[11 - n]);
    const q = n <= 6 ? n + 1 : n - 5;
    sum += p * q;
  }
  const r = sum % 11;
  return Number(d[11]) === (r <= 1 ? 0 : 11 - r);
}

/** The built-in detectors, in the order their decisions are reported. */
export const BUILT_INS: readonly Detector[] = [
  regexDetector(
    'private_key',
    /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----/,
  ),
  regexDetector('aws_access_key', /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/),
  // 13-19 digits, in groups separated by single spaces or hyphens; Luhn decides. Neither this nor
  // My Number matches a piece of a longer digit sequence (`1111 1111 1111` inside a card number).
  regexDetector('credit_card', /(?<!\d[ -]?)\d(?:[ -]?\d){12,18}(?![ -]?\d)/, luhnValid),
  // 12 digits, optionally 4-4-4; the check digit decides.
  regexDetector('my_number', /(?<!\d[ -]?)(?:\d{4}[ -]\d{4}[ -]\d{4}|\d{12})(?![ -]?\d)/, myNumberValid),
  regexDetector('email', /\b[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b/),
  // International (+CC ...), Japanese (0X0-XXXX-XXXX, 0X-XXXX-XXXX) and North American ((XXX) XXX-XXXX)
  // forms; separators are required, so a bare digit run (a card, an id) is not a phone number.
  regexDetector(
    'phone',
    /(?<![\w+-])(?:\+\d{1,3}[ -]\d{1,4}(?:[ -]\d{2,4}){2,3}|0\d{1,3}-\d{2,4}-\d{3,4}|\(\d{3}\) ?\d{3}-\d{4}|\d{3}-\d{3}-\d{4})(?![\w-])/,
  ),
];

/** Compiles the configured regex detectors; an invalid one is an error naming it (never the text). */
export function compileCustom(custom: readonly CustomDetector[]): Detector[] {
  return custom.map((detector) => {
    let pattern: RegExp;
    try {
      pattern = new RegExp(detector.pattern, `${detector.flags.replace(/g/g, '')}g`);
    } catch (error) {
      throw new Error(`custom detector '${detector.name}': invalid regular expression (${(error as Error).message})`, {
        cause: error,
      });
    }
    return regexDetector(`custom:${detector.name}`, pattern);
  });
}
