import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../../lib/config/validate.ts";
import { setTimer, silentLogger, sleep } from "../../lib/deps.ts";
import { createHealthChecker } from "../../lib/health/checker.ts";
import { createMemoryHealthStore } from "../../lib/health/memory-store.ts";
import { createHttpClient } from "../../lib/http/client.ts";
import { createProviderFactory } from "../../lib/providers/factory.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import type { Provider } from "../../lib/providers/types.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";

const http = createHttpClient();
const deps = { now: Date.now, sleep, setTimer, random: () => 0.5, newId: () => "id", logger: silentLogger };
const upstreams: FakeUpstream[] = [];

afterEach(async () => {
  for (const u of upstreams.splice(0)) await u.close();
});

async function setup(health: Record<string, unknown>, providers: (urls: string[]) => unknown[]) {
  const fast = await startFakeUpstream();
  const slow = await startFakeUpstream();
  upstreams.push(fast, slow);
  const config = validateConfig({
    health,
    providers: providers([fast.url, slow.url]),
    models: {
      m: {
        targets: [
          { provider: "fast", model: "m1" },
          { provider: "slow", model: "m2" },
        ],
      },
    },
  });
  const factory = createProviderFactory(config, { http, keys: envKeys({ K: "sk-test-123456" }), deps });
  const store = createMemoryHealthStore(config.health);
  const checker = createHealthChecker({
    config,
    providers: () => config.providers.map((p) => factory.getProvider(p.id) as Provider),
    store,
    deps,
  });
  return { fast, slow, store, checker };
}

const provider = (id: string, url: string | undefined, extra: object = {}) => ({
  id,
  type: "openai",
  baseUrl: url,
  apiKey: { env: "K" },
  ...extra,
});

describe("health checker", () => {
  it("checks in parallel: a hanging provider does not hold back the others' results", async () => {
    const { slow, store, checker } = await setup({ timeoutMs: 400 }, ([a, b]) => [
      provider("fast", a),
      provider("slow", b),
    ]);
    slow.fallback = { kind: "hang" };

    const started = Date.now();
    const run = checker.runOnce();
    await expect
      .poll(async () => (await store.read(["fast"], [])).providers.get("fast")?.status, {
        timeout: 300,
        interval: 10,
      })
      .toBe("healthy");
    expect(Date.now() - started).toBeLessThan(300);

    const outcomes = await run;
    expect(outcomes.find((o) => o.providerId === "slow")).toMatchObject({
      ok: false,
      error: "slow: no answer within 400 ms",
    });
    expect((await store.read(["slow"], [])).providers.get("slow")?.status).toBe("degraded");
  });

  it("probes with a one-token chat when configured, measuring time to first token", async () => {
    const { fast, slow, store, checker } = await setup({ degradedTtftMs: 100 }, ([a, b]) => [
      provider("fast", a, { healthCheck: { kind: "chat", model: "probe-model" } }),
      provider("slow", b, { healthCheck: { kind: "chat", model: "probe-model" } }),
    ]);
    slow.fallback = { kind: "answer", firstTokenDelayMs: 200, keepAliveEveryMs: 20 };

    await checker.runOnce();

    const probe = fast.requests[0];
    expect(probe?.body).toMatchObject({ model: "probe-model", max_tokens: 1, stream: true });
    const { providers } = await store.read(["fast", "slow"], []);
    expect(providers.get("fast")?.status).toBe("healthy");
    expect(providers.get("fast")?.ttftMs).toBeLessThan(100);
    expect(providers.get("slow")?.status).toBe("degraded");
    expect(providers.get("slow")?.ttftMs).toBeGreaterThanOrEqual(200);
  });

  it("records history, and a good check clears failing targets but lets a rate limit run its course", async () => {
    const { store, checker } = await setup({}, ([a, b]) => [provider("fast", a), provider("slow", b)]);
    const now = Date.now();
    await store.recordTargetFailure("fast/m1", { until: now + 60_000, reason: "failing" }, now);
    await store.recordTargetFailure("slow/m2", { until: now + 60_000, reason: "rate_limited" }, now);

    await checker.runOnce();

    const { targets } = await store.read([], ["fast/m1", "slow/m2"]);
    expect(targets.get("fast/m1")).toBeUndefined();
    expect(targets.get("slow/m2")?.reason).toBe("rate_limited");
    expect((await store.history("fast", 5, Date.now())).length).toBe(1);
  });

  it("writes nothing for targets that have no live failures", async () => {
    const { store, checker } = await setup({}, ([a, b]) => [provider("fast", a), provider("slow", b)]);
    const cleared: string[] = [];
    const clear = store.clearTarget.bind(store);
    store.clearTarget = (target, now, keep) => {
      cleared.push(target);
      return clear(target, now, keep);
    };

    await checker.runOnce();
    expect(cleared).toEqual([]);

    await store.recordTargetFailure("fast/m1", { until: Date.now() + 60_000, reason: "failing" }, Date.now());
    await checker.runOnce();
    expect(cleared).toEqual(["fast/m1"]);
  });

  it("reports an unhealthy provider after the threshold and recovers it", async () => {
    const { fast, store, checker } = await setup({ failureThreshold: 2, recoveryThreshold: 1 }, ([a, b]) => [
      provider("fast", a),
      provider("slow", b),
    ]);
    fast.queue.push({ kind: "status", status: 500 }, { kind: "status", status: 500 });
    await checker.runOnce();
    await checker.runOnce();
    expect((await store.read(["fast"], [])).providers.get("fast")?.status).toBe("unhealthy");
    await checker.runOnce();
    expect((await store.read(["fast"], [])).providers.get("fast")?.status).toBe("healthy");
  });
});
