import net from "node:net";

/** A response as read off the wire; `status` is 0 when the server closed without answering. */
export interface RawResponse {
  status: number;
  /** The server kept the connection open past the timeout (what arrived is still parsed). */
  timedOut?: boolean;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Sends `request` (bytes exactly as given: any method, path, header or framing) on a fresh TCP
 * connection and reads until the server closes it. `fetch` and `http.request` refuse most of what
 * a hostile caller sends, so the fuzzing speaks HTTP/1.1 by hand.
 */
export function rawRequest(url: string, request: Buffer | string, timeoutMs = 5_000): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    // A server may reset after answering; what arrived before the reset still counts.
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ ...parseResponse(Buffer.concat(chunks)), ...(timedOut ? { timedOut } : {}) });
    });
    socket.write(request);
  });
}

/** Head and body of one HTTP/1.1 response; a chunked body is de-chunked. */
export function parseResponse(received: Buffer): RawResponse {
  // Skip interim answers (100 Continue) to reach the final one.
  let bytes = received;
  while (/^HTTP\/1\.[01] 1\d\d /.test(bytes.subarray(0, 13).toString("latin1"))) {
    const interimEnd = bytes.indexOf("\r\n\r\n");
    if (interimEnd === -1) break;
    bytes = bytes.subarray(interimEnd + 4);
  }
  const end = bytes.indexOf("\r\n\r\n");
  if (end === -1) return { status: 0, headers: {}, body: Buffer.alloc(0) };
  const [statusLine = "", ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = bytes.subarray(end + 4);
  return { status, headers, body: headers["transfer-encoding"] === "chunked" ? dechunk(rest) : rest };
}

function dechunk(bytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = bytes.indexOf("\r\n", at);
    if (lineEnd === -1) break;
    const size = Number.parseInt(bytes.subarray(at, lineEnd).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** A request's bytes: the head as given, then the body, with Content-Length added unless `framing` is given. */
export function requestBytes(
  method: string,
  target: string | Buffer,
  headers: Array<[string, string]>,
  body: Buffer,
  framing: "content-length" | "none" = "content-length",
): Buffer {
  const head: Array<string | Buffer> = [
    `${method} `,
    target,
    " HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n",
  ];
  for (const [name, value] of headers) head.push(`${name}: ${value}\r\n`);
  if (framing === "content-length") head.push(`content-length: ${body.length}\r\n`);
  head.push("\r\n");
  return Buffer.concat([...head.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p)), body]);
}

/**
 * Whether `body` is the OpenAI error shape: `{ error: { message, type, param, code } }` with a
 * non-empty message and type, and param/code each a string or null.
 */
export function isOpenAIError(body: unknown): boolean {
  if (typeof body !== "object" || body === null) return false;
  const error = (body as { error?: unknown }).error;
  if (typeof error !== "object" || error === null) return false;
  const e = error as Record<string, unknown>;
  const stringOrNull = (v: unknown) => v === null || typeof v === "string";
  return (
    typeof e.message === "string" &&
    e.message !== "" &&
    typeof e.type === "string" &&
    e.type !== "" &&
    "param" in e &&
    stringOrNull(e.param) &&
    "code" in e &&
    stringOrNull(e.code)
  );
}

/** The body as JSON, or undefined when it is not JSON. */
export function jsonBody(response: RawResponse): unknown {
  try {
    return JSON.parse(response.body.toString("utf8"));
  } catch {
    return undefined;
  }
}
