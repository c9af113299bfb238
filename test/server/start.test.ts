import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { afterAll, describe, expect, it } from "vitest";
import { createDynamoClient } from "../../lib/aws/dynamodb.ts";
import { DEFAULT_HEALTH } from "../../lib/config/defaults.ts";
import { createDynamoHealthStore } from "../../lib/health/dynamo-store.ts";
import { startLocalDynamo } from "../../lib/server/local-dynamo.ts";
import { jsonOf } from "../support/gateway.ts";
import { startHangingEndpoint } from "../support/hanging-endpoint.ts";

const children: ChildProcess[] = [];
const closers: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const child of children) child.kill("SIGTERM");
  for (const close of closers) await close();
});

/** Runs what `npm start` runs, on port 0, and waits for the line that says where it listens. */
async function start(
  env: Record<string, string>,
): Promise<
  | { url: string; child: ChildProcess; stdout: () => string; stderr: () => string }
  | { code: number | null; stderr: string }
> {
  const child = spawn(process.execPath, ["scripts/run-ts.mjs", "lib/server/main.ts"], {
    env: { ...process.env, PORT: "0", DYNAMODB_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolve) => {
    child.stdout?.on("data", (d) => {
      stdout += d;
      const match = stdout.match(/listening on (http:\/\/\S+)/);
      if (match?.[1] && stdout.includes("try: curl"))
        resolve({ url: match[1], child, stdout: () => stdout, stderr: () => stderr });
    });
    child.on("exit", (code) => resolve({ code, stderr }));
  });
}

describe("npm start", () => {
  it("serves the default mock configuration and says how to try it", async () => {
    const started = await start({});
    if (!("url" in started)) throw new Error(`did not start: ${started.stderr}`);
    const res = await fetch(`${started.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] }),
    });
    const body = await jsonOf(res);
    expect(res.status).toBe(200);
    expect(body.choices[0].message.content).toBe("Hello from the mock provider! You said: Hello");

    const stream = await fetch(`${started.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "demo-failover",
        stream: true,
        messages: [{ role: "user", content: "Hi" }],
      }),
    });
    const text = await stream.text();
    expect(text.trim().endsWith("data: [DONE]")).toBe(true);

    // The health checker writes to the embedded table, and `npm run health` reads it.
    const endpoint = started.stdout().match(/health table: \S+ at (http:\/\/\S+)/)?.[1] ?? "";
    const health = spawnSync(
      process.execPath,
      ["scripts/run-ts.mjs", "lib/health/cli-main.ts", "--endpoint", endpoint],
      {
        encoding: "utf8",
      },
    );
    expect(health.status).toBe(0);
    expect(health.stdout).toMatch(/mock-primary\s+healthy\s+yes/);
    started.child.kill("SIGTERM");
    const [code] = await once(started.child, "exit");
    expect(code).toBe(0);
  }, 20_000);

  it("refuses a bad configuration with a message naming the field", async () => {
    const result = await start({
      GATEWAY_CONFIG_JSON: JSON.stringify({ providers: [{ id: "x", type: "openai" }], models: {} }),
    });
    expect("code" in result && result.code).toBe(1);
    expect("stderr" in result && result.stderr).toContain("invalid configuration: providers[0].apiKey");
  }, 20_000);

  it("listens while the health table hangs, says so, and uses the table once it answers", async () => {
    const hanging = await startHangingEndpoint();
    const dynamo = await startLocalDynamo(0);
    closers.push(
      () => hanging.close(),
      () => dynamo.close(),
    );
    const started = await start({
      DYNAMODB_ENDPOINT: hanging.endpoint,
      HEALTH_TABLE: "hung-table",
      GATEWAY_CONFIG_JSON: JSON.stringify({
        health: { intervalMs: 1_000 },
        providers: [{ id: "mock-primary", type: "mock" }],
        models: { "gpt-4o-mini": { targets: [{ provider: "mock-primary", model: "mock-small" }] } },
      }),
    });
    if (!("url" in started)) throw new Error(`did not start: ${started.stderr}`);
    const res = await fetch(`${started.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] }),
    });
    expect(res.status).toBe(200);
    await expect
      .poll(() => started.stderr(), { timeout: 15_000 })
      .toMatch(/health table hung-table at \S+ is unreachable/);
    expect(
      started
        .stderr()
        .split("\n")
        .filter((l) => l.includes("unreachable")),
    ).toHaveLength(1);

    // DynamoDB answers again: the table is created in the background and the checker's results land.
    hanging.relayTo(dynamo.endpoint);
    const client = createDynamoClient({ endpoint: dynamo.endpoint });
    closers.push(() => client.destroy());
    const store = createDynamoHealthStore({
      client,
      tableName: "hung-table",
      health: DEFAULT_HEALTH,
    });
    await expect
      .poll(
        async () =>
          (await store.read(["mock-primary"], []).catch(() => undefined))?.providers.get("mock-primary")
            ?.status,
        { timeout: 15_000, interval: 200 },
      )
      .toBe("healthy");
    expect(started.stdout()).toMatch(/health table hung-table at \S+ is ready/);

    started.child.kill("SIGTERM");
    const [code] = await once(started.child, "exit");
    expect(code).toBe(0);
  }, 40_000);
});
