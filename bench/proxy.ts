import http from "node:http";
import { serveAsBenchChild } from "./child.ts";

/**
 * The second baseline: the thinnest possible node:http hop (read the body, forward it on a
 * keep-alive agent, relay status and body back), with no validation, routing, retries or health.
 * Gateway minus proxy is what the gateway's own logic costs; proxy minus direct is what any extra
 * Node.js hop costs on this machine.
 */
const upstream = new URL(process.env.BENCH_UPSTREAM_URL ?? "");
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const out = http.request(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        path: "/chat/completions",
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, {
          "content-type": String(up.headers["content-type"] ?? "application/json"),
        });
        up.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    out.end(body);
  });
});
await serveAsBenchChild(server);
