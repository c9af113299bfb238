import { once } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { fakeEmbedding, fakeTokenCount } from "./fake-bedrock-embeddings.ts";

/**
 * A fake OpenAI-compatible embeddings server: HTTP/1.1 on 127.0.0.1 (port 0), `POST .../embeddings`
 * in OpenAI's shape (https://platform.openai.com/docs/api-reference/embeddings/create). Vectors are
 * {@link fakeEmbeddingOf} the input (so a test asserts them exactly), written as JSON numbers, or as
 * little-endian float32 in base64 when the request asks `encoding_format: "base64"`. Each answer's
 * body is recorded as sent, for byte-for-byte pass-through checks.
 */

export type EmbeddingsBehaviour =
  /** A normal answer; `extra` top-level fields are added (an upstream's own, for pass-through). */
  | { kind: "answer"; extra?: Record<string, unknown>; omitUsage?: boolean }
  /** An OpenAI error body with this status (`retry-after` and the like in `headers`). */
  | {
      kind: "status";
      status: number;
      headers?: Record<string, string>;
      error?: { message: string; type?: string; code?: string; param?: string };
    }
  /** Exactly this response (a 200 that is no answer, a body cut short). */
  | { kind: "raw"; status?: number; body: string; headers?: Record<string, string> }
  /** Destroy the connection before any response byte. */
  | { kind: "reset" }
  /** Accept the request and never answer. */
  | { kind: "hang" };

export interface RecordedEmbeddingsCall {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface FakeEmbeddingsUpstream {
  url: string;
  requests: RecordedEmbeddingsCall[];
  /** The bodies of the answers sent, in order, exactly as written. */
  responses: string[];
  queue: EmbeddingsBehaviour[];
  fallback: EmbeddingsBehaviour;
  /** Dimensions when the request names none. */
  defaultDimensions: number;
  /** Refuse token-array inputs with a 400, as servers without a tokenizer of the model do. */
  refuseTokens: boolean;
  close(): Promise<void>;
}

/** The fake's vector for an input: {@link fakeEmbedding} of the text, or of `tokens:1,2,3`. */
export function fakeEmbeddingOf(input: string | number[], dimensions: number): number[] {
  return fakeEmbedding(typeof input === "string" ? input : `tokens:${input.join(",")}`, dimensions);
}

/** Little-endian float32 bytes in base64, written here independently of the gateway's encoder. */
export function float32Base64(values: number[]): string {
  const bytes = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) bytes.writeFloatLE(values[i] ?? 0, i * 4);
  return bytes.toString("base64");
}

export async function startFakeEmbeddingsUpstream(): Promise<FakeEmbeddingsUpstream> {
  const sockets = new Set<Socket>();
  const fake: FakeEmbeddingsUpstream = {
    url: "",
    requests: [],
    responses: [],
    queue: [],
    fallback: { kind: "answer" },
    defaultDimensions: 8,
    refuseTokens: false,
    close: async () => {},
  };
  const send = (
    res: http.ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ) => {
    fake.responses.push(body);
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(body);
  };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    } catch {}
    fake.requests.push({ path: req.url ?? "", headers: req.headers, body });
    const behaviour = fake.queue.shift() ?? fake.fallback;
    if (behaviour.kind === "reset") {
      req.socket.destroy();
      return;
    }
    if (behaviour.kind === "hang") return;
    if (behaviour.kind === "raw") {
      send(res, behaviour.status ?? 200, behaviour.body, behaviour.headers);
      return;
    }
    const error = (status: number, e: { message: string; type?: string; code?: string; param?: string }) =>
      send(
        res,
        status,
        JSON.stringify({
          error: {
            message: e.message,
            type: e.type ?? "invalid_request_error",
            param: e.param ?? null,
            code: e.code ?? null,
          },
        }),
        behaviour.kind === "status" ? behaviour.headers : {},
      );
    if (behaviour.kind === "status") {
      error(
        behaviour.status,
        behaviour.error ?? { message: `fake error ${behaviour.status}`, type: "api_error" },
      );
      return;
    }
    if (req.method !== "POST" || !(req.url ?? "").endsWith("/embeddings")) {
      error(404, { message: `no route for ${req.method} ${req.url}` });
      return;
    }
    const raw = body.input;
    const inputs: Array<string | number[]> =
      typeof raw === "string"
        ? [raw]
        : Array.isArray(raw) && typeof raw[0] === "number"
          ? [raw as number[]]
          : Array.isArray(raw)
            ? (raw as Array<string | number[]>)
            : [];
    if (inputs.length === 0) {
      error(400, { message: "'input' is required", param: "input" });
      return;
    }
    if (fake.refuseTokens && inputs.some((i) => typeof i !== "string")) {
      error(400, { message: "token arrays are not supported", param: "input" });
      return;
    }
    const dimensions = typeof body.dimensions === "number" ? body.dimensions : fake.defaultDimensions;
    const base64 = body.encoding_format === "base64";
    const tokens = inputs.reduce<number>(
      (n, i) => n + (typeof i === "string" ? fakeTokenCount(i) : i.length),
      0,
    );
    const answer = {
      object: "list",
      data: inputs.map((input, index) => {
        const vector = fakeEmbeddingOf(input, dimensions);
        return { object: "embedding", index, embedding: base64 ? float32Base64(vector) : vector };
      }),
      model: String(body.model),
      ...(behaviour.omitUsage ? {} : { usage: { prompt_tokens: tokens, total_tokens: tokens } }),
      ...behaviour.extra,
    };
    send(res, 200, JSON.stringify(answer));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = async () => {
    for (const s of sockets) s.destroy();
    server.close();
    await once(server, "close");
  };
  return fake;
}
