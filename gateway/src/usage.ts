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

/** Cap on what is kept of a JSON response to read its usage: a response larger than this is not parsed. */
const MAX_JSON = 8 * 1024 * 1024;

/**
 * Watches response bytes as they pass and extracts the usage: from the whole JSON body, or from the
 * SSE events that carry it (OpenAI's last chunk with `stream_options.include_usage`, Anthropic's
 * `message_start` and `message_delta`). Only lines that mention usage are parsed.
 */
export class UsageTap {
  readonly usage: Usage = {};
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
    const text = this.pending + chunk.toString('utf8');
    const lines = text.split('\n');
    this.pending = (lines.pop() ?? '').slice(-65_536);
    for (const line of lines) this.line(line);
  }

  finish(): Usage {
    if (!this.streaming) {
      if (this.size <= MAX_JSON && this.size > 0) {
        try {
          readUsage((JSON.parse(Buffer.concat(this.chunks).toString('utf8')) as { usage?: unknown }).usage, this.usage);
        } catch {
          // not JSON: no usage
        }
      }
    } else if (this.pending !== '') this.line(this.pending);
    return this.usage;
  }

  private line(line: string): void {
    if (!line.startsWith('data:') || !line.includes('"usage"')) return;
    try {
      const event = JSON.parse(line.slice(5).trim()) as { usage?: unknown; message?: { usage?: unknown } };
      readUsage(event.message?.usage, this.usage);
      readUsage(event.usage, this.usage);
    } catch {
      // a partial or non-JSON event line: no usage
    }
  }
}
