import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { request as undiciRequest } from 'undici';
import { type Client, type ClientRegistry, modelAllowed, policyOf, sourceAllowed } from './clients';
import { GatewayError, sendError, sendJson } from './errors';
import { classifyStatus, cooldownUntil, type Outcome, retryable } from './failure';
import type { Guardrails, GuardrailDecision } from './guardrails';
import type { Telemetry } from './log';
import type { KeyPool, Lease } from './pool';
import type { RateLimiter } from './ratelimit';
import type { ProviderName } from './records';
import { parseRequest, readBody, ROUTES, type RouteSpec } from './request';
import { PASSED_RESPONSE_HEADERS, upstreamRequest } from './upstream';
import { UsageTap } from './usage';

export interface GatewayDeps {
  readonly pool: KeyPool;
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
  readonly dispatcher?: Dispatcher;
  readonly maxAttempts: number;
  readonly upstreamTimeoutMs: number;
  readonly maxBodyBytes: number;
  /** Base of the jittered backoff between attempts. */
  readonly backoffMs?: number;
}

/** What one request leaves in its audit line, filled in as it goes. */
interface Audit {
  type: 'request';
  requestId: string;
  clientId?: string;
  sourceIp: string;
  route: string;
  model?: string;
  provider?: string;
  keyId?: string;
  status?: number;
  latencyMs?: number;
  ttfbMs?: number;
  promptTokens?: number;
  completionTokens?: number;
  tokensEstimated?: boolean;
  guardrails: GuardrailDecision[];
  retries: number;
  errorType?: string;
}

/**
 * The gateway's HTTP handling: authenticate, authorize, validate, screen, rate-limit, then forward
 * with failover across the provider's keys, streaming the answer through as it arrives.
 */
export class Gateway {
  readonly server: Server;
  private inFlight = 0;
  private draining = false;

  constructor(private readonly deps: GatewayDeps) {
    this.server = createServer({ requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
      this.inFlight += 1;
      res.on('close', () => {
        this.inFlight -= 1;
      });
      this.handle(req, res).catch((error: unknown) => {
        // A bug must not crash the process or answer 5xx: log its kind only, answer a generic 400.
        deps.telemetry.log('error', 'handler_failed', { error: (error as Error)?.name ?? 'unknown' });
        sendError(
          res,
          new GatewayError(400, 'request_failed', 'the gateway could not process this request'),
          'unknown',
        );
      });
    });
    this.server.on('clientError', (_error, socket) => {
      if (socket.writable)
        socket.end(
          'HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"error":{"type":"bad_http","message":"malformed HTTP request"}}',
        );
      else socket.destroy();
    });
  }

  get activeRequests(): number {
    return this.inFlight;
  }

  /** Stops taking connections; /readyz answers 503 from now on. */
  startDraining(): void {
    this.draining = true;
    this.server.close();
    this.server.closeIdleConnections();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = this.deps.now();
    const requestId = this.deps.newId();
    const path = (req.url ?? '/').split('?')[0];
    const audit: Audit = {
      type: 'request',
      requestId,
      sourceIp: req.socket.remoteAddress ?? 'unknown',
      route: path,
      guardrails: [],
      retries: 0,
    };
    if (path === '/healthz' && req.method === 'GET') return sendJson(res, 200, { status: 'ok' }, requestId);
    if (path === '/readyz' && req.method === 'GET') {
      const ready = !this.draining && this.deps.ready();
      return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' }, requestId);
    }
    try {
      await this.serve(req, res, path, audit);
    } catch (error) {
      const failure =
        error instanceof GatewayError
          ? error
          : new GatewayError(400, 'request_failed', 'the gateway could not process this request');
      if (!(error instanceof GatewayError)) {
        this.deps.telemetry.log('error', 'request_failed', { requestId, error: (error as Error)?.name ?? 'unknown' });
      }
      audit.status = failure.status;
      audit.errorType = failure.type;
      sendError(res, failure, requestId);
    } finally {
      audit.latencyMs = this.deps.now() - started;
      this.deps.telemetry.audit(audit as unknown as Record<string, unknown>);
      this.deps.telemetry.metric(
        {
          Requests: { value: 1, unit: 'Count' },
          ...(audit.ttfbMs !== undefined ? { TimeToFirstByte: { value: audit.ttfbMs, unit: 'Milliseconds' } } : {}),
        },
        audit.errorType !== undefined ? { ErrorClass: audit.errorType } : {},
      );
    }
  }

  private async serve(req: IncomingMessage, res: ServerResponse, path: string, audit: Audit): Promise<void> {
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
    const raw = await readBody(req, this.deps.maxBodyBytes);
    const body = parseRequest(spec!, req.headers['content-type'], raw);
    const model = body.model as string;
    audit.model = model;
    const provider = this.deps.pool.providerFor(model);
    if (provider === undefined) {
      throw new GatewayError(
        404,
        'model_not_found',
        `model '${model.slice(0, 200)}' is not served by this gateway; GET /v1/models lists the models you may use`,
      );
    }
    if (!modelAllowed(client, model)) {
      throw new GatewayError(
        403,
        'model_not_allowed',
        `client '${client.record.id}' may not use model '${model.slice(0, 200)}'`,
      );
    }
    if ((provider === 'anthropic') !== spec!.anthropic) {
      throw new GatewayError(
        400,
        'wrong_api',
        spec!.anthropic
          ? `model '${model}' is served through the OpenAI-compatible API; use /v1/chat/completions`
          : `model '${model}' is an Anthropic model; use /v1/messages`,
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
        `client '${client.record.id}' reached its ${admission.reason === 'requests' ? 'requests' : 'tokens'} per minute; retry after ${admission.retryAfterSeconds} s`,
        {},
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
    // Forwarded byte for byte unless a redaction changed the body.
    const payload = screened.body === body ? raw : JSON.stringify(screened.body);
    await this.forward(req, res, {
      client,
      provider,
      spec: spec!,
      model,
      payload,
      streaming: body.stream === true,
      audit,
    });
  }

  private authenticate(req: IncomingMessage): Client {
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
    const client = this.deps.clients()?.authenticate(key);
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

  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    ctx: {
      client: Client;
      provider: ProviderName;
      spec: RouteSpec;
      model: string;
      payload: string | Buffer;
      streaming: boolean;
      audit: Audit;
    },
  ): Promise<void> {
    const { audit } = ctx;
    const started = this.deps.now();
    const tried = new Set<string>();
    let lastOutcome: Outcome | undefined;
    for (let attempt = 1; attempt <= this.deps.maxAttempts; attempt++) {
      const lease = this.deps.pool.acquire(ctx.provider, tried);
      if (lease === undefined) break;
      tried.add(lease.keyId);
      audit.retries = attempt - 1;
      audit.keyId = lease.keyId;
      const attemptStarted = this.deps.now();
      const target = upstreamRequest(ctx.provider, lease.config, lease.key, ctx.spec.operation, ctx.model, req.headers);
      let response: Dispatcher.ResponseData;
      try {
        response = await undiciRequest(target.url, {
          method: 'POST',
          headers: target.headers,
          body: ctx.payload,
          headersTimeout: this.deps.upstreamTimeoutMs,
          // The same bound between two chunks: a provider that stalls mid-stream ends the stream with
          // an SSE error instead of holding the client forever.
          bodyTimeout: this.deps.upstreamTimeoutMs,
          dispatcher: this.deps.dispatcher,
        });
      } catch (error) {
        const outcome: Outcome = /Timeout/i.test((error as Error)?.name ?? '') ? 'timeout' : 'network';
        lastOutcome = outcome;
        this.finishAttempt(lease, outcome, attempt, audit, attemptStarted);
        await this.backoff(attempt);
        continue;
      }
      const outcome = classifyStatus(response.statusCode);
      if (retryable(outcome)) {
        lastOutcome = outcome;
        const until = outcome === 'rate_limited' ? cooldownUntil(response.headers, this.deps.now(), 60_000) : undefined;
        await response.body.dump().catch(() => undefined);
        this.finishAttempt(lease, outcome, attempt, audit, attemptStarted, response.statusCode, until);
        if (outcome === 'auth') this.deps.onKeyRejected();
        if (attempt < this.deps.maxAttempts) await this.backoff(attempt);
        continue;
      }
      await this.relay(res, response, lease, outcome, attempt, audit, attemptStarted, started, ctx);
      return;
    }
    // No attempt produced an answer to relay: every key is cooling, disabled, or failed.
    const next = this.deps.pool.nextAvailable(ctx.provider);
    if (lastOutcome === undefined && next === undefined) {
      throw new GatewayError(
        503,
        'upstream_unavailable',
        `no usable ${ctx.provider} key: every key is disabled or none is configured`,
        { provider: ctx.provider },
      );
    }
    if (lastOutcome === 'rate_limited' || (lastOutcome === undefined && next !== undefined)) {
      const seconds = Math.max(1, Math.ceil(((next ?? this.deps.now() + 1000) - this.deps.now()) / 1000));
      throw new GatewayError(
        429,
        'upstream_rate_limited',
        `every ${ctx.provider} key is rate-limited; retry after ${seconds} s`,
        { provider: ctx.provider },
        { 'retry-after': String(seconds) },
      );
    }
    throw new GatewayError(
      502,
      'upstream_unavailable',
      `${ctx.provider} did not answer successfully on ${tried.size} key(s) (${lastOutcome})`,
      { provider: ctx.provider },
    );
  }

  /** Streams a final upstream answer to the client, with backpressure, recording usage as it passes. */
  private async relay(
    res: ServerResponse,
    response: Dispatcher.ResponseData,
    lease: Lease,
    outcome: Outcome,
    attempt: number,
    audit: Audit,
    attemptStarted: number,
    started: number,
    ctx: { client: Client; streaming: boolean; payload: string | Buffer },
  ): Promise<void> {
    const headers: Record<string, string> = { 'x-request-id': audit.requestId };
    for (const name of PASSED_RESPONSE_HEADERS) {
      const value = response.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const sse = (headers['content-type'] ?? '').includes('text/event-stream');
    const tap = new UsageTap(sse);
    res.writeHead(response.statusCode, headers);
    res.flushHeaders();
    audit.status = response.statusCode;
    audit.ttfbMs = this.deps.now() - started;
    let failedMidStream = false;
    let bytes = 0;
    try {
      for await (const chunk of response.body) {
        const buffer = chunk as Buffer;
        bytes += buffer.length;
        tap.push(buffer);
        if (!res.write(buffer)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.on('drain', done);
            res.on('close', done);
          });
        }
        if (res.destroyed) break;
      }
    } catch {
      failedMidStream = true;
    }
    // The client went away: stop reading, so the upstream connection is closed rather than left half-read.
    if (res.destroyed && !response.body.destroyed) response.body.destroy();
    if (failedMidStream) {
      audit.errorType = 'upstream_interrupted';
      this.finishAttempt(lease, 'network', attempt, audit, attemptStarted, response.statusCode);
      if (sse && !res.destroyed) {
        res.end(
          `event: error\ndata: ${JSON.stringify({ error: { type: 'upstream_interrupted', message: 'the provider ended the stream early; the answer is incomplete', request_id: audit.requestId } })}\n\n`,
        );
      } else res.destroy();
    } else {
      res.end();
      this.finishAttempt(lease, outcome, attempt, audit, attemptStarted, response.statusCode);
    }
    const usage = tap.finish();
    audit.promptTokens = usage.promptTokens;
    audit.completionTokens = usage.completionTokens;
    let tokens = (usage.promptTokens ?? 0) + (usage.completionTokens ?? 0);
    if (usage.promptTokens === undefined && usage.completionTokens === undefined && outcome === 'success') {
      // No usage reported (a stream without include_usage): count about four bytes a token.
      tokens = Math.ceil((Buffer.byteLength(ctx.payload) + bytes) / 4);
      audit.tokensEstimated = true;
    }
    await this.deps.limiter.recordTokens(ctx.client.record.id, tokens);
  }

  private finishAttempt(
    lease: Lease,
    outcome: Outcome,
    attempt: number,
    audit: Audit,
    attemptStarted: number,
    status?: number,
    cooldown?: number,
  ): void {
    this.deps.pool.report(lease, outcome, cooldown);
    lease.release();
    this.deps.telemetry.audit({
      type: 'attempt',
      requestId: audit.requestId,
      attempt,
      clientId: audit.clientId,
      provider: lease.provider,
      keyId: lease.keyId,
      status,
      outcome,
      latencyMs: this.deps.now() - attemptStarted,
    });
    if (outcome !== 'success' && outcome !== 'client') {
      this.deps.telemetry.metric({ UpstreamErrors: { value: 1, unit: 'Count' } }, { ErrorClass: outcome });
    }
  }

  private backoff(attempt: number): Promise<void> {
    const base = this.deps.backoffMs ?? 50;
    return this.deps.sleep(base * 2 ** (attempt - 1) * (0.5 + this.deps.random()));
  }
}
