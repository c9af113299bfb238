import { once } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import zlib from "node:zlib";

/** What the fake does with one request. */
export type Behaviour =
  /** A normal answer: JSON, or SSE when the request asked to stream. */
  | {
      kind: "answer";
      tokens?: string[];
      /** Delay before the first content token (SSE) or the whole body (JSON). */
      firstTokenDelayMs?: number;
      tokenDelayMs?: number;
      /** SSE comment lines (`: keep-alive`) and blank lines sent while waiting for the first token. */
      keepAliveEveryMs?: number;
      /** Destroy the socket after this many content tokens. */
      cutAfter?: number;
      /** Stop sending (but keep the socket open) after this many content tokens. */
      stallAfter?: number;
      /** Send a malformed event after this many content tokens. */
      malformedAfter?: number;
      /** End the HTTP response without `data: [DONE]` (after the finish reason). */
      omitDone?: boolean;
      /** Send `data: [DONE]` without a chunk carrying a finish reason first. */
      omitFinish?: boolean;
      /** Answer with a streamed tool call (arguments in these pieces) instead of text. */
      toolCallArguments?: string[];
      /** Non-streaming: blank lines sent while the answer is being made, as DeepSeek does under load. */
      blankLinesFirst?: number;
      /** Send the first event as an error event instead of content. */
      errorEvent?: { message: string; type: string; code?: string };
      /** With `errorEvent`: send it after this many content tokens instead of first. */
      errorEventAfter?: number;
      /** Answer this many choices (OpenAI's `n`), each with the same tokens; usage counts them all. */
      choices?: number;
      /** Streamed: wait this long after the finish reason before the usage chunk and `[DONE]`. */
      usageDelayMs?: number;
      /** Never report usage, whatever the request asked (as servers that ignore `include_usage`). */
      omitUsage?: boolean;
      /** Streamed: after the finish reason, send nothing more and keep the socket open. */
      stallAfterFinish?: boolean;
    }
  | {
      kind: "status";
      status: number;
      headers?: Record<string, string>;
      error?: { message: string; type?: string; code?: string; param?: string };
    }
  /** Destroy the connection before any response byte. */
  | { kind: "reset" }
  /** Accept the request and never answer. */
  | { kind: "hang" }
  /** Anything else, written by a function (see the responders below `startFakeUpstream`). */
  | { kind: "custom"; respond: CustomResponder };

/** Answers one request its own way; `alive()` turns false once the gateway has closed the connection. */
export type CustomResponder = (
  record: RecordedRequest,
  res: http.ServerResponse,
  alive: () => boolean,
) => Promise<void> | void;

export interface RecordedRequest {
  at: number;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** Set when the gateway closed the connection before the fake finished. */
  closedEarly: boolean;
}

export interface FakeUpstream {
  url: string;
  requests: RecordedRequest[];
  /** Behaviours for the next requests, in order; afterwards `fallback`. */
  queue: Behaviour[];
  fallback: Behaviour;
  /** TCP connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  connections(): number;
  close(): Promise<void>;
}

export const DEFAULT_TOKENS = ["Hello", " from", " the", " fake", " upstream", "."];

/** A real OpenAI-compatible HTTP server on 127.0.0.1 (port 0) whose every answer is scripted. */
export async function startFakeUpstream(): Promise<FakeUpstream> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const timers = new Set<NodeJS.Timeout>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const fake: FakeUpstream = {
    url: "",
    requests: [],
    queue: [],
    fallback: { kind: "answer" },
    connections: () => connections,
    close: async () => {},
  };

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const record: RecordedRequest = {
      at: Date.now(),
      path: req.url ?? "",
      headers: req.headers,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      closedEarly: false,
    };
    fake.requests.push(record);
    res.on("close", () => {
      if (!res.writableFinished) record.closedEarly = true;
    });
    const behaviour = fake.queue.shift() ?? fake.fallback;
    try {
      await respond(behaviour, record, req, res, sleep);
    } catch {
      res.destroy();
    }
  });
  server.on("connection", (socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = async () => {
    for (const t of timers) clearTimeout(t);
    for (const s of sockets) s.destroy();
    server.close();
    await once(server, "close");
  };
  return fake;
}

async function respond(
  behaviour: Behaviour,
  record: RecordedRequest,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  sleep: (ms: number) => Promise<void>,
): Promise<void> {
  if (behaviour.kind === "reset") {
    req.socket.destroy();
    return;
  }
  if (behaviour.kind === "hang") return;
  if (behaviour.kind === "custom") {
    await behaviour.respond(record, res, () => !res.destroyed && !record.closedEarly);
    return;
  }
  if (behaviour.kind === "status") {
    res.writeHead(behaviour.status, { "content-type": "application/json", ...behaviour.headers });
    res.end(
      JSON.stringify({
        error: {
          message: behaviour.error?.message ?? `fake error ${behaviour.status}`,
          type: behaviour.error?.type ?? "api_error",
          param: behaviour.error?.param ?? null,
          code: behaviour.error?.code ?? null,
        },
      }),
    );
    return;
  }
  if (record.path === "/models" || record.path.endsWith("/models")) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ object: "list", data: [] }));
    return;
  }

  const body = record.body;
  const model = String(body.model);
  const tokens = behaviour.tokens ?? DEFAULT_TOKENS;
  const messages = body.messages as Array<{ role: string; content: string; prefix?: boolean }>;
  const last = messages[messages.length - 1];
  // Prefix completion: continue the partial assistant answer, as DeepSeek's beta endpoint does.
  const already = last?.role === "assistant" && last.prefix ? last.content : "";
  const full = tokens.join("");
  const answerTokens = already && full.startsWith(already) ? splitAfter(tokens, already.length) : tokens;
  const choices = behaviour.choices ?? 1;
  const usage = {
    prompt_tokens: 10,
    completion_tokens: answerTokens.length * choices,
    total_tokens: 10 + answerTokens.length * choices,
  };
  const indexes = [...Array(choices).keys()];

  if (body.stream !== true) {
    if (behaviour.blankLinesFirst) {
      res.writeHead(200, { "content-type": "application/json" });
      for (let i = 0; i < behaviour.blankLinesFirst; i++) {
        res.write("\n");
        await sleep(5);
      }
    }
    await sleep(behaviour.firstTokenDelayMs ?? 0);
    if (!res.headersSent) res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id: "chatcmpl-fake",
        object: "chat.completion",
        created: 1,
        model,
        choices: indexes.map((index) => ({
          index,
          message: { role: "assistant", content: answerTokens.join("") },
          finish_reason: "stop",
        })),
        ...(behaviour.omitUsage ? {} : { usage }),
      }),
    );
    return;
  }

  res.writeHead(200, { "content-type": "text/event-stream" });
  const chunk = (delta: object, finish: string | null, extra: object = {}, index = 0) =>
    `data: ${JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1, model, choices: [{ index, delta, finish_reason: finish }], ...extra })}\n\n`;
  res.write(chunk({ role: "assistant", content: "" }, null));

  const firstDelay = behaviour.firstTokenDelayMs ?? 0;
  if (behaviour.keepAliveEveryMs) {
    for (let waited = 0; waited < firstDelay; waited += behaviour.keepAliveEveryMs) {
      res.write(waited % 2 === 0 ? ": keep-alive\n\n" : "\n");
      await sleep(behaviour.keepAliveEveryMs);
      if (res.destroyed) return;
    }
  } else {
    await sleep(firstDelay);
  }
  if (res.destroyed) return;
  if (behaviour.errorEvent && behaviour.errorEventAfter === undefined) {
    res.end(`data: ${JSON.stringify({ error: { param: null, code: null, ...behaviour.errorEvent } })}\n\n`);
    return;
  }
  if (behaviour.toolCallArguments) {
    const call = (i: number, piece: string) =>
      i === 0
        ? { index: 0, id: "call_1", type: "function", function: { name: "lookup", arguments: piece } }
        : { index: 0, function: { arguments: piece } };
    for (const [i, piece] of behaviour.toolCallArguments.entries())
      res.write(chunk({ tool_calls: [call(i, piece)] }, null));
    res.write(chunk({}, "tool_calls"));
    res.end("data: [DONE]\n\n");
    return;
  }
  for (const [i, token] of answerTokens.entries()) {
    if (behaviour.cutAfter === i) {
      // Let the tokens already written reach the gateway before the reset does.
      await sleep(behaviour.tokenDelayMs ?? 0);
      res.socket?.destroy();
      return;
    }
    if (behaviour.stallAfter === i) return;
    if (behaviour.errorEvent && behaviour.errorEventAfter === i) {
      res.end(`data: ${JSON.stringify({ error: { param: null, code: null, ...behaviour.errorEvent } })}\n\n`);
      return;
    }
    if (behaviour.malformedAfter === i) res.write("data: {not json\n\n");
    if (i > 0 && behaviour.tokenDelayMs) await sleep(behaviour.tokenDelayMs);
    if (res.destroyed) return;
    for (const index of indexes) res.write(chunk({ content: token }, null, {}, index));
  }
  if (!behaviour.omitFinish) for (const index of indexes) res.write(chunk({}, "stop", {}, index));
  if (behaviour.stallAfterFinish) return;
  if (behaviour.usageDelayMs) await sleep(behaviour.usageDelayMs);
  if (res.destroyed) return;
  if (
    !behaviour.omitUsage &&
    (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage
  ) {
    res.write(
      `data: ${JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1, model, choices: [], usage })}\n\n`,
    );
  }
  if (!behaviour.omitDone) res.write("data: [DONE]\n\n");
  res.end();
}

/** The tokens after the first `chars` characters (splitting a token if the prefix ends inside it). */
function splitAfter(tokens: string[], chars: number): string[] {
  const out: string[] = [];
  let seen = 0;
  for (const token of tokens) {
    if (seen >= chars) out.push(token);
    else if (seen + token.length > chars) out.push(token.slice(chars - seen));
    seen += token.length;
  }
  return out;
}

/** Reads an SSE response body into its `data` payloads (strings), in order. */
export function sseDataLines(text: string): string[] {
  return text
    .split("\n\n")
    .map((e) => e.trim())
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6));
}

// Odd upstream answers (issue 9), as `{ kind: "custom", respond: ... }` behaviours.

/** A redirect with a `Location`, which the gateway must neither follow nor pass on. */
export function redirectTo(location: string, status = 302): CustomResponder {
  return (_record, res) => {
    res.writeHead(status, { location, "content-type": "text/html" });
    res.end(`<a href="${location}">moved</a>`);
  };
}

/** A whole JSON completion, whatever the request asked for (servers that ignore `stream: true`). */
export function wholeCompletion(
  content = DEFAULT_TOKENS.join(""),
  extra: { finishReason?: string; usage?: object } = {},
): CustomResponder {
  return (record, res) => {
    res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(completionOf(record, content, extra.finishReason ?? "stop", extra.usage)));
  };
}

function completionOf(record: RecordedRequest, content: string, finishReason: string, usage?: object) {
  return {
    id: "chatcmpl-fake",
    object: "chat.completion",
    created: 1,
    model: String(record.body.model),
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: finishReason }],
    ...(usage ? { usage } : {}),
  };
}

/**
 * The normal answer (JSON, or SSE when asked to stream), compressed although the request did not ask
 * for it. Stream events are flushed one by one, so the gateway has to decode as they come.
 */
export function compressedAnswer(encoding: "gzip" | "deflate" | "br"): CustomResponder {
  return async (record, res, alive) => {
    const compressor =
      encoding === "gzip"
        ? zlib.createGzip()
        : encoding === "deflate"
          ? zlib.createDeflate()
          : zlib.createBrotliCompress();
    const contentType = record.body.stream === true ? "text/event-stream" : "application/json";
    res.writeHead(200, { "content-type": contentType, "content-encoding": encoding });
    compressor.pipe(res);
    const flush = () => new Promise<void>((resolve) => compressor.flush(() => resolve()));
    if (record.body.stream !== true) {
      compressor.end(JSON.stringify(completionOf(record, DEFAULT_TOKENS.join(""), "stop")));
      return;
    }
    const chunk = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1, model: record.body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    compressor.write(chunk({ role: "assistant", content: "" }, null));
    for (const token of DEFAULT_TOKENS) {
      if (!alive()) return;
      compressor.write(chunk({ content: token }, null));
      await flush();
    }
    compressor.write(chunk({}, "stop"));
    compressor.end("data: [DONE]\n\n");
  };
}

/**
 * A huge answer written as fast as the reader takes it: SSE events of `pieceBytes` characters each
 * (or, not streaming, one JSON completion whose content is that long), `totalBytes` in all, without
 * end if `Infinity`. Stops when the gateway drops the connection; `sent()` tells how far it got.
 */
export function hugeAnswer(totalBytes: number, pieceBytes = 16 * 1024): CustomResponder & { sent(): number } {
  let sent = 0;
  const piece = "a".repeat(pieceBytes);
  const write = async (res: http.ServerResponse, text: string) => {
    sent += text.length;
    if (!res.write(text)) await Promise.race([once(res, "drain"), once(res, "close")]);
  };
  const respond: CustomResponder = async (record, res, alive) => {
    sent = 0;
    const model = String(record.body.model);
    if (record.body.stream !== true) {
      // No content-length: the gateway cannot know the size before reading it.
      res.writeHead(200, { "content-type": "application/json" });
      await write(
        res,
        `{"id":"chatcmpl-fake","object":"chat.completion","created":1,"model":${JSON.stringify(model)},"choices":[{"index":0,"message":{"role":"assistant","content":"`,
      );
      while (sent < totalBytes && alive()) await write(res, piece);
      if (alive()) res.end(`"},"finish_reason":"stop"}]}`);
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    const event = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    await write(res, event({ role: "assistant", content: "" }, null));
    while (sent < totalBytes && alive()) await write(res, event({ content: piece }, null));
    if (alive()) res.end(`${event({}, "stop")}data: [DONE]\n\n`);
  };
  return Object.assign(respond, { sent: () => sent });
}
