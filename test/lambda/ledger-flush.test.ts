import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCallerStore } from "../../lib/callers/store.ts";
import { legacyCallerId } from "../../lib/callers/types.ts";
import { hashClientKey } from "../../lib/gateway/auth.ts";
import type { GatewayRequest } from "../../lib/gateway/response.ts";
import { createLambdaRuntime } from "../../lib/lambda/runtime.ts";
import type { GatewayRuntime } from "../../lib/runtime.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { type FakeSecrets, startFakeSecrets, useLoopbackAws } from "../support/fake-secrets.ts";
import { type FaultyDynamo, ledgerWrite, startFaultyDynamo } from "../support/faulty-dynamo.ts";

/**
 * The Lambda runtime's ledger against a table whose writes fail (a fault-injecting proxy in front
 * of dynalite), issue 16: usage is written before the invocation returns even when a write fails
 * once; what an invocation could not write is written by the next one; a SIGTERM flushes it.
 */
const KEYS = ["sk-gw-flush-retry-111111", "sk-gw-flush-next-222222", "sk-gw-flush-stop-333333"] as const;

let table: TestTable;
let faulty: FaultyDynamo;
let secrets: FakeSecrets;
const runtimes: GatewayRuntime[] = [];

beforeAll(async () => {
  table = await startTestTable();
  faulty = await startFaultyDynamo(table.dynamo.endpoint);
  secrets = await startFakeSecrets({
    "flush/client-keys": JSON.stringify({ sha256: KEYS.map(hashClientKey) }),
  });
  useLoopbackAws(faulty.endpoint, secrets.endpoint);
});
afterAll(async () => {
  for (const runtime of runtimes) runtime.http.close();
  await secrets.close();
  await faulty.close();
  await table.close();
});

function lambdaRuntime(onShutdown: (flush: () => Promise<void>) => void = () => {}): GatewayRuntime {
  const runtime = createLambdaRuntime(
    {
      ...process.env,
      LOG_LEVEL: "off",
      GATEWAY_TABLE: table.tableName,
      CLIENT_KEYS_SECRET: "flush/client-keys",
      AUTH_MODE: "NONE",
      GATEWAY_CONFIG_JSON: JSON.stringify({
        providers: [{ id: "mock", type: "mock", mock: { firstTokenDelayMs: 0, tokenDelayMs: 0 } }],
        models: { m: { targets: [{ provider: "mock", model: "x" }] } },
      }),
    },
    onShutdown,
  );
  runtimes.push(runtime);
  return runtime;
}

/** One invocation, as functions/chat.ts hands it to the gateway (30 s left after the margin). */
function invocation(key: string, stream = false): GatewayRequest {
  return {
    method: "POST",
    path: "/v1/chat/completions",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "m", stream, messages: [{ role: "user", content: "Hello" }] }),
    signal: new AbortController().signal,
    remainingMs: 30_000,
  };
}

/** The requests the table holds for a key, read from dynalite directly (not through the proxy). */
async function requestsInTable(key: string): Promise<number[]> {
  const rows = await createCallerStore(table.client, table.tableName).usage({
    keyId: legacyCallerId(hashClientKey(key)),
  });
  return rows.map((r) => r.requests);
}

const failedWrites = () => faulty.calls.filter((c) => c.failed).length;

describe("the Lambda runtime's usage ledger with a table that fails writes", () => {
  it("retries a failed write before the invocation returns, whole answer or stream", async () => {
    const runtime = lambdaRuntime();
    const [key] = KEYS;
    // Every write of the first round fails, the SDK's own retry of each too (3 items, 2 tries).
    faulty.failNext(6, ledgerWrite);
    const before = failedWrites();

    const whole = await runtime.gateway.handle(invocation(key));
    expect(whole.status).toBe(200);
    // `handle` resolving is the invocation returning its whole answer: the usage is already there.
    expect(failedWrites() - before).toBe(6);
    expect(await requestsInTable(key)).toEqual([1]);

    faulty.failNext(6, ledgerWrite);
    const streamed = await runtime.gateway.handle(invocation(key, true));
    if (typeof streamed.body === "string") throw new Error("expected a stream");
    let text = "";
    for await (const piece of streamed.body) text += piece;
    expect(text.trim().endsWith("data: [DONE]")).toBe(true);
    // The stream's end is the invocation's end: the usage is there once the last event is out.
    expect(failedWrites() - before).toBe(12);
    expect(await requestsInTable(key)).toEqual([2]);
  });

  it("keeps what a failing invocation could not write and writes it with the next invocation", async () => {
    const runtime = lambdaRuntime();
    const [, key] = KEYS;
    faulty.fail = ledgerWrite; // the table refuses every ledger write for the whole invocation

    expect((await runtime.gateway.handle(invocation(key))).status).toBe(200);
    expect(await requestsInTable(key)).toEqual([]);

    faulty.fail = () => false;
    expect((await runtime.gateway.handle(invocation(key))).status).toBe(200);
    expect(await requestsInTable(key)).toEqual([2]);
  });

  it("flushes what a failed invocation left at a SIGTERM (delivered when an extension is registered)", async () => {
    let shutdown: (() => Promise<void>) | undefined;
    const runtime = lambdaRuntime((flush) => {
      shutdown = flush;
    });
    const [, , key] = KEYS;
    faulty.fail = ledgerWrite;
    expect((await runtime.gateway.handle(invocation(key))).status).toBe(200);
    expect(await requestsInTable(key)).toEqual([]);

    // The table is back: before issue 16 nothing wrote this usage before the environment went.
    // (Retries fit too when the table answers fast, but 250 ms rarely holds one after the SDK's own.)
    faulty.fail = () => false;
    await shutdown?.();
    expect(await requestsInTable(key)).toEqual([1]);
  });
});
