import { afterEach, describe, expect, it } from "vitest";
import { createDynamoClient } from "../../lib/aws/dynamodb.ts";
import { DEFAULT_HEALTH } from "../../lib/config/defaults.ts";
import { createDynamoHealthStore } from "../../lib/health/dynamo-store.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { createFakeClock, type FakeClock } from "../support/fake-clock.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { chatBody, postChat, startGateway, type TestGateway } from "../support/gateway.ts";
import { twoUpstreamDocument } from "../support/two-upstreams.ts";

let table: TestTable;
let a: FakeUpstream;
let b: FakeUpstream;
const gateways: TestGateway[] = [];

afterEach(async () => {
  for (const g of gateways.splice(0)) await g.close();
  await a?.close();
  await b?.close();
  await table?.close();
});

async function setup() {
  table = await startTestTable();
  a = await startFakeUpstream();
  b = await startFakeUpstream();
}

function document(extra: { strategy?: string; cacheTtlMs?: number } = {}) {
  return twoUpstreamDocument(a.url, b.url, {
    defaults: {
      retry: { maxAttempts: 1 },
      cooldown: { minRequests: 2, cooldownMs: 60_000 },
      ...(extra.strategy ? { strategy: extra.strategy } : {}),
    },
    health: { cacheTtlMs: extra.cacheTtlMs ?? 50 },
  });
}

async function gateway(
  extra: { strategy?: string; cacheTtlMs?: number } = {},
  options: { clock?: FakeClock; random?: () => number } = {},
) {
  const g = await startGateway(document(extra), {
    healthStore: table.store(),
    ...options,
  });
  gateways.push(g);
  return g;
}

describe("health shared across instances through DynamoDB", () => {
  it("one instance's discovery that a target is down benches it for every instance", async () => {
    await setup();
    const first = await gateway();
    a.fallback = { kind: "status", status: 503 };
    await postChat(first.url, chatBody("m"));
    await postChat(first.url, chatBody("m"));
    await expect
      .poll(async () => (await table.store().read([], ["a/model-a"])).targets.get("a/model-a")?.cooldownUntil)
      .toBeGreaterThan(Date.now());

    const second = await gateway();
    const res = await postChat(second.url, chatBody("m"));

    expect(res.status).toBe(200);
    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(res.headers.get("x-gateway-attempts")).toBe("1");
    expect(a.requests).toHaveLength(2);
  });

  it("orders by the table's health: an unhealthy provider is tried last", async () => {
    await setup();
    const store = table.store();
    for (let i = 0; i < DEFAULT_HEALTH.failureThreshold; i++) {
      await store.applyCheck(
        "a",
        { ok: false, status: 500, latencyMs: 1, ttftMs: undefined, error: "HTTP 500" },
        Date.now(),
      );
    }
    const g = await gateway();

    const res = await postChat(g.url, chatBody("m"));

    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(a.requests).toHaveLength(0);
  });

  it("an operator disables a provider or moves its weight with no redeploy", async () => {
    await setup();
    // The cache's 50 ms TTL runs on a fake clock. With equal weights a random draw of 0 picks a.
    const clock = createFakeClock();
    const g = await gateway({ strategy: "WEIGHTED" }, { clock, random: () => 0 });
    const provider = async () => (await postChat(g.url, chatBody("m"))).headers.get("x-gateway-provider");
    expect(await provider()).toBe("a");

    const store = table.store();
    await store.setWeight("a", 0);
    await clock.advance(60);
    await provider(); // the first request after the TTL refreshes in the background
    await expect.poll(() => g.runtime.healthView.provider("a")?.weight).toBe(0);
    for (let i = 0; i < 5; i++) expect(await provider()).toBe("b");

    await store.setEnabled("b", false);
    await clock.advance(60);
    await provider();
    await expect.poll(() => g.runtime.healthView.provider("b")?.enabled).toBe(false);
    expect(await provider()).toBe("a");
  });

  it("costs no table read per request while the cache is fresh", async () => {
    await setup();
    const g = await gateway({ cacheTtlMs: 60_000 });
    for (let i = 0; i < 20; i++) await postChat(g.url, chatBody("m"));
    expect(g.runtime.healthView.reads).toBe(1);
  });

  it("keeps serving when the table cannot be reached", async () => {
    await setup();
    const dead = await startTestTable();
    const endpoint = dead.dynamo.endpoint;
    await dead.close();
    const client = createDynamoClient({ endpoint });
    const store = createDynamoHealthStore({
      client,
      tableName: "gone",
      health: DEFAULT_HEALTH,
    });
    const g = await startGateway(document(), { healthStore: store });
    gateways.push(g);
    // Two failures in two requests trip the breaker (minRequests 2), whose bench cannot be written.
    a.queue.push({ kind: "status", status: 503 }, { kind: "status", status: 503 });

    const res = await postChat(g.url, chatBody("m"));
    const again = await postChat(g.url, chatBody("m"));

    expect(res.status).toBe(200);
    expect(again.status).toBe(200);
    await expect
      .poll(() => g.logs.some((l) => l.msg === "health table unreadable; serving last known state"))
      .toBe(true);
    await expect
      .poll(() => g.logs.some((l) => String(l.msg).startsWith("health table write failed")))
      .toBe(true);
    client.destroy();
  });
});
