/** Prompt and completion tokens, as the provider reported them. */
export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Reads OpenAI's (`prompt_tokens`, `completion_tokens`) or Anthropic's (`input_tokens`, `output_tokens`) usage. */
export function readUsage(usage: unknown, into: Usage): void {
  if (typeof usage !== 'object' || usage === null) return;
  const u = usage as Record<string, unknown>;
  const prompt = num(u.prompt_tokens) ?? num(u.input_tokens);
  const completion = num(u.completion_tokens) ?? num(u.output_tokens);
  if (prompt !== undefined) into.promptTokens = prompt;
  if (completion !== undefined) into.completionTokens = completion;
}

const USAGE = Buffer.from('"usage"');
const DATA = Buffer.from('data:');

/** Data lines of whole lines (`data:` at a line start), `data: [DONE]` aside, as line() counts them. */
function countEvents(chunk: Buffer): number {
  let count = 0;
  for (let at = chunk.indexOf(DATA); at >= 0; at = chunk.indexOf(DATA, at + DATA.length)) {
    if (at > 0 && chunk[at - 1] !== 0x0a) continue;
    const end = chunk.indexOf(0x0a, at);
    // Only a short line can be the end marker: a data line holding JSON is not decoded at all.
    if (end - at < 32 && chunk.toString('latin1', at + DATA.length, end).trim() === '[DONE]') continue;
    count += 1;
  }
  return count;
}

/** Cap on what is kept of a JSON response to read its usage: a response larger than this is not parsed. */
const MAX_JSON = 8 * 1024 * 1024;

/**
 * Watches response bytes as they pass and extracts the usage: from the whole JSON body, or from the
 * SSE events that carry it (OpenAI's last chunk with `stream_options.include_usage`, Anthropic's
 * `message_start` and `message_delta`). Only lines that mention usage are parsed.
 */
export class UsageTap {
  readonly usage: Usage = {};
  /** SSE data events seen (`[DONE]` aside): about one token each, for an estimate when no usage came. */
  events = 0;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private pending = '';

  constructor(private readonly streaming: boolean) {}

  push(chunk: Buffer): void {
    if (!this.streaming) {
      this.size += chunk.length;
      if (this.size <= MAX_JSON) this.chunks.push(chunk);
      return;
    }
    // The usual chunk: whole lines, none about usage. Its data events are counted without decoding it.
    if (this.pending === '' && chunk.length > 0 && chunk[chunk.length - 1] === 0x0a && !chunk.includes(USAGE)) {
      this.events += countEvents(chunk);
      return;
    }
    const text = this.pending + chunk.toString('utf8');
    const lines = text.split('\n');
    this.pending = (lines.pop() ?? '').slice(-65_536);
    for (const line of lines) this.line(line);
  }

  finish(): Usage {
    if (!this.streaming) {
      if (this.size <= MAX_JSON && this.size > 0) readUsage(usageOfJson(Buffer.concat(this.chunks)), this.usage);
    } else if (this.pending !== '') this.line(this.pending);
    return this.usage;
  }

  private line(line: string): void {
    if (!line.startsWith('data:')) return;
    if (line.slice(5).trim() !== '[DONE]') this.events += 1;
    if (!line.includes('"usage"')) return;
    try {
      const event = JSON.parse(line.slice(5).trim()) as { usage?: unknown; message?: { usage?: unknown } };
      readUsage(event.message?.usage, this.usage);
      readUsage(event.usage, this.usage);
    } catch {
      // a partial or non-JSON event line: no usage
    }
  }
}

/**
 * The `usage` object of a JSON answer. OpenAI and Anthropic put it last, so the object after the last
 * `"usage"` is parsed on its own (a large embeddings answer is not parsed whole); anything unexpected
 * falls back to parsing the whole answer.
 */
function usageOfJson(body: Buffer): unknown {
  const at = body.lastIndexOf('"usage"');
  if (at < 0) return undefined;
  const start = body.indexOf('{', at);
  if (start > 0 && start - at < 64 && /^\s*:\s*$/.test(body.subarray(at + 7, start).toString('latin1'))) {
    let depth = 0;
    let inString = false;
    for (let i = start; i < body.length; i++) {
      const byte = body[i];
      if (inString) {
        if (byte === 0x5c)
          i += 1; // an escaped character
        else if (byte === 0x22) inString = false;
      } else if (byte === 0x22) inString = true;
      else if (byte === 0x7b) depth += 1;
      else if (byte === 0x7d && --depth === 0) {
        try {
          return JSON.parse(body.subarray(start, i + 1).toString('utf8'));
        } catch {
          break;
        }
      }
    }
  }
  try {
    return (JSON.parse(body.toString('utf8')) as { usage?: unknown }).usage;
  } catch {
    return undefined; // not JSON: no usage
  }
}
