import type http2 from "node:http2";
import { bedrockError, cutSoon, eventStreamFrame, exceptionFrame, startH2cServer } from "./bedrock-h2c.ts";
import { type AnthropicBehaviour, scriptOf, streamEvents, wholeMessage } from "./fake-anthropic.ts";

/**
 * A fake Bedrock runtime for Claude through InvokeModel (`POST /model/{modelId}/invoke`) and
 * InvokeModelWithResponseStream (`POST /model/{modelId}/invoke-with-response-stream`), and
 * CountTokens of an InvokeModel body (`POST /model/{modelId}/count-tokens`), HTTP/2 over
 * cleartext as the SDK speaks it (see fake-bedrock.ts for Converse). The body is a Messages body in
 * Bedrock's form: `anthropic_version: "bedrock-2023-05-31"` required, and a `model` or `stream` key
 * refused as Bedrock refuses it ("extraneous key [model] is not permitted"). Streamed answers are
 * eventstream `chunk` frames whose `bytes` hold each Messages event as base64 JSON; the last one
 * carries `amazon-bedrock-invocationMetrics`, as Bedrock's does.
 */

export type InvokeBehaviour =
  | AnthropicBehaviour
  /** A Bedrock error before any answer (`ThrottlingException` 429, `ServiceUnavailableException` 503, ...). */
  | { kind: "bedrockError"; status: number; errorType: string; message: string };

export interface RecordedInvokeRequest {
  /** `invoke` or `invoke-with-response-stream`. */
  operation: string;
  modelId: string;
  headers: http2.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface FakeBedrockInvoke {
  /** `http://127.0.0.1:{port}`, for `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`. */
  url: string;
  requests: RecordedInvokeRequest[];
  queue: InvokeBehaviour[];
  fallback: InvokeBehaviour;
  /** What `count-tokens` answers (default: the body's JSON length / 4). */
  countTokens?: number;
  close(): Promise<void>;
}

/** One `chunk` frame holding one Messages event, as InvokeModelWithResponseStream sends it. */
export function chunkFrame(event: Record<string, unknown>): Uint8Array {
  const bytes = Buffer.from(JSON.stringify(event)).toString("base64");
  return eventStreamFrame("chunk", JSON.stringify({ bytes }));
}

export async function startFakeBedrockInvoke(): Promise<FakeBedrockInvoke> {
  let served = 0;
  const fake: FakeBedrockInvoke = {
    url: "",
    requests: [],
    queue: [],
    fallback: { kind: "text" },
    close: () => server.close(),
  };
  const server = await startH2cServer((stream, headers, text) => {
    const path = String(headers[":path"] ?? "");
    const match = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream|count-tokens)$/.exec(path);
    if (!match || headers[":method"] !== "POST") {
      bedrockError(stream, 404, "ResourceNotFoundException", `no route for ${path}`);
      return;
    }
    const operation = match[2] ?? "";
    const modelId = decodeURIComponent(match[1] ?? "");
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text || "{}") as Record<string, unknown>;
    } catch {
      bedrockError(stream, 400, "ValidationException", "Malformed input request");
      return;
    }
    if (operation === "count-tokens") {
      // CountTokens holds the InvokeModel body as base64 in `input.invokeModel.body`.
      const inner = (body.input as { invokeModel?: { body?: unknown } } | undefined)?.invokeModel?.body;
      body = JSON.parse(Buffer.from(String(inner ?? ""), "base64").toString("utf8") || "{}") as Record<
        string,
        unknown
      >;
    }
    fake.requests.push({ operation, modelId, headers, body });
    for (const key of ["model", "stream"]) {
      if (key in body) {
        bedrockError(
          stream,
          400,
          "ValidationException",
          `Malformed input request: #: extraneous key [${key}] is not permitted`,
        );
        return;
      }
    }
    if (body.anthropic_version !== "bedrock-2023-05-31") {
      bedrockError(
        stream,
        400,
        "ValidationException",
        "Malformed input request: #: required key [anthropic_version] not found",
      );
      return;
    }
    if (operation === "count-tokens") {
      const size = JSON.stringify([body.system, body.messages, body.tools]).length;
      stream.respond({ ":status": 200, "content-type": "application/json" });
      stream.end(JSON.stringify({ inputTokens: fake.countTokens ?? Math.ceil(size / 4) }));
      return;
    }
    const behaviour = fake.queue.shift() ?? fake.fallback;
    if (behaviour.kind === "hang") return;
    if (behaviour.kind === "bedrockError") {
      bedrockError(stream, behaviour.status, behaviour.errorType, behaviour.message);
      return;
    }
    if (behaviour.kind === "status") {
      bedrockError(
        stream,
        behaviour.status,
        behaviour.status === 429 ? "ThrottlingException" : "ServiceUnavailableException",
        behaviour.message ?? behaviour.type,
      );
      return;
    }
    served++;
    const id = `msg_bdrk_fake${served}`;
    const script = scriptOf(behaviour);
    if (operation === "invoke") {
      stream.respond({ ":status": 200, "content-type": "application/json" });
      stream.end(JSON.stringify(wholeMessage(id, modelId, script)));
      return;
    }
    stream.respond({
      ":status": 200,
      "content-type": "application/vnd.amazon.eventstream",
      "x-amzn-bedrock-content-type": "application/json",
    });
    const cutAfter =
      behaviour.kind === "cut"
        ? behaviour.afterTokens
        : behaviour.kind === "errorEvent"
          ? (behaviour.afterTokens ?? 0)
          : undefined;
    const { events } = streamEvents(id, modelId, script, cutAfter);
    const last = events[events.length - 1];
    if (last?.type === "message_stop")
      last["amazon-bedrock-invocationMetrics"] = {
        inputTokenCount: script.usage.input_tokens,
        outputTokenCount: script.usage.output_tokens,
        invocationLatency: 5,
        firstByteLatency: 2,
      };
    for (const event of events) stream.write(chunkFrame(event));
    if (behaviour.kind === "cut") {
      cutSoon(stream);
      return;
    }
    if (behaviour.kind === "errorEvent")
      stream.write(exceptionFrame("modelStreamErrorException", behaviour.message ?? "Overloaded"));
    stream.end();
  });
  fake.url = server.url;
  return fake;
}
