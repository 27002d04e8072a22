/**
 * Drops the usage-only chunk from an OpenAI chat/completions stream, and passes every other byte
 * through unchanged.
 *
 * Why: OpenAI reports a stream's token usage only when asked (`stream_options.include_usage`), in
 * an extra last chunk whose `choices` is empty. The gateway asks for it to count tokens against the
 * client's limit; a client that did not ask gets the stream it would have got without the option,
 * because clients that read `choices[0]` of every chunk break on the extra one.
 *
 * Events are forwarded as soon as they are complete (a blank line ends one), so the stream is not
 * held back; only an incomplete event waits for its end. Only events that mention `usage` are parsed.
 */
export class UsageChunkFilter {
  private pending: Buffer = EMPTY;

  /** Bytes to forward now. */
  push(chunk: Buffer): Buffer {
    // The usual chunk: whole events, none about usage. Passed on as it is, with nothing copied.
    if (this.pending.length === 0 && !chunk.includes(USAGE) && endsAnEvent(chunk)) return chunk;
    const data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    let start = 0;
    for (;;) {
      const end = eventEnd(data, start);
      if (end < 0) break;
      const event = data.subarray(start, end);
      if (!isUsageOnly(event)) out.push(event);
      start = end;
    }
    // Not an event stream after all (no blank line within 1 MiB): pass the bytes through as they are.
    if (data.length - start > MAX_EVENT) {
      out.push(data.subarray(start));
      start = data.length;
    }
    this.pending = start === data.length ? EMPTY : Buffer.from(data.subarray(start));
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** What is left when the stream ends (an unterminated last event), forwarded as it is. */
  end(): Buffer {
    const rest = this.pending;
    this.pending = EMPTY;
    return rest;
  }
}

const EMPTY = Buffer.alloc(0);
const USAGE = Buffer.from('"usage"');

/** Whether a chunk ends with the blank line that ends an event. */
function endsAnEvent(chunk: Buffer): boolean {
  const n = chunk.length;
  return (
    n >= 2 &&
    chunk[n - 1] === 0x0a &&
    (chunk[n - 2] === 0x0a || (n >= 4 && chunk[n - 2] === 0x0d && chunk[n - 3] === 0x0a))
  );
}
const MAX_EVENT = 1024 * 1024;

/** The index just past the blank line that ends the event starting at `from`, or -1. */
function eventEnd(data: Buffer, from: number): number {
  const lf = data.indexOf('\n\n', from);
  const crlf = data.indexOf('\r\n\r\n', from);
  if (lf < 0) return crlf < 0 ? -1 : crlf + 4;
  if (crlf < 0 || lf < crlf) return lf + 2;
  return crlf + 4;
}

/** `data: {"choices":[],"usage":{...}}`: OpenAI's usage chunk. */
function isUsageOnly(event: Buffer): boolean {
  if (!event.includes('"usage"')) return false;
  const data = event
    .toString('utf8')
    .split(/\r?\n/)
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).trimStart())
    .join('\n');
  try {
    const parsed = JSON.parse(data) as { choices?: unknown; usage?: unknown };
    return (
      Array.isArray(parsed.choices) &&
      parsed.choices.length === 0 &&
      typeof parsed.usage === 'object' &&
      parsed.usage !== null
    );
  } catch {
    return false;
  }
}
