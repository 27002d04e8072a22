import { BUILT_IN_DETECTORS, type CustomDetector, type GuardrailAction } from '../../../contracts/gateway-documents';
import { BUILT_INS, compileCustom, type Detector, PRECEDENCE, type Span } from './detectors';
import { conversation, type Leaf, leaves, type Route } from './extract';
import { type Normalized, normalize, originalRange } from './normalize';

export { CustomDetectorError, issuerKnown, luhnValid, myNumberValid } from './detectors';
export type { Route } from './extract';
export { prepareNormalizer } from './normalize';

/**
 * At most this many matches are looked for per detector and request. It bounds the work and memory
 * spent on a hostile body full of matches (the body itself is bounded by the server's MAX_BODY_BYTES).
 * A detector that reaches it reports this count, a lower bound; if its action is redact, the request
 * is blocked instead, because the matches past the cap could not be promised redacted.
 */
export const MAX_MATCHES_PER_DETECTOR = 1000;

/**
 * How far on each side of the border between two consecutive conversation texts the pair is also
 * read as one text. Every built-in match but a private key is shorter than this; a private key split
 * between two texts is caught in each half (detectors.ts).
 */
export const JUNCTION_CHARS = 256;

/** Built-in detectors need at least this many characters: the shortest address, `a@b.co`. */
const SHORTEST_BUILT_IN_MATCH = 6;
/** A character every built-in match contains (normalized text: digits are ASCII, dashes are `-`). */
const BUILT_IN_CANDIDATE = /[0-9@A-]/;

/** What one detector found in a request and what the client's policy does about it. Never the matched text. */
export interface GuardrailDecision {
  readonly detector: string;
  readonly action: GuardrailAction;
  readonly count: number;
}

/** A client's action for every detector (built once per request from its record). */
export type Policy = (detector: string) => GuardrailAction;

/**
 * What screening decided, in a form that crosses a worker boundary: plain data, no body. `edits` are
 * the redacted texts by leaf index (document order of `leaves`), applied with `applyEdits`.
 */
export interface Verdict {
  /** One entry per detector that matched at least once, in the order of `detectorNames`. */
  readonly decisions: GuardrailDecision[];
  /**
   * The first detector (in decision order) whose action is block, or null. Failing closed, a redact
   * detector that reached MAX_MATCHES_PER_DETECTOR blocks too when no block decision applies.
   */
  readonly blockedBy: string | null;
  /** Detectors that reached MAX_MATCHES_PER_DETECTOR: their count is a lower bound. */
  readonly capped: readonly string[];
  /** [leaf index, its redacted text]; empty unless a redact decision applies and nothing blocks. */
  readonly edits: ReadonlyArray<readonly [number, string]>;
}

export interface ScreenResult extends Omit<Verdict, 'edits'> {
  /** The body to forward: a redacted deep copy when any redact decision applied, otherwise the same object. */
  readonly body: Record<string, unknown>;
}

/** A match in original coordinates, split over the leaves it covers (two, when it crosses a border). */
interface Hit {
  readonly detector: number;
  readonly pieces: ReadonlyArray<{ readonly leaf: number; readonly start: number; readonly end: number }>;
}

interface Match extends Span {
  /** Index of the detector in `Guardrails.detectors` (and `detectorNames`). */
  readonly detector: number;
}

/**
 * Drops matches of the weaker digit detectors (PRECEDENCE) that overlap a match of a stronger one in
 * the same text. Matches of one detector never overlap each other.
 */
function applyPrecedence(matches: Match[], names: readonly string[]): Match[] {
  if (matches.length < 2) return matches;
  const rank = (m: Match) => PRECEDENCE.indexOf(names[m.detector]);
  const kept: Match[] = matches.filter((m) => rank(m) < 0);
  const stronger: Match[] = [];
  for (let r = 0; r < PRECEDENCE.length; r++) {
    for (const m of matches.filter((x) => rank(x) === r)) {
      if (!stronger.some((s) => s.start < m.end && m.start < s.end)) kept.push(m);
    }
    stronger.push(...matches.filter((x) => rank(x) === r));
  }
  return kept;
}

/**
 * Replaces every redacted range with `[REDACTED:<detector>]`. Overlapping ranges (of different
 * detectors) are merged, so no character of any match survives; the merged stretch is labelled with
 * the range that starts first, then the longest, then the detector listed first.
 */
function redact(
  text: string,
  ranges: Array<{ start: number; end: number; detector: number }>,
  names: readonly string[],
): string {
  const sorted = [...ranges].sort((a, b) => a.start - b.start || b.end - a.end || a.detector - b.detector);
  let out = '';
  let at = 0;
  let i = 0;
  while (i < sorted.length) {
    const first = sorted[i];
    let end = first.end;
    for (i += 1; i < sorted.length && sorted[i].start < end; i++) end = Math.max(end, sorted[i].end);
    out += `${text.slice(at, first.start)}[REDACTED:${names[first.detector]}]`;
    at = end;
  }
  return out + text.slice(at);
}

let versions = 0;

/** A stretch of text the detectors read, made of pieces of leaves in normalized coordinates. */
interface Segment {
  readonly text: string;
  /** Where each piece starts in `text`, ascending. */
  readonly offsets: number[];
  readonly pieces: Array<{ leaf: number; from: number; to: number }>;
}

/**
 * Screens request bodies for secrets and personal data, and applies a client's policy per detector:
 * `block` (the request is refused, naming the detector), `redact` (each match is replaced by
 * `[REDACTED:<detector>]` in a copy of the body before forwarding) or `log` (counted in the audit line
 * only). Built once per clients document; `screen` is pure and synchronous.
 *
 * What is read: every leaf of the body (leaves() in extract.ts), each normalized (normalize.ts), and
 * every border between two consecutive conversation texts, read as one text on both sides of it.
 */
export class Guardrails {
  /** Names of every detector: built-ins in BUILT_IN_DETECTORS order, then `custom:<name>` in document order. */
  public readonly detectorNames: readonly string[];
  /** Whether any custom detector is configured: those are arbitrary regular expressions (see the screening worker). */
  public readonly hasCustom: boolean;
  /** Distinguishes detector sets within a process, so a worker compiles each set once. */
  public readonly version: number;
  /** The custom detectors as configured, for a worker to compile the same set. */
  public readonly customDefinitions: readonly CustomDetector[];
  private readonly detectors: readonly Detector[];
  private readonly builtIns: number;

  /** Compiles the custom detectors; throws a CustomDetectorError naming the first one that is unusable. */
  constructor(customDetectors: readonly CustomDetector[]) {
    const builtIns = BUILT_IN_DETECTORS.map((name) => BUILT_INS[name]);
    this.detectors = [...builtIns, ...compileCustom(customDetectors)];
    this.builtIns = builtIns.length;
    this.detectorNames = this.detectors.map((d) => d.name);
    this.hasCustom = this.detectors.length > this.builtIns;
    this.version = ++versions;
    this.customDefinitions = customDetectors;
  }

  /** Screens a body and returns the body to forward: the same object, or a redacted copy. */
  screen(route: Route, body: Record<string, unknown>, policy: Policy): ScreenResult {
    const { edits, ...verdict } = this.verdict(route, body, policy);
    return { ...verdict, body: edits.length === 0 ? body : applyEdits(body, edits) };
  }

  /** What screening decides, as plain data (what the screening worker sends back). */
  verdict(route: Route, body: Record<string, unknown>, policy: Policy): Verdict {
    const names = this.detectorNames;
    const all = leaves(body);
    const normalized = all.map((leaf) => normalize(leaf.text));
    const remaining = this.detectors.map(() => MAX_MATCHES_PER_DETECTOR);
    const hits: Hit[] = [];
    const counts = names.map(() => 0);

    const read = (segment: Segment, crossingOnly: boolean) => {
      const matches: Match[] = [];
      // Every built-in match holds a digit, an @, an A (AWS keys) or a hyphen (PEM markers): a text
      // with none of them (a role, a key name, most prose) is not handed to each built-in in turn.
      const skipBuiltIns = segment.text.length < SHORTEST_BUILT_IN_MATCH || !BUILT_IN_CANDIDATE.test(segment.text);
      this.detectors.forEach((detector, index) => {
        if (remaining[index] === 0 || (skipBuiltIns && index < this.builtIns)) return;
        for (const span of detector.find(segment.text, remaining[index])) matches.push({ ...span, detector: index });
      });
      for (const m of applyPrecedence(matches, names)) {
        const pieces = piecesOf(segment, m, normalized);
        if (crossingOnly && pieces.length < 2) continue;
        if (remaining[m.detector] === 0) continue;
        remaining[m.detector] -= 1;
        counts[m.detector] += 1;
        hits.push({ detector: m.detector, pieces });
      }
    };
    normalized.forEach((n, leaf) => {
      if (n.text.length > 0)
        read({ text: n.text, offsets: [0], pieces: [{ leaf, from: 0, to: n.text.length }] }, false);
    });
    for (const segment of junctions(route, body, all, normalized)) read(segment, true);

    const actions = names.map((name, i) => (counts[i] > 0 ? policy(name) : undefined));
    const decisions: GuardrailDecision[] = [];
    names.forEach((detector, i) => {
      const action = actions[i];
      if (action !== undefined) decisions.push({ detector, action, count: counts[i] });
    });
    const capped = names.filter((_, i) => remaining[i] === 0);
    const blockedBy =
      decisions.find((d) => d.action === 'block')?.detector ??
      decisions.find((d) => d.action === 'redact' && capped.includes(d.detector))?.detector ??
      null;
    if (blockedBy !== null || !decisions.some((d) => d.action === 'redact')) {
      return { decisions, blockedBy, capped, edits: [] };
    }
    const perLeaf = new Map<number, Array<{ start: number; end: number; detector: number }>>();
    for (const hit of hits) {
      if (actions[hit.detector] !== 'redact') continue;
      for (const piece of hit.pieces) {
        let list = perLeaf.get(piece.leaf);
        if (list === undefined) perLeaf.set(piece.leaf, (list = []));
        list.push({ start: piece.start, end: piece.end, detector: hit.detector });
      }
    }
    const edits = [...perLeaf].map(([leaf, ranges]) => [leaf, redact(all[leaf].text, ranges, names)] as const);
    return { decisions, blockedBy, capped, edits };
  }
}

/** A match in a segment, as original ranges of the leaves it covers. */
function piecesOf(segment: Segment, m: Span, normalized: readonly Normalized[]): Hit['pieces'] {
  const pieces: Array<{ leaf: number; start: number; end: number }> = [];
  for (let p = lastAtOrBefore(segment.offsets, m.start); p < segment.pieces.length; p++) {
    const at = segment.offsets[p];
    if (at >= m.end) break;
    const piece = segment.pieces[p];
    const from = Math.max(m.start - at, 0) + piece.from;
    const to = Math.min(m.end - at, piece.to - piece.from) + piece.from;
    if (to <= from) continue;
    const [start, end] = originalRange(normalized[piece.leaf], from, to);
    pieces.push({ leaf: piece.leaf, start, end });
  }
  return pieces;
}

function lastAtOrBefore(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (sorted[mid] <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The borders between consecutive conversation texts, each read as one text JUNCTION_CHARS to either
 * side, twice: joined directly (`jane@exam` + `ple.com`) and with a line break (`4111 1111` +
 * `1111 1111`, whose groups must not merge into one). Windows that overlap are merged, so a number
 * split over three short parts is read whole.
 */
function junctions(route: Route, body: Record<string, unknown>, all: Leaf[], normalized: Normalized[]): Segment[] {
  const slots = conversation(route, body);
  if (slots.length < 2) return [];
  const index = new Map<unknown, Map<string | number, number>>();
  all.forEach((leaf, i) => {
    if (leaf.kind !== 'value') return;
    let keys = index.get(leaf.holder);
    if (keys === undefined) index.set(leaf.holder, (keys = new Map()));
    keys.set(leaf.key, i);
  });
  const order = slots.map((slot) => index.get(slot.holder)?.get(slot.key)).filter((i): i is number => i !== undefined);
  const segments: Segment[] = [];
  for (const glue of ['', '\n']) {
    // The whole conversation as one text, then windows around each border, merged where they overlap.
    const offsets: number[] = [];
    const pieces: Segment['pieces'] = [];
    const borders: number[] = [];
    let text = '';
    order.forEach((leaf, k) => {
      if (k > 0) {
        borders.push(text.length);
        text += glue;
      }
      offsets.push(text.length);
      pieces.push({ leaf, from: 0, to: normalized[leaf].text.length });
      text += normalized[leaf].text;
    });
    let window: [number, number] | undefined;
    const flush = () => {
      if (window === undefined) return;
      segments.push(cut(text, offsets, pieces, window[0], window[1]));
      window = undefined;
    };
    for (const border of borders) {
      const from = Math.max(0, border - JUNCTION_CHARS);
      const to = Math.min(text.length, border + glue.length + JUNCTION_CHARS);
      if (window !== undefined && from <= window[1]) window[1] = to;
      else {
        flush();
        window = [from, to];
      }
    }
    flush();
  }
  return segments;
}

/** The part [from, to) of a joined text, as a segment of its own; only the pieces it overlaps are visited. */
function cut(text: string, offsets: number[], pieces: Segment['pieces'], from: number, to: number): Segment {
  const out: Segment = { text: text.slice(from, to), offsets: [], pieces: [] };
  for (let p = lastAtOrBefore(offsets, from); p < pieces.length && offsets[p] < to; p++) {
    const at = offsets[p];
    const length = pieces[p].to - pieces[p].from;
    const start = Math.max(at, from);
    const end = Math.min(at + length, to);
    if (end <= start) continue;
    out.offsets.push(start - from);
    out.pieces.push({ leaf: pieces[p].leaf, from: pieces[p].from + (start - at), to: pieces[p].from + (end - at) });
  }
  return out;
}

/**
 * A deep copy of the body with the redacted texts in place. Leaves are found again by walking the
 * copy in the same order; a redacted key is renamed in place (the object's key order is kept), and a
 * redacted long integer becomes the redacted string.
 */
export function applyEdits(body: Record<string, unknown>, edits: Verdict['edits']): Record<string, unknown> {
  const copy = structuredClone(body);
  const all = leaves(copy);
  const renames = new Map<Record<string, unknown>, Map<string, string>>();
  for (const [index, text] of edits) {
    const leaf = all[index];
    if (leaf.kind === 'key') {
      const holder = leaf.holder as Record<string, unknown>;
      let map = renames.get(holder);
      if (map === undefined) renames.set(holder, (map = new Map()));
      map.set(leaf.key as string, text);
    } else (leaf.holder as Record<string | number, unknown>)[leaf.key] = text;
  }
  for (const [holder, map] of renames) {
    const entries = Object.entries(holder);
    for (const key of Object.keys(holder)) delete holder[key];
    const used = new Set<string>();
    for (const [key, value] of entries) {
      let name = map.get(key) ?? key;
      // Two keys redacted to the same label stay two keys.
      for (let n = 2; used.has(name); n++) name = `${map.get(key) ?? key}#${n}`;
      used.add(name);
      // defineProperty, not assignment: a key named __proto__ stays an own key, as JSON.parse made it.
      Object.defineProperty(holder, name, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  return copy;
}
