import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";

/** Which limit expired: the provider id is added by the caller, which knows it. */
export class HttpTimeoutError extends Error {
  readonly phase: "connect" | "headers" | "body";
  readonly afterMs: number;
  constructor(phase: "connect" | "headers" | "body", afterMs: number) {
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
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  connectTimeoutMs: number;
  /** From the request's start until the status line and headers have arrived. */
  headersTimeoutMs: number;
  /** Longest silence on the socket while the body arrives (bytes, not content). */
  bodyIdleTimeoutMs: number;
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

function send(request: HttpRequest, agent: http.Agent): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const target = new URL(request.url);
    const transport = target.protocol === "https:" ? https : http;
    const headers: Record<string, string | number> = { ...request.headers };
    if (request.body !== undefined) headers["content-length"] = Buffer.byteLength(request.body);

    let settled = false;
    const req = transport.request(target, {
      method: request.method,
      headers,
      agent,
      ...(request.signal ? { signal: request.signal } : {}),
    });

    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(headersTimer);
      reject(error);
    };

    const headersTimer = setTimeout(
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
      req.setTimeout(request.bodyIdleTimeoutMs, () =>
        req.destroy(new HttpTimeoutError("body", request.bodyIdleTimeoutMs)),
      );
      resolve(wrapResponse(req, res));
    });

    req.end(request.body);
  });
}

function wrapResponse(req: http.ClientRequest, res: IncomingMessage): HttpResponse {
  // Errors raised on the request after the response started (timeouts, resets, aborts) surface
  // through the body iterator: destroy the response with the same error.
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
      // Node as `aborted`; surface it as a reset rather than a clean end.
      if (!res.complete)
        throw new HttpNetworkError(Object.assign(new Error("ECONNRESET"), { code: "ECONNRESET" }), false);
    },
  };
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    body,
    async text() {
      const parts: Buffer[] = [];
      for await (const chunk of body) parts.push(chunk);
      return Buffer.concat(parts).toString("utf8");
    },
    destroy() {
      res.destroy();
      req.destroy();
    },
    release() {
      if (!res.complete) res.resume();
    },
  };
}

function normaliseBodyError(error: unknown): Error {
  if (error instanceof HttpTimeoutError || error instanceof HttpNetworkError) return error;
  const e = error as Error & { code?: string };
  if (e?.name === "AbortError") return e;
  return new HttpNetworkError(e instanceof Error ? e : new Error(String(e)), false);
}
