import http from "node:http";
import { serveAsBenchChild } from "./child.ts";

/**
 * A lean OpenAI-compatible upstream for the benchmark (a child process): a fixed answer after a
 * fixed latency, or an SSE stream with a fixed token cadence. Kept minimal so that it is never the
 * bottleneck and costs the same whether it is called directly or through the gateway.
 */
const latencyMs = Number(process.env.BENCH_UPSTREAM_LATENCY_MS ?? 0);
const tokenGapMs = Number(process.env.BENCH_TOKEN_GAP_MS ?? 20);
const tokens = Number(process.env.BENCH_TOKENS ?? 20);

const completion = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1,
  model: "bench-model",
  choices: [
    {
      index: 0,
      message: { role: "assistant", content: "The quick brown fox jumps over the lazy dog." },
      finish_reason: "stop",
    },
  ],
  usage: { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 },
});
const chunk = (delta: object, finish: string | null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1, model: "bench-model", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const tokenChunk = chunk({ content: " tok" }, null);

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
    const streaming = body.includes('"stream":true');
    const answer = () => {
      if (!streaming) {
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(completion),
        });
        res.end(completion);
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk({ role: "assistant", content: "" }, null));
      let sent = 0;
      const next = () => {
        if (res.destroyed) return;
        if (sent === tokens) {
          res.write(chunk({}, "stop"));
          res.end("data: [DONE]\n\n");
          return;
        }
        sent++;
        res.write(tokenChunk);
        setTimeout(next, tokenGapMs);
      };
      next();
    };
    if (latencyMs > 0) setTimeout(answer, latencyMs);
    else answer();
  });
});
await serveAsBenchChild(server);
