/** The request APIs whose bodies are screened. */
export type Route = 'chat' | 'completions' | 'embeddings' | 'messages';

/**
 * A place in the body that holds text the provider reads: a string value, an object key, or an
 * integer long enough to be an identifier (12 digits or more). Written back only on a redacted copy.
 */
export interface Leaf {
  readonly holder: Record<string, unknown> | unknown[];
  readonly key: string | number;
  readonly kind: 'value' | 'key' | 'number';
  readonly text: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Integers from this size on can hold a My Number (12 digits) or a card number. */
const LONG_INTEGER = 1e11;

/**
 * Every string the provider reads in a body, in document order (the order JSON.parse gives and
 * JSON.stringify writes): string values at any depth, object keys, and long integers. Nothing is
 * skipped by field name: tool definitions, tool-call arguments, tool results, documents, message
 * names, image and file parts, `suffix`, `user` and `metadata` are all read, since the gateway
 * forwards only the fields its allow-list admits and the provider reads all of them.
 */
export function leaves(body: unknown): Leaf[] {
  const out: Leaf[] = [];
  const visit = (holder: Record<string, unknown> | unknown[], key: string | number, value: unknown) => {
    if (typeof value === 'string') out.push({ holder, key, kind: 'value', text: value });
    else if (typeof value === 'number') {
      if (Number.isInteger(value) && Math.abs(value) >= LONG_INTEGER) {
        out.push({ holder, key, kind: 'number', text: String(value) });
      }
    } else if (Array.isArray(value)) value.forEach((item, i) => visit(value, i, item));
    else if (isObject(value)) walkObject(value);
  };
  const walkObject = (object: Record<string, unknown>) => {
    for (const key of Object.keys(object)) {
      out.push({ holder: object, key, kind: 'key', text: key });
      visit(object, key, object[key]);
    }
  };
  if (isObject(body)) walkObject(body);
  return out;
}

/** Where a string sits: `holder[key]`. */
export interface Slot {
  readonly holder: Record<string, unknown> | unknown[];
  readonly key: string | number;
}

/** The text blocks of a `content` (a string, or blocks of which `text` ones count), Anthropic's tool results included. */
function contentSlots(holder: Record<string, unknown> | unknown[], key: string | number, into: Slot[]): void {
  const value = (holder as Record<string | number, unknown>)[key];
  if (typeof value === 'string') into.push({ holder, key });
  else if (Array.isArray(value)) {
    for (const block of value) {
      if (!isObject(block)) continue;
      if (typeof block.text === 'string') into.push({ holder: block, key: 'text' });
      else if (block.type === 'tool_result') contentSlots(block, 'content', into);
    }
  }
}

/**
 * The strings a model reads as one conversation, in order: the system prompt, then each message's
 * text parts. Two consecutive ones are also screened as if they were one text, so that a number or
 * an address split between two parts or two messages is still found (see Guardrails).
 */
export function conversation(route: Route, body: Record<string, unknown>): Slot[] {
  const slots: Slot[] = [];
  if (route === 'messages') contentSlots(body, 'system', slots);
  if ((route === 'chat' || route === 'messages') && Array.isArray(body.messages)) {
    for (const message of body.messages) if (isObject(message)) contentSlots(message, 'content', slots);
  }
  return slots;
}
