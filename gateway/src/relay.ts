import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { PASSED_RESPONSE_HEADERS } from '../../contracts/provider-api';
import type { Attempt, ClientGone } from './attempt';
import type { Telemetry } from './log';
import { UsageChunkFilter } from './sse';
import { UsageTap } from './usage';

/** What relaying needs of the gateway. */
export interface RelayDeps {
  readonly telemetry: Telemetry;
  readonly now: () => number;
}

/** The provider's answer headers a client may see, and the request id. */
function passedHeaders(response: Dispatcher.ResponseData, requestId: string): Record<string, string> {
  const headers: Record<string, string> = { 'x-request-id': requestId };
  for (const name of PASSED_RESPONSE_HEADERS) {
    const value = response.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return headers;
}

/**
 * The provider refused the request itself (a 4xx that does not say the key is bad): its answer is
 * relayed as the provider gave it, already read in full, and never held against the key.
 */
export function relayRefusal(
  deps: RelayDeps,
  res: ServerResponse,
  response: Dispatcher.ResponseData,
  errorBody: Buffer,
  attempt: Attempt,
  started: number,
): void {
  const { audit } = attempt;
  audit.status = response.statusCode;
  audit.errorClass = 'upstream_rejected_request';
  audit.ttfbMs = deps.now() - started;
  attempt.end('client', { status: response.statusCode });
  const headers = passedHeaders(response, audit.requestId);
  headers['content-length'] = String(errorBody.length);
  res.writeHead(response.statusCode, headers);
  res.end(errorBody);
}

/**
 * Streams a successful upstream answer to the client, with backpressure, reading usage as it passes,
 * and ends the attempt by how the stream ended. Returns the tokens to settle against the client's
 * limit: the provider's usage, or an estimate of what was relayed.
 */
export async function relay(
  deps: RelayDeps,
  res: ServerResponse,
  response: Dispatcher.ResponseData,
  attempt: Attempt,
  started: number,
  signal: ClientGone,
): Promise<number> {
  const { audit, admitted } = attempt;
  const headers = passedHeaders(response, audit.requestId);
  const sse = (headers['content-type'] ?? '').includes('text/event-stream');
  const filter = sse && admitted.stripUsageChunk ? new UsageChunkFilter() : undefined;
  const length = response.headers['content-length'];
  if (filter === undefined && typeof length === 'string') headers['content-length'] = length;
  const tap = new UsageTap(sse);
  res.writeHead(response.statusCode, headers);
  if (sse) res.flushHeaders();
  audit.status = response.statusCode;
  audit.ttfbMs = deps.now() - started;
  deps.telemetry.metric({ TimeToFirstByte: { value: audit.ttfbMs, unit: 'Milliseconds' } });
  let bytes = 0;
  // Piped by hand rather than with stream.pipeline: the usage tap and the filter see every chunk,
  // and a failure mid-stream must end the answer with an SSE error instead of destroying it.
  const ended = await new Promise<'complete' | 'failed' | 'client'>((resolve) => {
    const body = response.body;
    let settled = false;
    const settle = (how: 'complete' | 'failed' | 'client') => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(how);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      tap.push(chunk);
      const out = filter === undefined ? chunk : filter.push(chunk);
      // Backpressure: stop reading from the provider until the client has taken what was written.
      if (out.length > 0 && !res.write(out)) body.pause();
    };
    const onDrain = () => body.resume();
    const onEnd = () => {
      if (filter !== undefined) {
        const rest = filter.end();
        if (rest.length > 0) res.write(rest);
      }
      settle('complete');
    };
    const onError = () => settle(signal.aborted ? 'client' : 'failed');
    const onClose = () => {
      if (!res.writableFinished) settle('client');
    };
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
  // The client went away: stop reading, so the upstream connection is closed rather than left half-read.
  if (ended === 'client' || res.destroyed) {
    if (!response.body.destroyed) response.body.destroy();
    attempt.clientGone(response.statusCode);
  } else if (ended === 'failed') {
    audit.errorClass = 'upstream_interrupted';
    attempt.end('network', { status: response.statusCode, errorClass: 'upstream_interrupted' });
    if (sse) {
      // No key and no prompt text in it: a type, a message and the request id to find the audit line.
      res.end(
        `event: error\ndata: ${JSON.stringify({ error: { type: 'upstream_interrupted', message: 'the provider ended the stream early; the answer is incomplete', request_id: audit.requestId } })}\n\n`,
      );
    } else res.destroy();
  } else {
    res.end();
    attempt.end('success', { status: response.statusCode });
  }
  // Counted whatever happened: the provider bills what it produced, and a client that leaves midway
  // (a user pressing stop) must not escape its tokens-per-minute limit.
  const usage = tap.finish();
  audit.promptTokens = usage.promptTokens;
  audit.completionTokens = usage.completionTokens;
  // Counting a prompt's tokens is not billed, and counts nothing against the limit.
  if (!admitted.spec.metered) return 0;
  if (usage.promptTokens !== undefined || usage.completionTokens !== undefined) {
    return (usage.promptTokens ?? 0) + (usage.completionTokens ?? 0);
  }
  // No usage reported (a stream cut short, or a custom or Azure stream without include_usage): about
  // four bytes a prompt token, and one token per streamed event (or four bytes a token of a JSON answer).
  const estimate = Math.ceil(Buffer.byteLength(admitted.payload) / 4) + (sse ? tap.events : Math.ceil(bytes / 4));
  audit.estimatedTokens = estimate;
  return estimate;
}
