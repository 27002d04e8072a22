import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Admitted } from './admission';
import { Attempt, type AttemptDeps, watchClient } from './attempt';
import type { Audit } from './audit';
import {
  classifyAnswer,
  classifyUpstream,
  cooldownUntil,
  DEFAULT_COOLDOWN_MS,
  exhausted,
  type Outcome,
  retryable,
} from './failure';
import { ProviderAddressError } from './provider-address';
import { relay, relayRefusal } from './relay';

/** What forwarding needs of the gateway. */
export interface ForwardDeps extends AttemptDeps {
  readonly random: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Called after a provider refused a key: re-read the key pool now, not at the next poll. */
  readonly onKeyRejected: () => void;
  readonly maxAttempts: number;
  /** Base of the jittered exponential backoff between attempts. @default 50 */
  readonly backoffMs?: number;
}

/** The most of a provider's error answer that is read to classify and relay it. */
const MAX_ERROR_BODY = 256 * 1024;

/**
 * Forwards an admitted request with failover across its provider's keys, then relays the answer.
 * Failover happens only before the first byte reaches the client. Each attempt uses a key this
 * request has not tried; when none is left and the last failure was the provider's (5xx, connection,
 * timeout), a key already tried is used again while attempts remain. Returns the tokens to settle
 * against the client's limit; throws a GatewayError when no attempt produced an answer.
 */
export async function forward(
  deps: ForwardDeps,
  res: ServerResponse,
  admitted: Admitted,
  audit: Audit,
  started: number,
): Promise<number> {
  const { provider } = admitted;
  const signal = watchClient(res);
  const tried = new Set<string>();
  let lastOutcome: Outcome | undefined;
  for (let number = 1; number <= deps.maxAttempts; number++) {
    const transient = lastOutcome === 'server' || lastOutcome === 'network' || lastOutcome === 'timeout';
    const lease = deps.pool.acquire(provider, tried) ?? (transient ? deps.pool.acquire(provider) : undefined);
    if (lease === undefined) break;
    tried.add(lease.keyId);
    const attempt = new Attempt(deps, admitted, lease, number, audit);
    let response: Dispatcher.ResponseData;
    try {
      response = await attempt.send(signal);
    } catch (error) {
      if (signal.aborted) {
        attempt.clientGone();
        return 0;
      }
      if (error instanceof ProviderAddressError)
        deps.telemetry.log('warn', 'provider_address_refused', { provider, reason: error.message });
      lastOutcome = classifyUpstream(error);
      attempt.end(lastOutcome);
      if (number < deps.maxAttempts) await backoff(deps, number);
      continue;
    }
    if (response.statusCode >= 200 && response.statusCode < 300) {
      return relay(deps, res, response, attempt, started, signal);
    }
    // An error answer: read it (bounded) to tell "this key is bad" from "this request is refused".
    const errorBody = await readLimited(response.body, MAX_ERROR_BODY);
    if (signal.aborted) {
      attempt.clientGone(response.statusCode);
      return 0;
    }
    const classified =
      errorBody === undefined
        ? { outcome: 'server' as const, reason: undefined }
        : classifyAnswer(provider, response.statusCode, errorBody.toString('utf8'));
    if (!retryable(classified.outcome)) {
      relayRefusal(deps, res, response, errorBody!, attempt, started);
      return 0;
    }
    lastOutcome = classified.outcome;
    attempt.end(classified.outcome, {
      status: response.statusCode,
      cooldown:
        classified.outcome === 'rate_limited'
          ? cooldownUntil(response.headers, deps.now(), DEFAULT_COOLDOWN_MS)
          : undefined,
      reason: classified.reason,
    });
    if (classified.outcome === 'auth') deps.onKeyRejected();
    if (number < deps.maxAttempts) await backoff(deps, number);
  }
  throw exhausted(provider, lastOutcome, tried.size, deps.pool.nextAvailable(provider), deps.now());
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

/** Exponential, with jitter from the injected randomness: 0.5x to 1.5x of base * 2^(attempt-1). */
function backoff(deps: ForwardDeps, attempt: number): Promise<void> {
  const base = deps.backoffMs ?? 50;
  return deps.sleep(base * 2 ** (attempt - 1) * (0.5 + deps.random()));
}
