import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";

/**
 * A shim of the Lambda Node.js runtime's response streaming, as its runtime interface client
 * implements it: `awslambda.streamifyResponse` marks a handler, the runtime calls it with
 * (event, responseStream, context), and `awslambda.HttpResponseStream.from(stream, prelude)` sets the
 * HTTP-integration content type and writes the JSON prelude plus eight NUL bytes before the first
 * body byte. Setting the content type after a write throws.
 */
const STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");
const PRELUDE_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response";
const DELIMITER = Buffer.alloc(8);

export class ResponseStream extends Writable {
  contentType = "application/octet-stream";
  written = false;
  onBeforeFirstWrite: ((write: (chunk: Buffer) => void) => void) | undefined;
  readonly #sink: (chunk: Buffer) => void;

  constructor(sink: (chunk: Buffer) => void) {
    super();
    this.#sink = sink;
  }

  setContentType(type: string): void {
    if (this.written) throw new Error("Tried to set content type after first write: too late");
    this.contentType = type;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.written) {
      this.written = true;
      this.onBeforeFirstWrite?.((c) => this.#sink(c));
    }
    this.#sink(Buffer.from(chunk));
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.written) {
      this.written = true;
      this.onBeforeFirstWrite?.((c) => this.#sink(c));
    }
    callback();
  }
}

type StreamingHandler = (event: unknown, stream: ResponseStream, context: unknown) => Promise<unknown>;

/** Installs the `awslambda` global (merged into any object already there). */
export function installLambdaShim(): void {
  const g = globalThis as { awslambda?: Record<string, unknown> };
  g.awslambda = Object.assign(g.awslambda ?? {}, {
    streamifyResponse(handler: StreamingHandler) {
      (handler as unknown as Record<symbol, string>)[STREAMING] = "response";
      return handler;
    },
    HttpResponseStream: {
      from(stream: ResponseStream, prelude: Record<string, unknown>) {
        stream.setContentType(PRELUDE_CONTENT_TYPE);
        const json = JSON.stringify(prelude);
        stream.onBeforeFirstWrite = (write) => {
          write(Buffer.from(json));
          write(DELIMITER);
        };
        return stream;
      },
    },
  });
}

export function isStreamingHandler(handler: unknown): boolean {
  return (handler as Record<symbol, unknown>)[STREAMING] === "response";
}

export interface LambdaContext {
  awsRequestId: string;
  getRemainingTimeInMillis(): number;
}

export function lambdaContext(timeoutMs = 300_000): LambdaContext {
  const deadline = Date.now() + timeoutMs;
  let n = 0;
  return { awsRequestId: `aws-req-${++n}`, getRemainingTimeInMillis: () => deadline - Date.now() };
}

/**
 * A local "Function URL": turns each HTTP request into a payload-2.0 event, invokes a streaming
 * handler through the shim, and relays the prelude's status and headers, then the body as the
 * handler writes it.
 */
export async function startFunctionUrl(
  handler: unknown,
  timeoutMs = 300_000,
): Promise<{ url: string; close(): Promise<void> }> {
  if (!isStreamingHandler(handler)) throw new Error("handler is not marked by awslambda.streamifyResponse");
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? "/", "http://x");
    const body = Buffer.concat(chunks);
    const event = {
      version: "2.0",
      rawPath: url.pathname,
      rawQueryString: url.search.slice(1),
      headers: Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : (v ?? "")]),
      ),
      requestContext: { http: { method: req.method, path: url.pathname }, requestId: "url-req" },
      body: body.toString("base64"),
      isBase64Encoded: true,
    };
    let pending = Buffer.alloc(0);
    let preludeDone = false;
    const stream = new ResponseStream((chunk) => {
      if (preludeDone) {
        res.write(chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      const end = pending.indexOf(DELIMITER);
      if (end === -1) return;
      const prelude = JSON.parse(pending.subarray(0, end).toString("utf8")) as {
        statusCode?: number;
        headers?: Record<string, string>;
      };
      res.writeHead(prelude.statusCode ?? 200, prelude.headers ?? {});
      res.flushHeaders();
      preludeDone = true;
      const rest = pending.subarray(end + DELIMITER.length);
      if (rest.length > 0) res.write(rest);
    });
    res.on("close", () => {
      if (!res.writableFinished) stream.destroy(new Error("client went away"));
    });
    try {
      await (handler as StreamingHandler)(event, stream, lambdaContext(timeoutMs));
      if (!preludeDone) res.writeHead(200);
      res.end();
    } catch {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}
