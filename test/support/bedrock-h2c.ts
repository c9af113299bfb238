import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { EventStreamCodec } from "@smithy/core/event-streams";

/**
 * What the fake Bedrock runtimes share (fake-bedrock.ts for Converse, fake-bedrock-invoke.ts for
 * Claude through InvokeModel, fake-bedrock-embeddings.ts): an HTTP/2 server over cleartext (h2c,
 * prior knowledge) on 127.0.0.1, since the SDK's Bedrock client speaks HTTP/2 even to an `http://`
 * endpoint (PLATFORM-NOTES); Bedrock's JSON error; and `application/vnd.amazon.eventstream` frames
 * encoded with the codec the SDK decodes with.
 */

export interface H2cServer {
  /** `http://127.0.0.1:{port}`, for `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`. */
  url: string;
  /** Ends every open session (a hanging request too) and stops listening. */
  close(): Promise<void>;
}

/** One request, its body read to the end as UTF-8 text. */
export type H2cHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  body: string,
) => void;

/** An h2c server on 127.0.0.1, port 0, that hands each request to `handle` once its body is in. */
export async function startH2cServer(handle: H2cHandler): Promise<H2cServer> {
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", (stream, headers) => {
    // A reset stream (ours, or the client's cancel) reports an error here: expected, not a failure.
    stream.on("error", () => {});
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => handle(stream, headers, Buffer.concat(chunks).toString("utf8")));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Bedrock's error answer: the status, `x-amzn-errortype` naming `type`, `{"message": ...}`. */
export function bedrockError(
  stream: http2.ServerHttp2Stream,
  status: number,
  type: string,
  message: string,
): void {
  stream.respond({
    ":status": status,
    "content-type": "application/json",
    "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
    "x-amzn-requestid": "fake-request-id",
  });
  stream.end(JSON.stringify({ message }));
}

/** A 404 for a path the fake does not serve (no `x-amzn-errortype`: no Bedrock route answered). */
export function noRoute(stream: http2.ServerHttp2Stream, path: string): void {
  stream.respond({ ":status": 404, "content-type": "application/json" });
  stream.end(JSON.stringify({ message: `no route for ${path}` }));
}

/** Resets the stream once the frames written so far have left, as a connection cut mid-answer would. */
export function cutSoon(stream: http2.ServerHttp2Stream): void {
  setTimeout(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 20);
}

const codec = new EventStreamCodec(
  (bytes) => new TextDecoder().decode(bytes),
  (text) => new TextEncoder().encode(text),
);

/** An eventstream `event` frame of this `:event-type`, its payload these bytes as they are. */
export function eventStreamFrame(eventType: string, payload: string): Uint8Array {
  return codec.encode({
    headers: {
      ":message-type": { type: "string", value: "event" },
      ":event-type": { type: "string", value: eventType },
      ":content-type": { type: "string", value: "application/json" },
    },
    body: new TextEncoder().encode(payload),
  });
}

/** An exception frame inside a 200 stream (`throttlingException`, `modelStreamErrorException`, ...). */
export function exceptionFrame(exceptionType: string, message: string): Uint8Array {
  return codec.encode({
    headers: {
      ":message-type": { type: "string", value: "exception" },
      ":exception-type": { type: "string", value: exceptionType },
      ":content-type": { type: "string", value: "application/json" },
    },
    body: new TextEncoder().encode(JSON.stringify({ message })),
  });
}
