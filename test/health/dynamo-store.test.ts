import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HealthResult } from "../../lib/providers/types.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";

const good: HealthResult = { ok: true, status: 200, latencyMs: 40, ttftMs: undefined, error: undefined };
const bad: HealthResult = { ok: false, status: 503, latencyMs: 10, ttftMs: undefined, error: "HTTP 503" };

let table: TestTable;
beforeAll(async () => {
  table = await startTestTable();
});
afterAll(async () => {
  await table.close();
});

describe("DynamoDB health store", () => {
  it("goes healthy -> degraded -> unhealthy at the threshold -> recovered after enough good checks", async () => {
    const store = table.store({ health: { failureThreshold: 3, recoveryThreshold: 2 } });
    const statuses: string[] = [];
    for (const result of [good, bad, bad, bad, good, good, good]) {
      statuses.push((await store.applyCheck("p1", result, 1000)).status);
    }
    expect(statuses).toEqual([
      "healthy",
      "degraded",
      "degraded",
      "unhealthy",
      "unhealthy",
      "healthy",
      "healthy",
    ]);

    const { providers } = await store.read(["p1"], []);
    expect(providers.get("p1")).toMatchObject({
      status: "healthy",
      consecutiveFailures: 0,
      consecutiveSuccesses: 3,
      lastCheckAt: 1000,
      latencyMs: 40,
      lastError: undefined,
      version: 7,
    });
  });

  it("marks a good but slow provider degraded", async () => {
    const store = table.store({ health: { degradedLatencyMs: 100, degradedTtftMs: 50 } });
    expect((await store.applyCheck("slow", { ...good, latencyMs: 500 }, 0)).status).toBe("degraded");
    expect((await store.applyCheck("slow-ttft", { ...good, latencyMs: 60, ttftMs: 80 }, 0)).status).toBe(
      "degraded",
    );
  });

  it("loses no update when two writers fold checks in at the same time", async () => {
    const writerA = table.store();
    const writerB = table.store();
    await Promise.all([
      ...Array.from({ length: 6 }, () => writerA.applyCheck("race", bad, 0)),
      ...Array.from({ length: 6 }, () => writerB.applyCheck("race", bad, 0)),
    ]);
    const state = (await writerA.read(["race"], [])).providers.get("race");
    expect(state?.consecutiveFailures).toBe(12);
    expect(state?.version).toBe(12);
  });

  it("never overwrites an operator's weight or switch with a check", async () => {
    const store = table.store();
    await store.applyCheck("ops", good, 0);
    await store.setWeight("ops", 7);
    await store.setEnabled("ops", false);
    await store.applyCheck("ops", bad, 0);
    const state = (await store.read(["ops"], [])).providers.get("ops");
    expect(state).toMatchObject({ weight: 7, enabled: false, consecutiveFailures: 1 });
  });

  it("ignores history records whose TTL has passed, newest first", async () => {
    const store = table.store();
    const now = 1_800_000_000_000;
    const nowS = now / 1000;
    await store.appendHistory({ ...good, providerId: "h", at: now - 3000, ttl: nowS - 1 });
    await store.appendHistory({ ...bad, providerId: "h", at: now - 2000, ttl: nowS + 3600 });
    await store.appendHistory({ ...good, providerId: "h", at: now - 1000, ttl: nowS + 3600 });
    const records = await store.history("h", 10, now);
    expect(records.map((r) => r.at)).toEqual([now - 1000, now - 2000]);
    expect(records[1]).toMatchObject({ ok: false, status: 503, error: "HTTP 503" });
  });

  it("shares each instance's bench fleet-wide, keeping the longest and counting every one", async () => {
    const instance1 = table.store();
    const instance2 = table.store();
    await Promise.all([
      instance1.recordTargetFailure("p/m", { until: 10_100, reason: "failing" }, 100),
      instance2.recordTargetFailure("p/m", { until: 5_000, reason: "rate_limited" }, 100),
    ]);
    await instance2.recordTargetFailure("p/m", { until: 8_000, reason: "rate_limited" }, 200);
    expect((await instance1.read([], ["p/m"])).targets.get("p/m")).toMatchObject({
      cooldownUntil: 10_100,
      reason: "failing",
    });
    await instance2.recordTargetFailure("p/m", { until: 20_000, reason: "failing" }, 300);
    expect((await instance1.read([], ["p/m"])).targets.get("p/m")).toMatchObject({
      failures: 2,
      cooldownUntil: 20_000,
    });
  });

  it("keeps a rate-limit bench through an active check; a live success clears it", async () => {
    const store = table.store();
    await store.recordTargetFailure("rl/m", { until: 21_000, reason: "rate_limited" }, 1000);
    expect((await store.read([], ["rl/m"])).targets.get("rl/m")).toMatchObject({
      cooldownUntil: 21_000,
      reason: "rate_limited",
    });

    await store.clearTarget("rl/m", 5000, true);
    expect((await store.read([], ["rl/m"])).targets.get("rl/m")?.cooldownUntil).toBe(21_000);
    await store.clearTarget("rl/m", 5000, false);
    expect((await store.read([], ["rl/m"])).targets.get("rl/m")).toMatchObject({
      failures: 0,
      cooldownUntil: undefined,
    });
  });

  it("reads many providers and targets in one go, skipping unknown ones", async () => {
    const store = table.store();
    await table.client.send(
      new PutItemCommand({
        TableName: table.tableName,
        Item: {
          pk: { S: "PROVIDER#manual" },
          sk: { S: "STATE" },
          status: { S: "unhealthy" },
          version: { N: "3" },
        },
      }),
    );
    const ids = Array.from({ length: 150 }, (_, i) => `none-${i}`).concat("manual");
    const snapshot = await store.read(ids, ["nobody/none"]);
    expect([...snapshot.providers.keys()]).toEqual(["manual"]);
    expect(snapshot.providers.get("manual")?.status).toBe("unhealthy");
  });
});
