import type { BuiltInDetector, CustomDetector } from '../records';

/** Where a match sits in the screened text. The matched text itself never leaves this module. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** One detector: finds at most `limit` non-overlapping matches in a text, left to right. */
export interface Detector {
  readonly name: string;
  find(text: string, limit: number): Span[];
}

/** A custom detector the gateway cannot use; the message names the detector, never its pattern or a prompt. */
export class CustomDetectorError extends Error {
  readonly code = 'invalid_custom_detector';
  constructor(
    readonly detector: string,
    problem: string,
  ) {
    super(`custom detector '${detector}': ${problem}`);
    this.name = 'CustomDetectorError';
  }
}

// --- Digits: payment cards and My Number ------------------------------------------------------------

/** A maximal string of digits; groups joined by one separator form a run (`4111 1111 1111 1111`). */
interface Group {
  readonly start: number;
  readonly end: number;
  readonly length: number;
  /** The separator joining it to the previous group of its run; '' for the first group of a run. */
  readonly separator: string;
}

/** Consumes the groups of each run in order; returning false from either method stops the scan. */
interface RunConsumer {
  group(group: Group): boolean;
  endRun(): boolean;
}

/** The value of an ASCII digit or a full-width one (which Japanese input methods often produce), or -1. */
const digitValue = (c: number) => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0xff10 && c <= 0xff19 ? c - 0xff10 : -1);
const isDigit = (c: number) => digitValue(c) >= 0;
/** Space, hyphen, and their Japanese look-alikes (ideographic space, full-width hyphen, ー, ‐, −). */
const isSeparator = (c: number) =>
  c === 0x20 || c === 0x2d || c === 0x2010 || c === 0x2212 || c === 0x3000 || c === 0xff0d || c === 0x30fc;

/**
 * One linear pass over the text that hands each digit group to `consumer`, without building the runs
 * in memory: a body that is one endless run of digits costs time in proportion to its length only.
 */
function scanGroups(text: string, consumer: RunConsumer): void {
  let groupStart = -1;
  let separator = '';
  let inRun = false;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : -1;
    if (isDigit(c)) {
      if (groupStart < 0) groupStart = i;
      continue;
    }
    if (groupStart >= 0) {
      if (!consumer.group({ start: groupStart, end: i, length: i - groupStart, separator })) return;
      groupStart = -1;
      inRun = true;
      // One separator followed by a digit continues the run.
      if (isSeparator(c) && i + 1 < text.length && isDigit(text.charCodeAt(i + 1))) {
        separator = text[i];
        continue;
      }
    }
    if (inRun) {
      if (!consumer.endRun()) return;
      inRun = false;
    }
    separator = '';
  }
}

/** The Luhn checksum that every payment card number satisfies, over 13-19 digits. Ignores anything but digits. */
export function luhnValid(number: string): boolean {
  let sum = 0;
  let count = 0;
  for (let i = number.length - 1; i >= 0; i--) {
    let n = digitValue(number.charCodeAt(i));
    if (n < 0) continue;
    if (count % 2 === 1) {
      n *= 2;
      if (n > 9) n -= 9;
    }
    sum += n;
    count += 1;
  }
  return count >= 13 && count <= 19 && sum % 10 === 0;
}

/**
 * The check digit of a Japanese Individual Number (My Number), as the Ministry of Internal Affairs
 * and Communications publishes it: with Pn the n-th digit from the right excluding the check digit,
 * and Qn = n + 1 for n = 1..6 and n - 5 for n = 7..11, r = (sum of Pn * Qn) mod 11, and the check
 * digit is 0 when r <= 1, else 11 - r. Ignores anything but digits.
 */
export function myNumberValid(number: string): boolean {
  const d: number[] = [];
  for (let i = 0; i < number.length; i++) {
    const n = digitValue(number.charCodeAt(i));
    if (n >= 0) d.push(n);
  }
  if (d.length !== 12) return false;
  let sum = 0;
  for (let n = 1; n <= 11; n++) sum += d[11 - n] * (n <= 6 ? n + 1 : n - 5);
  const r = sum % 11;
  return d[11] === (r <= 1 ? 0 : 11 - r);
}

/** The undecided groups of the current run, oldest first; dropping from the front is O(1). */
class GroupQueue {
  private items: Group[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  at(k: number): Group | undefined {
    return k < this.size ? this.items[this.head + k] : undefined;
  }
  push(group: Group): void {
    this.items.push(group);
  }
  drop(n: number): void {
    this.head += n;
    if (this.head >= 1024) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/**
 * How many of the first groups can form a card number, longest first: one block of 13-19 digits,
 * blocks of four with a shorter last block (4-4-4-4, 4-4-4-4-3, 4-4-4-1), or the 4-6-5 and 4-6-4
 * layouts of Amex and Diners. Requiring a layout keeps a list of small numbers ("1 2 3 ... 13") from
 * passing as a card 1 time in 10, and bounds the candidates to a handful per group.
 */
function cardLayouts(groups: GroupQueue): number[] {
  const a = groups.at(0)!;
  const b = groups.at(1);
  const c = groups.at(2);
  if (a.length >= 13) return a.length <= 19 ? [1] : [];
  if (a.length !== 4) return [];
  if (b?.length === 6) return c !== undefined && (c.length === 4 || c.length === 5) ? [3] : [];
  const counts: number[] = [];
  let total = 0;
  for (let k = 0, g = a; total + g.length <= 19; g = groups.at(++k)!) {
    total += g.length;
    if (total >= 13 && g.length <= 4) counts.unshift(k + 1);
    if (g.length !== 4 || k + 1 >= groups.size) break;
  }
  return counts;
}

/**
 * Payment card numbers: a window of whole groups inside a run that has a card layout and passes Luhn.
 * Windows, rather than whole runs, so that a number followed by its expiry ("4111 ... 1111 12/28") is
 * still found; from the earliest group, the longest valid window wins. A block of more than 19 digits
 * is an identifier, not a card, and nothing inside it is reported.
 */
const creditCard: Detector = {
  name: 'credit_card',
  find(text, limit) {
    const spans: Span[] = [];
    // A window never spans more than 19 digits, so a group is decided once 20 digits follow its start.
    const pending = new GroupQueue();
    let pendingDigits = 0;
    const decideFirst = () => {
      const first = pending.at(0)!;
      const best = cardLayouts(pending).find((n) => luhnValid(text.slice(first.start, pending.at(n - 1)!.end))) ?? 0;
      if (best > 0) spans.push({ start: first.start, end: pending.at(best - 1)!.end });
      for (let k = 0; k < Math.max(best, 1); k++) pendingDigits -= pending.at(k)!.length;
      pending.drop(Math.max(best, 1));
    };
    scanGroups(text, {
      group(g) {
        pending.push(g);
        pendingDigits += g.length;
        while (pendingDigits > 19 && spans.length < limit) decideFirst();
        return spans.length < limit;
      },
      endRun() {
        while (pending.size > 0 && spans.length < limit) decideFirst();
        pending.clear();
        pendingDigits = 0;
        return spans.length < limit;
      },
    });
    return spans;
  },
};

/**
 * My Number: a 12-digit group, or three 4-digit groups joined by the same separator and not part of a
 * longer chain of 4-digit groups (which is a card layout), with a valid check digit.
 */
const myNumber: Detector = {
  name: 'my_number',
  find(text, limit) {
    const spans: Span[] = [];
    const pending = new GroupQueue();
    let previous: Group | undefined;
    const decideFirst = () => {
      const a = pending.at(0)!;
      const b = pending.at(1);
      const c = pending.at(2);
      const after = pending.at(3);
      let taken = 1;
      if (a.length === 12) {
        if (myNumberValid(text.slice(a.start, a.end))) spans.push({ start: a.start, end: a.end });
      } else if (
        b !== undefined &&
        c !== undefined &&
        a.length === 4 &&
        b.length === 4 &&
        c.length === 4 &&
        b.separator === c.separator &&
        !(previous?.length === 4 && a.separator === b.separator) &&
        !(after?.length === 4 && after.separator === b.separator) &&
        myNumberValid(text.slice(a.start, c.end))
      ) {
        spans.push({ start: a.start, end: c.end });
        taken = 3;
      }
      previous = pending.at(taken - 1);
      pending.drop(taken);
    };
    scanGroups(text, {
      group(g) {
        pending.push(g);
        while (pending.size >= 4 && spans.length < limit) decideFirst();
        return spans.length < limit;
      },
      endRun() {
        while (pending.size > 0 && spans.length < limit) decideFirst();
        pending.clear();
        previous = undefined;
        return spans.length < limit;
      },
    });
    return spans;
  },
};

// --- Regular expressions ------------------------------------------------------------------------

/**
 * Runs a global regex over the text, skipping empty matches and those `valid` rejects. The caller
 * owns `pattern` (compiled once); its `lastIndex` is reset here, so it must not be shared across
 * concurrent scans, which is fine in single-threaded synchronous code.
 */
function scan(pattern: RegExp, text: string, limit: number, valid?: (match: string) => boolean): Span[] {
  const spans: Span[] = [];
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m !== null && spans.length < limit; m = pattern.exec(text)) {
    if (m[0].length === 0) {
      // Step over a whole code point, so a `u` pattern never restarts inside a surrogate pair.
      pattern.lastIndex = m.index + ((text.codePointAt(m.index) ?? 0) > 0xffff ? 2 : 1);
      continue;
    }
    if (valid === undefined || valid(m[0])) spans.push({ start: m.index, end: m.index + m[0].length });
  }
  pattern.lastIndex = 0;
  return spans;
}

function regexDetector(name: string, pattern: RegExp, valid?: (match: string) => boolean): Detector {
  return { name, find: (text, limit) => scan(pattern, text, limit, valid) };
}

/**
 * E-mail addresses: a local part of at most 64 characters, then up to eight dot-separated labels and
 * a letter TLD. Every quantifier is bounded and labels are split by required dots, so the scan stays
 * linear on hostile input. `user@localhost` (no dot) is not reported.
 */
const email = regexDetector(
  'email',
  /(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])/g,
);

/**
 * Phone numbers, in forms that carry a phone's punctuation, so a bare digit run (a card number, an
 * order id) is never a phone number:
 * - international: `+CC` then groups split by space, dot or hyphen (`+81 90-1234-5678`,
 *   `+1 (415) 555-0134`, `+81 (0)90 1234 5678`), or E.164 without separators (`+14155550134`);
 * - Japanese: `0X0-XXXX-XXXX`, `0X-XXXX-XXXX`, `0XXX-XX-XXXX` with hyphens or spaces, or `03(1234)5678`,
 *   with 10 or 11 digits in all;
 * - North American: `(415) 555-0134`, `415-555-0134`, `415.555.0134`, optionally after `1-`.
 * Where a phone match overlaps a card or My Number match, the phone match is dropped (see PRECEDENCE).
 */
const phone = regexDetector(
  'phone',
  new RegExp(
    [
      '(?<![\\w+.-])(?:',
      [
        '\\+\\d{1,3}(?:[ .-](?:\\(\\d{1,4}\\)\\d{0,4}|\\d{1,5})){2,6}',
        '\\+\\d{7,15}',
        '0\\d{1,4}-\\d{1,4}-\\d{3,4}',
        '0\\d{1,4} \\d{1,4} \\d{3,4}',
        '0\\d{1,4}\\(\\d{1,4}\\)\\d{3,4}',
        '(?:1-)?\\(\\d{3}\\) ?\\d{3}-\\d{4}',
        '(?:1-)?\\d{3}-\\d{3}-\\d{4}',
        '\\d{3}\\.\\d{3}\\.\\d{4}',
      ].join('|'),
      ')(?![\\w-]|\\.\\d)',
    ].join(''),
    'g',
  ),
  (match) => {
    const digits = match.replace(/\D/g, '').length;
    if (match.startsWith('+')) return digits >= 8 && digits <= 16;
    if (match.startsWith('0')) return digits === 10 || digits === 11;
    return true;
  },
);

const awsAccessKey = regexDetector('aws_access_key', /(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/g);

/**
 * PEM private keys (PKCS#1 `RSA`, `EC`, `DSA`, `OPENSSH`, PKCS#8 plain and `ENCRYPTED`, PGP `... BLOCK`),
 * from the BEGIN line through the next END line. The markers are found in one linear pass and paired
 * here, instead of a lazy `BEGIN[\s\S]*?END` regex that rescans the rest of the text for every BEGIN.
 * A BEGIN without an END (a key pasted in part) runs to the end of the text: key material is
 * reported even when the footer is missing.
 */
const PEM_MARKER = /-----(BEGIN|END) (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/g;
const privateKey: Detector = {
  name: 'private_key',
  find(text, limit) {
    const spans: Span[] = [];
    let open = -1;
    PEM_MARKER.lastIndex = 0;
    for (let m = PEM_MARKER.exec(text); m !== null && spans.length < limit; m = PEM_MARKER.exec(text)) {
      if (m[1] === 'BEGIN' && open < 0) open = m.index;
      else if (m[1] === 'END' && open >= 0) {
        spans.push({ start: open, end: m.index + m[0].length });
        open = -1;
      }
    }
    PEM_MARKER.lastIndex = 0;
    if (open >= 0 && spans.length < limit) spans.push({ start: open, end: text.length });
    return spans;
  },
};

/** The built-in detectors, in the order of BUILT_IN_DETECTORS (the order decisions are reported in). */
export const BUILT_INS: Readonly<Record<BuiltInDetector, Detector>> = {
  credit_card: creditCard,
  my_number: myNumber,
  email,
  phone,
  aws_access_key: awsAccessKey,
  private_key: privateKey,
};

/**
 * Digit detectors whose matches can cover the same characters, strongest first: a match of a later
 * detector that overlaps a match of an earlier one in the same text is dropped before counting. So a
 * card number is only ever a card, never also a phone number (`+` and 15 digits is both in form).
 */
export const PRECEDENCE: readonly string[] = ['credit_card', 'my_number', 'phone'];

// --- Custom detectors -----------------------------------------------------------------------------

const CUSTOM_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const CUSTOM_FLAGS = /^[imsu]*$/;

/**
 * V8 puts the pattern in its message (`Invalid regular expression: /<pattern>/<flags>: <reason>`, flags
 * sorted): keep the reason only, or say nothing specific if the message has another shape.
 */
function syntaxReason(error: unknown, pattern: string): string {
  const message = error instanceof Error ? error.message : '';
  const prefix = `Invalid regular expression: /${pattern}/`;
  const reason = message.startsWith(prefix) ? /^[a-z]*: (.+)$/s.exec(message.slice(prefix.length))?.[1] : undefined;
  return reason ?? 'the pattern is not a valid regular expression';
}

/**
 * Compiles the configured regex detectors once, each with the `g` flag added, as `custom:<name>`.
 * Throws a CustomDetectorError for a name that is malformed or repeated, flags other than i, m, s and
 * u, a pattern that does not compile, or one that matches the empty string (it would match
 * everywhere). Error messages never repeat the pattern, which may itself be a secret to look for.
 */
export function compileCustom(custom: readonly CustomDetector[]): Detector[] {
  const seen = new Set<string>();
  return custom.map((detector) => {
    if (typeof detector.name !== 'string' || !CUSTOM_NAME.test(detector.name)) {
      throw new CustomDetectorError(
        String(detector.name).slice(0, 40),
        'a name is 1-32 characters: a lowercase letter, then lowercase letters, digits or -',
      );
    }
    const name = detector.name;
    if (seen.has(name)) throw new CustomDetectorError(name, 'the name is used by another custom detector');
    seen.add(name);
    const flags = detector.flags ?? '';
    if (!CUSTOM_FLAGS.test(flags) || new Set(flags).size !== flags.length) {
      throw new CustomDetectorError(name, 'flags may only be i, m, s and u, each at most once');
    }
    if (typeof detector.pattern !== 'string' || detector.pattern.length === 0) {
      throw new CustomDetectorError(name, 'the pattern is empty');
    }
    let pattern: RegExp;
    try {
      pattern = new RegExp(detector.pattern, `${flags}g`);
    } catch (error) {
      throw new CustomDetectorError(name, `invalid regular expression (${syntaxReason(error, detector.pattern)})`);
    }
    if (new RegExp(pattern.source, flags).test('')) {
      throw new CustomDetectorError(name, 'the pattern matches the empty string, so it would match every prompt');
    }
    return regexDetector(`custom:${name}`, pattern);
  });
}
