import { once } from "node:events";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClientAuth, hashClientKey } from "../../lib/gateway/auth.ts";
import { KEY_ARGUMENT_REFUSED, runSmokeCli } from "../../lib/smoke/cli.ts";
import { readHealthTable } from "../../lib/smoke/health-table.ts";
import { createSmokeHttp } from "../../lib/smoke/http.ts";
import type { SmokeReport } from "../../lib/smoke/run.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const KEY = "sk-gw-echo7k2m9q4t.Zx9Qw3Lk5Vb8Nm2Rt6Yp4Hs1Jd0";

/** `npm run smoke` in-process with the real node:http client; what it printed on each stream. */
async function smoke(argv: string[], env: NodeJS.ProcessEnv) {
  let out = "";
  let err = "";
  const now = () => performance.now();
  const client = createSmokeHttp(now);
  try {
    const code = await runSmokeCli(argv, {
      out: (t) => {
        out += t;
      },
      err: (t) => {
        err += t;
      },
      env,
      http: client,
      now,
      clock: Date.now,
      readHealth: readHealthTable,
    });
    return { code, out, err, printed: out + err };
  } finally {
    client.close();
  }
}

/** Every piece of the key long enough to identify it: a key cut short for a line is still leaked. */
const keyPieces = (key: string, length = 10) =>
  Array.from({ length: key.length - length + 1 }, (_, i) => key.slice(i, i + length));
const leaked = (printed: string) => keyPieces(KEY).filter((piece) => printed.includes(piece));

type EchoMode = "long-error-and-split-stream" | "echoed-answer-and-error-event";

/**
 * What the probe of issue 16 pointed the smoke command at: a URL that echoes the request's
 * `Authorization` header wherever a gateway's answer carries text (the model ids, the provider
 * header, an error long enough to be cut inside the key, a stream whose content splits the key over
 * two chunks and is cut for its line, an in-band error event).
 */
async function startEchoServer(mode: () => EchoMode): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    const auth = req.headers.authorization ?? "no authorization header";
    const headers = { "x-gateway-provider": `echo (${auth})`, "x-gateway-model": auth };
    if (req.url === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify({ object: "list", data: [{ id: `model ${auth}` }] }));
      return;
    }
    const request = JSON.parse(text) as { model: string; stream?: boolean };
    if (!request.model.startsWith("model ")) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: {
            message: `no model, and you sent ${auth}`,
            type: "x",
            param: null,
            code: "model_not_found",
          },
        }),
      );
      return;
    }
    if (!request.stream) {
      if (mode() === "long-error-and-split-stream") {
        // Not the OpenAI shape: the smoke line quotes the first 160 characters, cutting the key.
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`${"upstream trace ".repeat(7)}request header was ${auth} (end)`);
      } else {
        res.writeHead(200, { "content-type": "application/json", ...headers });
        res.end(
          JSON.stringify({
            choices: [{ index: 0, message: { role: "assistant", content: `Seen: ${auth}` } }],
          }),
        );
      }
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", ...headers });
    const event = (content: string) =>
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;
    const half = Math.floor(auth.length / 2);
    const pieces = ["You ", "sent ", auth.slice(0, half), auth.slice(half), " (echo)"];
    for (const piece of pieces) {
      res.write(event(piece));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (mode() === "echoed-answer-and-error-event") {
      const message = `${"the upstream said no ".repeat(8)}to ${auth}`;
      res.end(`event: error\ndata: ${JSON.stringify({ error: { message, code: "echo" } })}\n\n`);
    } else res.end("data: [DONE]\n\n");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}

describe("npm run smoke never prints the key, even from a URL that echoes it back", () => {
  let mode: EchoMode = "long-error-and-split-stream";
  let echo: { url: string; close(): Promise<void> };
  beforeAll(async () => {
    echo = await startEchoServer(() => mode);
  });
  afterAll(async () => {
    await echo?.close();
  });

  it("removes it from the JSON report: model ids, provider headers, a long error cut for its line, a split stream", async () => {
    mode = "long-error-and-split-stream";
    const run = await smoke(["--url", echo.url, "--json"], { GATEWAY_KEY: KEY });
    const report = JSON.parse(run.out) as SmokeReport;
    // The echoes did reach the report, with the key taken out of each.
    expect(report.model).toBe("model Bearer [redacted]");
    expect(report.providers).toEqual(["echo (Bearer [redacted])"]);
    expect(report.checks.find((c) => c.id === "completion")?.detail).toMatch(/^HTTP 500 upstream trace/);
    expect(report.checks.find((c) => c.id === "completion")?.detail).toContain(
      "request header was Bearer [redac",
    );
    expect(report.checks.find((c) => c.id === "stream")?.detail).toContain(
      '"You sent Bearer [redacted] (echo)"',
    );
    expect(leaked(run.printed)).toEqual([]);
  });

  it("removes it from the table for people: an echoed answer, an error event", async () => {
    mode = "echoed-answer-and-error-event";
    const run = await smoke(["--url", echo.url], { GATEWAY_KEY: KEY });
    expect(run.out).toMatch(/^completion\s+PASS\s+HTTP 200 in \d+ ms: "Seen: Bearer \[redacted\]"/m);
    expect(run.out).toMatch(
      /^streamed completion\s+FAIL\s+cut after 5 chunks by an error event: echo the upstream/m,
    );
    expect(run.out).toContain("x-gateway-provider: echo (Bearer [redacted]) (Bearer [redacted])");
    expect(leaked(run.printed)).toEqual([]);
  });
});

describe("npm run smoke takes the key from the environment only", () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway(JSON.parse(readFileSync("config/default.json", "utf8")), {
      auth: createClientAuth(async () => [hashClientKey(KEY)]),
    });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it("refuses --key, which the process list would show, without echoing it, and says what to do", async () => {
    const run = await smoke(["--url", gateway.url, "--key", KEY], {});
    expect(run.code).toBe(2);
    expect(run.err).toContain(KEY_ARGUMENT_REFUSED);
    expect(KEY_ARGUMENT_REFUSED).toContain("GATEWAY_KEY=... npm run smoke -- --url URL");
    expect(run.out).toBe("");
    expect(leaked(run.printed)).toEqual([]);
  });

  it("reads GATEWAY_KEY, or the variable --key-env names", async () => {
    const byDefault = await smoke(["--url", gateway.url], { GATEWAY_KEY: KEY });
    expect(byDefault.out).toMatch(/^models listed\s+PASS/m);
    expect(byDefault.code).toBe(0);
    const named = await smoke(["--url", gateway.url, "--key-env", "TEAM_KEY"], {
      TEAM_KEY: KEY,
      GATEWAY_KEY: "x",
    });
    expect(named.out).toMatch(/^models listed\s+PASS/m);
    expect(named.code).toBe(0);
    expect(leaked(byDefault.printed + named.printed)).toEqual([]);
  });

  it("stops when --key-env names an unset variable, and never echoes a key given in its place", async () => {
    const unset = await smoke(["--url", gateway.url, "--key-env", "NOT_SET_HERE"], {});
    expect(unset.code).toBe(2);
    expect(unset.err).toContain("--key-env NOT_SET_HERE: that environment variable is not set");
    const mistaken = await smoke(["--url", gateway.url, "--key-env", KEY], {});
    expect(mistaken.code).toBe(2);
    expect(mistaken.err).toContain("--key-env takes the name of an environment variable");
    expect(leaked(mistaken.printed)).toEqual([]);
  });
});
