import { createServer, type IncomingMessage, maxHeaderSize, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import type { Dispatcher } from 'undici';
import { type Client, type ClientRegistry, modelAllowed, policyOf, sourceAllowed } from './clients';
import { GatewayError, sendError, sendJson } from './errors';
import { classifyUpstream, cooldownUntil, DEFAULT_COOLDOWN_MS, type Outcome, retryable } from './failure';
import type { GuardrailDecision, Guardrails } from './guardrails';
import type { Telemetry } from './log';
import type { KeyPool, Lease } from './pool';
import type { RateLimiter } from './ratelimit';
import type { ProviderName } from './records';
import { parseRequest, readBody, requireJson, ROUTES, type RouteSpec, withoutBom } from './request';
import { UsageChunkFilter } from './sse';
import { PASSED_RESPONSE_HEADERS, upstreamRequest } from './upstream';
import { UsageTap } from './usage';

export interface GatewayDeps {
  readonly pool: KeyPool;
  /** The current client records; undefined until the first document version loaded. */
  readonly clients: () => ClientRegistry | undefined;
  readonly guardrails: () => Guardrails;
  readonly limiter: RateLimiter;
  readonly telemetry: Telemetry;
  readonly ready: () => boolean;
  /** Called after a 401/403 from a provider: re-read the key pool now, not at the next poll. */
  readonly onKeyRejected: () => void;
  readonly now: () => number;
  readonly random: () => number;
  readonly newId: () => string;
  readonly sleep: (ms: number) => Promise<void>;
  /** The keep-alive connection pools to the providers (http-client.ts). */
  readonly dispatcher: Dispatcher;
  readonly maxAttempts: number;
  /** Bound on the wait for an upstream's first byte, and between two of its chunks. */
  readonly upstreamTimeoutMs: number;
  readonly maxBodyBytes: number;
  /** Base of the jittered exponential backoff between attempts. @default 50 */
  readonly backoffMs?: number;
  /** A client must finish sending its headers within this. @default 30000 */
  readonly headersTimeoutMs?: number;
  /** ... and its whole request (headers and body) within this. @default 60000 */
  readonly requestTimeoutMs?: number;
}

/** What one request leaves in its audit line, filled in as it goes. Never a key, never prompt text. */
interface Audit {
  type: 'request';
  requestId: string;
  clientId?: string;
  sourceIp: string;
  route: string;
  model?: string;
  provider?: string;
  keyId?: string;
  stream?: boolean;
  status?: number;
  latencyMs?: number;
  ttfbMs?: number;
  promptTokens?: number;
  completionTokens?: number;
  /** Tokens counted against the limit when the provider reported no usage (about 4 bytes a token). */
  estimatedTokens?: number;
  guardrails: GuardrailDecision[];
  attempts: number;
  retries: number;
  errorClass?: string;
}

/** What `forward` and `relay` need to know about the request being forwarded. */
interface Forwarding {
  readonly client: Client;
  readonly provider: ProviderName;
  readonly spec: RouteSpec;
  readonly model: string;
  readonly payload: string | Buffer;
  /** The gateway added `stream_options.include_usage`; the client did not ask for the usage chunk. */
  readonly stripUsageChunk: boolean;
  readonly audit: Audit;
  readonly started: number;
  /** Aborted when the client goes away: the upstream request is cancelled with it. */
  readonly signal: ClientGone;
}

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

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The gateway's HTTP handling: authenticate, authorize, validate, rate-limit, screen, then forward
 * with failover across the provider's keys, streaming the answer through as it arrives.
 */
export class Gateway {
  readonly server: Server;
  private inFlight = 0;
  private draining = false;
  constructor(private readonly deps: GatewayDeps) {
    const headersTimeout = deps.headersTimeoutMs ?? 30_000;
    const requestTimeout = Math.max(deps.requestTimeoutMs ?? 60_000, headersTimeout);
    this.server = createServer(
      {
        headersTimeout,
        // Covers receiving the request only; a long answer streamed back is not bounded by it.
        requestTimeout,
        connectionsCheckingInterval: Math.min(1000, headersTimeout),
        // Longer than clients' idle pools (httpx: 5 s), so a client never reuses a socket we just closed.
        keepAliveTimeout: 65_000,
      },
      (req, res) => {
        this.inFlight += 1;
        res.once('close', () => {
          this.inFlight -= 1;
        });
        this.handle(req, res).catch((error: unknown) => this.unexpected(res, 'unknown', error));
      },
    );
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.badHttp(error, socket));
    // CONNECT (a proxy tunnel) never reaches the request handler; without this Node drops the socket.
    this.server.on('connect', (_req: IncomingMessage, socket: Socket) =>
      this.rawAnswer(socket, 405, 'Method Not Allowed', 'method_not_allowed', 'CONNECT is not supported'),
    );
  }

  get activeRequests(): number {
    return this.inFlight;
  }

  /** Stops taking connections; /readyz answers 503 and every answer closes its connection from now on. */
  startDraining(): void {
    this.draining = true;
    this.server.close();
    this.server.closeIdleConnections();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = this.deps.now();
    const requestId = this.deps.newId();
    const path = (req.url ?? '/').split('?')[0];
    if (this.draining) res.setHeader('connection', 'close');
    if (path === '/healthz' || path === '/readyz') return this.health(req, res, path, requestId);
    const audit: Audit = {
      type: 'request',
      requestId,
      sourceIp: req.socket.remoteAddress ?? 'unknown',
      route: ROUTES[path] !== undefined || path === '/v1/models' ? path : 'unknown',
      guardrails: [],
      attempts: 0,
      retries: 0,
    };
    try {
      await this.serve(req, res, path, audit, started);
    } catch (error) {
      if (error instanceof GatewayError) {
        audit.status = error.status;
        audit.errorClass = error.type;
        sendError(res, error, requestId);
      } else {
        audit.status = 500;
        audit.errorClass = 'internal_error';
        this.unexpected(res, requestId, error);
      }
    } finally {
      audit.latencyMs = this.deps.now() - started;
      audit.retries = Math.max(0, audit.attempts - 1);
      this.deps.telemetry.audit(audit as unknown as Record<string, unknown>);
      this.deps.telemetry.metric({ Requests: { value: 1, unit: 'Count' } });
      if (audit.errorClass !== undefined) {
        this.deps.telemetry.metric({ Errors: { value: 1, unit: 'Count' } }, { ErrorClass: audit.errorClass });
      }
    }
  }

  private health(req: IncomingMessage, res: ServerResponse, path: string, requestId: string): void {
    if (req.method !== 'GET') {
      return sendError(
        res,
        new GatewayError(405, 'method_not_allowed', `${path} accepts GET only`, {}, { allow: 'GET' }),
        requestId,
      );
    }
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' }, requestId);
    const ready = !this.draining && this.deps.ready();
    sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : this.draining ? 'draining' : 'loading' }, requestId);
  }

  /**
   * A defect in the gateway itself (anything but a GatewayError). The process keeps serving; the
   * client gets a 500 that says it is the gateway's fault, not theirs: every input the gateway knows
   * to be wrong has its own 4xx, and the generated bad-input suite asserts that no input reaches this.
   * Logged by error name and stack frames only: an error's message may quote the input.
   */
  private unexpected(res: ServerResponse, requestId: string, error: unknown): void {
    const name = error instanceof Error ? error.name : typeof error;
    const frames =
      error instanceof Error
        ? (error.stack ?? '')
            .split('\n')
            .slice(1, 6)
            .map((f) => f.trim())
        : [];
    this.deps.telemetry.log('error', 'internal_error', { requestId, error: name, frames });
    sendError(
      res,
      new GatewayError(
        500,
        'internal_error',
        'the gateway failed on this request; the failure is logged by request id',
      ),
      requestId,
    );
  }

  /** Malformed HTTP never reaches a handler: answer it here, in JSON, and close the connection. */
  private badHttp(error: NodeJS.ErrnoException, socket: Socket): void {
    const inResponse = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (error.code === 'ECONNRESET' || !socket.writable || inResponse) {
      socket.destroy();
      return;
    }
    const [status, reason, type, message] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [
            431,
            'Request Header Fields Too Large',
            'headers_too_large',
            `the request headers exceed ${maxHeaderSize} bytes`,
          ]
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'request_timeout', 'the request was not received in time']
          : [400, 'Bad Request', 'bad_http', 'the request is not well-formed HTTP/1.1'];
    this.rawAnswer(socket, status, reason, type, message);
  }

  /** A JSON error written straight to a socket that has no request object, then the socket closes. */
  private rawAnswer(socket: Socket, status: number, reason: string, type: string, message: string): void {
    const body = JSON.stringify({ error: { type, message } });
    if (socket.writable) {
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    } else socket.destroy();
    this.deps.telemetry.metric({ Errors: { value: 1, unit: 'Count' } }, { ErrorClass: type });
  }

  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    audit: Audit,
    started: number,
  ): Promise<void> {
    const spec = ROUTES[path];
    const isModels = path === '/v1/models';
    if (spec === undefined && !isModels) {
      throw new GatewayError(
        404,
        'not_found',
        `no route ${JSON.stringify(path.slice(0, 100))}; expected /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/messages or /v1/models`,
      );
    }
    const method = isModels ? 'GET' : 'POST';
    if (req.method !== method) {
      throw new GatewayError(405, 'method_not_allowed', `${path} accepts ${method} only`, {}, { allow: method });
    }
    const client = this.authenticate(req);
    audit.clientId = client.record.id;
    if (!sourceAllowed(client, audit.sourceIp)) {
      throw new GatewayError(
        403,
        'source_not_allowed',
        `client '${client.record.id}' may not call from this network address`,
      );
    }
    if (isModels) {
      const data = this.deps.pool.models
        .filter((model) => modelAllowed(client, model))
        .map((id) => ({ id, object: 'model', created: 0, owned_by: this.deps.pool.providerFor(id) }));
      return sendJson(res, 200, { object: 'list', data }, audit.requestId);
    }
    requireJson(req.headers['content-type']);
    const raw = withoutBom(await readBody(req, this.deps.maxBodyBytes));
    const body = parseRequest(spec!, raw);
    const model = body.model as string;
    audit.model = model.slice(0, 200);
    audit.stream = body.stream === true;
    // Allowed first: a client never learns which models exist beyond its own list.
    if (!modelAllowed(client, model)) {
      throw new GatewayError(
        403,
        'model_not_allowed',
        `client '${client.record.id}' may not use model ${JSON.stringify(model.slice(0, 200))}`,
      );
    }
    const provider = this.deps.pool.providerFor(model);
    if (provider === undefined) {
      throw new GatewayError(
        404,
        'model_not_found',
        `model ${JSON.stringify(model.slice(0, 200))} is not served by this gateway; GET /v1/models lists the models you may use`,
      );
    }
    if ((provider === 'anthropic') !== spec!.anthropic) {
      throw new GatewayError(
        400,
        'wrong_api',
        spec!.anthropic
          ? `model ${JSON.stringify(model)} is served through the OpenAI-compatible API; use /v1/chat/completions`
          : `model ${JSON.stringify(model)} is an Anthropic model; use /v1/messages`,
      );
    }
    audit.provider = provider;
    const admission = await this.deps.limiter.admit(client.record.id, {
      requestsPerMinute: client.record.requestsPerMinute,
      tokensPerMinute: client.record.tokensPerMinute,
    });
    if (!admission.allowed) {
      throw new GatewayError(
        429,
        'rate_limited',
        `client '${client.record.id}' reached its ${admission.reason} per minute; retry after ${admission.retryAfterSeconds} s`,
        { reason: admission.reason },
        { 'retry-after': String(admission.retryAfterSeconds) },
      );
    }
    const screened = this.deps.guardrails().screen(spec!.route, body, policyOf(client));
    audit.guardrails = screened.decisions;
    if (screened.blockedBy !== null) {
      throw new GatewayError(
        400,
        'guardrail_blocked',
        `the request was blocked by the ${screened.blockedBy} detector`,
        {
          detector: screened.blockedBy,
        },
      );
    }
    // OpenAI reports a stream's usage only when asked; ask, so the tokens count against the limit.
    let forwarded = screened.body;
    let stripUsageChunk = false;
    const askedForUsage = isObject(body.stream_options) && body.stream_options.include_usage === true;
    if (provider === 'openai' && body.stream === true && spec!.route !== 'embeddings' && !askedForUsage) {
      const options = isObject(forwarded.stream_options) ? forwarded.stream_options : {};
      forwarded = { ...forwarded, stream_options: { ...options, include_usage: true } };
      stripUsageChunk = true;
    }
    // Forwarded byte for byte unless a redaction or the usage option changed the body.
    const payload = forwarded === body ? raw : JSON.stringify(forwarded);
    const signal = new ClientGone();
    res.once('close', () => {
      if (!res.writableFinished) signal.abort();
    });
    await this.forward(res, req, {
      client,
      provider,
      spec: spec!,
      model,
      payload,
      stripUsageChunk,
      audit,
      started,
      signal,
    });
  }

  private authenticate(req: IncomingMessage): Client {
    const registry = this.deps.ready() ? this.deps.clients() : undefined;
    if (registry === undefined) {
      // Secrets Manager has not answered yet: a dependency's condition, not a fault of the client's key.
      throw new GatewayError(
        503,
        'secrets_unavailable',
        'the gateway has not loaded its key pool and client records yet; retry shortly',
        {},
        { 'retry-after': '5' },
      );
    }
    const authorization = req.headers.authorization;
    const apiKey = req.headers['x-api-key'];
    const key =
      typeof authorization === 'string' && /^Bearer\s+/i.test(authorization)
        ? authorization.replace(/^Bearer\s+/i, '').trim()
        : typeof apiKey === 'string'
          ? apiKey.trim()
          : undefined;
    if (key === undefined || key === '') {
      throw new GatewayError(
        401,
        'missing_client_key',
        'expected a client key in Authorization: Bearer <key> or x-api-key',
        {},
        { 'www-authenticate': 'Bearer' },
      );
    }
    const client = registry.authenticate(key);
    if (client === undefined) {
      throw new GatewayError(
        401,
        'invalid_client_key',
        'the client key is not valid, or its client is disabled',
        {},
        { 'www-authenticate': 'Bearer' },
      );
    }
    return client;
  }

  private async forward(res: ServerResponse, req: IncomingMessage, ctx: Forwarding): Promise<void> {
    const { audit } = ctx;
    const tried = new Set<string>();
    let lastOutcome: Outcome | undefined;
    for (let attempt = 1; attempt <= this.deps.maxAttempts; attempt++) {
      const lease = this.deps.pool.acquire(ctx.provider, tried);
      if (lease === undefined) break;
      tried.add(lease.keyId);
      audit.attempts = attempt;
      audit.keyId = lease.keyId;
      const attemptStarted = this.deps.now();
      const target = upstreamRequest(ctx.provider, lease.config, lease.key, ctx.spec.operation, ctx.model, req.headers);
      let response: Dispatcher.ResponseData;
      try {
        response = await this.deps.dispatcher.request({
          origin: target.origin,
          path: target.path,
          method: 'POST',
          headers: target.headers,
          body: ctx.payload,
          headersTimeout: this.deps.upstreamTimeoutMs,
          // The same bound between two chunks: a provider that stalls mid-stream ends the stream with
          // an SSE error instead of holding the client forever.
          bodyTimeout: this.deps.upstreamTimeoutMs,
          signal: ctx.signal,
        });
      } catch (error) {
        if (ctx.signal.aborted) return this.clientGone(lease, attempt, ctx, attemptStarted);
        lastOutcome = classifyUpstream(error);
        this.finishAttempt(lease, lastOutcome, attempt, ctx, attemptStarted);
        if (attempt < this.deps.maxAttempts) await this.backoff(attempt);
        continue;
      }
      const outcome = classifyUpstream(response.statusCode);
      if (retryable(outcome)) {
        lastOutcome = outcome;
        const until =
          outcome === 'rate_limited'
            ? cooldownUntil(response.headers, this.deps.now(), DEFAULT_COOLDOWN_MS)
            : undefined;
        await response.body.dump().catch(() => undefined);
        this.finishAttempt(lease, outcome, attempt, ctx, attemptStarted, response.statusCode, until);
        if (outcome === 'auth') this.deps.onKeyRejected();
        if (attempt < this.deps.maxAttempts) await this.backoff(attempt);
        continue;
      }
      await this.relay(res, response, lease, outcome, attempt, ctx, attemptStarted);
      return;
    }
    throw this.exhausted(ctx.provider, lastOutcome, tried.size);
  }

  /** No attempt produced an answer to relay: say why, as the provider's condition, and when to retry. */
  private exhausted(provider: ProviderName, lastOutcome: Outcome | undefined, tried: number): GatewayError {
    const next = this.deps.pool.nextAvailable(provider);
    if (lastOutcome === 'rate_limited' || (lastOutcome === undefined && next !== undefined)) {
      const seconds = Math.max(1, Math.ceil(((next ?? this.deps.now() + 1000) - this.deps.now()) / 1000));
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
          ? `${provider} refused every key tried (401/403); an operator must replace the keys`
          : `no usable ${provider} key: every key is refused by the provider or switched off, or none is configured`,
        { provider },
      );
    }
    if (lastOutcome === 'timeout') {
      return new GatewayError(
        504,
        'upstream_timeout',
        `${provider} did not start answering in time on ${tried} key(s)`,
        { provider },
      );
    }
    return new GatewayError(
      502,
      'upstream_error',
      `${provider} failed on ${tried} key(s) (${lastOutcome === 'server' ? 'server errors' : 'connection errors'})`,
      { provider },
    );
  }

  /** Streams a final upstream answer to the client, with backpressure, recording usage as it passes. */
  private async relay(
    res: ServerResponse,
    response: Dispatcher.ResponseData,
    lease: Lease,
    outcome: Outcome,
    attempt: number,
    ctx: Forwarding,
    attemptStarted: number,
  ): Promise<void> {
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
    audit.ttfbMs = this.deps.now() - ctx.started;
    this.deps.telemetry.metric({ TimeToFirstByte: { value: audit.ttfbMs, unit: 'Milliseconds' } });
    let bytes = 0;
    // Piped by hand rather than with stream.pipeline: the usage tap and the filter see every chunk,
    // and a failure mid-stream must end the answer with an SSE error instead of destroying it.
    const ended = await new Promise<'complete' | 'failed'>((resolve) => {
      const body = response.body;
      let settled = false;
      const settle = (how: 'complete' | 'failed') => {
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
      const onError = () => settle('failed');
      const onClose = () => {
        if (!res.writableFinished) settle('failed');
      };
      body.on('data', onData);
      body.on('end', onEnd);
      body.on('error', onError);
      res.on('drain', onDrain);
      res.on('close', onClose);
    });
    const failedMidStream = ended === 'failed';
    // The client went away: stop reading, so the upstream connection is closed rather than left half-read.
    if (res.destroyed && !response.body.destroyed) response.body.destroy();
    if (res.destroyed && !res.writableFinished) {
      this.clientGone(lease, attempt, ctx, attemptStarted, response.statusCode);
    } else if (failedMidStream) {
      audit.errorClass = 'upstream_interrupted';
      this.finishAttempt(lease, 'network', attempt, ctx, attemptStarted, response.statusCode, undefined, {
        errorClass: 'upstream_interrupted',
      });
      if (sse) {
        // No key and no prompt text in it: a type, a message and the request id to find the audit line.
        res.end(
          `event: error\ndata: ${JSON.stringify({ error: { type: 'upstream_interrupted', message: 'the provider ended the stream early; the answer is incomplete', request_id: audit.requestId } })}\n\n`,
        );
      } else res.destroy();
    } else {
      res.end();
      if (outcome === 'client') audit.errorClass = 'upstream_rejected_request';
      this.finishAttempt(lease, outcome, attempt, ctx, attemptStarted, response.statusCode);
    }
    const usage = tap.finish();
    audit.promptTokens = usage.promptTokens;
    audit.completionTokens = usage.completionTokens;
    if (outcome !== 'success') return;
    let tokens = (usage.promptTokens ?? 0) + (usage.completionTokens ?? 0);
    if (usage.promptTokens === undefined && usage.completionTokens === undefined) {
      // No usage reported (a custom or Azure stream without include_usage): about four bytes a
      // prompt token, one token per streamed event (or four bytes a token of a JSON answer).
      tokens = Math.ceil(Buffer.byteLength(ctx.payload) / 4) + (sse ? tap.events : Math.ceil(bytes / 4));
      audit.estimatedTokens = tokens;
    }
    await this.deps.limiter.recordTokens(ctx.client.record.id, tokens);
  }

  /** The client closed its connection: cancel quietly; nothing is held against the key. */
  private clientGone(lease: Lease, attempt: number, ctx: Forwarding, attemptStarted: number, status?: number): void {
    ctx.audit.errorClass = 'client_disconnected';
    ctx.audit.status ??= 499;
    this.finishAttempt(lease, 'client', attempt, ctx, attemptStarted, status, undefined, {
      errorClass: 'client_disconnected',
    });
  }

  private finishAttempt(
    lease: Lease,
    outcome: Outcome,
    attempt: number,
    ctx: Forwarding,
    attemptStarted: number,
    status?: number,
    cooldown?: number,
    override: { errorClass?: string } = {},
  ): void {
    this.deps.pool.report(lease, outcome, cooldown);
    lease.release();
    const errorClass = override.errorClass ?? (outcome === 'success' ? undefined : outcome);
    this.deps.telemetry.audit({
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
      latencyMs: this.deps.now() - attemptStarted,
      ...(cooldown !== undefined ? { cooldownUntil: new Date(cooldown).toISOString() } : {}),
    });
    if (outcome !== 'success' && outcome !== 'client') {
      this.deps.telemetry.metric(
        { AttemptFailures: { value: 1, unit: 'Count' } },
        { Provider: lease.provider, ErrorClass: outcome },
      );
    }
  }

  /** Exponential, with jitter from the injected randomness: 0.5x to 1.5x of base * 2^(attempt-1). */
  private backoff(attempt: number): Promise<void> {
    const base = this.deps.backoffMs ?? 50;
    return this.deps.sleep(base * 2 ** (attempt - 1) * (0.5 + this.deps.random()));
  }
}
