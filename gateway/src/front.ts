/**
 * The gateway's HTTP/1.1 front: the server, its timeouts, and what a hostile client can do to a
 * connection. It keeps three promises:
 *
 * - No bytes of one answer ever appear inside another. Requests on one connection are handled one
 *   at a time, in order (a pipelined request waits until the answer before it is complete), and
 *   malformed bytes behind a request never cut into its answer: the answers in progress finish, then
 *   the connection gets its 400 (or 408, or 431) and is closed.
 * - Every request that reaches the handler is counted until the handler is done with it (its audit
 *   line written), whatever the client does: closing, resetting, pipelining, HTTP/1.0 keep-alive.
 *   `inFlight` is that count, and a shutdown waits for it, not for sockets.
 * - Headers, bodies and idle connections each have a time bound (config values).
 */
import { createServer, type IncomingMessage, maxHeaderSize, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { GatewayError } from './errors';
import type { BodyReader } from './request';

export interface FrontOptions {
  /** A client must send its complete headers within this. */
  readonly headersTimeoutMs: number;
  /** ... and its body within this, once its headers are in (readBody enforces it; Node's bound is a backstop). */
  readonly bodyTimeoutMs: number;
  /** A kept-alive connection with no request is closed after this. */
  readonly idleTimeoutMs: number;
  /** Handles one request; resolves when everything about it is done, its audit line included. */
  readonly handle: (req: IncomingMessage, res: ServerResponse, reader: BodyReader) => Promise<void>;
  /** Counts an error answered without a request (malformed HTTP, CONNECT). */
  readonly onRawError: (type: string) => void;
}

/** What the front keeps per connection. */
interface Connection {
  /** The handlers of this connection's requests, in order: each starts when the one before is done. */
  chain?: Promise<void>;
  /** The request whose body is being read, to fail when the connection breaks under it. */
  reading?: { readonly req: IncomingMessage; readonly reader: BodyReader };
  /** Malformed bytes arrived: answered once the answers in progress are done, then the connection closes. */
  broken?: boolean;
}

const connections = new WeakMap<Socket, Connection>();
const connectionOf = (socket: Socket): Connection => {
  let connection = connections.get(socket);
  if (connection === undefined) connections.set(socket, (connection = {}));
  return connection;
};

export class Front {
  readonly server: Server;
  private pending = 0;
  private draining = false;

  constructor(private readonly options: FrontOptions) {
    this.server = createServer(
      {
        headersTimeout: options.headersTimeoutMs,
        // A backstop: readBody answers a slow body with 408 first.
        requestTimeout: options.headersTimeoutMs + options.bodyTimeoutMs + 5000,
        connectionsCheckingInterval: Math.min(1000, options.headersTimeoutMs),
        keepAliveTimeout: options.idleTimeoutMs,
      },
      (req, res) => this.onRequest(req, res),
    );
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket));
    // CONNECT (a proxy tunnel) never reaches the request handler; without this Node drops the socket.
    this.server.on('connect', (_req: IncomingMessage, socket: Socket) =>
      this.rawAnswer(socket, 405, 'Method Not Allowed', 'method_not_allowed', 'CONNECT is not supported'),
    );
  }

  /** Requests received and not yet done with (queued behind another on their connection, or being handled). */
  get inFlight(): number {
    return this.pending;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Stops taking connections; every answer from now on closes its connection. */
  startDraining(): void {
    this.draining = true;
    this.server.close();
    this.server.closeIdleConnections();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.pending += 1;
    const connection = connectionOf(req.socket);
    const reader: BodyReader = {};
    const reading = { req, reader };
    const run = async () => {
      if (this.draining) res.setHeader('connection', 'close');
      connection.reading = reading;
      try {
        await this.options.handle(req, res, reader);
      } finally {
        if (connection.reading === reading) connection.reading = undefined;
      }
      // The next request on this connection waits until this answer is complete or abandoned.
      if (!res.writableFinished && !res.destroyed) {
        await new Promise<void>((resolve) => {
          res.once('finish', resolve);
          res.once('close', resolve);
        });
      }
    };
    const previous = connection.chain;
    const next = (previous === undefined ? run() : previous.then(run))
      .catch(() => undefined)
      .finally(() => {
        this.pending -= 1;
      });
    connection.chain = next;
    void next.then(() => {
      if (connection.chain === next) connection.chain = undefined;
    });
  }

  /**
   * Malformed HTTP, a header or body too slow, headers too large. With no answer in progress on the
   * connection, the error is answered at once; otherwise the body being read is failed (its handler
   * answers), the answers in progress finish, and then the error is answered and the connection closed.
   */
  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const connection = connectionOf(socket);
    if (connection.broken) return;
    connection.broken = true;
    // The parser has failed: nothing more is read from this connection.
    socket.pause();
    const [status, reason, type, message] = describe(error);
    const reading = connection.reading;
    if (reading !== undefined && !reading.req.complete && reading.reader.fail !== undefined) {
      // The request whose body was being read gets the answer through its handler (and its audit line).
      reading.reader.fail(new GatewayError(status, type, message, {}, { connection: 'close' }));
      void (connection.chain ?? Promise.resolve()).then(() => socket.destroySoon());
      return;
    }
    if (connection.chain === undefined) {
      this.rawAnswer(socket, status, reason, type, message);
      return;
    }
    void connection.chain.then(() => this.rawAnswer(socket, status, reason, type, message));
  }

  /** A JSON error written straight to a socket with no answer in progress, then the socket closes. */
  private rawAnswer(socket: Socket, status: number, reason: string, type: string, message: string): void {
    const body = JSON.stringify({ error: { type, message } });
    if (socket.writable) {
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    } else socket.destroy();
    this.options.onRawError(type);
  }
}

function describe(error: NodeJS.ErrnoException): [number, string, string, string] {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return [
        431,
        'Request Header Fields Too Large',
        'headers_too_large',
        `the request headers exceed ${maxHeaderSize} bytes`,
      ];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return [408, 'Request Timeout', 'request_timeout', 'the request was not received in time'];
    default:
      return [400, 'Bad Request', 'bad_http', 'the request is not well-formed HTTP/1.1'];
  }
}
