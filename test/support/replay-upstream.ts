import { once } from "node:events";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * Serves recorded upstream answers (test/fixtures/) byte for byte: the provider under test reads the
 * same bytes the real API sent, split into TCP writes wherever the test says, so a `data:` line, a
 * `\n\n` or a multi-byte character cut in two is exercised on purpose rather than by luck.
 */

/** One recorded answer: the fixture's bytes with the status and headers that came with them. */
export interface Replay {
  /** Path under test/fixtures/, e.g. `openai/chat-stream-text.sse`. */
  fixture: string;
  status?: number;
  headers?: Record<string, string>;
  /**
   * Byte offsets at which the body is cut into separate writes (ascending, each inside the body).
   * Absent: one write.
   */
  splitAt?: number[];
}

export interface RecordedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface ReplayUpstream {
  url: string;
  /** Answers for the next requests, in order; a request with none left gets a 500 naming the test bug. */
  queue: Replay[];
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** A fixture's bytes, exactly as stored. */
export function fixtureBytes(fixture: string): Buffer {
  return readFileSync(new URL(fixture, FIXTURES));
}

/** The content type the provider sent with this kind of fixture. */
function contentTypeOf(fixture: string): string {
  return fixture.endsWith(".sse") ? "text/event-stream; charset=utf-8" : "application/json";
}

/** Cuts `bytes` at the given offsets; an offset out of range or out of order is a test bug. */
export function splitBytes(bytes: Buffer, offsets: number[] = []): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  for (const offset of offsets) {
    if (offset <= start || offset >= bytes.length)
      throw new Error(`split offset ${offset} is not inside the body after ${start}`);
    pieces.push(bytes.subarray(start, offset));
    start = offset;
  }
  pieces.push(bytes.subarray(start));
  return pieces;
}

/** A node:http server on 127.0.0.1 (port 0) answering each request with the next queued fixture. */
export async function startReplayUpstream(queue: Replay[] = []): Promise<ReplayUpstream> {
  const sockets = new Set<Socket>();
  const replay: ReplayUpstream = { url: "", queue, requests: [], close: async () => {} };

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    replay.requests.push({
      path: req.url ?? "",
      headers: req.headers,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    });
    const next = replay.queue.shift();
    if (next === undefined) {
      res.writeHead(500, { "content-type": "text/plain" }).end("replay-upstream: no fixture queued");
      return;
    }
    const pieces = splitBytes(fixtureBytes(next.fixture), next.splitAt);
    res.writeHead(next.status ?? 200, { "content-type": contentTypeOf(next.fixture), ...next.headers });
    for (const [i, piece] of pieces.entries()) {
      if (res.destroyed) return;
      if (i > 0) {
        // Let the previous piece leave in its own TCP segment (the socket has no Nagle delay), so the
        // reader sees the cut; nothing depends on how long this takes.
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      res.write(piece);
    }
    res.end();
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  replay.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  replay.close = async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, "close");
  };
  return replay;
}
