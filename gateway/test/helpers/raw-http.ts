import { connect, type Socket } from 'node:net';

/** One response read off a raw connection. */
export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * Splits the bytes a connection received into HTTP/1.1 responses, strictly: each must start with a
 * status line, and its body is exactly its content-length or its chunked encoding. Throws on anything
 * else, so bytes of one response inside another (a raw 400 in the middle of a stream) fail the parse.
 * Returns the responses and whatever trailing bytes did not form a complete one.
 */
export function parseResponses(bytes: Buffer): { responses: RawResponse[]; rest: string } {
  const text = bytes.toString('latin1');
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const lines = text.slice(at, headEnd).split('\r\n');
    const statusLine = /^HTTP\/1\.[01] (\d{3}) /.exec(lines[0]);
    if (statusLine === null)
      throw new Error(`not a status line at byte ${at}: ${JSON.stringify(lines[0].slice(0, 80))}`);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let cursor = headEnd + 4;
    let body = '';
    if (headers['transfer-encoding'] === 'chunked') {
      let complete = false;
      for (;;) {
        const sizeEnd = text.indexOf('\r\n', cursor);
        if (sizeEnd < 0) break;
        const size = Number.parseInt(text.slice(cursor, sizeEnd), 16);
        if (Number.isNaN(size))
          throw new Error(`not a chunk size at byte ${cursor}: ${JSON.stringify(text.slice(cursor, cursor + 40))}`);
        if (sizeEnd + 2 + size + 2 > text.length) break;
        body += text.slice(sizeEnd + 2, sizeEnd + 2 + size);
        if (text.slice(sizeEnd + 2 + size, sizeEnd + 4 + size) !== '\r\n')
          throw new Error(`chunk not terminated at byte ${sizeEnd + 2 + size}`);
        cursor = sizeEnd + 4 + size;
        if (size === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) break;
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (cursor + length > text.length) break;
      body = text.slice(cursor, cursor + length);
      cursor += length;
    }
    responses.push({ status: Number(statusLine[1]), headers, body: Buffer.from(body, 'latin1').toString('utf8') });
    at = cursor;
  }
  return { responses, rest: text.slice(at) };
}

/**
 * Opens a connection, sends `chunks` (each after the previous, or when `when` says), and collects
 * every byte until the server closes the connection or `timeoutMs` passes. Bounded in time.
 */
export function exchange(
  port: number,
  send: (socket: Socket, received: () => Buffer) => void,
  timeoutMs = 10_000,
): Promise<{ bytes: Buffer; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ bytes: Buffer.concat(chunks), closedByServer });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', () => send(socket, () => Buffer.concat(chunks)));
  });
}

/** A POST as raw bytes. */
export function rawPost(path: string, key: string, body: string, extra = ''): string {
  return `POST ${path} HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer ${key}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}
