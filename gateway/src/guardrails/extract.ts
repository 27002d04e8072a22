/** The request APIs whose prompts are screened. */
export type Route = 'chat' | 'completions' | 'embeddings' | 'messages';

/** A string in the body that holds prompt text: `holder[key]`. Written back only on a redacted copy. */
export interface TextSlot {
  readonly holder: Record<string, unknown> | unknown[];
  readonly key: string | number;
  readonly text: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringAt(holder: Record<string, unknown> | unknown[], key: string | number): TextSlot[] {
  const text = (holder as Record<string | number, unknown>)[key];
  return typeof text === 'string' ? [{ holder, key, text }] : [];
}

/** A string, or an array of strings (token-id arrays and other values are not text and are skipped). */
function stringOrStrings(holder: Record<string, unknown>, key: string): TextSlot[] {
  const value = holder[key];
  if (Array.isArray(value)) return value.flatMap((_, i) => stringAt(value, i));
  return stringAt(holder, key);
}

/**
 * A `content` that is a string or an array of blocks, of which `{type: 'text', text}` is read. On the
 * Anthropic API, a `tool_result` block's own `content` (a string or text blocks) is read as well: it is
 * the counterpart of OpenAI's tool messages, and what a tool returned reaches the model as prompt.
 */
function content(holder: Record<string, unknown>, key: string, toolResults: boolean): TextSlot[] {
  const value = holder[key];
  if (!Array.isArray(value)) return stringAt(holder, key);
  return value.flatMap((block) => {
    if (!isObject(block)) return [];
    if (block.type === 'text') return stringAt(block, 'text');
    if (toolResults && block.type === 'tool_result') return content(block, 'content', false);
    return [];
  });
}

function messages(body: Record<string, unknown>, toolResults: boolean): TextSlot[] {
  if (!Array.isArray(body.messages)) return [];
  return body.messages.flatMap((message) => (isObject(message) ? content(message, 'content', toolResults) : []));
}

/**
 * Every prompt text of a request body, in document order, per API; nothing else in the body is read:
 * - chat (`/v1/chat/completions`): each message's `content`, whatever its role (tool messages too), as
 *   a string or as `{type: 'text', text}` parts;
 * - completions: `prompt`, a string or strings;
 * - embeddings: `input`, a string or strings (token ids are not text);
 * - messages (Anthropic `/v1/messages`): `system` as a string or text blocks, then each message's
 *   `content` as a string, text blocks, or `tool_result` blocks holding either.
 * The order is stable, so the same body (or a structured clone of it) yields the same slots.
 */
export function textSlots(route: Route, body: Record<string, unknown>): TextSlot[] {
  switch (route) {
    case 'chat':
      return messages(body, false);
    case 'completions':
      return stringOrStrings(body, 'prompt');
    case 'embeddings':
      return stringOrStrings(body, 'input');
    case 'messages':
      return [...content(body, 'system', false), ...messages(body, true)];
  }
}

/** Replaces the string a slot points at (used on the redacted copy only). */
export function writeSlot(slot: TextSlot, text: string): void {
  (slot.holder as Record<string | number, unknown>)[slot.key] = text;
}
