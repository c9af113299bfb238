import { once } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A fake OpenAI Responses server: HTTP/1.1 on 127.0.0.1 (port 0), `POST .../responses` answered with
 * a response object (JSON) or, when the request asks `stream: true`, the API's SSE events
 * (https://platform.openai.com/docs/api-reference/responses-streaming): `response.created`,
 * `response.in_progress`, items and content parts added and done, text or function-argument
 * deltas, `response.completed`, every event with its `sequence_number`. Each request body is
 * recorded as received and each JSON answer's body as sent, for byte-for-byte checks.
 */

export type ResponsesBehaviour =
  /** A text answer in these pieces (one delta each). */
  | { kind: "text"; pieces?: string[] }
  /** One function call, its arguments in these pieces. */
  | { kind: "function_call"; name: string; pieces: string[]; callId?: string }
  /** `response.failed` (whole: a response with `status: "failed"`) after this many text deltas. */
  | { kind: "failed"; afterDeltas?: number; code?: string; message?: string }
  /** An in-band `error` event after this many text deltas (streams only). */
  | { kind: "error-event"; afterDeltas?: number; code?: string; message?: string }
  /** The socket destroyed after this many text deltas (streams only). */
  | { kind: "cut"; afterDeltas: number }
  /** An OpenAI error body with this status. */
  | { kind: "status"; status: number; message?: string; type?: string; code?: string };

export interface RecordedResponsesCall {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface FakeResponsesUpstream {
  url: string;
  requests: RecordedResponsesCall[];
  /** The bodies of the JSON answers sent, in order, exactly as written. */
  responses: string[];
  queue: ResponsesBehaviour[];
  fallback: ResponsesBehaviour;
  close(): Promise<void>;
}

export const FAKE_TEXT = ["Hello", " from", " the", " Responses", " fake", "."];
export const FAKE_USAGE = {
  input_tokens: 12,
  input_tokens_details: { cached_tokens: 4 },
  output_tokens: 7,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 19,
};

type Obj = Record<string, unknown>;

export async function startFakeResponsesUpstream(): Promise<FakeResponsesUpstream> {
  const sockets = new Set<Socket>();
  let served = 0;
  const fake: FakeResponsesUpstream = {
    url: "",
    requests: [],
    responses: [],
    queue: [],
    fallback: { kind: "text" },
    close: async () => {},
  };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: Obj = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Obj;
    } catch {}
    fake.requests.push({ path: req.url ?? "", headers: req.headers, body });
    const behaviour = fake.queue.shift() ?? fake.fallback;
    const sendJson = (status: number, value: unknown) => {
      const text = JSON.stringify(value);
      fake.responses.push(text);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(text);
    };
    if (behaviour.kind === "status") {
      sendJson(behaviour.status, {
        error: {
          message: behaviour.message ?? `fake error ${behaviour.status}`,
          type: behaviour.type ?? "server_error",
          param: null,
          code: behaviour.code ?? null,
        },
      });
      return;
    }
    if (req.method !== "POST" || !(req.url ?? "").endsWith("/responses")) {
      sendJson(404, {
        error: { message: `no route for ${req.method} ${req.url}`, type: "invalid_request_error" },
      });
      return;
    }
    served++;
    const id = `resp_fake${served}`;
    const model = String(body.model);
    const response = (status: string, output: unknown[], extra: Obj = {}): Obj => ({
      id,
      object: "response",
      created_at: 1700000000,
      status,
      background: false,
      error: null,
      incomplete_details: null,
      instructions: body.instructions ?? null,
      model,
      output,
      parallel_tool_calls: true,
      previous_response_id: null,
      store: body.store ?? true,
      temperature: 1,
      text: { format: { type: "text" } },
      tool_choice: "auto",
      tools: body.tools ?? [],
      top_p: 1,
      truncation: "disabled",
      usage: null,
      metadata: {},
      // A field the gateway does not know: a pass-through keeps it.
      service_tier: "default",
      ...extra,
    });
    const pieces = behaviour.kind === "text" ? (behaviour.pieces ?? FAKE_TEXT) : FAKE_TEXT;
    const message = (text: string, status: string): Obj => ({
      id: "msg_fake1",
      type: "message",
      status,
      content: [{ type: "output_text", annotations: [], logprobs: [], text }],
      role: "assistant",
    });
    const call = (args: string, status: string): Obj =>
      behaviour.kind === "function_call"
        ? {
            id: "fc_fake1",
            type: "function_call",
            status,
            arguments: args,
            call_id: behaviour.callId ?? "call_fake1",
            name: behaviour.name,
          }
        : {};
    const failure = (b: { code?: string; message?: string }) => ({
      code: b.code ?? "server_error",
      message: b.message ?? "The fake's model failed.",
    });

    if (body.stream !== true) {
      if (behaviour.kind === "failed") {
        sendJson(200, response("failed", [], { error: failure(behaviour) }));
        return;
      }
      const output =
        behaviour.kind === "function_call"
          ? [call(behaviour.pieces.join(""), "completed")]
          : [message(pieces.join(""), "completed")];
      sendJson(200, response("completed", output, { usage: FAKE_USAGE }));
      return;
    }

    res.writeHead(200, { "content-type": "text/event-stream" });
    let sequence = 0;
    const emit = (type: string, fields: Obj) =>
      res.write(
        `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`,
      );
    emit("response.created", { response: response("in_progress", []) });
    emit("response.in_progress", { response: response("in_progress", []) });
    if (behaviour.kind === "function_call") {
      const args = behaviour.pieces.join("");
      emit("response.output_item.added", { output_index: 0, item: call("", "in_progress") });
      for (const delta of behaviour.pieces)
        emit("response.function_call_arguments.delta", { item_id: "fc_fake1", output_index: 0, delta });
      emit("response.function_call_arguments.done", {
        item_id: "fc_fake1",
        output_index: 0,
        arguments: args,
      });
      emit("response.output_item.done", { output_index: 0, item: call(args, "completed") });
      emit("response.completed", {
        response: response("completed", [call(args, "completed")], { usage: FAKE_USAGE }),
      });
      res.end();
      return;
    }
    const at = { item_id: "msg_fake1", output_index: 0, content_index: 0 };
    emit("response.output_item.added", {
      output_index: 0,
      item: { ...message("", "in_progress"), content: [] },
    });
    emit("response.content_part.added", { ...at, part: { type: "output_text", annotations: [], text: "" } });
    const stopAt = behaviour.kind === "text" ? pieces.length : (behaviour.afterDeltas ?? 0);
    for (const delta of pieces.slice(0, stopAt))
      emit("response.output_text.delta", { ...at, delta, logprobs: [] });
    if (behaviour.kind === "cut") {
      // Torn down once the deltas are flushed to the socket (a comment line, which readers skip).
      res.write(": cut\n\n", () => res.socket?.destroy());
      return;
    }
    if (behaviour.kind === "failed") {
      emit("response.failed", { response: response("failed", [], { error: failure(behaviour) }) });
      res.end();
      return;
    }
    if (behaviour.kind === "error-event") {
      emit("error", { ...failure(behaviour), param: null });
      res.end();
      return;
    }
    const text = pieces.join("");
    emit("response.output_text.done", { ...at, text, logprobs: [] });
    emit("response.content_part.done", { ...at, part: { type: "output_text", annotations: [], text } });
    emit("response.output_item.done", { output_index: 0, item: message(text, "completed") });
    emit("response.completed", {
      response: response("completed", [message(text, "completed")], { usage: FAKE_USAGE }),
    });
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
