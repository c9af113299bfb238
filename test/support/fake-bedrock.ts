import type http2 from "node:http2";
import {
  bedrockError,
  cutSoon,
  eventStreamFrame,
  exceptionFrame,
  noRoute,
  startH2cServer,
} from "./bedrock-h2c.ts";

export { exceptionFrame };

/**
 * A fake Amazon Bedrock runtime endpoint: HTTP/2 over cleartext (h2c, prior knowledge), since the
 * SDK's Bedrock client speaks HTTP/2 even to an `http://` endpoint (PLATFORM-NOTES). It accepts the
 * SDK's signed Converse (`POST /model/{modelId}/converse`) and ConverseStream
 * (`POST /model/{modelId}/converse-stream`) requests and answers JSON or
 * `application/vnd.amazon.eventstream` frames encoded with the codec the SDK decodes with.
 */

/** What the fake does with one request. */
export type BedrockBehaviour =
  /** A text answer; streamed as one delta per token. */
  | { kind: "text"; tokens?: string[]; stopReason?: string; usage?: Usage; omitMetadata?: boolean }
  /** A tool call (`input` in these JSON pieces), after a short text. */
  | { kind: "tool"; name?: string; inputPieces?: string[] }
  /** An error before any answer: HTTP status, `x-amzn-errortype`, a JSON message. */
  | { kind: "error"; status: number; type: string; message: string }
  /** Streamed: this many text deltas, then an exception event (e.g. `throttlingException`). */
  | { kind: "exceptionAfter"; tokens: number; exception: string; message?: string }
  /** Streamed: this many text deltas, then the HTTP/2 stream is reset (RST_STREAM). */
  | { kind: "cut"; afterTokens: number }
  /** Accept the request and never answer. */
  | { kind: "hang" }
  /**
   * HTTP 200 with exactly these bytes, which the SDK may not be able to read (HTML, JSON of another
   * shape, eventstream frames followed by garbage). `contentType` defaults to the operation's own.
   */
  | { kind: "garbled"; body: string | Uint8Array; contentType?: string };

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
}

export interface RecordedBedrockRequest {
  /** `converse` or `converse-stream`. */
  operation: string;
  modelId: string;
  headers: http2.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface FakeBedrock {
  /** `http://127.0.0.1:{port}`, for `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`. */
  url: string;
  requests: RecordedBedrockRequest[];
  /** Behaviours for the next requests, in order; afterwards `fallback`. */
  queue: BedrockBehaviour[];
  fallback: BedrockBehaviour;
  /**
   * When set, a request carrying `guardrailConfig` is answered AccessDeniedException with this
   * message, as for a role without `bedrock:ApplyGuardrail`; other requests are served as usual.
   */
  guardrailDenied?: string | undefined;
  close(): Promise<void>;
}

export const BEDROCK_TOKENS = ["Hello", " from", " Bedrock", "."];
const DEFAULT_USAGE: Usage = { inputTokens: 12, outputTokens: 4, totalTokens: 16 };

/** One eventstream frame, as Bedrock sends it. */
export function eventFrame(eventType: string, payload: unknown): Uint8Array {
  return rawEventFrame(JSON.stringify(payload), eventType);
}

/** An event frame whose payload is these bytes as they are (for a payload that is not JSON). */
export function rawEventFrame(payload: string, eventType = "contentBlockDelta"): Uint8Array {
  return eventStreamFrame(eventType, payload);
}

export async function startFakeBedrock(): Promise<FakeBedrock> {
  const fake: FakeBedrock = {
    url: "",
    requests: [],
    queue: [],
    fallback: { kind: "text" },
    close: () => server.close(),
  };
  const server = await startH2cServer((stream, headers, text) => {
    const path = String(headers[":path"] ?? "");
    const match = /^\/model\/([^/]+)\/(converse|converse-stream)$/.exec(path);
    if (!match || headers[":method"] !== "POST") {
      noRoute(stream, path);
      return;
    }
    const operation = match[2] ?? "";
    const modelId = decodeURIComponent(match[1] ?? "");
    fake.requests.push({ operation, modelId, headers, body: text ? JSON.parse(text) : {} });
    const body = fake.requests.at(-1)?.body ?? {};
    const behaviour: BedrockBehaviour =
      fake.guardrailDenied !== undefined && body.guardrailConfig !== undefined
        ? { kind: "error", status: 403, type: "AccessDeniedException", message: fake.guardrailDenied }
        : (fake.queue.shift() ?? fake.fallback);
    if (behaviour.kind === "error") {
      bedrockError(stream, behaviour.status, behaviour.type, behaviour.message);
      return;
    }
    if (behaviour.kind === "hang") return;
    if (behaviour.kind === "garbled") {
      const contentType =
        behaviour.contentType ??
        (operation === "converse" ? "application/json" : "application/vnd.amazon.eventstream");
      stream.respond({
        ":status": 200,
        "content-type": contentType,
        "x-amzn-requestid": "fake-request-id",
      });
      stream.end(behaviour.body);
      return;
    }
    if (operation === "converse") answerWhole(stream, behaviour);
    else answerStream(stream, behaviour);
  });
  fake.url = server.url;
  return fake;
}

function answerWhole(stream: http2.ServerHttp2Stream, behaviour: BedrockBehaviour): void {
  const content: unknown[] = [];
  let stopReason = "end_turn";
  let usage = DEFAULT_USAGE;
  if (behaviour.kind === "tool") {
    content.push({ text: "Let me check." });
    content.push({
      toolUse: {
        toolUseId: "tooluse_1",
        name: behaviour.name ?? "get_weather",
        input: JSON.parse((behaviour.inputPieces ?? ['{"city":"Paris"}']).join("")),
      },
    });
    stopReason = "tool_use";
  } else {
    const tokens = behaviour.kind === "text" ? (behaviour.tokens ?? BEDROCK_TOKENS) : BEDROCK_TOKENS;
    content.push({ text: tokens.join("") });
    if (behaviour.kind === "text") {
      stopReason = behaviour.stopReason ?? stopReason;
      usage = behaviour.usage ?? usage;
    }
  }
  stream.respond({ ":status": 200, "content-type": "application/json" });
  stream.end(
    JSON.stringify({
      output: { message: { role: "assistant", content } },
      stopReason,
      usage,
      metrics: { latencyMs: 5 },
    }),
  );
}

function answerStream(stream: http2.ServerHttp2Stream, behaviour: BedrockBehaviour): void {
  stream.respond({ ":status": 200, "content-type": "application/vnd.amazon.eventstream" });
  const send = (frame: Uint8Array) => stream.write(frame);
  send(eventFrame("messageStart", { role: "assistant" }));
  const text = (tokens: string[]) => {
    for (const token of tokens)
      send(eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: token } }));
  };
  switch (behaviour.kind) {
    case "text": {
      text(behaviour.tokens ?? BEDROCK_TOKENS);
      send(eventFrame("contentBlockStop", { contentBlockIndex: 0 }));
      send(eventFrame("messageStop", { stopReason: behaviour.stopReason ?? "end_turn" }));
      if (!behaviour.omitMetadata)
        send(eventFrame("metadata", { usage: behaviour.usage ?? DEFAULT_USAGE, metrics: { latencyMs: 5 } }));
      stream.end();
      return;
    }
    case "tool": {
      text(["Let me check."]);
      send(eventFrame("contentBlockStop", { contentBlockIndex: 0 }));
      send(
        eventFrame("contentBlockStart", {
          contentBlockIndex: 1,
          start: { toolUse: { toolUseId: "tooluse_1", name: behaviour.name ?? "get_weather" } },
        }),
      );
      for (const piece of behaviour.inputPieces ?? ['{"city":', '"Paris"}'])
        send(eventFrame("contentBlockDelta", { contentBlockIndex: 1, delta: { toolUse: { input: piece } } }));
      send(eventFrame("contentBlockStop", { contentBlockIndex: 1 }));
      send(eventFrame("messageStop", { stopReason: "tool_use" }));
      send(eventFrame("metadata", { usage: DEFAULT_USAGE, metrics: { latencyMs: 5 } }));
      stream.end();
      return;
    }
    case "exceptionAfter": {
      text(BEDROCK_TOKENS.slice(0, behaviour.tokens));
      send(exceptionFrame(behaviour.exception, behaviour.message ?? "Too many tokens, please wait."));
      stream.end();
      return;
    }
    case "cut": {
      text(BEDROCK_TOKENS.slice(0, behaviour.afterTokens));
      cutSoon(stream);
      return;
    }
    case "error":
    case "hang":
    case "garbled":
      return;
  }
}
