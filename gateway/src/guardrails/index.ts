import type { CustomDetector, GuardrailAction } from '../records';
import { BUILT_INS, compileCustom, type Detector, type Span } from './detectors';

export type Route = 'chat' | 'completions' | 'embeddings' | 'messages';

export interface GuardrailDecision {
  readonly detector: string;
  readonly action: GuardrailAction;
  readonly count: number;
}

export interface ScreenResult {
  /** One entry per detector that matched, in detector order. Never the matched text. */
  readonly decisions: GuardrailDecision[];
  /** The first detector whose action is block, or null. */
  readonly blockedBy: string | null;
  /** What to forward: a redacted copy when a redaction applied, otherwise the same object. */
  readonly body: Record<string, unknown>;
}

/** A place in the body that holds prompt text: read it, and write a replacement back. */
interface TextSlot {
  readonly get: () => string;
  readonly set: (value: string) => void;
}

function slot(holder: Record<string, unknown> | unknown[], key: string | number): TextSlot | undefined {
  const value = (holder as Record<string | number, unknown>)[key];
  if (typeof value !== 'string') return undefined;
  return {
    get: () => (holder as Record<string | number, unknown>)[key] as string,
    set: (v) => {
      (holder as Record<string | number, unknown>)[key] = v;
    },
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Text parts of a `content` that is a string or an array of `{type: 'text', text}` blocks. */
function contentSlots(holder: Record<string, unknown>, key: string): TextSlot[] {
  const content = holder[key];
  if (typeof content === 'string') return [slot(holder, key)!];
  if (!Array.isArray(content)) return [];
  return content.flatMap((part) =>
    isObject(part) && part.type === 'text' ? [slot(part, 'text')].filter((s) => s !== undefined) : [],
  );
}

/** Every prompt text of a request body, per API. Other fields are never touched. */
function textSlots(route: Route, body: Record<string, unknown>): TextSlot[] {
  const list = (key: string): TextSlot[] => {
    const value = body[key];
    if (typeof value === 'string') return [slot(body, key)!];
    if (Array.isArray(value)) return value.map((_, i) => slot(value, i)).filter((s): s is TextSlot => s !== undefined);
    return [];
  };
  const messages = (): TextSlot[] =>
    Array.isArray(body.messages) ? body.messages.filter(isObject).flatMap((m) => contentSlots(m, 'content')) : [];
  switch (route) {
    case 'chat':
      return messages();
    case 'completions':
      return list('prompt');
    case 'embeddings':
      return list('input');
    case 'messages':
      return [...contentSlots(body, 'system'), ...messages()];
  }
}

/** Non-overlapping spans: earliest start wins, then the longest; later overlapping spans are dropped. */
function resolveOverlaps(spans: Array<Span & { detector: string }>): Array<Span & { detector: string }> {
  const sorted = [...spans].sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: Array<Span & { detector: string }> = [];
  for (const span of sorted) if (kept.length === 0 || span.start >= kept[kept.length - 1].end) kept.push(span);
  return kept;
}

/**
 * Screens prompts for secrets and personal data, and applies each client's policy per detector:
 * `block` (the request is refused, naming the detector), `redact` (the match is replaced by
 * `[REDACTED:<detector>]` before forwarding) or `log` (recorded in the audit line only).
 */
export class Guardrails {
  public readonly detectorNames: readonly string[];
  private readonly detectors: readonly Detector[];

  /** Throws an Error naming a custom detector whose pattern does not compile. */
  constructor(customDetectors: readonly CustomDetector[]) {
    this.detectors = [...BUILT_INS, ...compileCustom(customDetectors)];
    this.detectorNames = this.detectors.map((d) => d.name);
  }

  screen(route: Route, body: Record<string, unknown>, policy: (detector: string) => GuardrailAction): ScreenResult {
    const findings = (slots: TextSlot[]) =>
      slots.map((s) => {
        const text = s.get();
        return this.detectors.flatMap((d) => d.find(text).map((span) => ({ ...span, detector: d.name })));
      });
    const perSlot = findings(textSlots(route, body));
    const counts = new Map<string, number>();
    for (const spans of perSlot) for (const s of spans) counts.set(s.detector, (counts.get(s.detector) ?? 0) + 1);
    const decisions = this.detectorNames
      .filter((name) => counts.has(name))
      .map((name) => ({ detector: name, action: policy(name), count: counts.get(name)! }));
    const blockedBy = decisions.find((d) => d.action === 'block')?.detector ?? null;
    if (blockedBy !== null || !decisions.some((d) => d.action === 'redact')) return { decisions, blockedBy, body };

    const copy = structuredClone(body);
    const slots = textSlots(route, copy);
    const spansOf = findings(slots);
    slots.forEach((s, i) => {
      const text = s.get();
      const redact = resolveOverlaps(spansOf[i]).filter((span) => policy(span.detector) === 'redact');
      let out = '';
      let at = 0;
      for (const span of redact) {
        out += `${text.slice(at, span.start)}[REDACTED:${span.detector}]`;
        at = span.end;
      }
      s.set(out + text.slice(at));
    });
    return { decisions, blockedBy, body: copy };
  }
}
