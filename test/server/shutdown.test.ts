import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { afterAll, describe, expect, it } from "vitest";
import { createCallerStore } from "../../lib/callers/store.ts";
import { legacyCallerId } from "../../lib/callers/types.ts";
import { hashClientKey } from "../../lib/gateway/auth.ts";
import { startTestTable } from "../support/dynamo.ts";
import { ledgerWrite, startFaultyDynamo } from "../support/faulty-dynamo.ts";

const children: ChildProcess[] = [];
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const close of closers) await close();
});

const KEY = "sk-gw-shutdown-flush-123456";

describe("npm start at SIGTERM", () => {
  it("writes the usage a failed write left in memory, retrying, before it exits (issue 16)", async () => {
    const table = await startTestTable();
    const faulty = await startFaultyDynamo(table.dynamo.endpoint);
    closers.push(
      () => faulty.close(),
      () => table.close(),
    );
    const child = spawn(process.execPath, ["scripts/run-ts.mjs", "lib/server/main.ts"], {
      env: {
        ...process.env,
        PORT: "0",
        DYNAMODB_ENDPOINT: faulty.endpoint,
        HEALTH_TABLE: table.tableName,
        GATEWAY_CLIENT_KEYS: KEY,
        GATEWAY_CONFIG_JSON: JSON.stringify({
          callers: { flushIntervalMs: 200 },
          providers: [{ id: "mock", type: "mock", mock: { firstTokenDelayMs: 0, tokenDelayMs: 0 } }],
          models: { m: { targets: [{ provider: "mock", model: "x" }] } },
        }),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d) => {
      stdout += d;
    });
    child.stderr?.on("data", (d) => {
      stderr += d;
    });
    await expect.poll(() => stdout, { timeout: 15_000 }).toMatch(/try: curl/);
    const url = stdout.match(/listening on (http:\/\/\S+)/)?.[1];

    // The table refuses the ledger's writes while five requests are served.
    faulty.fail = ledgerWrite;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Hello" }] }),
      });
      expect(res.status).toBe(200);
    }
    // A timer flush has failed (and, before issue 16, paused the ledger's writes for 5 s).
    await expect.poll(() => stdout, { timeout: 10_000 }).toMatch(/usage not written to the table/);

    // The table is back, but its next round of writes still fails: only a retry gets them in.
    faulty.failNext(6, ledgerWrite);
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);

    const rows = await createCallerStore(table.client, table.tableName).usage({
      keyId: legacyCallerId(hashClientKey(KEY)),
    });
    expect(rows.map((r) => r.requests)).toEqual([5]);
    expect(stdout + stderr).not.toMatch(/usage not written at shutdown/);
  }, 40_000);
});
