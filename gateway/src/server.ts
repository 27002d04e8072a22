import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { type Client, type ClientRegistry, modelAllowed, policyOf, sourceAllowed } from './clients';
import { GatewayError, sendError, sendJson } from './errors';
import { forward, type ForwardResult } from './forward';
import { Front } from './front';
import type { GuardrailDecision, Guardrails } from './guardrails';
import type { Telemetry } from './log';
import { anthropicHeaders, checkBody } from './policy';
import type { KeyPool } from './pool';
import type { RateLimiter, Ticket } from './ratelimit';
import { type BodyReader, parseRequest, readBody, requireJson, ROUTES, tokenReservation, withoutBom } from './request';
import type { Screener } from './screening';

export interface GatewayDeps {
  readonly pool: KeyPool;
  /** The current client records; undefined until the first document version loaded. */
  readonly clients: () => ClientRegistry | undefined;
  readonly guardrails: () => Guardrails;
  readonly screener: Screener;
  readonly limiter: RateLimiter;
  readonly telemetry: Telemetry;
  readonly ready: () => boolean;
  /** Called after a provider refused a key: re-read the key pool now, not at the next poll. */
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
  /** A client must finish sending its headers within this. @default 10000 */
  readonly headersTimeoutMs?: number;
  /** ... and its body within this, once its headers are in. @default 30000 */
  readonly bodyTimeoutMs?: number;
  /** A kept-alive connection with no request is closed after this. @default 65000 */
  readonly idleTimeoutMs?: number;
}

/** What one request leaves in its audit line, filled in as it goes. Never a key, never prompt text. */
export interface Audit {
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
  /** Tokens reserved at admission (prompt estimate and max_tokens). */
  reservedTokens?: number;
  promptTokens?: number;
  completionTokens?: number;
  /** Tokens counted against the limit when the provider reported no usage (about 4 bytes a token). */
  estimatedTokens?: number;
  guardrails: GuardrailDecision[];
  attempts: number;
  retries: number;
  errorClass?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** What a log line keeps of a client-chosen name (a model, a path). */
const short = (text: string) => text.slice(0, 100);

/**
 * The gateway's request handling: authenticate, authorize, validate, apply the forwarding policy,
 * admit (reserving tokens), screen, then forward with failover across the provider's keys, streaming
 * the answer through as it arrives, and settle the tokens used. Every admitted request ends with
 * exactly one audit line, written after its tokens are settled, whatever the client does.
 */
export class Gateway {
  readonly front: Front;
  /** Requests in flight per client on this replica, for `maxInFlight`. */
  private readonly inFlightByClient = new Map<string, number>();

  constructor(private readonly deps: GatewayDeps) {
    this.front = new Front({
      headersTimeoutMs: deps.headersTimeoutMs ?? 10_000,
      bodyTimeoutMs: deps.bodyTimeoutMs ?? 30_000,
      idleTimeoutMs: deps.idleTimeoutMs ?? 65_000,
      handle: (req, res, reader) => this.handle(req, res, reader),
      onRawError: (type) => deps.telemetry.metric({ Errors: { value: 1, unit: 'Count' } }, { ErrorClass: type }),
    });
  }

  get server(): Server {
    return this.front.server;
  }

  /** Requests received and not yet done with, audit lines included. */
  get activeRequests(): number {
    return this.front.inFlight;
  }

  /** Stops taking connections; /readyz answers 503 and every answer closes its connection from now on. */
  startDraining(): void {
    this.front.startDraining();
  }

  private async handle(req: IncomingMessage, res: ServerResponse, reader: BodyReader): Promise<void> {
    const started = this.deps.now();
    const requestId = this.deps.newId();
    const path = (req.url ?? '/').split('?')[0];
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
    const held: { ticket?: Ticket; release?: () => void; used: number } = { used: 0 };
    try {
      await this.serve(req, res, reader, path, audit, started, held);
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
      held.release?.();
      // The tokens first, then the audit line: a shutdown that waits for this handler loses neither.
      if (held.ticket !== undefined) await this.deps.limiter.settle(held.ticket, held.used);
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
    const draining = this.front.isDraining;
    const ready = !draining && this.deps.ready();
    sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : draining ? 'draining' : 'loading' }, requestId);
  }

  /**
   * A defect in the gateway itself (anything but a GatewayError). The process keeps serving; the
   * client gets a 500 that says it is the gateway's fault, not theirs. Logged by error name and stack
   * frames only: an error's message may quote the input.
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

  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    reader: BodyReader,
    path: string,
    audit: Audit,
    started: number,
    held: { ticket?: Ticket; release?: () => void; used: number },
  ): Promise<void> {
    const spec = ROUTES[path];
    const isModels = path === '/v1/models';
    if (spec === undefined && !isModels) {
      throw new GatewayError(
        404,
        'not_found',
        `no route ${JSON.stringify(short(path))}; expected /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/messages, /v1/messages/count_tokens or /v1/models`,
      );
    }
    const method = isModels ? 'GET' : 'POST';
    if (req.method !== method) {
      throw new GatewayError(405, 'method_not_allowed', `${path} accepts ${method} only`, {}, { allow: method });
    }
    const client = this.authenticate(req);
    const record = client.record;
    audit.clientId = record.id;
    if (!sourceAllowed(client, audit.sourceIp)) {
      throw new GatewayError(403, 'source_not_allowed', `client '${record.id}' may not call from this network address`);
    }
    if (isModels) {
      const data = this.deps.pool.models
        .filter((model) => modelAllowed(client, model))
        .map((id) => ({ id, object: 'model', created: 0, owned_by: this.deps.pool.providerFor(id) }));
      return sendJson(res, 200, { object: 'list', data }, audit.requestId);
    }
    held.release = this.hold(client);
    requireJson(req.headers['content-type']);
    const raw = withoutBom(await readBody(req, this.deps.maxBodyBytes, this.deps.bodyTimeoutMs ?? 30_000, reader));
    const body = parseRequest(spec!, raw);
    const model = body.model as string;
    audit.model = short(model);
    audit.stream = body.stream === true;
    // Allowed first: a client never learns which models exist beyond its own list.
    if (!modelAllowed(client, model)) {
      throw new GatewayError(
        403,
        'model_not_allowed',
        `client '${record.id}' may not use model ${JSON.stringify(short(model))}`,
      );
    }
    const provider = this.deps.pool.providerFor(model);
    if (provider === undefined) {
      throw new GatewayError(
        404,
        'model_not_found',
        `model ${JSON.stringify(short(model))} is not served by this gateway; GET /v1/models lists the models you may use`,
      );
    }
    if ((provider === 'anthropic') !== spec!.anthropic) {
      throw new GatewayError(
        400,
        'wrong_api',
        spec!.anthropic
          ? `model ${JSON.stringify(short(model))} is served through the OpenAI-compatible API; use /v1/chat/completions`
          : `model ${JSON.stringify(short(model))} is an Anthropic model; use /v1/messages`,
      );
    }
    audit.provider = provider;
    checkBody(spec!.api, body, record);
    const anthropic = spec!.anthropic ? anthropicHeaders(req.headers, record) : {};

    const reserve = tokenReservation(spec!, body, raw.length);
    const admission = await this.deps.limiter.admit(
      record.id,
      { requestsPerMinute: record.requestsPerMinute, tokensPerMinute: record.tokensPerMinute },
      reserve,
    );
    if (!admission.allowed) {
      throw new GatewayError(
        429,
        'rate_limited',
        `client '${record.id}' reached its ${admission.reason} per minute; retry after ${admission.retryAfterSeconds} s`,
        { reason: admission.reason },
        { 'retry-after': String(admission.retryAfterSeconds) },
      );
    }
    held.ticket = admission.ticket;
    audit.reservedTokens = admission.ticket.reserved;

    const screened = await this.deps.screener.screen(
      this.deps.guardrails(),
      spec!.route,
      body,
      policyOf(client),
      raw.length,
    );
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
    if (provider === 'openai' && body.stream === true && spec!.api !== 'embeddings' && !askedForUsage) {
      const options = isObject(forwarded.stream_options) ? forwarded.stream_options : {};
      forwarded = { ...forwarded, stream_options: { ...options, include_usage: true } };
      stripUsageChunk = true;
    }
    // Always the parsed body, serialized again: exactly what was screened reaches the provider.
    const payload = JSON.stringify(forwarded);
    const result: ForwardResult = await forward(this.deps, res, {
      provider,
      spec: spec!,
      model,
      payload,
      accept: typeof req.headers.accept === 'string' ? req.headers.accept : undefined,
      anthropic,
      stripUsageChunk,
      audit,
      started,
    });
    held.used = result.usedTokens;
  }

  /** Counts a request against its client's `maxInFlight` on this replica; returns the release. */
  private hold(client: Client): () => void {
    const id = client.record.id;
    const count = this.inFlightByClient.get(id) ?? 0;
    if (count >= client.record.maxInFlight) {
      throw new GatewayError(
        429,
        'too_many_in_flight',
        `client '${id}' already has ${count} requests in flight on this gateway replica (its maxInFlight); retry when one finishes`,
        { reason: 'in_flight' },
        { 'retry-after': '1' },
      );
    }
    this.inFlightByClient.set(id, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inFlightByClient.get(id) ?? 1) - 1;
      if (left === 0) this.inFlightByClient.delete(id);
      else this.inFlightByClient.set(id, left);
    };
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
}
