import { BUILT_IN_DETECTORS, type CustomDetector, type GuardrailAction } from '../records';
import { BUILT_INS, compileCustom, type Detector, PRECEDENCE, type Span } from './detectors';
import { type Route, textSlots, writeSlot } from './extract';

export { CustomDetectorError, luhnValid, myNumberValid } from './detectors';
export type { Route } from './extract';

/**
 * At most this many matches are looked for per detector and request. It bounds the work and memory
 * spent on a hostile body full of matches (the body itself is bounded by the server's MAX_BODY_BYTES).
 * A detector that reaches it reports this count, a lower bound; if its action is redact, the request
 * is blocked instead, because the matches past the cap could not be promised redacted.
 */
export const MAX_MATCHES_PER_DETECTOR = 1000;

/** What one detector found in a request and what the client's policy does about it. Never the matched text. */
export interface GuardrailDecision {
  readonly detector: string;
  readonly action: GuardrailAction;
  readonly count: number;
}

export interface ScreenResult {
  /** One entry per detector that matched at least once, in the order of `detectorNames`. */
  readonly decisions: GuardrailDecision[];
  /**
   * The first detector (in decision order) whose action is block, or null. Failing closed, a redact
   * detector that reached MAX_MATCHES_PER_DETECTOR blocks too when no block decision applies.
   */
  readonly blockedBy: string | null;
  /** The body to forward: a redacted deep copy when any redact decision applied, otherwise the same object. */
  readonly body: Record<string, unknown>;
  /** Detectors that reached MAX_MATCHES_PER_DETECTOR: their count is a lower bound. */
  readonly capped: readonly string[];
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
 * Replaces every redacted match with `[REDACTED:<detector>]`. Overlapping matches (of different
 * detectors) are merged, so no character of any match survives; the merged stretch is labelled with
 * the match that starts first, then the longest, then the detector listed first.
 */
function redact(text: string, matches: Match[], names: readonly string[]): string {
  const sorted = [...matches].sort((a, b) => a.start - b.start || b.end - a.end || a.detector - b.detector);
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

/**
 * Screens prompts for secrets and personal data, and applies a client's policy per detector: `block`
 * (the request is refused, naming the detector), `redact` (each match is replaced by
 * `[REDACTED:<detector>]` in a copy of the body before forwarding) or `log` (counted in the audit line
 * only). Built once per clients document; `screen` is pure and synchronous.
 */
export class Guardrails {
  /** Names of every detector: built-ins in BUILT_IN_DETECTORS order, then `custom:<name>` in document order. */
  public readonly detectorNames: readonly string[];
  private readonly detectors: readonly Detector[];

  /** Compiles the custom detectors; throws a CustomDetectorError naming the first one that is unusable. */
  constructor(customDetectors: readonly CustomDetector[]) {
    this.detectors = [...BUILT_IN_DETECTORS.map((name) => BUILT_INS[name]), ...compileCustom(customDetectors)];
    this.detectorNames = this.detectors.map((d) => d.name);
  }

  screen(route: Route, body: Record<string, unknown>, policy: (detector: string) => GuardrailAction): ScreenResult {
    const names = this.detectorNames;
    const slots = textSlots(route, body);
    const remaining = this.detectors.map(() => MAX_MATCHES_PER_DETECTOR);
    const perSlot = slots.map((slot) => {
      const matches: Match[] = [];
      this.detectors.forEach((d, index) => {
        if (remaining[index] === 0) return;
        const spans = d.find(slot.text, remaining[index]);
        remaining[index] -= spans.length;
        for (const span of spans) matches.push({ start: span.start, end: span.end, detector: index });
      });
      return applyPrecedence(matches, names);
    });

    const counts = names.map(() => 0);
    for (const matches of perSlot) for (const m of matches) counts[m.detector] += 1;
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
      return { decisions, blockedBy, body, capped };
    }

    const copy = structuredClone(body);
    const copySlots = textSlots(route, copy);
    copySlots.forEach((slot, i) => {
      const redacted = perSlot[i].filter((m) => actions[m.detector] === 'redact');
      if (redacted.length > 0) writeSlot(slot, redact(slot.text, redacted, names));
    });
    return { decisions, blockedBy, body: copy, capped };
  }
}
