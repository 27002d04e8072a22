import type { BuiltInDetector, CustomDetector } from '../../../contracts/gateway-documents';

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
//
// The detectors read normalized text (normalize.ts): every decimal digit is an ASCII digit, every
// dash a `-` and every space a ` `, whatever the client typed.

/**
 * Consumes the digit groups of each run in order; returning false from either method stops the scan.
 * A group is text[start, end), all digits; `separatorStart` is where the separator joining it to the
 * previous group of its run starts (that group's end), or -1 for the first group of a run.
 */
interface RunConsumer {
  group(start: number, end: number, separatorStart: number): boolean;
  endRun(): boolean;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
/**
 * Characters that may stand between the digit groups of one number: spaces, tabs, line breaks,
 * hyphens, dots, slashes and underscores (each normalized form: no-break and ideographic spaces, every
 * dash). Not commas, colons or letters: `2019, 2020, 2021` is a list and `12:30` a time.
 */
const isSeparator = (c: number) =>
  c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x2d || c === 0x2e || c === 0x2f || c === 0x5f;

/** Whether the text has at least `n` digits: the digit detectors skip texts that cannot hold a match. */
function hasDigits(text: string, n: number): boolean {
  let count = 0;
  for (let i = 0; i < text.length; i++) if (isDigit(text.charCodeAt(i)) && ++count >= n) return true;
  return false;
}

/** At most this many separator characters join two groups (`" - "`, `"\r\n"`, several spaces). */
const MAX_SEPARATOR = 4;

/**
 * One linear pass over the text that hands each digit group to `consumer`, allocating nothing per
 * group: a body that is one endless run of digit groups costs time in proportion to its length only.
 */
function scanGroups(text: string, consumer: RunConsumer): void {
  let groupStart = -1;
  let separatorStart = -1;
  let inRun = false;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : -1;
    if (isDigit(c)) {
      if (groupStart < 0) groupStart = i;
      continue;
    }
    if (groupStart >= 0) {
      if (!consumer.group(groupStart, i, separatorStart)) return;
      groupStart = -1;
      inRun = true;
      // A short run of separators followed by a digit continues the run.
      let j = i;
      while (j < text.length && j - i < MAX_SEPARATOR && isSeparator(text.charCodeAt(j))) j += 1;
      if (j > i && j < text.length && isDigit(text.charCodeAt(j))) {
        separatorStart = i;
        i = j - 1;
        continue;
      }
    }
    if (inRun) {
      if (!consumer.endRun()) return;
      inRun = false;
    }
    separatorStart = -1;
  }
}

/** The undecided groups of the current run, oldest first, in a ring of typed arrays (no allocation per group). */
class GroupRing {
  private readonly starts = new Int32Array(64);
  private readonly ends = new Int32Array(64);
  private readonly separators = new Int32Array(64);
  private head = 0;
  size = 0;
  push(start: number, end: number, separatorStart: number): void {
    const at = (this.head + this.size) & 63;
    this.starts[at] = start;
    this.ends[at] = end;
    this.separators[at] = separatorStart;
    this.size += 1;
  }
  start(k: number): number {
    return this.starts[(this.head + k) & 63];
  }
  end(k: number): number {
    return this.ends[(this.head + k) & 63];
  }
  length(k: number): number {
    return k < this.size ? this.end(k) - this.start(k) : -1;
  }
  /** Where the separator before group k starts, or -1 for the first group of a run. */
  separator(k: number): number {
    return this.separators[(this.head + k) & 63];
  }
  drop(n: number): void {
    this.head = (this.head + n) & 63;
    this.size -= n;
  }
  clear(): void {
    this.head = 0;
    this.size = 0;
  }
}

/** Whether the separators before groups j and k of a ring are the same characters. */
function sameSeparator(text: string, ring: GroupRing, j: number, k: number): boolean {
  const a = ring.separator(j);
  const b = ring.separator(k);
  if (a < 0 || b < 0) return a === b;
  const length = ring.start(j) - a;
  if (ring.start(k) - b !== length) return false;
  for (let i = 0; i < length; i++) if (text.charCodeAt(a + i) !== text.charCodeAt(b + i)) return false;
  return true;
}

/** The digits of the first n groups of a ring, into `into`; returns how many (at most into.length). */
function gather(text: string, ring: GroupRing, n: number, into: Uint8Array): number {
  let count = 0;
  for (let k = 0; k < n; k++) {
    for (let i = ring.start(k); i < ring.end(k) && count < into.length; i++) into[count++] = text.charCodeAt(i) - 0x30;
  }
  return count;
}

/** Luhn over digit values. */
function luhnDigits(digits: Uint8Array, count: number): boolean {
  let sum = 0;
  for (let i = 0; i < count; i++) {
    let n = digits[count - 1 - i];
    if (i % 2 === 1) {
      n *= 2;
      if (n > 9) n -= 9;
    }
    sum += n;
  }
  return count >= 13 && count <= 19 && sum % 10 === 0;
}

/** The Luhn checksum that every payment card number satisfies, over 13-19 digits. Ignores anything but digits. */
export function luhnValid(number: string): boolean {
  const digits = new Uint8Array(number.length);
  let count = 0;
  for (let i = 0; i < number.length; i++) {
    const c = number.charCodeAt(i);
    if (isDigit(c)) digits[count++] = c - 0x30;
  }
  return luhnDigits(digits, count);
}

/**
 * Whether the digits start with an issuer prefix of a card network (ISO/IEC 7812 IIN ranges): Visa 4;
 * Mastercard 51-55 and 2221-2720; Maestro, Discover, UnionPay and RuPay 5 and 6, RuPay 81-82; Amex 34
 * and 37; JCB 3528-3589; Diners 300-305, 36, 38 and 39. Together with Luhn it keeps lists of years and
 * other figures (`2019 2020 2021 2022`) from passing as a card one time in ten.
 */
function issuerDigits(d: Uint8Array): boolean {
  const p2 = d[0] * 10 + d[1];
  const p3 = p2 * 10 + d[2];
  const p4 = p3 * 10 + d[3];
  switch (d[0]) {
    case 4:
    case 5:
    case 6:
      return true;
    case 2:
      return p4 >= 2221 && p4 <= 2720;
    case 3:
      return (
        p2 === 34 ||
        p2 === 37 ||
        p2 === 36 ||
        p2 === 38 ||
        p2 === 39 ||
        (p4 >= 3528 && p4 <= 3589) ||
        (p3 >= 300 && p3 <= 305)
      );
    case 8:
      return p2 === 81 || p2 === 82;
    default:
      return false;
  }
}

/** issuerDigits for a string of digits (tests and callers outside this module). */
export function issuerKnown(digits: string): boolean {
  const d = new Uint8Array(4);
  for (let i = 0; i < 4 && i < digits.length; i++) d[i] = digits.charCodeAt(i) - 0x30;
  return digits.length >= 4 && issuerDigits(d);
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
    const c = number.charCodeAt(i);
    if (isDigit(c)) d.push(c - 0x30);
  }
  if (d.length !== 12) return false;
  let sum = 0;
  for (let n = 1; n <= 11; n++) sum += d[11 - n] * (n <= 6 ? n + 1 : n - 5);
  const r = sum % 11;
  return d[11] === (r <= 1 ? 0 : 11 - r);
}

/**
 * How many of the first groups can form a card number, longest first, into `into` (returns the count):
 * one block of 13-19 digits, blocks of four with a shorter last block (4-4-4-4, 4-4-4-4-3, 4-4-4-1),
 * or the 4-6-5 and 4-6-4 layouts of Amex and Diners. Requiring a printed layout keeps a list of small
 * numbers ("1 2 3 ... 13") from passing as a card one time in ten, and bounds the candidates.
 */
function cardLayouts(ring: GroupRing, into: number[]): number {
  const a = ring.length(0);
  if (a >= 13) {
    into[0] = 1;
    return a <= 19 ? 1 : 0;
  }
  if (a !== 4) return 0;
  if (ring.length(1) === 6) {
    const c = ring.length(2);
    into[0] = 3;
    return c === 4 || c === 5 ? 1 : 0;
  }
  let found = 0;
  let total = 0;
  for (let k = 0; k < ring.size; k++) {
    const length = ring.length(k);
    if (total + length > 19) break;
    total += length;
    if (total >= 13 && length <= 4) into[found++] = k + 1;
    if (length !== 4) break;
  }
  // Longest first.
  for (let i = 0, j = found - 1; i < j; i++, j--) [into[i], into[j]] = [into[j], into[i]];
  return found;
}

/**
 * Payment card numbers: a window of whole groups inside a run that has a card layout, an issuer
 * prefix and a valid Luhn digit, whatever the separators between its groups. Every window is tried,
 * from each group in turn, so a number followed by its expiry or CVV ("4111 ... 1111 12/28", "... 123")
 * is still found; from the earliest group, the longest valid window wins. A block of more than 19
 * digits is an identifier, not a card, and nothing inside it is reported.
 */
const creditCard: Detector = {
  name: 'credit_card',
  find(text, limit) {
    const spans: Span[] = [];
    if (!hasDigits(text, 13)) return spans;
    // A window never spans more than 19 digits, so a group is decided once 20 digits follow its start.
    const ring = new GroupRing();
    const layouts: number[] = [0, 0, 0, 0, 0, 0];
    const digits = new Uint8Array(19);
    let pendingDigits = 0;
    const decideFirst = () => {
      let best = 0;
      const found = cardLayouts(ring, layouts);
      for (let i = 0; i < found && best === 0; i++) {
        const count = gather(text, ring, layouts[i], digits);
        if (issuerDigits(digits) && luhnDigits(digits, count)) best = layouts[i];
      }
      if (best > 0) spans.push({ start: ring.start(0), end: ring.end(best - 1) });
      const taken = Math.max(best, 1);
      for (let k = 0; k < taken; k++) pendingDigits -= ring.length(k);
      ring.drop(taken);
    };
    scanGroups(text, {
      group(start, end, separatorStart) {
        ring.push(start, end, separatorStart);
        pendingDigits += end - start;
        while (pendingDigits > 19 && spans.length < limit) decideFirst();
        return spans.length < limit;
      },
      endRun() {
        while (ring.size > 0 && spans.length < limit) decideFirst();
        ring.clear();
        pendingDigits = 0;
        return spans.length < limit;
      },
    });
    return spans;
  },
};

/**
 * My Number: a 12-digit group, or three 4-digit groups joined by the same separator and not part of a
 * longer chain of 4-digit groups (which is a card layout), with a valid check digit. The check digit
 * alone passes one number in eleven, so the separator must be the same twice: `1234 5678-9012` is not
 * one number.
 */
const myNumber: Detector = {
  name: 'my_number',
  find(text, limit) {
    const spans: Span[] = [];
    if (!hasDigits(text, 12)) return spans;
    const ring = new GroupRing();
    /** Whether the group decided last (the one before group 0, in the same run) was four digits long. */
    let previousWasFour = false;
    const decideFirst = () => {
      let taken = 1;
      if (ring.length(0) === 12) {
        if (myNumberValid(text.slice(ring.start(0), ring.end(0))))
          spans.push({ start: ring.start(0), end: ring.end(0) });
      } else if (
        ring.length(0) === 4 &&
        ring.length(1) === 4 &&
        ring.length(2) === 4 &&
        sameSeparator(text, ring, 1, 2) &&
        !(previousWasFour && ring.separator(0) >= 0 && sameSeparator(text, ring, 0, 1)) &&
        !(ring.length(3) === 4 && sameSeparator(text, ring, 3, 1)) &&
        myNumberValid(text.slice(ring.start(0), ring.end(2)))
      ) {
        spans.push({ start: ring.start(0), end: ring.end(2) });
        taken = 3;
      }
      previousWasFour = ring.length(taken - 1) === 4;
      ring.drop(taken);
    };
    scanGroups(text, {
      group(start, end, separatorStart) {
        ring.push(start, end, separatorStart);
        while (ring.size >= 4 && spans.length < limit) decideFirst();
        return spans.length < limit;
      },
      endRun() {
        while (ring.size > 0 && spans.length < limit) decideFirst();
        ring.clear();
        previousWasFour = false;
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

/**
 * A detector from a global regex. `worthScanning` is a cheap test that the text can hold a match at
 * all (an `@` for an address), so the usual prompt costs a scan of its characters, not a regex run.
 */
function regexDetector(
  name: string,
  pattern: RegExp,
  valid?: (match: string) => boolean,
  worthScanning: (text: string) => boolean = () => true,
): Detector {
  return { name, find: (text, limit) => (worthScanning(text) ? scan(pattern, text, limit, valid) : []) };
}

/**
 * E-mail addresses: a local part of at most 64 characters, then up to eight dot-separated labels and
 * a letter TLD. Every quantifier is bounded and labels are split by required dots, so the scan stays
 * linear on hostile input. `user@localhost` (no dot) is not reported.
 */
const email = regexDetector(
  'email',
  /(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])/g,
  undefined,
  (text) => text.includes('@'),
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
  (text) => hasDigits(text, 8),
);

const isUpperAlnum = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x5a);
const isAlnum = (c: number) => isUpperAlnum(c) || (c >= 0x61 && c <= 0x7a);

/**
 * AWS access key ids: `AKIA` (long-term) or `ASIA` (temporary) and 16 upper-case letters or digits,
 * 20 characters not inside a longer word. Also written in groups (`AKIA IOSF ODNN 7EXA MPLE`,
 * `AKIA-IOSF-ODNN-7EXAMPLE`, one character a line): the separators (the digit separators above,
 * at most four in a row) must all be the same, and every group but the last the same length, which
 * a key written in groups has and upper-case prose that follows the word ASIA does not.
 */
const PREFIX_SECOND = [0x4b, 0x53]; // K (AKIA), S (ASIA)
const awsAccessKey: Detector = {
  name: 'aws_access_key',
  find(text, limit) {
    const spans: Span[] = [];
    for (let i = text.indexOf('A'); i >= 0 && spans.length < limit; i = text.indexOf('A', i + 1)) {
      if (i > 0 && isAlnum(text.charCodeAt(i - 1))) continue;
      let count = 0;
      let separatorStart = -1;
      let separatorLength = 0;
      let groupLength = 0;
      let firstGroupLength = -1;
      let j = i;
      let ok = true;
      while (ok && count < 20 && j < text.length) {
        const c = text.charCodeAt(j);
        if (isUpperAlnum(c)) {
          // The prefix is checked as it is read, so prose that merely starts with an A costs a character or two.
          ok = count === 1 ? PREFIX_SECOND.includes(c) : count === 2 ? c === 0x49 : count === 3 ? c === 0x41 : true;
          count += 1;
          groupLength += 1;
          j += 1;
          continue;
        }
        let k = j;
        while (k < text.length && k - j < MAX_SEPARATOR && isSeparator(text.charCodeAt(k))) k += 1;
        if (k === j || k >= text.length || !isUpperAlnum(text.charCodeAt(k))) break;
        if (separatorStart < 0) {
          separatorStart = j;
          separatorLength = k - j;
          firstGroupLength = groupLength;
        } else {
          // Every separator the same, every group but the last as long as the first.
          ok = groupLength === firstGroupLength && k - j === separatorLength;
          for (let m = 0; ok && m < separatorLength; m++)
            ok = text.charCodeAt(j + m) === text.charCodeAt(separatorStart + m);
        }
        groupLength = 0;
        j = k;
      }
      if (!ok || count !== 20 || (j < text.length && isAlnum(text.charCodeAt(j)))) continue;
      spans.push({ start: i, end: j });
      i = j - 1;
    }
    return spans;
  },
};

/**
 * PEM private keys (PKCS#1 `RSA`, `EC`, `DSA`, `OPENSSH`, PKCS#8 plain and `ENCRYPTED`, PGP `... BLOCK`),
 * from the BEGIN line through the next END line. The markers are found in one linear pass and paired
 * here, instead of a lazy `BEGIN[\s\S]*?END` regex that rescans the rest of the text for every BEGIN.
 * A key split between two texts (two messages, two content parts) is caught in both halves: a BEGIN
 * without an END runs to the end of its text, and an END without a BEGIN reaches back over the
 * base64 lines before it (only when there are some: an END line quoted alone is not a key).
 */
// At most four label words of at most 16 characters (`ENCRYPTED`, `OPENSSH`, `PGP`): an unbounded
// `(?:[A-Z0-9]+ )*` backtracks over every word of a hostile body after each BEGIN.
const PEM_MARKER = /-----(BEGIN|END) (?:[A-Z0-9]{1,16} ){0,4}PRIVATE KEY(?: BLOCK)?-----/g;
/** Base64 characters and line breaks: key material. */
const isKeyMaterial = (c: number) =>
  isAlnum(c) || c === 0x2b || c === 0x2f || c === 0x3d || c === 0x0a || c === 0x0d || c === 0x20 || c === 0x09;
const privateKey: Detector = {
  name: 'private_key',
  find(text, limit) {
    const spans: Span[] = [];
    if (!text.includes('-----')) return spans;
    let open = -1;
    let previousEnd = 0;
    PEM_MARKER.lastIndex = 0;
    for (let m = PEM_MARKER.exec(text); m !== null && spans.length < limit; m = PEM_MARKER.exec(text)) {
      const end = m.index + m[0].length;
      if (m[1] === 'BEGIN') {
        if (open < 0) open = m.index;
      } else if (open >= 0) {
        spans.push({ start: open, end });
        open = -1;
        previousEnd = end;
      } else {
        let from = m.index;
        while (from > previousEnd && isKeyMaterial(text.charCodeAt(from - 1))) from -= 1;
        let material = 0;
        for (let k = from; k < m.index; k++) if (isAlnum(text.charCodeAt(k))) material += 1;
        if (material >= 16) {
          spans.push({ start: from, end });
          previousEnd = end;
        }
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
