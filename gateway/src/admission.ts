import type { IncomingMessage } from 'node:http';
import type { ProviderName } from '../../contracts/gateway-documents';
import type { Audit } from './audit';
import { type Client, type ClientRegistry, modelAllowed, policyOf, sourceAllowed } from './clients';
import { GatewayError } from './errors';
import type { Guardrails } from './guardrails';
import { anthropicHeaders, checkBody } from './policy';
import type { KeyPool } from './pool';
import type { RateLimiter, Ticket } from './ratelimit';
import {
  type BodyReader,
  parseRequest,
  readBody,
  requireJson,
  type RouteSpec,
  tokenReservation,
  withoutBom,
} from './request';
import type { Screener } from './screening';

/** What admission needs of the gateway. */
export interface AdmissionDeps {
  readonly pool: KeyPool;
  /** The current client records; undefined until the first document version loaded. */
  readonly clients: () => ClientRegistry | undefined;
  readonly guardrails: () => Guardrails;
  readonly screener: Screener;
  readonly limiter: RateLimiter;
  readonly ready: () => boolean;
  readonly maxBodyBytes: number;
  /** A client must send its body within this, once its headers are in. @default 30000 */
  readonly bodyTimeoutMs?: number;
}

/** An admitted request: who sent it, and exactly what goes to which provider. */
export interface Admitted {
  readonly client: Client;
  readonly spec: RouteSpec;
  readonly model: string;
  readonly provider: ProviderName;
  /** The screened body, serialized: exactly what was screened reaches the provider. */
  readonly payload: string;
  readonly accept: string | undefined;
  /** Anthropic's version and beta headers, checked against the policy. */
  readonly anthropic: Record<string, string>;
  /** The gateway added `stream_options.include_usage`; the client did not ask for the usage chunk. */
  readonly stripUsageChunk: boolean;
}

/** What a request holds while it runs, released or settled when it ends, whatever happens. */
export interface Held {
  ticket?: Ticket;
  release?: () => void;
  /** Tokens to settle the ticket with. */
  used: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** What a message keeps of a client-chosen name (a model, a path). */
export const short = (text: string) => text.slice(0, 100);

/** The enabled client a request's key belongs to, or a 401/503 that says why not. */
export function authenticate(deps: Pick<AdmissionDeps, 'clients' | 'ready'>, req: IncomingMessage): Client {
  const registry = deps.ready() ? deps.clients() : undefined;
  if (registry === undefined) {
    // Secrets Manager has not answered yet: a dependency's condition, not a fault of the client's key.
    throw new GatewayError(
      503,
      'secrets_unavailable',
      'the gateway has not loaded its key pool, client records and pepper yet; retry shortly',
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

/** Refuses a client calling from outside its networks. */
export function checkSource(client: Client, audit: Audit): void {
  if (!sourceAllowed(client, audit.sourceIp)) {
    throw new GatewayError(
      403,
      'source_not_allowed',
      `client '${client.record.id}' may not call from this network address`,
    );
  }
}

/** Each client's requests in flight on this replica, held to its record's `maxInFlight`. */
export class InFlight {
  private readonly counts = new Map<string, number>();

  /** Counts a request of the client; returns its release, to call exactly once. */
  hold(client: Client): () => void {
    const id = client.record.id;
    const count = this.counts.get(id) ?? 0;
    if (count >= client.record.maxInFlight) {
      throw new GatewayError(
        429,
        'too_many_in_flight',
        `client '${id}' already has ${count} requests in flight on this gateway replica (its maxInFlight); retry when one finishes`,
        { reason: 'in_flight' },
        { 'retry-after': '1' },
      );
    }
    this.counts.set(id, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(id) ?? 1) - 1;
      if (left === 0) this.counts.delete(id);
      else this.counts.set(id, left);
    };
  }
}

/**
 * Admission: everything between an authenticated client and a request the gateway will forward. In
 * order: its in-flight cap, the body (bounded in size and time), validation, the model's allow-list
 * and provider, the forwarding policy, the rate limit (requests, and the tokens reserved for it), and
 * the guardrails. Throws a GatewayError for the first check that fails; fills in the audit and what
 * the request holds as it goes.
 */
export async function admit(
  deps: AdmissionDeps,
  req: IncomingMessage,
  reader: BodyReader,
  spec: RouteSpec,
  client: Client,
  inFlight: InFlight,
  audit: Audit,
  held: Held,
): Promise<Admitted> {
  const record = client.record;
  held.release = inFlight.hold(client);
  requireJson(req.headers['content-type']);
  const raw = withoutBom(await readBody(req, deps.maxBodyBytes, deps.bodyTimeoutMs ?? 30_000, reader));
  const body = parseRequest(spec, raw);
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
  const provider = deps.pool.providerFor(model);
  if (provider === undefined) {
    throw new GatewayError(
      404,
      'model_not_found',
      `model ${JSON.stringify(short(model))} is not served by this gateway; GET /v1/models lists the models you may use`,
    );
  }
  if ((provider === 'anthropic') !== spec.anthropic) {
    throw new GatewayError(
      400,
      'wrong_api',
      spec.anthropic
        ? `model ${JSON.stringify(short(model))} is served through the OpenAI-compatible API; use /v1/chat/completions`
        : `model ${JSON.stringify(short(model))} is an Anthropic model; use /v1/messages`,
    );
  }
  audit.provider = provider;
  checkBody(spec.api, body, record);
  const anthropic = spec.anthropic ? anthropicHeaders(req.headers, record) : {};

  const admission = await deps.limiter.admit(
    record.id,
    { requestsPerMinute: record.requestsPerMinute, tokensPerMinute: record.tokensPerMinute },
    tokenReservation(spec, body, raw.length),
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

  const screened = await deps.screener.screen(deps.guardrails(), spec.route, body, policyOf(client), raw.length);
  audit.guardrails = screened.decisions;
  if (screened.blockedBy !== null) {
    throw new GatewayError(400, 'guardrail_blocked', `the request was blocked by the ${screened.blockedBy} detector`, {
      detector: screened.blockedBy,
    });
  }
  // OpenAI reports a stream's usage only when asked; ask, so the tokens count against the limit.
  let forwarded = screened.body;
  let stripUsageChunk = false;
  const askedForUsage = isObject(body.stream_options) && body.stream_options.include_usage === true;
  if (provider === 'openai' && body.stream === true && spec.api !== 'embeddings' && !askedForUsage) {
    const options = isObject(forwarded.stream_options) ? forwarded.stream_options : {};
    forwarded = { ...forwarded, stream_options: { ...options, include_usage: true } };
    stripUsageChunk = true;
  }
  return {
    client,
    spec,
    model,
    provider,
    // Always the parsed body, serialized again, never the client's bytes.
    payload: JSON.stringify(forwarded),
    accept: typeof req.headers.accept === 'string' ? req.headers.accept : undefined,
    anthropic,
    stripUsageChunk,
  };
}
