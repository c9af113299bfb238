import http from "node:http";
import { serveAsBenchChild } from "./child.ts";

/**
 * A lean upstream for the benchmark (a child process), speaking OpenAI chat (`/chat/completions`),
 * Anthropic Messages (`/v1/messages`) and OpenAI embeddings (`/embeddings`): a fixed answer after a
 * fixed latency, or an SSE stream with a fixed token cadence (chat and Messages). Kept minimal so
 * that it is never the bottleneck and costs the same whether it is called directly or through the
 * gateway. The Messages answer is the chat one's text in Messages' shape, about as many bytes.
 */
const latencyMs = Number(process.env.BENCH_UPSTREAM_LATENCY_MS ?? 0);
const tokenGapMs = Number(process.env.BENCH_TOKEN_GAP_MS ?? 20);
const tokens = Number(process.env.BENCH_TOKENS ?? 20);

const text = "The quick brown fox jumps over the lazy dog.";
const completion = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1,
  model: "bench-model",
  choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 },
});
const chunk = (delta: object, finish: string | null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1, model: "bench-model", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const tokenChunk = chunk({ content: " tok" }, null);

const message = JSON.stringify({
  id: "msg_bench",
  type: "message",
  role: "assistant",
  model: "bench-claude",
  content: [{ type: "text", text }],
  stop_reason: "end_turn",
  stop_sequence: null,
  usage: { input_tokens: 12, output_tokens: 10 },
});
const messageEvent = (event: { type: string; [field: string]: unknown }) =>
  `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
const messageStart =
  messageEvent({
    type: "message_start",
    message: {
      id: "msg_bench",
      type: "message",
      role: "assistant",
      model: "bench-claude",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 12, output_tokens: 1 },
    },
  }) + messageEvent({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
const messageToken = messageEvent({
  type: "content_block_delta",
  index: 0,
  delta: { type: "text_delta", text: " tok" },
});
const messageEnd =
  messageEvent({ type: "content_block_stop", index: 0 }) +
  messageEvent({
    type: "message_delta",
    delta: { stop_reason: "end_turn", stop_sequence: null },
    usage: { output_tokens: tokens },
  }) +
  messageEvent({ type: "message_stop" });

const embedding = JSON.stringify({
  object: "list",
  data: [
    {
      object: "embedding",
      index: 0,
      embedding: [0.0123, -0.0456, 0.0789, -0.1011, 0.1213, -0.1415, 0.1617, -0.1819],
    },
  ],
  model: "bench-embed",
  usage: { prompt_tokens: 2, total_tokens: 2 },
});

/** What one path answers: a whole JSON body, and the three parts of its stream (if it streams). */
interface Dialect {
  whole: string;
  stream?: { start: string; token: string; end: string };
}
const chat: Dialect = {
  whole: completion,
  stream: {
    start: chunk({ role: "assistant", content: "" }, null),
    token: tokenChunk,
    end: `${chunk({}, "stop")}data: [DONE]\n\n`,
  },
};
const messages: Dialect = {
  whole: message,
  stream: { start: messageStart, token: messageToken, end: messageEnd },
};
const embeddings: Dialect = { whole: embedding };

const server = http.createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (d) => {
    body += d;
  });
  req.on("end", () => {
    if (req.url?.endsWith("/models")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"object":"list","data":[]}');
      return;
    }
    const dialect = req.url?.endsWith("/v1/messages")
      ? messages
      : req.url?.endsWith("/embeddings")
        ? embeddings
        : chat;
    const stream = body.includes('"stream":true') ? dialect.stream : undefined;
    const answer = () => {
      if (stream === undefined) {
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(dialect.whole),
        });
        res.end(dialect.whole);
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(stream.start);
      let sent = 0;
      const next = () => {
        if (res.destroyed) return;
        if (sent === tokens) {
          res.end(stream.end);
          return;
        }
        sent++;
        res.write(stream.token);
        setTimeout(next, tokenGapMs);
      };
      next();
    };
    if (latencyMs > 0) setTimeout(answer, latencyMs);
    else answer();
  });
});
await serveAsBenchChild(server);
