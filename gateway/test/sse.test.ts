import { UsageChunkFilter } from '../src/sse';
import { UsageTap } from '../src/usage';
import { chatStream } from './helpers/fake-provider';

/** The stream filter and the usage reader, fed the same bytes split at every possible place. */

describe('the usage-chunk filter', () => {
  const withUsage = chatStream('gpt-test', true).join('');
  const without = chatStream('gpt-test', false).join('');

  it('drops exactly the usage-only chunk and passes every other byte, however the stream is split', () => {
    const bytes = Buffer.from(withUsage);
    for (let split = 1; split < bytes.length; split += 7) {
      const filter = new UsageChunkFilter();
      const out = Buffer.concat([
        filter.push(bytes.subarray(0, split)),
        filter.push(bytes.subarray(split)),
        filter.end(),
      ]);
      expect(out.toString('utf8')).toBe(without);
    }
  });

  it('forwards each complete event at once, holding back only an incomplete one', () => {
    const filter = new UsageChunkFilter();
    const [first, second] = chatStream('gpt-test', false);
    expect(filter.push(Buffer.from(first + second.slice(0, 10))).toString()).toBe(first);
    expect(filter.push(Buffer.from(second.slice(10))).toString()).toBe(second);
  });

  it('keeps CRLF-framed events and chunks that merely mention usage', () => {
    const filter = new UsageChunkFilter();
    const text = 'data: {"choices":[{"delta":{"content":"usage"}}],"usage":null}\r\n\r\ndata: [DONE]\r\n\r\n';
    expect(Buffer.concat([filter.push(Buffer.from(text)), filter.end()]).toString()).toBe(text);
  });
});

describe('the usage reader', () => {
  it('counts the same events and reads the same usage whether chunks are whole or cut anywhere', () => {
    const stream = Buffer.from(
      [...chatStream('gpt-test', true), 'data:  [DONE] \r\n\r\n', 'event: ping\ndata: {}\n\n'].join(''),
    );
    const whole = new UsageTap(true);
    whole.push(stream);
    const reference = { usage: whole.finish(), events: whole.events };
    expect(reference).toEqual({ usage: { promptTokens: 9, completionTokens: 3 }, events: 6 });
    for (let cut = 1; cut < stream.length; cut += 5) {
      const tap = new UsageTap(true);
      tap.push(stream.subarray(0, cut));
      tap.push(stream.subarray(cut));
      expect({ usage: tap.finish(), events: tap.events }).toEqual(reference);
    }
  });

  it('passes whole chunks that do not mention usage through the filter as the very same buffer', () => {
    const chunk = Buffer.from(chatStream('gpt-test', false)[1]);
    expect(new UsageChunkFilter().push(chunk)).toBe(chunk);
  });

  it('reads OpenAI’s usage from a JSON answer', () => {
    const tap = new UsageTap(false);
    tap.push(Buffer.from('{"usage":{"prompt_tokens":9,'));
    tap.push(Buffer.from('"completion_tokens":3}}'));
    expect(tap.finish()).toEqual({ promptTokens: 9, completionTokens: 3 });
  });

  it('reads usage from SSE events split across chunks, and counts the data events', () => {
    const tap = new UsageTap(true);
    const bytes = Buffer.from(chatStream('gpt-test', true).join(''));
    for (let i = 0; i < bytes.length; i += 5) tap.push(bytes.subarray(i, i + 5));
    expect(tap.finish()).toEqual({ promptTokens: 9, completionTokens: 3 });
    expect(tap.events).toBe(5);
  });

  it('finds the last usage object of a large answer without being fooled by text or nulls', () => {
    const tap = new UsageTap(false);
    const answer = {
      data: [{ embedding: Array.from({ length: 2000 }, (_, i) => i / 7) }],
      note: 'a "usage": {"prompt_tokens": 1} inside a string',
      usage: { prompt_tokens: 17, total_tokens: 17, details: { cached_tokens: 0, tier: 'x}' } },
    };
    tap.push(Buffer.from(JSON.stringify(answer)));
    expect(tap.finish()).toEqual({ promptTokens: 17 });
    const nothing = new UsageTap(false);
    nothing.push(Buffer.from('{"usage":null,"other":{"prompt_tokens":5}}'));
    expect(nothing.finish()).toEqual({});
  });

  it('reads Anthropic’s input and output tokens', () => {
    const tap = new UsageTap(false);
    tap.push(Buffer.from('{"usage":{"input_tokens":11,"output_tokens":4}}'));
    expect(tap.finish()).toEqual({ promptTokens: 11, completionTokens: 4 });
  });
});
