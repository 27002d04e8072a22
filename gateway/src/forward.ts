import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { GatewayError } from './errors';
import {
  classifyAnswer,
  classifyUpstream,
  cooldownUntil,
  DEFAULT_COOLDOWN_MS,
  type Outcome,
  retryable,
} from './failure';
import type { Telemetry } from './log';
import type { KeyPool, Lease } from './pool';
import { ProviderAddressError } from './provider-address';
import type { ProviderName } from '../../contracts/gateway-documents';
import type { RouteSpec } from './request';
import type { Audit } from './server';
import { UsageChunkFilter } from './sse';
import { PASSED_RESPONSE_HEADERS, upstreamRequest } from '../../contracts/provider-api';
import { UsageTap } from './usage';

/** What forward() needs of the gateway. */
export interface ForwardDeps {
  readonly pool: KeyPool;
  readonly telemetry: Telemetry;
  readonly dispatcher: Dispatcher;
  readonly now: () => number;
  readonly random: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly onKeyRejected: () => void;
  readonly maxAttempts: number;
  readonly upstreamTimeoutMs: number;
  readonly backoffMs?: number;
}

/** The request being forwarded. */
export interface Forwarding {
  readonly provider: ProviderName;
  readonly spec: RouteSpec;
  readonly model: string;
  readonly payload: string;
  readonly accept: string | undefined;
  /** Anthropic's checked version and beta headers. */
  readonly anthropic: Record<string, string>;
  /** The gateway added `stream_options.include_usage`; the client did not ask for the usage chunk. */
  readonly stripUsageChunk: boolean;
  readonly audit: Audit;
  readonly started: number;
}

export interface ForwardResult {
  /** Tokens to settle against the client's limit: the provider's usage, or an estimate of what was relayed. */
  readonly usedTokens: number;
}

/** The most of a provider's error answer that is read to classify and relay it. */
const MAX_ERROR_BODY = 256 * 1024;

/**
 * Emits 'abort' when the client goes away, which undici takes as a request's signal. An
 * EventEmitter, not an AbortController: it is made for every request and costs less.
 */
class ClientGone extends EventEmitter {
  aborted = false;
  abort(): void {
    this.aborted = true;
    this.emit('abort');
  }
}

/**
 * Forwards with failover across the provider's keys, then relays the answer. Failover happens only
 * before the first byte reaches the client. Each attempt uses a key this request has not tried; when
 * none is left and the last failure was the provider's (5xx, connection, timeout), a key already
 * tried is used again while attempts remain. Throws a GatewayError when no attempt produced an answer.
 */
export async function forward(deps: ForwardDeps, res: ServerResponse, ctx: Forwarding): Promise<ForwardResult> {
  const { audit } = ctx;
  const signal = new ClientGone();
  res.once('close', () => {
    if (!res.writableFinished) signal.abort();
  });
  const tried = new Set<string>();
  let lastOutcome: Outcome | undefined;
  for (let attempt = 1; attempt <= deps.maxAttempts; attempt++) {
    const transient = lastOutcome === 'server' || lastOutcome === 'network' || lastOutcome === 'timeout';
    const lease = deps.pool.acquire(ctx.provider, tried) ?? (transient ? deps.pool.acquire(ctx.provider) : undefined);
    if (lease === undefined) break;
    tried.add(lease.keyId);
    audit.attempts = attempt;
    audit.keyId = lease.keyId;
    const attemptStarted = deps.now();
    const target = upstreamRequest(
      ctx.provider,
      lease.config,
      lease.key,
      ctx.spec.operation,
      ctx.model,
      ctx.accept,
      ctx.anthropic,
    );
    let response: Dispatcher.ResponseData;
    try {
      response = await deps.dispatcher.request({
        origin: target.origin,
        path: target.path,
        method: 'POST',
        headers: target.headers,
        body: ctx.payload,
        headersTimeout: deps.upstreamTimeoutMs,
        // The same bound between two chunks: a provider that stalls mid-stream ends the stream with
        // an SSE error instead of holding the client forever.
        bodyTimeout: deps.upstreamTimeoutMs,
        signal,
      });
    } catch (error) {
      if (signal.aborted) {
        clientGone(deps, lease, attempt, ctx, attemptStarted);
        return { usedTokens: 0 };
      }
      if (error instanceof ProviderAddressError)
        deps.telemetry.log('warn', 'provider_address_refused', { provider: ctx.provider, reason: error.message });
      lastOutcome = classifyUpstream(error);
      finishAttempt(deps, lease, lastOutcome, attempt, ctx, attemptStarted);
      if (attempt < deps.maxAttempts) await backoff(deps, attempt);
      continue;
    }
    if (response.statusCode >= 200 && response.statusCode < 300) {
      return relay(deps, res, response, lease, attempt, ctx, attemptStarted, signal);
    }
    // An error answer: read it (bounded) to tell "this key is bad" from "this request is refused".
    const errorBody = await readLimited(response.body, MAX_ERROR_BODY);
    if (signal.aborted) {
      clientGone(deps, lease, attempt, ctx, attemptStarted, response.statusCode);
      return { usedTokens: 0 };
    }
    const classified =
      errorBody === undefined
        ? { outcome: 'server' as const }
        : classifyAnswer(ctx.provider, response.statusCode, errorBody.toString('utf8'));
    if (retryable(classified.outcome)) {
      lastOutcome = classified.outcome;
      const until =
        classified.outcome === 'rate_limited'
          ? cooldownUntil(response.headers, deps.now(), DEFAULT_COOLDOWN_MS)
          : undefined;
      finishAttempt(
        deps,
        lease,
        classified.outcome,
        attempt,
        ctx,
        attemptStarted,
        response.statusCode,
        until,
        classified.reason,
      );
      if (classified.outcome === 'auth') deps.onKeyRejected();
      if (attempt < deps.maxAttempts) await backoff(deps, attempt);
      continue;
    }
    // The request's own refusal: relayed as the provider answered it, never held against the key.
    audit.status = response.statusCode;
    audit.errorClass = 'upstream_rejected_request';
    audit.ttfbMs = deps.now() - ctx.started;
    finishAttempt(deps, lease, 'client', attempt, ctx, attemptStarted, response.statusCode);
    const headers: Record<string, string> = {
      'x-request-id': audit.requestId,
      'content-length': String(errorBody!.length),
    };
    for (const name of PASSED_RESPONSE_HEADERS) {
      const value = response.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    res.writeHead(response.statusCode, headers);
    res.end(errorBody);
    return { usedTokens: 0 };
  }
  throw exhausted(deps, ctx.provider, lastOutcome, tried.size);
}

/** Reads a body up to `limit` bytes; undefined (and the body destroyed) when it is longer or fails. */
async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        body.destroy();
        return undefined;
      }
      chunks.push(chunk as Buffer);
    }
  } catch {
    return undefined;
  }
  return Buffer.concat(chunks);
}

/** No attempt produced an answer to relay: say why, as the provider's condition, and when to retry. */
function exhausted(
  deps: ForwardDeps,
  provider: ProviderName,
  lastOutcome: Outcome | undefined,
  tried: number,
): GatewayError {
  const next = deps.pool.nextAvailable(provider);
  if (lastOutcome === 'rate_limited' || (lastOutcome === undefined && next !== undefined)) {
    const seconds = Math.max(1, Math.ceil(((next ?? deps.now() + 1000) - deps.now()) / 1000));
    return new GatewayError(
      429,
      'upstream_rate_limited',
      `every ${provider} key is rate-limited by the provider; retry after ${seconds} s`,
      { provider, retry_after_seconds: seconds },
      { 'retry-after': String(seconds) },
    );
  }
  if (lastOutcome === undefined || lastOutcome === 'auth') {
    return new GatewayError(
      503,
      'upstream_unavailable',
      lastOutcome === 'auth'
        ? `${provider} refused every key tried; an operator must replace the keys`
        : `no usable ${provider} key: every key is refused by the provider or switched off, or none is configured`,
      { provider },
    );
  }
  if (lastOutcome === 'timeout') {
    return new GatewayError(504, 'upstream_timeout', `${provider} did not start answering in time on ${tried} key(s)`, {
      provider,
    });
  }
  return new GatewayError(
    502,
    'upstream_error',
    `${provider} failed on ${tried} key(s) (${lastOutcome === 'server' ? 'server errors' : 'connection errors'})`,
    { provider },
  );
}

/** Streams a successful upstream answer to the client, with backpressure, reading usage as it passes. */
async function relay(
  deps: ForwardDeps,
  res: ServerResponse,
  response: Dispatcher.ResponseData,
  lease: Lease,
  attempt: number,
  ctx: Forwarding,
  attemptStarted: number,
  signal: ClientGone,
): Promise<ForwardResult> {
  const { audit } = ctx;
  const headers: Record<string, string> = { 'x-request-id': audit.requestId };
  for (const name of PASSED_RESPONSE_HEADERS) {
    const value = response.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  const sse = (headers['content-type'] ?? '').includes('text/event-stream');
  const filter = sse && ctx.stripUsageChunk ? new UsageChunkFilter() : undefined;
  const length = response.headers['content-length'];
  if (filter === undefined && typeof length === 'string') headers['content-length'] = length;
  const tap = new UsageTap(sse);
  res.writeHead(response.statusCode, headers);
  if (sse) res.flushHeaders();
  audit.status = response.statusCode;
  audit.ttfbMs = deps.now() - ctx.started;
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
    clientGone(deps, lease, attempt, ctx, attemptStarted, response.statusCode);
  } else if (ended === 'failed') {
    audit.errorClass = 'upstream_interrupted';
    finishAttempt(
      deps,
      lease,
      'network',
      attempt,
      ctx,
      attemptStarted,
      response.statusCode,
      undefined,
      undefined,
      'upstream_interrupted',
    );
    if (sse) {
      // No key and no prompt text in it: a type, a message and the request id to find the audit line.
      res.end(
        `event: error\ndata: ${JSON.stringify({ error: { type: 'upstream_interrupted', message: 'the provider ended the stream early; the answer is incomplete', request_id: audit.requestId } })}\n\n`,
      );
    } else res.destroy();
  } else {
    res.end();
    finishAttempt(deps, lease, 'success', attempt, ctx, attemptStarted, response.statusCode);
  }
  // Counted whatever happened: the provider bills what it produced, and a client that leaves midway
  // (a user pressing stop) must not escape its tokens-per-minute limit.
  const usage = tap.finish();
  audit.promptTokens = usage.promptTokens;
  audit.completionTokens = usage.completionTokens;
  // Counting a prompt's tokens is not billed, and counts nothing against the limit.
  if (!ctx.spec.metered) return { usedTokens: 0 };
  if (usage.promptTokens !== undefined || usage.completionTokens !== undefined) {
    return { usedTokens: (usage.promptTokens ?? 0) + (usage.completionTokens ?? 0) };
  }
  // No usage reported (a stream cut short, or a custom or Azure stream without include_usage): about
  // four bytes a prompt token, and one token per streamed event (or four bytes a token of a JSON answer).
  const estimate = Math.ceil(Buffer.byteLength(ctx.payload) / 4) + (sse ? tap.events : Math.ceil(bytes / 4));
  audit.estimatedTokens = estimate;
  return { usedTokens: estimate };
}

/** The client closed its connection: cancel quietly; nothing is held against the key. */
function clientGone(
  deps: ForwardDeps,
  lease: Lease,
  attempt: number,
  ctx: Forwarding,
  attemptStarted: number,
  status?: number,
): void {
  ctx.audit.errorClass = 'client_disconnected';
  ctx.audit.status ??= 499;
  finishAttempt(
    deps,
    lease,
    'client',
    attempt,
    ctx,
    attemptStarted,
    status,
    undefined,
    undefined,
    'client_disconnected',
  );
}

function finishAttempt(
  deps: ForwardDeps,
  lease: Lease,
  outcome: Outcome,
  attempt: number,
  ctx: Forwarding,
  attemptStarted: number,
  status?: number,
  cooldown?: number,
  reason?: string,
  errorClassOverride?: string,
): void {
  deps.pool.report(lease, outcome, cooldown, reason);
  lease.release();
  const errorClass = errorClassOverride ?? (outcome === 'success' ? undefined : outcome);
  deps.telemetry.audit({
    type: 'attempt',
    requestId: ctx.audit.requestId,
    attempt,
    clientId: ctx.audit.clientId,
    route: ctx.audit.route,
    model: ctx.audit.model,
    provider: lease.provider,
    keyId: lease.keyId,
    status,
    outcome,
    errorClass,
    latencyMs: deps.now() - attemptStarted,
    ...(cooldown !== undefined ? { cooldownUntil: new Date(cooldown).toISOString() } : {}),
  });
  if (outcome !== 'success' && outcome !== 'client') {
    deps.telemetry.metric(
      { AttemptFailures: { value: 1, unit: 'Count' } },
      { Provider: lease.provider, ErrorClass: outcome },
    );
  }
}

/** Exponential, with jitter from the injected randomness: 0.5x to 1.5x of base * 2^(attempt-1). */
function backoff(deps: ForwardDeps, attempt: number): Promise<void> {
  const base = deps.backoffMs ?? 50;
  return deps.sleep(base * 2 ** (attempt - 1) * (0.5 + deps.random()));
}
