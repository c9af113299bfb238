import { once } from "node:events";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../deps.ts";
import type { Gateway, GatewayRequest } from "../gateway/gateway.ts";
import type { GatewayResponse } from "../gateway/response.ts";

export interface NodeServerOptions {
  maxBodyBytes: number;
  logger: Logger;
}

/**
 * Serves the gateway over `node:http`: the same request path the Lambda runs, adapted in a few
 * dozen lines. Reads the body with a size limit, aborts the upstream work when the caller goes
 * away, and writes streamed bodies with back-pressure.
 */
export function createNodeServer(gateway: Gateway, options: NodeServerOptions): http.Server {
  const server = http.createServer((req, res) => {
    serve(gateway, options, req, res).catch((error: unknown) => {
      options.logger.error({ msg: "response failed", error: (error as Error)?.message });
      res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  return server;
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
  await write(res, response);
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
    req.once("error", reject);
    req.once("close", () => {
      if (!req.complete) reject(new Error("client closed the request before sending its body"));
    });
  });
}

async function sendTooLarge(gateway: Gateway, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // Answer, then close: the rest of an oversized body is not worth reading.
  res.shouldKeepAlive = false;
  await write(res, gateway.tooLarge());
  req.destroy();
}

async function write(res: ServerResponse, response: GatewayResponse): Promise<void> {
  if (typeof response.body === "string") {
    if (res.destroyed) return;
    response.headers["content-length"] = String(Buffer.byteLength(response.body));
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
      if (!res.write(next.value)) {
        await Promise.race([once(res, "drain"), once(res, "close")]);
      }
    }
  } finally {
    await iterator.return?.();
    res.end();
  }
}

/** Starts a server and resolves with its URL. */
export async function listen(server: http.Server, port: number, host: string): Promise<string> {
  server.listen(port, host);
  // once() rejects on 'error' (EADDRINUSE, EACCES), so a busy port is an error, not a crash.
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  return `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
}
