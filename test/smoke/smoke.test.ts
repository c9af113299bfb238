import { once } from "node:events";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClientAuth, hashClientKey } from "../../lib/gateway/auth.ts";
import { runSmokeCli, type SmokeCliIo } from "../../lib/smoke/cli.ts";
import { readHealthTable } from "../../lib/smoke/health-table.ts";
import { createSmokeHttp } from "../../lib/smoke/http.ts";
import { formatTable } from "../../lib/smoke/report.ts";
import type { SmokeReport } from "../../lib/smoke/run.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { fakeProvider, startGateway, type TestGateway } from "../support/gateway.ts";

const KEY = "sk-gw-smoke-caller-key-123456";

/** `npm run smoke` in-process, with the real node:http client and health-table reader. */
async function smoke(argv: string[], overrides: Partial<SmokeCliIo> = {}) {
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
      env: {},
      http: client,
      now,
      clock: Date.now,
      readHealth: readHealthTable,
      ...overrides,
    });
    return { code, out, err };
  } finally {
    client.close();
  }
}

const statuses = (report: SmokeReport) => Object.fromEntries(report.checks.map((c) => [c.id, c.status]));

describe("npm run smoke against the local gateway (the shipped mock configuration)", () => {
  let table: TestTable;
  let gateway: TestGateway;

  beforeAll(async () => {
    table = await startTestTable();
    gateway = await startGateway(JSON.parse(readFileSync("config/default.json", "utf8")), {
      healthStore: table.store(),
      auth: createClientAuth(async () => [hashClientKey(KEY)]),
    });
    // What the scheduled health function does on AWS.
    await gateway.runtime.healthChecker.runOnce();
  });
  afterAll(async () => {
    await gateway?.close();
    await table?.close();
  });

  it("passes every check, streaming included, and exits 0", async () => {
    const run = await smoke(
      [
        "--url",
        `${gateway.url}/v1/`,
        "--table",
        table.tableName,
        "--endpoint",
        table.dynamo.endpoint,
        "--json",
      ],
      { env: { GATEWAY_KEY: KEY } },
    );
    const report = JSON.parse(run.out) as SmokeReport;
    expect(statuses(report)).toEqual({
      models: "pass",
      completion: "pass",
      stream: "pass",
      streaming: "pass",
      "provider-header": "pass",
      "no-key-401": "pass",
      "unknown-model-404": "pass",
      "health-table": "pass",
    });
    expect(run.code).toBe(0);
    expect(report).toMatchObject({
      ok: true,
      url: gateway.url,
      model: "gpt-4o-mini",
      providers: ["mock-primary"],
    });
    expect(report.stream?.verdict).toBe("incremental");
    expect(report.stream?.gapsMs).toHaveLength((report.stream?.contentChunks ?? 0) - 1);
    expect(run.out).not.toContain(KEY);

    // The same report for people: one line per check, then the gaps and the verdict.
    const text = formatTable(report);
    expect(text).toMatch(/^stream timing\s+PASS\s+incremental: \d+ chunks in \d+ arrivals/m);
    expect(text).toMatch(/^health table\s+PASS\s+health-test-\d+: mock-primary: healthy, checked \d+ s ago/m);
    expect(text).toMatch(/^gaps between content chunks \(ms\): \d+/m);
    expect(text.trimEnd().split("\n").at(-1)).toMatch(/^PASS: 8 passed, 0 failed, 0 skipped/);
  });

  it("without a key: the model list fails with the fix, the 401 line passes, exit 1", async () => {
    const run = await smoke(["--url", gateway.url]);
    expect(run.out).toMatch(/^models listed\s+FAIL\s+HTTP 401 invalid_api_key/m);
    expect(run.out).toContain("-> the gateway refused the caller key: set GATEWAY_KEY");
    expect(run.out).toMatch(/^401 without a key\s+PASS/m);
    expect(run.out).toMatch(/^completion\s+SKIP\s+not run: the model list failed/m);
    expect(run.out).toMatch(/^404 unknown model\s+SKIP\s+not run: the gateway wants a key/m);
    expect(run.code).toBe(1);
  });

  it("fails the health line when the newest check is older than --max-age", async () => {
    // Ten minutes from now, the check written in beforeAll is ten minutes old.
    const run = await smoke(
      ["--url", gateway.url, "--table", table.tableName, "--endpoint", table.dynamo.endpoint],
      { clock: () => Date.now() + 10 * 60_000, env: { GATEWAY_KEY: KEY } },
    );
    expect(run.out).toMatch(
      /^health table\s+FAIL\s+health-test-\d+: no check in the last 5 min: mock-primary: healthy, checked 6\d\d s ago/m,
    );
    expect(run.out).toContain("-> the health function is not writing: check its EventBridge rule");
    expect(run.code).toBe(1);
  });
});

describe("npm run smoke against a gateway whose provider is broken", () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    // A provider key that was never filled in, or is wrong: every call is refused.
    upstream.fallback = {
      kind: "status",
      status: 401,
      error: {
        message: "Incorrect API key provided",
        type: "invalid_request_error",
        code: "invalid_api_key",
      },
    };
    gateway = await startGateway({
      providers: [fakeProvider("openai", upstream.url)],
      models: { "gpt-4o-mini": { targets: [{ provider: "openai", model: "gpt-4o-mini" }] } },
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  it("names the failing lines with what to do, and exits 1", async () => {
    const run = await smoke(["--url", gateway.url]);
    expect(run.out).toMatch(/^models listed\s+PASS/m);
    expect(run.out).toMatch(/^completion\s+FAIL\s+HTTP 502 upstream_unavailable: .*openai/m);
    expect(run.out).toContain("-> a provider refused its key: put a valid key in the provider secret");
    expect(run.out).toMatch(/^streamed completion\s+FAIL\s+HTTP 502/m);
    expect(run.out).toMatch(/^404 unknown model\s+PASS/m);
    expect(run.out.trimEnd().split("\n").at(-1)).toMatch(/^FAIL: \d+ passed, 2 failed/);
    expect(run.code).toBe(1);
  });
});

/**
 * A stand-in for a gateway behind a hop that holds the stream back and releases it whole, as Lambda
 * may coalesce small writes: right in every way but timing, every chunk sent in one write.
 */
async function startBurstServer(): Promise<{ url: string; close(): Promise<void> }> {
  const headers = { "x-gateway-provider": "p1", "x-gateway-model": "m1", "x-request-id": "r1" };
  const server = http.createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    const send = (status: number, json: object, extra: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...extra });
      res.end(JSON.stringify(json));
    };
    if (req.url === "/v1/models") {
      send(200, { object: "list", data: [{ id: "m", object: "model", created: 0, owned_by: "gateway" }] });
      return;
    }
    const request = JSON.parse(body) as { model: string; stream?: boolean };
    if (request.model !== "m") {
      send(404, {
        error: {
          message: "no such model",
          type: "invalid_request_error",
          param: "model",
          code: "model_not_found",
        },
      });
      return;
    }
    const words = Array.from({ length: 15 }, (_, i) => `${i + 1} `);
    if (!request.stream) {
      send(
        200,
        { choices: [{ index: 0, message: { role: "assistant", content: words.join("") } }] },
        headers,
      );
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", ...headers });
    res.end(
      `${words.map((w) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: w } }] })}\n\n`).join("")}data: [DONE]\n\n`,
    );
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

describe("npm run smoke against a stream that arrives in one burst", () => {
  it("says so plainly on the stream timing line, and exits 1", async () => {
    const burst = await startBurstServer();
    try {
      const run = await smoke(["--url", burst.url, "--json"]);
      const report = JSON.parse(run.out) as SmokeReport;
      expect(statuses(report)).toEqual({
        models: "pass",
        completion: "pass",
        stream: "pass",
        streaming: "fail",
        "provider-header": "pass",
        "no-key-401": "skip",
        "unknown-model-404": "pass",
        "health-table": "skip",
      });
      expect(report.checks.find((c) => c.id === "streaming")?.detail).toMatch(
        /^in one burst: all 15 chunks arrived together/,
      );
      expect(report.stream).toMatchObject({ verdict: "one-burst", contentChunks: 15, bursts: 1 });
      expect(run.code).toBe(1);
    } finally {
      await burst.close();
    }
  });
});

describe("npm run smoke, usage", () => {
  it("reports an unreachable URL on the first line and skips the rest", async () => {
    const closed = http.createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    closed.close();
    await once(closed, "close");
    const run = await smoke(["--url", url]);
    expect(run.out).toMatch(/^models listed\s+FAIL\s+cannot reach .*ECONNREFUSED/m);
    expect(run.out).toMatch(/^completion\s+SKIP\s+not run: the URL did not answer/m);
    expect(run.code).toBe(1);
  });

  it("exits 2 with the usage when --url is missing or not a URL", async () => {
    expect((await smoke([])).code).toBe(2);
    const bad = await smoke(["--url", "ftp://x"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("usage: GATEWAY_KEY=... npm run smoke -- --url URL");
  });
});
