import type { IncomingMessage } from 'node:http';
import type { GuardrailDecision } from './guardrails';
import type { Telemetry } from './log';

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

/** A request's audit record as it starts: who sent it from where, to which route. */
export function startAudit(requestId: string, req: IncomingMessage, route: string): Audit {
  return {
    type: 'request',
    requestId,
    sourceIp: req.socket.remoteAddress ?? 'unknown',
    route,
    guardrails: [],
    attempts: 0,
    retries: 0,
  };
}

/** Writes the request's one audit line and its metrics. */
export function writeAudit(telemetry: Telemetry, audit: Audit, latencyMs: number): void {
  audit.latencyMs = latencyMs;
  audit.retries = Math.max(0, audit.attempts - 1);
  telemetry.audit(audit as unknown as Record<string, unknown>);
  telemetry.metric({ Requests: { value: 1, unit: 'Count' } });
  if (audit.errorClass !== undefined) {
    telemetry.metric({ Errors: { value: 1, unit: 'Count' } }, { ErrorClass: audit.errorClass });
  }
}
