import { once } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A fake Anthropic Messages API: a real HTTP server on 127.0.0.1 (port 0) serving
 * `POST /v1/messages` (JSON, or real SSE when the body says `stream: true`; `?beta=true` accepted),
 * `POST /v1/messages/count_tokens` and `GET /v1/models` (the health probe). It checks `x-api-key` and `anthropic-version` as the API
 * does, records every request (headers and body), and answers as scripted.
 */

/** What the fake does with one `/v1/messages` request. */
export type AnthropicBehaviour =
  /** A text answer, streamed as one `text_delta` per token. */
  | { kind: "text"; tokens?: string[]; stopReason?: string; usage?: FakeUsage }
  /** A short text, then a `tool_use` block whose input arrives in these JSON pieces. */
  | { kind: "tool"; name?: string; id?: string; inputPieces?: string[]; text?: string }
  /** A thinking block (these pieces, then its signature), then a text answer. */
  | { kind: "thinking"; thinking?: string[]; signature?: string; tokens?: string[] }
  /** Streamed: `message_start` and this many text deltas, then the connection is destroyed. */
  | { kind: "cut"; afterTokens: number }
  /** Streamed: this many text deltas, then an `error` event (`overloaded_error` unless said). */
  | { kind: "errorEvent"; afterTokens?: number; type?: string; message?: string }
  /** An error status before any answer, with Anthropic's error body (429, 529, ...). */
  | { kind: "status"; status: number; type: string; message?: string; retryAfter?: string }
  /** Accept the request and never answer. */
  | { kind: "hang" };

export interface FakeUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
}

export interface RecordedAnthropicRequest {
  method: string;
  /** The path with its query (`/v1/messages?beta=true`). */
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface FakeAnthropic {
  url: string;
  /** The key `x-api-key` must carry (default {@link FAKE_ANTHROPIC_KEY}). */
  apiKey: string;
  requests: RecordedAnthropicRequest[];
  /** Behaviours for the next `/v1/messages` requests, in order; afterwards `fallback`. */
  queue: AnthropicBehaviour[];
  fallback: AnthropicBehaviour;
  /** What `count_tokens` answers (default: the body's JSON length / 4). */
  countTokens?: number;
  close(): Promise<void>;
}

export const FAKE_ANTHROPIC_KEY = "sk-ant-fake-key";
export const ANTHROPIC_TOKENS = ["Hello", " from", " Claude", "."];
export const FAKE_SIGNATURE = "EqQBCkYIARgCIkD-fake-signature";
const DEFAULT_USAGE: FakeUsage = {
  input_tokens: 21,
  output_tokens: 4,
  cache_read_input_tokens: 100,
  cache_creation_input_tokens: 7,
};

/** A block of a scripted answer, with the pieces its deltas carry. */
export type ScriptBlock =
  | { type: "text"; pieces: string[] }
  | { type: "thinking"; pieces: string[]; signature: string }
  | { type: "tool_use"; id: string; name: string; pieces: string[] };

/** The blocks, stop reason and usage of an answering behaviour. */
export function scriptOf(behaviour: AnthropicBehaviour): {
  blocks: ScriptBlock[];
  stopReason: string;
  usage: FakeUsage;
} {
  switch (behaviour.kind) {
    case "tool":
      return {
        blocks: [
          { type: "text", pieces: [behaviour.text ?? "Let me check."] },
          {
            type: "tool_use",
            id: behaviour.id ?? "toolu_fake1",
            name: behaviour.name ?? "get_weather",
            pieces: behaviour.inputPieces ?? ['{"city":', ' "Paris"}'],
          },
        ],
        stopReason: "tool_use",
        usage: DEFAULT_USAGE,
      };
    case "thinking":
      return {
        blocks: [
          {
            type: "thinking",
            pieces: behaviour.thinking ?? ["Let me think", " about it."],
            signature: behaviour.signature ?? FAKE_SIGNATURE,
          },
          { type: "text", pieces: behaviour.tokens ?? ANTHROPIC_TOKENS },
        ],
        stopReason: "end_turn",
        usage: DEFAULT_USAGE,
      };
    case "text":
      return {
        blocks: [{ type: "text", pieces: behaviour.tokens ?? ANTHROPIC_TOKENS }],
        stopReason: behaviour.stopReason ?? "end_turn",
        usage: behaviour.usage ?? DEFAULT_USAGE,
      };
    default:
      return {
        blocks: [{ type: "text", pieces: ANTHROPIC_TOKENS }],
        stopReason: "end_turn",
        usage: DEFAULT_USAGE,
      };
  }
}

/** The whole Message for a script, as the API answers a non-streamed request. */
export function wholeMessage(id: string, model: string, script: ReturnType<typeof scriptOf>): object {
  return {
    id,
    type: "message",
    role: "assistant",
    model,
    content: script.blocks.map((block) => {
      const joined = block.pieces.join("");
      if (block.type === "text") return { type: "text", text: joined };
      if (block.type === "thinking")
        return { type: "thinking", thinking: joined, signature: block.signature };
      return { type: "tool_use", id: block.id, name: block.name, input: JSON.parse(joined || "{}") };
    }),
    stop_reason: script.stopReason,
    stop_sequence: null,
    usage: script.usage,
  };
}

/**
 * The stream events for a script, in the API's order; `cutAfter` text deltas (counted over the
 * whole answer) end the list early, as a cut would.
 */
export function streamEvents(
  id: string,
  model: string,
  script: ReturnType<typeof scriptOf>,
  cutAfter = Number.POSITIVE_INFINITY,
): { events: Array<Record<string, unknown>>; cut: boolean } {
  const events: Array<Record<string, unknown>> = [
    {
      type: "message_start",
      message: {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: script.usage.input_tokens,
          cache_read_input_tokens: script.usage.cache_read_input_tokens ?? 0,
          cache_creation_input_tokens: script.usage.cache_creation_input_tokens ?? 0,
          output_tokens: 1,
        },
      },
    },
    { type: "ping" },
  ];
  let deltas = 0;
  for (let index = 0; index < script.blocks.length; index++) {
    const block = script.blocks[index];
    if (block === undefined) continue;
    const start =
      block.type === "text"
        ? { type: "text", text: "" }
        : block.type === "thinking"
          ? { type: "thinking", thinking: "" }
          : { type: "tool_use", id: block.id, name: block.name, input: {} };
    events.push({ type: "content_block_start", index, content_block: start });
    for (const piece of block.pieces) {
      if (deltas >= cutAfter) return { events, cut: true };
      deltas++;
      const delta =
        block.type === "text"
          ? { type: "text_delta", text: piece }
          : block.type === "thinking"
            ? { type: "thinking_delta", thinking: piece }
            : { type: "input_json_delta", partial_json: piece };
      events.push({ type: "content_block_delta", index, delta });
    }
    if (block.type === "thinking")
      events.push({
        type: "content_block_delta",
        index,
        delta: { type: "signature_delta", signature: block.signature },
      });
    events.push({ type: "content_block_stop", index });
  }
  if (deltas >= cutAfter && Number.isFinite(cutAfter)) return { events, cut: true };
  events.push({
    type: "message_delta",
    delta: { stop_reason: script.stopReason, stop_sequence: null },
    usage: { output_tokens: script.usage.output_tokens },
  });
  events.push({ type: "message_stop" });
  return { events, cut: false };
}

/** One SSE frame as the API writes it. */
export function sseFrame(event: Record<string, unknown>): string {
  return `event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`;
}

function errorBody(type: string, message: string): string {
  return JSON.stringify({ type: "error", error: { type, message } });
}

export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const sockets = new Set<Socket>();
  let served = 0;
  const fake: FakeAnthropic = {
    url: "",
    apiKey: FAKE_ANTHROPIC_KEY,
    requests: [],
    queue: [],
    fallback: { kind: "text" },
    close: async () => {},
  };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: Record<string, unknown> = {};
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(errorBody("invalid_request_error", "The request body is not valid JSON."));
      return;
    }
    const path = req.url ?? "";
    fake.requests.push({ method: req.method ?? "", path, headers: req.headers, body });
    const route = path.split("?")[0];
    const json = (status: number, payload: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, {
        "content-type": "application/json",
        "request-id": `req_fake${served}`,
        ...headers,
      });
      res.end(payload);
    };
    if (req.method === "GET" && route === "/v1/models") {
      if (req.headers["x-api-key"] !== fake.apiKey)
        json(401, errorBody("authentication_error", "invalid x-api-key"));
      else json(200, JSON.stringify({ data: [{ type: "model", id: "claude-fake" }], has_more: false }));
      return;
    }
    if (req.method !== "POST" || (route !== "/v1/messages" && route !== "/v1/messages/count_tokens")) {
      json(404, errorBody("not_found_error", `Not found: ${req.method} ${route}`));
      return;
    }
    if (req.headers["x-api-key"] !== fake.apiKey) {
      json(401, errorBody("authentication_error", "invalid x-api-key"));
      return;
    }
    if (typeof req.headers["anthropic-version"] !== "string") {
      json(400, errorBody("invalid_request_error", "anthropic-version: header is required"));
      return;
    }
    if (typeof body.model !== "string" || !Array.isArray(body.messages)) {
      json(400, errorBody("invalid_request_error", "model and messages: Field required"));
      return;
    }
    if (route === "/v1/messages/count_tokens") {
      const size = JSON.stringify([body.system, body.messages, body.tools]).length;
      json(200, JSON.stringify({ input_tokens: fake.countTokens ?? Math.ceil(size / 4) }));
      return;
    }
    if (typeof body.max_tokens !== "number") {
      json(400, errorBody("invalid_request_error", "max_tokens: Field required"));
      return;
    }
    served++;
    const id = `msg_fake${served}`;
    const model = body.model;
    const behaviour = fake.queue.shift() ?? fake.fallback;
    if (behaviour.kind === "hang") return;
    if (behaviour.kind === "status") {
      json(
        behaviour.status,
        errorBody(behaviour.type, behaviour.message ?? `fake ${behaviour.type}`),
        behaviour.retryAfter === undefined ? {} : { "retry-after": behaviour.retryAfter },
      );
      return;
    }
    const script = scriptOf(behaviour);
    if (body.stream !== true) {
      json(200, JSON.stringify(wholeMessage(id, model, script)));
      return;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "request-id": `req_fake${served}`,
    });
    if (behaviour.kind === "cut") {
      const { events } = streamEvents(id, model, script, behaviour.afterTokens);
      for (const event of events) res.write(sseFrame(event));
      // Let the frames leave before the cut, as a connection dropped mid-answer would.
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    if (behaviour.kind === "errorEvent") {
      const { events } = streamEvents(id, model, script, behaviour.afterTokens ?? 0);
      for (const event of events) res.write(sseFrame(event));
      res.end(
        `event: error\ndata: ${errorBody(behaviour.type ?? "overloaded_error", behaviour.message ?? "Overloaded")}\n\n`,
      );
      return;
    }
    const { events } = streamEvents(id, model, script);
    for (const event of events) res.write(sseFrame(event));
    res.end();
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
