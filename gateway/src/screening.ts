/**
 * Where requests are screened, so that no single request can stall the others. The event loop is
 * single-threaded: a body screened on it holds every stream and the health check until it is done.
 *
 * - A small body, with the built-in detectors only, is screened inline: every built-in detector runs
 *   in linear time (tested at the full body limit), so `inlineBytes` bounds the pause it can cause.
 * - A larger body, or any body when custom detectors are configured (an operator's regular
 *   expression can backtrack exponentially), is screened in a worker thread under a CPU budget: a
 *   worker that does not answer within `budgetMs` is terminated and replaced, and the request is
 *   refused with 422, naming the budget. A worker that runs out of memory refuses it the same way.
 * - At most `maxQueue` requests wait for a worker; more are answered 503 with Retry-After.
 */
import { Worker } from 'node:worker_threads';
import { GatewayError } from './errors';
import { applyEdits, type Guardrails, type Policy, type Route, type ScreenResult, type Verdict } from './guardrails';
import type { CustomDetector, GuardrailAction } from '../../contracts/gateway-documents';

export interface ScreenerOptions {
  /**
   * The script a worker runs (dist/screen-worker.js, beside the gateway's bundle). Undefined: every
   * body is screened inline (tests of other parts only).
   */
  readonly workerScript?: string;
  /** Bodies up to this many bytes, without custom detectors, are screened inline. */
  readonly inlineBytes: number;
  /** A worker's time for one request. */
  readonly budgetMs: number;
  readonly workers: number;
  readonly maxQueue: number;
  /** Heap limit of a worker, MB. @default 512 */
  readonly workerHeapMb?: number;
  readonly log: (level: 'warn' | 'error', event: string, fields: Record<string, unknown>) => void;
}

/** What the main thread sends a worker. */
export interface ScreenJob {
  readonly id: number;
  readonly version: number;
  /** Sent once per detector set and worker. */
  readonly custom?: readonly CustomDetector[];
  readonly route: Route;
  readonly body: Record<string, unknown>;
  readonly policy: Record<string, GuardrailAction>;
}

export type ScreenAnswer =
  { readonly id: number; readonly verdict: Verdict } | { readonly id: number; readonly error: string };

interface Pending {
  readonly job: ScreenJob;
  readonly guardrails: Guardrails;
  readonly resolve: (verdict: Verdict) => void;
  readonly reject: (error: GatewayError) => void;
}

interface Slot {
  worker?: Worker;
  /** The worker has loaded and can take a request. */
  ready: boolean;
  /** The detector set this worker has compiled. */
  version: number;
  running?: Pending;
  timer?: NodeJS.Timeout;
}

export class Screener {
  private readonly slots: Slot[];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: ScreenerOptions) {
    this.slots = Array.from({ length: options.workers }, () => ({ version: 0, ready: false }));
  }

  /** Screens a body; resolves with the body to forward, or rejects with a GatewayError. */
  async screen(
    guardrails: Guardrails,
    route: Route,
    body: Record<string, unknown>,
    policy: Policy,
    bodyBytes: number,
  ): Promise<ScreenResult> {
    if (this.options.workerScript === undefined || (bodyBytes <= this.options.inlineBytes && !guardrails.hasCustom)) {
      return guardrails.screen(route, body, policy);
    }
    const table = Object.fromEntries(guardrails.detectorNames.map((name) => [name, policy(name)]));
    const { edits, ...verdict } = await this.inWorker(guardrails, route, body, table);
    return { ...verdict, body: edits.length === 0 ? body : applyEdits(body, edits) };
  }

  /** Stops every worker; requests still waiting are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(busy());
    await Promise.all(this.slots.map((slot) => this.retire(slot)));
  }

  private inWorker(
    guardrails: Guardrails,
    route: Route,
    body: Record<string, unknown>,
    policy: Record<string, GuardrailAction>,
  ): Promise<Verdict> {
    if (this.closed || this.queue.length >= this.options.maxQueue) return Promise.reject(busy());
    return new Promise<Verdict>((resolve, reject) => {
      const job = { id: this.nextId++, version: guardrails.version, route, body, policy };
      this.queue.push({ job, guardrails, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.running !== undefined) continue;
      const pending = this.queue.shift();
      if (pending === undefined) return;
      this.run(slot, pending);
    }
  }

  private run(slot: Slot, pending: Pending): void {
    const worker = slot.worker ?? this.start(slot);
    slot.running = pending;
    // A worker still loading takes the request when it says it is ready (its 'message' handler).
    if (slot.ready) this.post(slot, worker, pending);
  }

  private post(slot: Slot, worker: Worker, pending: Pending): void {
    const job: ScreenJob =
      slot.version === pending.guardrails.version
        ? pending.job
        : { ...pending.job, custom: pending.guardrails.customDefinitions };
    slot.version = pending.guardrails.version;
    slot.timer = setTimeout(() => {
      this.options.log('warn', 'screening_budget_exceeded', { budgetMs: this.options.budgetMs });
      // The worker is stuck in this request: replace it before the next request is dispatched.
      void this.retire(slot);
      this.finish(
        slot,
        new GatewayError(
          422,
          'screening_budget_exceeded',
          `the request could not be screened within the gateway's budget of ${this.options.budgetMs} ms; send less text per request`,
          { budget_ms: this.options.budgetMs },
        ),
      );
    }, this.options.budgetMs);
    try {
      worker.postMessage(job);
    } catch {
      // A body a worker cannot take (structured clone failed): it cannot be screened.
      this.finish(slot, new GatewayError(422, 'unscreenable_request', 'the request body could not be screened'));
    }
  }

  private start(slot: Slot): Worker {
    const worker = new Worker(this.options.workerScript!, {
      resourceLimits: { maxOldGenerationSizeMb: this.options.workerHeapMb ?? 512 },
      stdout: false,
      stderr: false,
    });
    slot.worker = worker;
    slot.version = 0;
    slot.ready = false;
    // A retired worker's late events concern no request any more.
    const current = () => slot.worker === worker;
    worker.on('message', (answer: ScreenAnswer) => {
      if (!current()) return;
      if ('ready' in answer) {
        slot.ready = true;
        if (slot.running !== undefined) this.post(slot, worker, slot.running);
        return;
      }
      if (slot.running?.job.id !== answer.id) return;
      if ('verdict' in answer) this.finish(slot, answer.verdict);
      else {
        this.options.log('error', 'screening_failed', { error: answer.error });
        this.finish(
          slot,
          new GatewayError(500, 'internal_error', 'the gateway failed to screen this request; the failure is logged'),
        );
      }
    });
    worker.on('error', (error: Error & { code?: string }) => {
      if (!current()) return;
      const outOfMemory = error.code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.options.log('warn', outOfMemory ? 'screening_out_of_memory' : 'screening_worker_failed', {
        error: error.name,
      });
      this.finish(
        slot,
        outOfMemory
          ? new GatewayError(
              422,
              'unscreenable_request',
              'the request needs more memory to screen than the gateway gives one request; send less text per request',
            )
          : new GatewayError(500, 'internal_error', 'the gateway failed to screen this request; the failure is logged'),
      );
    });
    worker.on('exit', () => {
      if (!current()) return;
      slot.worker = undefined;
      slot.ready = false;
      if (slot.running !== undefined) {
        this.finish(slot, new GatewayError(500, 'internal_error', 'the screening worker stopped'));
      }
    });
    return worker;
  }

  private finish(slot: Slot, result: Verdict | GatewayError): void {
    const pending = slot.running;
    if (pending === undefined) return;
    clearTimeout(slot.timer);
    slot.running = undefined;
    if (result instanceof GatewayError) pending.reject(result);
    else pending.resolve(result);
    if (!this.closed) this.dispatch();
  }

  private async retire(slot: Slot): Promise<void> {
    const worker = slot.worker;
    slot.worker = undefined;
    slot.version = 0;
    slot.ready = false;
    if (worker !== undefined) await worker.terminate();
  }
}

const busy = () =>
  new GatewayError(
    503,
    'screening_busy',
    'the gateway is screening too many large requests; retry shortly',
    {},
    { 'retry-after': '1' },
  );
