import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { upstreamRequest } from '../../contracts/provider-api';
import type { Admitted } from './admission';
import type { Audit } from './audit';
import type { Outcome } from './failure';
import type { Telemetry } from './log';
import type { KeyPool, Lease } from './pool';

/** What an attempt needs of the gateway. */
export interface AttemptDeps {
  readonly pool: KeyPool;
  readonly telemetry: Telemetry;
  readonly dispatcher: Dispatcher;
  readonly now: () => number;
  /** Bound on the wait for an upstream's first byte, and between two of its chunks. */
  readonly upstreamTimeoutMs: number;
}

/**
 * Emits 'abort' when the client goes away, which undici takes as a request's signal. An
 * EventEmitter, not an AbortController: it is made for every request and costs less.
 */
export class ClientGone extends EventEmitter {
  aborted = false;
  abort(): void {
    this.aborted = true;
    this.emit('abort');
  }
}

/** A signal that aborts when the client closes its connection before its answer is finished. */
export function watchClient(res: ServerResponse): ClientGone {
  const signal = new ClientGone();
  res.once('close', () => {
    if (!res.writableFinished) signal.abort();
  });
  return signal;
}

/** How an attempt ended, beside its outcome. */
export interface AttemptEnd {
  readonly status?: number;
  /** A rate-limited key's cooldown end (ms since epoch). */
  readonly cooldown?: number;
  /** Why a key is disabled: a fixed phrase. */
  readonly reason?: string;
  /** The error class the attempt's audit line records, when it is not the outcome itself. */
  readonly errorClass?: string;
}

/**
 * One try of a request with one key: the lease, its upstream call, and its end, which reports the
 * outcome to the pool, releases the key and writes the attempt's audit line. `end` runs once.
 */
export class Attempt {
  readonly started: number;
  private ended = false;

  constructor(
    private readonly deps: AttemptDeps,
    readonly admitted: Admitted,
    readonly lease: Lease,
    readonly number: number,
    readonly audit: Audit,
  ) {
    this.started = deps.now();
    audit.attempts = number;
    audit.keyId = lease.keyId;
  }

  /** Sends the request to the provider with this attempt's key; resolves at the answer's headers. */
  send(signal: ClientGone): Promise<Dispatcher.ResponseData> {
    const { admitted, lease } = this;
    const target = upstreamRequest(
      admitted.provider,
      lease.config,
      lease.key,
      admitted.spec.operation,
      admitted.model,
      admitted.accept,
      admitted.anthropic,
    );
    return this.deps.dispatcher.request({
      origin: target.origin,
      path: target.path,
      method: 'POST',
      headers: target.headers,
      body: admitted.payload,
      headersTimeout: this.deps.upstreamTimeoutMs,
      // The same bound between two chunks: a provider that stalls mid-stream ends the stream with
      // an SSE error instead of holding the client forever.
      bodyTimeout: this.deps.upstreamTimeoutMs,
      signal,
    });
  }

  /** Reports the outcome, releases the key and writes the attempt's audit line. */
  end(outcome: Outcome, details: AttemptEnd = {}): void {
    if (this.ended) return;
    this.ended = true;
    const { deps, lease } = this;
    deps.pool.report(lease, outcome, details.cooldown, details.reason);
    lease.release();
    deps.telemetry.audit({
      type: 'attempt',
      requestId: this.audit.requestId,
      attempt: this.number,
      clientId: this.audit.clientId,
      route: this.audit.route,
      model: this.audit.model,
      provider: lease.provider,
      keyId: lease.keyId,
      status: details.status,
      outcome,
      errorClass: details.errorClass ?? (outcome === 'success' ? undefined : outcome),
      latencyMs: deps.now() - this.started,
      ...(details.cooldown !== undefined ? { cooldownUntil: new Date(details.cooldown).toISOString() } : {}),
    });
    if (outcome !== 'success' && outcome !== 'client') {
      deps.telemetry.metric(
        { AttemptFailures: { value: 1, unit: 'Count' } },
        { Provider: lease.provider, ErrorClass: outcome },
      );
    }
  }

  /** The client closed its connection: the attempt ends quietly; nothing is held against the key. */
  clientGone(status?: number): void {
    this.audit.errorClass = 'client_disconnected';
    this.audit.status ??= 499;
    this.end('client', { status, errorClass: 'client_disconnected' });
  }
}
