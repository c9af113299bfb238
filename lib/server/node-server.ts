import { once } from "node:events";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "../deps.ts";
import {
  expectationFailed,
  type GatewayError,
  InternalError,
  invalidHttpRequest,
  methodNotAllowed,
  missingHostHeader,
  requestHeadersTooLarge,
  requestTimeout,
} from "../errors.ts";
import type { Gateway } from "../gateway/gateway.ts";
import type { GatewayRequest, GatewayResponse } from "../gateway/response.ts";

/** The local server's timeouts, in milliseconds. */
export interface ServerTimeouts {
  /** Time to receive a request's headers (`server.headersTimeout`). */
  headersTimeoutMs: number;
  /** Time to receive a whole request, headers and body (`server.requestTimeout`). */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open between requests. */
  keepAliveTimeoutMs: number;
  /** How often Node checks the two request timeouts (`connectionsCheckingInterval`). */
  timeoutCheckIntervalMs: number;
}

/** Any timeout left out takes its value from {@link SERVER_TIMEOUTS}. */
export interface NodeServerOptions extends Partial<ServerTimeouts> {
  maxBodyBytes: number;
  logger: Logger;
}

/**
 * The local server's timeouts, set on purpose (issue 9: with Node's defaults, 60 s for headers
 * checked every 30 s, a slowloris socket lived about 90 s).
 * - headers: 10 s, from the first byte of a request to its last header line;
 * - request: 30 s for headers and body together (a 4 MB body then needs ~140 KB/s); it never
 *   limits the response, so long streams are unaffected;
 * - keep-alive: 65 s idle between requests, above the idle timeout of clients' pools (Node's agent
 *   and undici keep sockets 4-5 s) so a client never reuses a socket the server is closing;
 * - checked every second, so a timeout fires within a second of its value, not 30 s later.
 * Header size stays at Node's default (16 KB, `--max-http-header-size`); larger is a 431.
 */
export const SERVER_TIMEOUTS: Readonly<ServerTimeouts> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  timeoutCheckIntervalMs: 1_000,
};

/** The caller went away (or its connection broke) before its body arrived: its doing, not ours. */
class CallerClosedError extends Error {
  constructor(cause?: unknown) {
    super("client closed the request before sending its body", cause === undefined ? undefined : { cause });
    this.name = "CallerClosedError";
  }
}

/**
 * Serves the gateway over `node:http`: the same request path the Lambda runs, adapted in a few
 * dozen lines. Reads the body with a size limit, aborts the upstream work when the caller goes
 * away, and writes streamed bodies with back-pressure. What Node's HTTP parser refuses (oversized
 * headers, broken chunked encoding, a request too slow to arrive) is answered in the OpenAI error
 * shape too, then the connection is closed.
 */
export function createNodeServer(gateway: Gateway, options: NodeServerOptions): http.Server {
  const timeouts: ServerTimeouts = {
    headersTimeoutMs: options.headersTimeoutMs ?? SERVER_TIMEOUTS.headersTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs ?? SERVER_TIMEOUTS.requestTimeoutMs,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? SERVER_TIMEOUTS.keepAliveTimeoutMs,
    timeoutCheckIntervalMs: options.timeoutCheckIntervalMs ?? SERVER_TIMEOUTS.timeoutCheckIntervalMs,
  };
  const { logger } = options;
  /** Answers `error` in the OpenAI shape and closes the connection after it. */
  const refuse = (req: IncomingMessage, res: ServerResponse, error: GatewayError): void => {
    res.shouldKeepAlive = false;
    write(req, res, gateway.refuse(error)).catch(() => res.destroy());
  };

  const server = http.createServer(
    // Node's own Host check answers 400 with an empty body; the handler answers it in the OpenAI shape.
    { connectionsCheckingInterval: timeouts.timeoutCheckIntervalMs, requireHostHeader: false },
    (req, res) => {
      if (req.httpVersion === "1.1" && req.headers.host === undefined) {
        // RFC 9112, section 3.2: a server must answer 400 to an HTTP/1.1 request without Host.
        refuse(req, res, missingHostHeader());
        return;
      }
      serve(gateway, options, req, res).catch((error: unknown) => {
        if (error instanceof CallerClosedError || res.destroyed) {
          logger.info({ msg: "caller left before the response was sent", error: (error as Error)?.message });
          res.destroy();
          return;
        }
        logger.error({ msg: "response failed", error: (error as Error)?.message });
        if (res.headersSent) {
          res.destroy();
          return;
        }
        refuse(req, res, new InternalError(error, "Internal server error while sending the response."));
      });
    },
  );
  server.headersTimeout = timeouts.headersTimeoutMs;
  server.requestTimeout = timeouts.requestTimeoutMs;
  server.keepAliveTimeout = timeouts.keepAliveTimeoutMs;

  server.on("clientError", (error: Error & { code?: string }, socket: Duplex) => {
    // The response in progress on this socket, if any, so a parser error never writes into a
    // response that has started nor answers in place of an earlier pipelined request. Node keeps it
    // as `_httpMessage` (undocumented, stable since Node 0.x), which spares every request a map
    // entry and a close listener of our own.
    const current = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
    const canAnswer =
      socket.writable && (current === undefined || (!current.headersSent && !current.req.complete));
    const refusal = canAnswer ? parserRefusal(error, timeouts) : undefined;
    if (refusal === undefined) {
      socket.destroy();
      return;
    }
    logger.info({ msg: "request refused", status: refusal.status, code: error.code });
    endWith(socket, gateway.refuse(refusal));
  });
  // Node answers an Expect other than 100-continue with a bare 417 unless someone listens.
  server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
    refuse(req, res, expectationFailed());
  });
  // CONNECT is for proxies; without this listener Node closes the socket with no answer at all.
  server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
    endWith(socket, gateway.refuse(methodNotAllowed("CONNECT", { reason: "this is not a proxy" })));
  });
  return server;
}

/** What to answer for an error from Node's HTTP parser or its request timers; nothing once the peer is gone. */
function parserRefusal(error: Error & { code?: string }, timeouts: ServerTimeouts): GatewayError | undefined {
  switch (error.code) {
    case "ECONNRESET":
    case "EPIPE":
      return undefined;
    case "HPE_HEADER_OVERFLOW":
      return requestHeadersTooLarge(http.maxHeaderSize);
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return requestTimeout(timeouts);
    default:
      return invalidHttpRequest(error.code ?? "parse error");
  }
}

/** Writes a whole response straight to the socket (there is no ServerResponse for it), then closes. */
function endWith(socket: Duplex, response: GatewayResponse): void {
  const body = typeof response.body === "string" ? response.body : "";
  const headers = {
    ...response.headers,
    "content-length": String(Buffer.byteLength(body)),
    connection: "close",
  };
  const head = [
    `HTTP/1.1 ${response.status} ${http.STATUS_CODES[response.status] ?? ""}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ].join("\r\n");
  socket.end(`${head}\r\n\r\n${body}`, () => socket.destroy());
}

async function serve(
  gateway: Gateway,
  options: NodeServerOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
  });

  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > options.maxBodyBytes) return sendTooLarge(gateway, req, res);
  const body = await readBody(req, options.maxBodyBytes);
  if (body === undefined) return sendTooLarge(gateway, req, res);

  const request: GatewayRequest = {
    method: req.method ?? "GET",
    path: req.url ?? "/",
    headers: req.headers as Record<string, string | undefined>,
    body,
    signal: abort.signal,
  };
  const response = await gateway.handle(request);
  await write(req, res, response);
}

/** The body as text, or undefined once it passes `limit` (plain events: cheaper than an async iterator). */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off("data", onData);
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () =>
      resolve(
        chunks.length === 1 ? (chunks[0] as Buffer).toString("utf8") : Buffer.concat(chunks).toString("utf8"),
      ),
    );
    // An IncomingMessage fails only when its connection does ("aborted", a reset): the caller's side.
    req.once("error", (error) => reject(new CallerClosedError(error)));
    req.once("close", () => {
      if (!req.complete) reject(new CallerClosedError());
    });
  });
}

async function sendTooLarge(gateway: Gateway, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // Answer, then close: the rest of an oversized body is not worth reading.
  res.shouldKeepAlive = false;
  await write(req, res, gateway.tooLarge());
  req.destroy();
}

async function write(req: IncomingMessage, res: ServerResponse, response: GatewayResponse): Promise<void> {
  if (typeof response.body === "string") {
    if (res.destroyed) return;
    // A HEAD answer must not claim a length of 0 when GET would send a body (RFC 9110, 8.6).
    if (req.method !== "HEAD") response.headers["content-length"] = String(Buffer.byteLength(response.body));
    res.writeHead(response.status, response.headers);
    res.end(response.body);
    return;
  }
  res.writeHead(response.status, response.headers);
  // Always start the body, even for a caller already gone: only a started generator runs its cleanup.
  const iterator = response.body[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done || res.destroyed) break;
      if (!res.write(next.value)) await drainedOrClosed(res);
    }
  } finally {
    await iterator.return?.();
    res.end();
  }
}

/**
 * Resolves when the response can take more, or is gone. One listener of each, both removed when
 * either fires: racing two `once()` promises left the loser's listeners behind on every wait, and a
 * slow reader of a long stream piled them up (MaxListenersExceededWarning after eleven waits).
 */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** Starts a server and resolves with its URL. */
export async function listen(server: http.Server, port: number, host: string): Promise<string> {
  server.listen(port, host);
  // once() rejects on 'error' (EADDRINUSE, EACCES), so a busy port is an error, not a crash.
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  return `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
}
