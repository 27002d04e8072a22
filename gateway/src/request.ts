import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { GatewayError } from './errors';
import type { Route } from './guardrails';
import type { Api } from '../../contracts/gateway-documents';
import type { Operation } from '../../contracts/provider-api';

export interface RouteSpec {
  /** The API, as allow-lists and client records name it. */
  readonly api: Api;
  /** How the guardrails read its body. */
  readonly route: Route;
  readonly operation: Operation;
  /** Whether the route is Anthropic's API (forwarded to the anthropic provider only). */
  readonly anthropic: boolean;
  /** Whether the answer uses tokens that count against the client's limit. */
  readonly metered: boolean;
}

export const ROUTES: Record<string, RouteSpec> = {
  '/v1/chat/completions': {
    api: 'chat',
    route: 'chat',
    operation: 'chat/completions',
    anthropic: false,
    metered: true,
  },
  '/v1/completions': {
    api: 'completions',
    route: 'completions',
    operation: 'completions',
    anthropic: false,
    metered: true,
  },
  '/v1/embeddings': {
    api: 'embeddings',
    route: 'embeddings',
    operation: 'embeddings',
    anthropic: false,
    metered: true,
  },
  '/v1/messages': { api: 'messages', route: 'messages', operation: 'messages', anthropic: true, metered: true },
  // Dify's Anthropic provider counts a prompt's tokens here before it sends it; the provider does not bill it.
  '/v1/messages/count_tokens': {
    api: 'count_tokens',
    route: 'messages',
    operation: 'messages/count_tokens',
    anthropic: true,
    metered: false,
  },
};

const text = z.union([z.string(), z.array(z.unknown())]);
const message = z.looseObject({ role: z.string().min(1), content: z.union([text, z.null()]).optional() });
const positive = z.number().int().positive();

/** What each API must have before it is forwarded; which other fields may pass is policy.ts's business. */
const SCHEMAS: Record<Api, z.ZodType> = {
  chat: z.looseObject({
    model: z.string().min(1),
    messages: z.array(message).min(1),
    stream: z.boolean().optional(),
    max_tokens: positive.optional(),
    max_completion_tokens: positive.optional(),
    n: positive.optional(),
  }),
  completions: z.looseObject({
    model: z.string().min(1),
    prompt: text,
    stream: z.boolean().optional(),
    max_tokens: positive.optional(),
    n: positive.optional(),
    best_of: positive.optional(),
  }),
  embeddings: z.looseObject({ model: z.string().min(1), input: text }),
  messages: z.looseObject({
    model: z.string().min(1),
    messages: z.array(message).min(1),
    max_tokens: positive,
    stream: z.boolean().optional(),
  }),
  count_tokens: z.looseObject({ model: z.string().min(1), messages: z.array(message).min(1) }),
};

/** The body-reading side of a request, which the HTTP front can fail (a parse error, a timeout) while it is read. */
export interface BodyReader {
  /** Set by readBody while it reads; the front calls it when the connection fails under the body. */
  fail?: (error: GatewayError) => void;
}

/**
 * Reads the body up to `limit` bytes, within `timeoutMs` of the call. A longer body is refused with 413
 * as soon as it passes the limit, a slow one with 408 when the time is up (a body trickled a byte at
 * a time cannot hold a connection), and one cut off by the connection with the error the front gives.
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  timeoutMs: number,
  reader: BodyReader = {},
): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const cleanup = () => {
      settled = true;
      clearTimeout(timer);
      reader.fail = undefined;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const fail = (error: GatewayError) => {
      if (settled) return;
      cleanup();
      // What is left of the body is not read: the answer closes the connection.
      req.resume();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) fail(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = () => {
      if (settled) return;
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    };
    const onError = () =>
      fail(new GatewayError(400, 'invalid_request', 'the request body could not be read', {}, CLOSE));
    const onClose = () => {
      if (!req.complete)
        fail(new GatewayError(400, 'invalid_request', 'the connection closed before the body was complete', {}, CLOSE));
    };
    const timer = setTimeout(
      () =>
        fail(
          new GatewayError(408, 'request_timeout', `the request body did not arrive within ${timeoutMs} ms`, {}, CLOSE),
        ),
      timeoutMs,
    );
    reader.fail = fail;
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** An answer after which the connection is closed: the rest of the request is not read. */
const CLOSE = { connection: 'close' };

const tooLarge = (limit: number) =>
  new GatewayError(
    413,
    'request_too_large',
    `the request body exceeds the gateway's limit of ${limit} bytes`,
    { limit_bytes: limit },
    CLOSE,
  );

/** Refuses anything but JSON before the body is read. */
export function requireJson(contentType: string | undefined): void {
  if (!/^application\/json\s*(;|$)/i.test(contentType ?? '')) {
    throw new GatewayError(415, 'unsupported_media_type', 'expected Content-Type: application/json');
  }
}

/** A UTF-8 byte order mark, which JSON senders must not add but parsers may ignore (RFC 8259): it is dropped. */
export function withoutBom(body: Buffer): Buffer {
  return body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.subarray(3) : body;
}

/**
 * Parses and validates a JSON request for an API, naming the first problem found. The gateway
 * forwards what this returns, serialized again, never the bytes it was given: a body with a
 * duplicate key (JSON.parse keeps the last) reaches the provider exactly as it was screened.
 */
export function parseRequest(spec: RouteSpec, body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    if (!isUtf8(body)) throw new Error('not UTF-8');
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new GatewayError(400, 'invalid_json', 'the request body is not valid UTF-8 JSON');
  }
  const result = SCHEMAS[spec.api].safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue.path.length > 0 ? issue.path.join('.').slice(0, 100) : 'body';
    throw new GatewayError(400, 'invalid_request', `field '${field}': ${issue.message}`, { field });
  }
  return result.data as Record<string, unknown>;
}

/** Tokens reserved for a completion that does not say how long it may be. */
export const DEFAULT_COMPLETION_RESERVE = 1024;

/**
 * The tokens a request is expected to use, reserved at admission: about four bytes a prompt token,
 * plus the completion's upper bound (`max_tokens` or `max_completion_tokens`, else
 * DEFAULT_COMPLETION_RESERVE) for each of its `n` choices. Embeddings have no completion.
 */
export function tokenReservation(spec: RouteSpec, body: Record<string, unknown>, bodyBytes: number): number {
  if (!spec.metered) return 0;
  const prompt = Math.ceil(bodyBytes / 4);
  if (spec.api === 'embeddings') return prompt;
  const bound = (body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_COMPLETION_RESERVE) as number;
  const choices = Math.max((body.n as number | undefined) ?? 1, (body.best_of as number | undefined) ?? 1);
  return prompt + bound * choices;
}
