import http from "node:http";
import https from "node:https";

/** One piece of a response body as the socket delivered it, and when (ms after the request was sent). */
export interface Arrival {
  atMs: number;
  bytes: Uint8Array;
}

export interface SmokeRequest {
  method: "GET" | "POST";
  url: URL;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

export interface SmokeResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** From the request sent to the status line and headers. */
  headersMs: number;
  /** Every read of the body, in order: the raw material for the streaming verdict. */
  arrivals: Arrival[];
  /** From the request sent to the end of the body. */
  totalMs: number;
  text: string;
}

/** A request that got no HTTP answer: DNS, refused or reset connection, TLS, timeout. */
export class SmokeNetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SmokeNetworkError";
  }
}

export interface SmokeHttp {
  send(request: SmokeRequest): Promise<SmokeResponse>;
  close(): void;
}

/**
 * Plain node:http/https, no client library: the smoke test measures when each read of the body
 * arrives, which a client that buffers or re-chunks would hide. One keep-alive agent per run, so the
 * TLS handshake is paid once and `close()` lets the process exit at once.
 */
export function createSmokeHttp(now: () => number): SmokeHttp {
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: 4 }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: 4 }),
  };
  return {
    send(request) {
      return new Promise((resolve, reject) => {
        const secure = request.url.protocol === "https:";
        const started = now();
        let headersMs = 0;
        const arrivals: Arrival[] = [];
        const req = (secure ? https : http).request(
          request.url,
          {
            method: request.method,
            headers: {
              accept: "application/json, text/event-stream",
              ...request.headers,
              ...(request.body === undefined
                ? {}
                : { "content-type": "application/json", "content-length": Buffer.byteLength(request.body) }),
            },
            agent: secure ? agents["https:"] : agents["http:"],
          },
          (res) => {
            headersMs = now() - started;
            res.on("data", (chunk: Buffer) => arrivals.push({ atMs: now() - started, bytes: chunk }));
            res.on("end", () => {
              clearTimeout(timer);
              const headers: Record<string, string> = {};
              for (const [name, value] of Object.entries(res.headers)) {
                if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
              }
              resolve({
                status: res.statusCode ?? 0,
                headers,
                headersMs,
                arrivals,
                totalMs: now() - started,
                text: Buffer.concat(arrivals.map((a) => a.bytes)).toString("utf8"),
              });
            });
            res.on("error", (error) => fail(error));
          },
        );
        const fail = (error: Error) => {
          clearTimeout(timer);
          const code = (error as { code?: string }).code;
          reject(
            new SmokeNetworkError(code ? `${code} (${error.message})` : error.message, { cause: error }),
          );
        };
        const timer = setTimeout(() => {
          req.destroy(new Error(`no complete answer within ${request.timeoutMs} ms`));
        }, request.timeoutMs);
        req.on("error", fail);
        req.end(request.body);
      });
    },
    close() {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  };
}
