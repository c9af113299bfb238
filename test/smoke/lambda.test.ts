import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashClientKey } from "../../lib/gateway/auth.ts";
import { runSmokeCli } from "../../lib/smoke/cli.ts";
import { readHealthTable } from "../../lib/smoke/health-table.ts";
import { createSmokeHttp } from "../../lib/smoke/http.ts";
import type { SmokeReport } from "../../lib/smoke/run.ts";
import { bundleAsDeployed, importHandler, useFunctionEnvironment } from "../support/bundle.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { type FakeSecrets, startFakeSecrets } from "../support/fake-secrets.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { lambdaContext, startFunctionUrl } from "../support/lambda-runtime.ts";

/**
 * The smoke command against the chat handler as deployed: functions/chat.ts and functions/health.ts
 * bundled with the stack's own esbuild options (infra/stack.ts `bundleOptions`, what NodejsFunction
 * is given), run through a shim of the Lambda streaming runtime, with the provider key and the
 * caller key in a Secrets Manager fake and the health table in dynalite. Bundling directly rather
 * than through `cdk synth` keeps this test to a second; test/lambda/bundled-handlers.test.ts runs
 * the synthesized assets themselves.
 */
const CLIENT_KEY = "sk-gw-smoke-lambda-key-123456";
const outdir = mkdtempSync(join(tmpdir(), "smoke-lambda-"));

let upstream: FakeUpstream;
let table: TestTable;
let secrets: FakeSecrets;
let functionUrl: { url: string; close(): Promise<void> };

/** A function bundled as deployed, into this test's folder. */
const bundle = (entry: string, configText: string) =>
  bundleAsDeployed(entry, configText, join(outdir, `${entry.replace(/\W/g, "-")}.mjs`));

beforeAll(async () => {
  upstream = await startFakeUpstream();
  // Twenty tokens, 20 ms apart: what a model streaming its answer looks like.
  upstream.fallback = {
    kind: "answer",
    tokenDelayMs: 20,
    tokens: Array.from({ length: 20 }, (_, i) => `${i + 1} `),
  };
  table = await startTestTable();
  secrets = await startFakeSecrets({
    "smoke/provider-keys": JSON.stringify({ primary: "sk-upstream-key-123456" }),
    "smoke/client-keys": JSON.stringify({ sha256: [hashClientKey(CLIENT_KEY)] }),
  });
  const configText = JSON.stringify({
    health: { intervalMs: 60_000, cacheTtlMs: 0 },
    providers: [
      {
        id: "primary",
        type: "openai",
        baseUrl: upstream.url,
        apiKey: { secretId: "smoke/provider-keys", jsonKey: "primary" },
      },
    ],
    models: { "gpt-4o-mini": { targets: [{ provider: "primary", model: "up-model" }] } },
  });
  const [chatFile, healthFile] = await Promise.all([
    bundle("functions/chat.ts", configText),
    bundle("functions/health.ts", configText),
  ]);

  useFunctionEnvironment(table, secrets.endpoint, { CLIENT_KEYS_SECRET: "smoke/client-keys" });
  const chat = await importHandler(chatFile);
  const health = (await importHandler(healthFile)) as (event: unknown, context: unknown) => Promise<unknown>;
  // One scheduled run of the health function, as EventBridge would invoke it.
  await health({}, lambdaContext(60_000));
  functionUrl = await startFunctionUrl(chat);
}, 60_000);

afterAll(async () => {
  await functionUrl?.close();
  await upstream?.close();
  await secrets?.close();
  await table?.close();
  rmSync(outdir, { recursive: true, force: true });
});

describe("npm run smoke against the bundled chat handler behind a (shimmed) Function URL", () => {
  it("passes every line: keys from Secrets Manager, an incremental stream, the health function's check", async () => {
    let out = "";
    const now = () => performance.now();
    const client = createSmokeHttp(now);
    let code: number;
    try {
      code = await runSmokeCli(
        [
          // As the stack output prints it, with a trailing slash.
          "--url",
          `${functionUrl.url}/`,
          "--table",
          table.tableName,
          "--endpoint",
          table.dynamo.endpoint,
          "--json",
        ],
        {
          out: (t) => {
            out += t;
          },
          err: () => {},
          env: { GATEWAY_KEY: CLIENT_KEY },
          http: client,
          now,
          clock: Date.now,
          readHealth: readHealthTable,
        },
      );
    } finally {
      client.close();
    }
    const report = JSON.parse(out) as SmokeReport;
    expect(report.checks.filter((c) => c.status !== "pass")).toEqual([]);
    expect(code).toBe(0);
    expect(report.providers).toEqual(["primary"]);
    expect(report.stream).toMatchObject({ verdict: "incremental", contentChunks: 20, done: true });
    // The smoke test's calls reached the upstream with the key from the secret, never the caller's.
    const chats = upstream.requests.filter((r) => r.path.endsWith("/chat/completions"));
    expect(chats.length).toBe(2);
    expect(chats.every((r) => r.headers.authorization === "Bearer sk-upstream-key-123456")).toBe(true);
  });
});
