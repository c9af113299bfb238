import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { pipeline, type Transform } from "node:stream";
import zlib from "node:zlib";

/**
 * The largest answer read from an upstream unless a request says otherwise: far above any chat
 * completion, well under Lambda's 200 MB streaming limit and an instance's memory (issue 9: one
 * endless stream relayed 1 GB and grew memory to 619 MB before its deadline stopped it).
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Which limit expired: the provider id is added by the caller, which knows it. */
export class HttpTimeoutError extends Error {
  readonly phase: "connect" | "headers" | "body" | "response";
  readonly afterMs: number;
  constructor(phase: "connect" | "headers" | "body" | "response", afterMs: number) {
    super(`${phase} timeout after ${afterMs} ms`);
    this.name = "HttpTimeoutError";
    this.phase = phase;
    this.afterMs = afterMs;
  }
}

/** A network failure (refused, reset, DNS); `beforeResponse` says whether any response had started. */
export class HttpNetworkError extends Error {
  readonly code: string | undefined;
  readonly beforeResponse: boolean;
  constructor(cause: Error & { code?: string }, beforeResponse: boolean) {
    super(`${cause.code ?? cause.message}${beforeResponse ? " before response" : " during response body"}`, {
      cause,
    });
    this.name = "HttpNetworkError";
    this.code = cause.code;
    this.beforeResponse = beforeResponse;
  }
}

/**
 * Every pooled connection to the origin is in use. Refused at once rather than queued: a queued
 * request waited for a socket until its own timeout, and that timeout was blamed on the provider
 * (issue 9: 88 of 600 concurrent slow streams). The fault is the gateway's capacity, not the provider's.
 */
export class HttpPoolSaturatedError extends Error {
  readonly maxSockets: number;
  constructor(maxSockets: number) {
    super(`all ${maxSockets} connections to the origin are in use`);
    this.name = "HttpPoolSaturatedError";
    this.maxSockets = maxSockets;
  }
}

/** The answer grew past the request's `maxResponseBytes` (decoded bytes); the connection is dropped. */
export class HttpResponseTooLargeError extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`response body exceeded the limit of ${limit} bytes`);
    this.name = "HttpResponseTooLargeError";
    this.limit = limit;
  }
}

export interface HttpRequest {
  url: string;
  method: "GET" | "POST";
  /** Taken over by the client, which adds `content-length` to it: pass a fresh object. */
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  connectTimeoutMs: number;
  /** From the request's start until the status line and headers have arrived. */
  headersTimeoutMs: number;
  /** Longest silence on the socket while the body arrives (bytes, not content). */
  bodyIdleTimeoutMs: number;
  /** The whole exchange, headers and body (non-streaming answers). */
  totalTimeoutMs?: number;
  /** Largest body accepted, counted after decoding; past it the body fails with {@link HttpResponseTooLargeError}. */
  maxResponseBytes?: number;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  /**
   * The body as it arrives, decoded if the upstream compressed it; errors are {@link HttpNetworkError},
   * {@link HttpTimeoutError}, {@link HttpResponseTooLargeError} or an AbortError.
   */
  body: AsyncIterable<Buffer>;
  /** Reads the whole body as text. */
  text(): Promise<string>;
  /** Drops the connection (the body is not wanted any more). */
  destroy(): void;
  /** The wanted part has been read: drain the rest so the socket goes back to the pool. */
  release(): void;
}

export interface HttpClient {
  request(request: HttpRequest): Promise<HttpResponse>;
  /** Closes pooled connections (tests, shutdown). */
  close(): void;
}

export interface HttpClientOptions {
  /** Connections per origin; a request finding all of them busy fails with {@link HttpPoolSaturatedError}. */
  maxSockets?: number;
  keepAliveMsecs?: number;
  /** Default for {@link HttpRequest.maxResponseBytes}. */
  maxResponseBytes?: number;
}

/** What one client shares between its requests: the per-origin count of connections in use. */
interface Pool {
  maxSockets: number;
  maxResponseBytes: number;
  /** Requests holding (or about to hold) a connection, by origin. */
  inUse: Map<string, number>;
}

/**
 * One keep-alive pool per process for every upstream call. On Lambda an execution environment serves
 * many invocations in turn, so a pooled TLS connection saves a handshake on each of them.
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const pool: Pool = {
    maxSockets: options.maxSockets ?? 512,
    maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    inUse: new Map(),
  };
  const agentOptions = {
    keepAlive: true,
    keepAliveMsecs: options.keepAliveMsecs ?? 1_000,
    maxSockets: pool.maxSockets,
    maxFreeSockets: 256,
    scheduling: "lifo" as const,
  };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);

  return {
    request: (request) => send(request, request.url.startsWith("https:") ? httpsAgent : httpAgent, pool),
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** Parsed once per distinct URL: the request path must not pay for `new URL` every time. */
interface Target {
  https: boolean;
  /** The agent pools connections per origin, so the in-use count is kept per origin too. */
  origin: string;
  options: http.RequestOptions;
}
const targets = new Map<string, Target>();

function targetOf(url: string): Target {
  let target = targets.get(url);
  if (target === undefined) {
    const parsed = new URL(url);
    target = {
      https: parsed.protocol === "https:",
      origin: parsed.origin,
      options: {
        protocol: parsed.protocol,
        hostname: parsed.hostname.replace(/^\[|\]$/g, ""),
        port: parsed.port,
        path: `${parsed.pathname}${parsed.search}`,
      },
    };
    if (targets.size > 1000) targets.clear();
    targets.set(url, target);
  }
  return target;
}

function send(request: HttpRequest, agent: http.Agent, pool: Pool): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const target = targetOf(request.url);
    const headers = request.headers;
    if (request.body !== undefined) headers["content-length"] = String(Buffer.byteLength(request.body));
    // Ask for the body as is (issue 9: a gzip answer failed as a 502); one that comes compressed
    // anyway is decoded in wrapResponse.
    headers["accept-encoding"] ??= "identity";
    const signal = request.signal;
    if (signal?.aborted) {
      reject(abortError());
      return;
    }
    const inUse = pool.inUse.get(target.origin) ?? 0;
    if (inUse >= pool.maxSockets) {
      reject(new HttpPoolSaturatedError(pool.maxSockets));
      return;
    }
    const maxResponseBytes = request.maxResponseBytes ?? pool.maxResponseBytes;

    let settled = false;
    const req = (target.https ? https : http).request({
      ...target.options,
      method: request.method,
      headers,
      agent,
    });
    // Counted until the request closes, which for a keep-alive answer is just before its socket goes
    // back to the pool (Node emits 'close', then 'free'), or until it fails, which means its socket
    // is being destroyed (a retry right after an error must not be refused for it). While the count
    // is under maxSockets the agent has a free socket or may open one: nothing waits in its queue.
    pool.inUse.set(target.origin, inUse + 1);
    let counted = true;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      const left = (pool.inUse.get(target.origin) ?? 1) - 1;
      if (left > 0) pool.inUse.set(target.origin, left);
      else pool.inUse.delete(target.origin);
    };

    // One listener on the caller's signal, removed when the exchange is over (cheaper than the
    // \`signal\` option, which also hooks end-of-stream tracking onto the request).
    const onAbort = () => req.destroy(abortError());
    signal?.addEventListener("abort", onAbort, { once: true });
    // The timers below stay on the real clock, not Deps.setTimer: they are I/O timeouts on a real
    // socket, below Deps, and only fire while real bytes are late (issue 10).
    const totalTimer =
      request.totalTimeoutMs === undefined
        ? undefined
        : setTimeout(
            () => req.destroy(new HttpTimeoutError("response", request.totalTimeoutMs as number)),
            request.totalTimeoutMs,
          );
    req.once("close", () => {
      uncount();
      signal?.removeEventListener("abort", onAbort);
      clearTimeout(totalTimer);
    });

    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(headersTimer);
      reject(error);
    };

    // A whole-exchange timer no longer than the headers limit makes a headers timer redundant.
    const headersTimer =
      request.totalTimeoutMs !== undefined && request.totalTimeoutMs <= request.headersTimeoutMs
        ? undefined
        : setTimeout(
            () => req.destroy(new HttpTimeoutError("headers", request.headersTimeoutMs)),
            request.headersTimeoutMs,
          );

    req.on("socket", (socket: Socket) => {
      // A pooled socket is already connected; only a new one can time out connecting.
      if (!socket.connecting) return;
      const connectTimer = setTimeout(
        () => req.destroy(new HttpTimeoutError("connect", request.connectTimeoutMs)),
        request.connectTimeoutMs,
      );
      socket.once("connect", () => clearTimeout(connectTimer));
      socket.once("close", () => clearTimeout(connectTimer));
    });

    req.on("error", (error: Error & { code?: string }) => {
      uncount();
      fail(
        error instanceof HttpTimeoutError || error.name === "AbortError"
          ? error
          : new HttpNetworkError(error, true),
      );
    });

    req.on("response", (res: IncomingMessage) => {
      settled = true;
      clearTimeout(headersTimer);
      const wrapped = wrapResponse(req, res, maxResponseBytes);
      const idleMs = request.bodyIdleTimeoutMs;
      if (request.totalTimeoutMs === undefined || idleMs < request.totalTimeoutMs) {
        // A quiet socket is the provider's stall only if the gateway has read all it sent. With data
        // still unread, the socket is quiet because back-pressure paused it (the caller stopped
        // reading, issue 9): that is no fault of the provider, so wait another period.
        const onIdle = () => {
          if (wrapped.unread()) req.setTimeout(idleMs, onIdle);
          else req.destroy(new HttpTimeoutError("body", idleMs));
        };
        req.setTimeout(idleMs, onIdle);
      }
      resolve(wrapped.response);
    });

    req.end(request.body);
  });
}

function abortError(): Error {
  return Object.assign(new Error("The operation was aborted"), { name: "AbortError", code: "ABORT_ERR" });
}

function wrapResponse(
  req: http.ClientRequest,
  res: IncomingMessage,
  limit: number,
): { response: HttpResponse; unread(): boolean } {
  // Errors raised on the request after the response started (timeouts, resets, aborts) surface
  // through the body: destroy the response with the same error.
  req.on("error", (error) => res.destroy(error));
  const decoding = decoderFor(res.headers["content-encoding"]);
  const decoder = decoding instanceof Error ? undefined : decoding;
  // pipeline hands an error on either side to the other, so the reader sees res's errors on the decoder.
  if (decoder !== undefined) pipeline(res, decoder, () => {});
  const source = decoder ?? res;
  const destroy = () => {
    decoder?.destroy();
    res.destroy();
    req.destroy();
  };
  // Known to be too large before a byte is read (a plain body with its length declared).
  const declared = decoder === undefined ? Number(res.headers["content-length"]) : Number.NaN;
  const refused = (): Error | undefined => {
    if (decoding instanceof Error) return decoding;
    if (declared > limit) return new HttpResponseTooLargeError(limit);
    return undefined;
  };
  let received = 0;
  /** Counts decoded bytes; past the limit drops the connection (and with it the buffers). */
  const overLimit = (chunk: Buffer): boolean => {
    received += chunk.length;
    if (received <= limit) return false;
    destroy();
    return true;
  };

  const body: AsyncIterable<Buffer> = {
    async *[Symbol.asyncIterator]() {
      const early = refused();
      if (early !== undefined) {
        destroy();
        throw early;
      }
      try {
        // destroyOnReturn: false lets a reader stop early and still hand the socket back (release).
        for await (const chunk of source.iterator({ destroyOnReturn: false })) {
          if (overLimit(chunk as Buffer)) throw new HttpResponseTooLargeError(limit);
          yield chunk as Buffer;
        }
      } catch (error) {
        throw normaliseBodyError(error);
      }
      // A response that ended early without an error (server closed the socket) is reported by
      // Node as \`aborted\`; surface it as a reset rather than a clean end.
      if (!res.complete) throw prematureEnd();
    },
  };
  const response: HttpResponse = {
    status: res.statusCode ?? 0,
    headers: res.headers,
    body,
    // Whole bodies are read with plain events: an async iterator per response costs more than the read.
    text: () =>
      new Promise<string>((resolve, reject) => {
        const early = refused();
        if (early !== undefined) {
          destroy();
          reject(early);
          return;
        }
        let parts: Buffer[] = [];
        let done = false;
        const settle = (error: Error | undefined) => {
          if (done) return;
          done = true;
          if (error !== undefined) {
            parts = [];
            reject(error);
          } else {
            resolve(
              parts.length === 1
                ? (parts[0] as Buffer).toString("utf8")
                : Buffer.concat(parts).toString("utf8"),
            );
          }
        };
        source.on("data", (chunk: Buffer) => {
          if (done) return;
          if (overLimit(chunk)) settle(new HttpResponseTooLargeError(limit));
          else parts.push(chunk);
        });
        source.once("error", (error) => settle(normaliseBodyError(error)));
        source.once("end", () => settle(res.complete ? undefined : prematureEnd()));
        res.once("close", () => {
          if (!res.complete) settle(prematureEnd());
        });
      }),
    destroy,
    release() {
      if (res.readableEnded || res.destroyed) return;
      // Draining through a decoder is not worth it for the rare compressed answer: drop the socket.
      if (decoder !== undefined) {
        destroy();
        return;
      }
      // Drain the rest so the socket goes back to the pool, but not past the limit: an upstream that
      // keeps sending after the answer loses its connection instead.
      res.on("data", overLimit);
      res.resume();
    },
  };
  return {
    response,
    unread: () =>
      res.readableLength > 0 ||
      (decoder !== undefined && (decoder.readableLength > 0 || decoder.writableLength > 0)),
  };
}

/**
 * A decoder for the body's content-encoding, none for a plain body, or the error to report for one
 * Node cannot decode. HTTP's "deflate" is the zlib format (RFC 9110 8.4.1.2).
 */
function decoderFor(encoding: string | string[] | undefined): Transform | undefined | HttpNetworkError {
  const value = (Array.isArray(encoding) ? encoding.join(",") : (encoding ?? "")).trim().toLowerCase();
  if (value === "" || value === "identity") return undefined;
  if (value === "gzip" || value === "x-gzip") return zlib.createGunzip();
  if (value === "deflate") return zlib.createInflate();
  if (value === "br") return zlib.createBrotliDecompress();
  return new HttpNetworkError(
    Object.assign(new Error(`unsupported content-encoding "${value.slice(0, 40)}"`), {
      code: "ERR_CONTENT_ENCODING",
    }),
    false,
  );
}

function prematureEnd(): HttpNetworkError {
  return new HttpNetworkError(Object.assign(new Error("ECONNRESET"), { code: "ECONNRESET" }), false);
}

function normaliseBodyError(error: unknown): Error {
  if (
    error instanceof HttpTimeoutError ||
    error instanceof HttpNetworkError ||
    error instanceof HttpResponseTooLargeError
  )
    return error;
  const e = error as Error & { code?: string };
  if (e?.name === "AbortError") return e;
  return new HttpNetworkError(e instanceof Error ? e : new Error(String(e)), false);
}
