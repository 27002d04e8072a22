/**
 * The text the detectors read: one canonical form for the many ways a person or a program can write
 * the same digits, dashes, spaces and letters, with a map back to the original characters, so that a
 * redaction replaces exactly what the client sent.
 *
 * - NFKC: full-width and other compatibility forms become their plain form (`４` → `4`, `＠` → `@`,
 *   `Ａ` → `A`, `①` → `1`).
 * - Every Unicode space (`\p{Zs}`: no-break, ideographic, thin, ...) becomes ` `; every dash (`\p{Pd}`,
 *   the minus sign, the katakana prolonged sound mark that Japanese input methods type for a hyphen)
 *   becomes `-`.
 * - Default-ignorable characters (zero-width space and joiners, soft hyphen, word joiner, BOM, variation
 *   selectors, tags) are removed.
 * - Decimal digits of every script (`\p{Nd}`: Arabic-Indic, Devanagari, Thai, mathematical, ...) become
 *   ASCII digits.
 *
 * Homoglyphs of other scripts (a Cyrillic `А` for a Latin `A`) are not folded: NFKC keeps them apart,
 * and no table of confusables is applied (README: out of scope).
 */

/** What happens to a BMP code unit. */
const COPY = 0;
const DROP = 1;
const SPACE = 2;
const DASH = 3;
const DIGIT = 4;
/** Not stable under NFKC on its own: normalized with the combining marks that follow it. */
const NFKC = 5;
/** A combining mark: belongs to the unit of the character before it. */
const MARK = 6;
/** A surrogate: the code point is decided when both halves are read. */
const SURROGATE = 7;

/** Combining marks normalized together with the character before them; more start a unit of their own. */
const MAX_MARKS = 30;

/** Dashes that are not `\p{Pd}` but are written for one: minus sign, katakana and half-width prolonged sound marks, hyphen bullet, small and full-width hyphen-minus. */
const EXTRA_DASHES = [0x2212, 0x30fc, 0xff70, 0x2043, 0xfe63, 0xff0d];

let kinds: Uint8Array | undefined;
let digits: Uint8Array | undefined;

/**
 * Builds the BMP tables (about 15 ms, once per process). The gateway calls it at start, so the first
 * request with non-ASCII text does not pay for it; otherwise the first `normalize` call does.
 */
export function prepareNormalizer(): void {
  if (kinds !== undefined) return;
  const table = new Uint8Array(0x10000);
  const values = new Uint8Array(0x10000);
  const units = new Uint16Array(0x10000);
  for (let c = 0; c < 0x10000; c++) units[c] = c >= 0xd800 && c <= 0xdfff ? 0x20 : c;
  const bmp = new TextDecoder('utf-16le').decode(units);
  const mark = (pattern: RegExp, kind: number) => {
    for (const m of bmp.matchAll(pattern)) for (let i = 0; i < m[0].length; i++) table[m.index + i] = kind;
  };
  for (let c = 0x80; c < 0x10000; c++) {
    const ch = bmp[c];
    if (ch.normalize('NFKC') !== ch) table[c] = NFKC;
  }
  mark(/\p{M}+/gu, MARK);
  mark(/\p{Zs}+/gu, SPACE);
  mark(/\p{Pd}+/gu, DASH);
  for (const c of EXTRA_DASHES) table[c] = DASH;
  mark(/\p{Default_Ignorable_Code_Point}+/gu, DROP);
  // Decimal digits come in runs of ten, 0 to 9, in every script (Unicode's stability policy).
  for (const m of bmp.matchAll(/\p{Nd}+/gu)) {
    for (let i = 0; i < m[0].length; i++) {
      table[m.index + i] = DIGIT;
      values[m.index + i] = i % 10;
    }
  }
  for (let c = 0xd800; c <= 0xdfff; c++) table[c] = SURROGATE;
  // ASCII is copied as it is (its dash and space are already the canonical ones; its digits, 0-9).
  for (let c = 0; c < 0x80; c++) table[c] = COPY;
  kinds = table;
  digits = values;
}

/**
 * The value of an astral decimal digit (Adlam, mathematical digits, ...), or -1. Digits come in runs
 * of ten from 0, and adjacent runs (the five sets of mathematical digits) start at multiples of ten
 * from the first, so the value is the distance from the run's start, modulo ten.
 */
function astralDigit(cp: number): number {
  const isDigit = (c: number) => /^\p{Nd}$/u.test(String.fromCodePoint(c));
  if (!isDigit(cp)) return -1;
  let first = cp;
  while (isDigit(first - 1)) first -= 1;
  return (cp - first) % 10;
}

/** The normalized text, and for each of its characters the original range it came from (null: the text is unchanged). */
export interface Normalized {
  readonly text: string;
  /** `start[i]` is where the original of normalized character `i` starts; null when the text is unchanged. */
  readonly start: Int32Array | null;
  /** `end[i]` is where it ends (exclusive). */
  readonly end: Int32Array | null;
}

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** One pass over the text; ASCII text (the usual prompt) is returned as it is, with no map. */
export function normalize(text: string): Normalized {
  if (!NON_ASCII.test(text)) return { text, start: null, end: null };
  prepareNormalizer();
  const table = kinds!;
  const values = digits!;
  // The output as UTF-16 code units, with the original range of each; NFKC can expand one code point
  // into several characters (up to 18), so the buffers grow as needed.
  let codes = new Uint16Array(text.length + 16);
  let start = new Int32Array(text.length + 16);
  let end = new Int32Array(text.length + 16);
  let n = 0;
  const put = (code: number, from: number, to: number) => {
    if (n === codes.length) {
      const size = codes.length * 2;
      const grown = [new Uint16Array(size), new Int32Array(size), new Int32Array(size)] as const;
      grown[0].set(codes);
      grown[1].set(start);
      grown[2].set(end);
      [codes, start, end] = grown;
    }
    codes[n] = code;
    start[n] = from;
    end[n] = to;
    n += 1;
  };
  /** A unit normalized by NFKC, whose characters may themselves be dashes, spaces, digits of another script or ignorable. */
  const putUnit = (normalized: string, from: number, to: number) => {
    for (const ch of normalized) {
      const c = ch.codePointAt(0)!;
      const kind = c < 0x10000 ? table[c] : astralDigit(c) >= 0 ? DIGIT : COPY;
      if (kind === DROP) continue;
      if (kind === SPACE) put(0x20, from, to);
      else if (kind === DASH) put(0x2d, from, to);
      else if (kind === DIGIT) put(0x30 + (c < 0x10000 ? values[c] : astralDigit(c)), from, to);
      else for (let k = 0; k < ch.length; k++) put(ch.charCodeAt(k), from, to);
    }
  };
  for (let i = 0; i < text.length;) {
    const c = text.charCodeAt(i);
    const kind = table[c];
    const nextKind = i + 1 < text.length ? table[text.charCodeAt(i + 1)] : COPY;
    if (nextKind !== MARK && kind !== NFKC && kind !== SURROGATE && kind !== MARK) {
      if (kind === COPY) put(c, i, i + 1);
      else if (kind === SPACE) put(0x20, i, i + 1);
      else if (kind === DASH) put(0x2d, i, i + 1);
      else if (kind === DIGIT) put(0x30 + values[c], i, i + 1);
      // DROP: nothing.
      i += 1;
      continue;
    }
    // A unit: one code point (a surrogate pair counts as one) and the combining marks after it,
    // normalized together, since NFKC composes across them. At most MAX_MARKS marks go with one
    // character (Unicode's stream-safe format allows 30): ICU reorders a unit's marks in quadratic
    // time, and a hostile body can be one endless unit.
    let j = i + (kind === SURROGATE && i + 1 < text.length ? 2 : 1);
    const last = j + MAX_MARKS;
    while (j < text.length && j < last && table[text.charCodeAt(j)] === MARK) j += 1;
    putUnit(text.slice(i, j).normalize('NFKC'), i, j);
    i = j;
  }
  return { text: decoder.decode(codes.subarray(0, n)), start: start.subarray(0, n), end: end.subarray(0, n) };
}

const decoder = new TextDecoder('utf-16le');

/** The original range of normalized characters [from, to), to: exclusive. */
export function originalRange(normalized: Normalized, from: number, to: number): [number, number] {
  if (normalized.start === null) return [from, to];
  if (to <= from) {
    const at = from < normalized.start.length ? normalized.start[from] : (normalized.end!.at(-1) ?? 0);
    return [at, at];
  }
  return [normalized.start[from], normalized.end![to - 1]];
}
