import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";

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
}

export interface HttpResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  /** The body as it arrives; errors are {@link HttpNetworkError}, {@link HttpTimeoutError} or an AbortError. */
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
  maxSockets?: number;
  keepAliveMsecs?: number;
}

/**
 * One keep-alive pool per process for every upstream call. On Lambda an execution environment serves
 * many invocations in turn, so a pooled TLS connection saves a handshake on each of them.
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const agentOptions = {
    keepAlive: true,
    keepAliveMsecs: options.keepAliveMsecs ?? 1_000,
    maxSockets: options.maxSockets ?? 512,
    maxFreeSockets: 256,
    scheduling: "lifo" as const,
  };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);

  return {
    request: (request) => send(request, request.url.startsWith("https:") ? httpsAgent : httpAgent),
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** Parsed once per distinct URL: the request path must not pay for `new URL` every time. */
const targets = new Map<string, { https: boolean; options: http.RequestOptions }>();

function targetOf(url: string): { https: boolean; options: http.RequestOptions } {
  let target = targets.get(url);
  if (target === undefined) {
    const parsed = new URL(url);
    target = {
      https: parsed.protocol === "https:",
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

function send(request: HttpRequest, agent: http.Agent): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const target = targetOf(request.url);
    const headers = request.headers;
    if (request.body !== undefined) headers["content-length"] = String(Buffer.byteLength(request.body));
    const signal = request.signal;
    if (signal?.aborted) {
      reject(abortError());
      return;
    }

    let settled = false;
    const req = (target.https ? https : http).request({
      ...target.options,
      method: request.method,
      headers,
      agent,
    });

    // One listener on the caller's signal, removed when the exchange is over (cheaper than the
    // \`signal\` option, which also hooks end-of-stream tracking onto the request).
    const onAbort = () => req.destroy(abortError());
    signal?.addEventListener("abort", onAbort, { once: true });
    const totalTimer =
      request.totalTimeoutMs === undefined
        ? undefined
        : setTimeout(
            () => req.destroy(new HttpTimeoutError("response", request.totalTimeoutMs as number)),
            request.totalTimeoutMs,
          );
    req.once("close", () => {
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
      fail(
        error instanceof HttpTimeoutError || error.name === "AbortError"
          ? error
          : new HttpNetworkError(error, true),
      );
    });

    req.on("response", (res: IncomingMessage) => {
      settled = true;
      clearTimeout(headersTimer);
      if (request.totalTimeoutMs === undefined || request.bodyIdleTimeoutMs < request.totalTimeoutMs) {
        req.setTimeout(request.bodyIdleTimeoutMs, () =>
          req.destroy(new HttpTimeoutError("body", request.bodyIdleTimeoutMs)),
        );
      }
      resolve(wrapResponse(req, res));
    });

    req.end(request.body);
  });
}

function abortError(): Error {
  return Object.assign(new Error("The operation was aborted"), { name: "AbortError", code: "ABORT_ERR" });
}

function wrapResponse(req: http.ClientRequest, res: IncomingMessage): HttpResponse {
  // Errors raised on the request after the response started (timeouts, resets, aborts) surface
  // through the body: destroy the response with the same error.
  req.on("error", (error) => res.destroy(error));
  const body: AsyncIterable<Buffer> = {
    async *[Symbol.asyncIterator]() {
      try {
        // destroyOnReturn: false lets a reader stop early and still hand the socket back (release).
        for await (const chunk of res.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
      } catch (error) {
        throw normaliseBodyError(error);
      }
      // A response that ended early without an error (server closed the socket) is reported by
      // Node as \`aborted\`; surface it as a reset rather than a clean end.
      if (!res.complete) throw prematureEnd();
    },
  };
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    body,
    // Whole bodies are read with plain events: an async iterator per response costs more than the read.
    text: () =>
      new Promise<string>((resolve, reject) => {
        const parts: Buffer[] = [];
        res.on("data", (chunk: Buffer) => parts.push(chunk));
        res.once("error", (error) => reject(normaliseBodyError(error)));
        res.once("end", () => {
          if (!res.complete) reject(prematureEnd());
          else
            resolve(
              parts.length === 1
                ? (parts[0] as Buffer).toString("utf8")
                : Buffer.concat(parts).toString("utf8"),
            );
        });
        res.once("close", () => {
          if (!res.complete) reject(prematureEnd());
        });
      }),
    destroy() {
      res.destroy();
      req.destroy();
    },
    release() {
      if (!res.complete) res.resume();
    },
  };
}

function prematureEnd(): HttpNetworkError {
  return new HttpNetworkError(Object.assign(new Error("ECONNRESET"), { code: "ECONNRESET" }), false);
}

function normaliseBodyError(error: unknown): Error {
  if (error instanceof HttpTimeoutError || error instanceof HttpNetworkError) return error;
  const e = error as Error & { code?: string };
  if (e?.name === "AbortError") return e;
  return new HttpNetworkError(e instanceof Error ? e : new Error(String(e)), false);
}
