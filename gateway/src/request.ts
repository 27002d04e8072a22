import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { GatewayError } from './errors';
import type { Route } from './guardrails';
import type { Operation } from './upstream';

export interface RouteSpec {
  readonly route: Route;
  readonly operation: Operation;
  /** Whether the route is Anthropic's API (forwarded to the anthropic provider only). */
  readonly anthropic: boolean;
}

export const ROUTES: Record<string, RouteSpec> = {
  '/v1/chat/completions': { route: 'chat', operation: 'chat/completions', anthropic: false },
  '/v1/completions': { route: 'completions', operation: 'completions', anthropic: false },
  '/v1/embeddings': { route: 'embeddings', operation: 'embeddings', anthropic: false },
  '/v1/messages': { route: 'messages', operation: 'messages', anthropic: true },
};

const text = z.union([z.string(), z.array(z.unknown())]);
const message = z.looseObject({ role: z.string().min(1), content: z.union([text, z.null()]).optional() });

/** What each route must have before it is forwarded; unknown fields pass through untouched. */
const SCHEMAS: Record<Route, z.ZodType> = {
  chat: z.looseObject({ model: z.string().min(1), messages: z.array(message).min(1), stream: z.boolean().optional() }),
  completions: z.looseObject({ model: z.string().min(1), prompt: text, stream: z.boolean().optional() }),
  embeddings: z.looseObject({ model: z.string().min(1), input: text }),
  messages: z.looseObject({
    model: z.string().min(1),
    messages: z.array(message).min(1),
    max_tokens: z.number().int().positive(),
    stream: z.boolean().optional(),
  }),
};

/** Reads the body up to `limit` bytes; a longer one is refused with 413 as soon as it passes the limit. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (error: GatewayError) => {
      req.removeAllListeners('data');
      req.resume();
      reject(error);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) fail(tooLarge(limit));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => reject(new GatewayError(400, 'invalid_request', 'the request body could not be read')));
  });
}

const tooLarge = (limit: number) =>
  // The connection closes after the answer, so the rest of an oversize body is never read.
  new GatewayError(
    413,
    'request_too_large',
    `the request body exceeds the gateway's limit of ${limit} bytes`,
    { limit_bytes: limit },
    { connection: 'close' },
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

/** Parses and validates a JSON request for a route, naming the first problem found. */
export function parseRequest(spec: RouteSpec, body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    if (!isUtf8(body)) throw new Error('not UTF-8');
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new GatewayError(400, 'invalid_json', 'the request body is not valid UTF-8 JSON');
  }
  const result = SCHEMAS[spec.route].safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
    throw new GatewayError(400, 'invalid_request', `field '${field}': ${issue.message}`, { field });
  }
  return result.data as Record<string, unknown>;
}
