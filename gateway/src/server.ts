import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { admit, type AdmissionDeps, authenticate, checkSource, type Held, InFlight, short } from './admission';
import { type Audit, startAudit, writeAudit } from './audit';
import { GatewayError, sendError, sendJson } from './errors';
import { forward, type ForwardDeps } from './forward';
import { Front } from './front';
import type { Telemetry } from './log';
import { listModels } from './models';
import { type BodyReader, ROUTES } from './request';

export interface GatewayDeps extends AdmissionDeps, ForwardDeps {
  readonly telemetry: Telemetry;
  readonly newId: () => string;
  /** The keep-alive connection pools to the providers (http-client.ts). */
  readonly dispatcher: Dispatcher;
  /** A client must finish sending its headers within this. @default 10000 */
  readonly headersTimeoutMs?: number;
  /** A kept-alive connection with no request is closed after this. @default 65000 */
  readonly idleTimeoutMs?: number;
}

/**
 * The gateway's request handling: authenticate, authorize, validate, apply the forwarding policy,
 * admit (reserving tokens), screen, then forward with failover across the provider's keys, streaming
 * the answer through as it arrives, and settle the tokens used. Every admitted request ends with
 * exactly one audit line, written after its tokens are settled, whatever the client does.
 */
export class Gateway {
  readonly front: Front;
  /** Requests in flight per client on this replica, for `maxInFlight`. */
  private readonly inFlight = new InFlight();

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
    const audit = startAudit(requestId, req, ROUTES[path] !== undefined || path === MODELS ? path : 'unknown');
    const held: Held = { used: 0 };
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
      writeAudit(this.deps.telemetry, audit, this.deps.now() - started);
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

  /** Routing, then the stages: authentication, admission, forwarding and relay. */
  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    reader: BodyReader,
    path: string,
    audit: Audit,
    started: number,
    held: Held,
  ): Promise<void> {
    const spec = ROUTES[path];
    if (spec === undefined && path !== MODELS) {
      throw new GatewayError(
        404,
        'not_found',
        `no route ${JSON.stringify(short(path))}; expected ${Object.keys(ROUTES).join(', ')} or ${MODELS}`,
      );
    }
    const method = spec === undefined ? 'GET' : 'POST';
    if (req.method !== method) {
      throw new GatewayError(405, 'method_not_allowed', `${path} accepts ${method} only`, {}, { allow: method });
    }
    const client = authenticate(this.deps, req);
    audit.clientId = client.record.id;
    checkSource(client, audit);
    if (spec === undefined) return listModels(this.deps.pool, client, res, audit.requestId);
    const admitted = await admit(this.deps, req, reader, spec, client, this.inFlight, audit, held);
    held.used = await forward(this.deps, res, admitted, audit, started);
  }
}

const MODELS = '/v1/models';
