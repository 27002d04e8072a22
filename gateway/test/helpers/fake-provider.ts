import type { IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loopbackCertificate } from './tls';

/** How the fake provider answers a request made with a given key. */
export type Behaviour =
  | 'ok'
  | '401'
  | '403'
  | { status: 429; retryAfter?: string; resetHeader?: [string, string] }
  | '500'
  | '400'
  /** 429 insufficient_quota: the key's organization is out of quota (OpenAI). */
  | 'quota'
  /** 403 AuthenticationTypeDisabled: key authentication is off on the resource (Azure OpenAI). */
  | 'key-auth-disabled'
  /** 400 "Your credit balance is too low" (Anthropic). */
  | 'no-credit'
  /** 403 permission_error: this key may not use the resource asked for (Anthropic), a request-specific refusal. */
  | 'permission'
  | 'timeout'
  | 'reset'
  | 'abort-mid-stream'
  | 'stall-mid-stream'
  /** A stream of `bigStreamBytes` in 64 KiB events, written only as fast as the reader takes it. */
  | 'big-stream';

export interface Received {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly key: string;
}

export interface FakeProvider {
  readonly url: string;
  /** Progress of the last 'big-stream': bytes written, and whether a write is waiting for 'drain'. */
  readonly bigStream: { written: number; waitingForDrain: boolean; done: boolean };
  readonly port: number;
  readonly received: Received[];
  /** Sets the answer for a key; unknown keys get 401. */
  behave(key: string, behaviour: Behaviour): void;
  close(): Promise<void>;
}

/**
 * The SSE stream a successful streaming chat answer consists of, byte for byte. Like OpenAI, the
 * usage-only last chunk comes only when the request asked for it (`stream_options.include_usage`).
 */
export function chatStream(model: string, withUsage: boolean): string[] {
  const chunk = (delta: Record<string, unknown>, finish: string | null) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  return [
    chunk({ role: 'assistant', content: '' }, null),
    chunk({ content: 'Hello' }, null),
    chunk({ content: ', wörld' }, null),
    chunk({}, 'stop'),
    ...(withUsage
      ? [
          `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model, choices: [], usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 } })}\n\n`,
        ]
      : []),
    'data: [DONE]\n\n',
  ];
}

export function anthropicStream(model: string): string[] {
  const event = (type: string, data: Record<string, unknown>) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  return [
    event('message_start', {
      message: {
        id: 'msg_fake',
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        usage: { input_tokens: 11, output_tokens: 1 },
      },
    }),
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hi there' } }),
    event('content_block_stop', { index: 0 }),
    event('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 4 } }),
    event('message_stop', {}),
  ];
}

/** One 64 KiB SSE event of the 'big-stream' answer. */
export function bigEvent(): Buffer {
  const prefix = 'data: {"choices":[{"index":0,"delta":{"content":"';
  const suffix = '"}}]}\n\n';
  return Buffer.from(prefix + 'x'.repeat(64 * 1024 - prefix.length - suffix.length) + suffix);
}

function keyOf(headers: IncomingHttpHeaders): string {
  const bearer = /^Bearer (.+)$/.exec(headers.authorization ?? '')?.[1];
  return bearer ?? (headers['x-api-key'] as string | undefined) ?? (headers['api-key'] as string | undefined) ?? '';
}

/**
 * An LLM provider on 127.0.0.1 speaking enough of OpenAI's and Anthropic's APIs for the gateway:
 * chat (JSON and SSE), completions, embeddings, models and messages, with a configurable failure per
 * key. It records every request it receives, so tests can check what the gateway forwarded.
 */
export async function startFakeProvider(
  options: { streamDelayMs?: number; bigStreamBytes?: number } = {},
): Promise<FakeProvider> {
  const behaviours = new Map<string, Behaviour>();
  const received: Received[] = [];
  const bigStream = { written: 0, waitingForDrain: false, done: false };
  const { key: tlsKey, cert } = loopbackCertificate();
  const server: Server = createServer({ key: tlsKey, cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const key = keyOf(req.headers);
      received.push({ url: req.url ?? '', headers: req.headers, body, key });
      const behaviour = behaviours.get(key) ?? '401';
      const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
        const text = JSON.stringify(value);
        res.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          ...headers,
        });
        res.end(text);
      };
      if (behaviour === 'timeout') return; // never answers; the socket closes when the test ends
      if (behaviour === 'reset') return req.socket.destroy();
      // Error bodies as each provider writes them (gateway/src/failure.ts cites the sources).
      if (behaviour === '401') {
        return json(401, {
          error: {
            message: 'Incorrect API key provided',
            type: 'invalid_request_error',
            param: null,
            code: 'invalid_api_key',
          },
        });
      }
      if (behaviour === '403') {
        return json(403, {
          error: {
            code: 'unsupported_country_region_territory',
            message: 'Country, region, or territory not supported',
            param: null,
            type: 'request_forbidden',
          },
        });
      }
      if (behaviour === 'quota') {
        return json(429, {
          error: {
            message: 'You exceeded your current quota',
            type: 'insufficient_quota',
            param: null,
            code: 'insufficient_quota',
          },
        });
      }
      if (behaviour === 'key-auth-disabled') {
        return json(403, {
          error: {
            code: 'AuthenticationTypeDisabled',
            message: 'Key based authentication is disabled for this resource.',
          },
        });
      }
      if (behaviour === 'no-credit') {
        return json(400, {
          type: 'error',
          error: {
            type: 'invalid_request_error',
            message: 'Your credit balance is too low to access the Anthropic API.',
          },
        });
      }
      if (behaviour === 'permission') {
        return json(403, {
          type: 'error',
          error: {
            type: 'permission_error',
            message: 'Your API key does not have permission to use the specified resource.',
          },
        });
      }
      if (behaviour === '500') return json(500, { error: { type: 'server_error', message: 'upstream broke' } });
      if (behaviour === '400') return json(400, { error: { type: 'invalid_request_error', message: 'bad parameter' } });
      if (typeof behaviour === 'object') {
        const headers: Record<string, string> = {};
        if (behaviour.retryAfter !== undefined) headers['retry-after'] = behaviour.retryAfter;
        if (behaviour.resetHeader !== undefined) headers[behaviour.resetHeader[0]] = behaviour.resetHeader[1];
        return json(429, { error: { type: 'rate_limit_exceeded', message: 'slow down' } }, headers);
      }
      const path = (req.url ?? '').split('?')[0];
      let request: Record<string, unknown>;
      try {
        request = JSON.parse(body || '{}') as Record<string, unknown>;
      } catch {
        return json(400, { error: { message: 'bad json' } });
      }
      const model = String(request.model ?? 'unknown');
      if (path.endsWith('/models')) return json(200, { object: 'list', data: [{ id: model, object: 'model' }] });
      if (path.endsWith('/messages/count_tokens')) return json(200, { input_tokens: 11 });
      if (path.endsWith('/embeddings')) {
        return json(200, {
          object: 'list',
          model,
          // The official client asks for base64 (packed float32) by default, as OpenAI serves it.
          data: [
            {
              object: 'embedding',
              index: 0,
              embedding:
                request.encoding_format === 'base64'
                  ? Buffer.from(new Float32Array([0.25, -0.5, 0.125]).buffer).toString('base64')
                  : [0.25, -0.5, 0.125],
            },
          ],
          usage: { prompt_tokens: 3, total_tokens: 3 },
        });
      }
      const anthropic = path.endsWith('/messages');
      if (behaviour === 'big-stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        Object.assign(bigStream, { written: 0, waitingForDrain: false, done: false });
        const event = bigEvent();
        const total = options.bigStreamBytes ?? 32 * 1024 * 1024;
        const pump = (): void => {
          while (bigStream.written < total) {
            bigStream.written += event.length;
            if (!res.write(event)) {
              bigStream.waitingForDrain = true;
              res.once('drain', () => {
                bigStream.waitingForDrain = false;
                pump();
              });
              return;
            }
          }
          bigStream.done = true;
          res.end();
        };
        return pump();
      }
      if (request.stream === true) {
        const withUsage = (request.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
        const events = anthropic ? anthropicStream(model) : chatStream(model, withUsage);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        let i = 0;
        const next = (): void => {
          if (behaviour === 'abort-mid-stream' && i === 2) {
            req.socket.destroy();
            return;
          }
          if (behaviour === 'stall-mid-stream' && i === 2) return; // stays open, sends nothing more
          if (i === events.length) {
            res.end();
            return;
          }
          res.write(events[i++]);
          if (options.streamDelayMs) setTimeout(next, options.streamDelayMs);
          else setImmediate(next);
        };
        return next();
      }
      if (anthropic) {
        return json(200, {
          id: 'msg_fake',
          type: 'message',
          role: 'assistant',
          model,
          content: [{ type: 'text', text: 'Hi there' }],
          stop_reason: 'end_turn',
          usage: { input_tokens: 11, output_tokens: 4 },
        });
      }
      if (path.endsWith('/completions') && !path.endsWith('/chat/completions')) {
        return json(200, {
          id: 'cmpl-fake',
          object: 'text_completion',
          model,
          choices: [{ text: 'Hello', index: 0, finish_reason: 'stop' }],
          usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 },
        });
      }
      return json(200, {
        id: 'chatcmpl-fake',
        object: 'chat.completion',
        created: 1,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: 'Hello, wörld' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    received,
    bigStream,
    behave: (key, behaviour) => behaviours.set(key, behaviour),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
