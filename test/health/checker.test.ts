import { afterEach, describe, expect, it } from "vitest";
import { setTimer, silentLogger, sleep } from "../../lib/deps.ts";
import { createHealthChecker, type HealthChecker } from "../../lib/health/checker.ts";
import { createMemoryHealthStore } from "../../lib/health/memory-store.ts";
import { createHttpClient } from "../../lib/http/client.ts";
import { createProviderFactory } from "../../lib/providers/factory.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import type { HealthResult, Provider } from "../../lib/providers/types.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import { createFakeClock, type FakeClock } from "../support/fake-clock.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";

const http = createHttpClient();
const deps = { now: Date.now, sleep, setTimer, random: () => 0.5, newId: () => "id", logger: silentLogger };
const upstreams: FakeUpstream[] = [];
const checkers: HealthChecker[] = [];

afterEach(async () => {
  for (const c of checkers.splice(0)) c.stop();
  for (const u of upstreams.splice(0)) await u.close();
});

async function setup(
  health: Record<string, unknown>,
  providers: (urls: string[]) => unknown[],
  options: { clock?: FakeClock; wrap?: (provider: Provider) => Provider } = {},
) {
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
  const { clock } = options;
  const clocked = clock ? { ...deps, now: clock.now, sleep: clock.sleep, setTimer: clock.setTimer } : deps;
  const factory = createProviderFactory(config, {
    http,
    keys: envKeys({ K: "sk-test-123456" }),
    deps: clocked,
  });
  const store = createMemoryHealthStore(config.health);
  const wrap = options.wrap ?? ((p: Provider) => p);
  const checker = createHealthChecker({
    config,
    providers: () => config.providers.map((p) => wrap(factory.getProvider(p.id) as Provider)),
    store,
    deps: clocked,
  });
  checkers.push(checker);
  return { fast, slow, store, checker };
}

const provider = (id: string, url: string | undefined, extra: object = {}) => ({
  id,
  type: "openai",
  baseUrl: url,
  apiKey: { env: "K" },
  ...extra,
});

/** One streamed chunk of a chat completion, as an SSE event. */
const sseChunk = (delta: Record<string, unknown>, finish: string | null) =>
  `data: ${JSON.stringify({
    id: "chatcmpl-probe",
    object: "chat.completion.chunk",
    created: 0,
    model: "probe-model",
    choices: [{ index: 0, delta, finish_reason: finish }],
  })}\n\n`;

const OK: HealthResult = { ok: true, status: 200, latencyMs: 1, ttftMs: undefined, error: undefined };

describe("health checker", () => {
  it("checks in parallel: a hanging provider does not hold back the others' results", async () => {
    const clock = createFakeClock();
    // The hanging provider comes first: checked one after the other, "fast" would wait for it.
    const { slow, store, checker } = await setup(
      { timeoutMs: 5000 },
      ([a, b]) => [provider("slow", b), provider("fast", a)],
      { clock },
    );
    slow.fallback = { kind: "hang" };

    let settled = false;
    const run = checker.runOnce().finally(() => {
      settled = true;
    });
    await expect
      .poll(async () => (await store.read(["fast"], [])).providers.get("fast")?.status)
      .toBe("healthy");
    expect(settled).toBe(false);

    // The probe's own timeout, on the fake clock (the socket's timers are real and 5 s long).
    await clock.advance(5000);
    const outcomes = await run;
    expect(outcomes.find((o) => o.providerId === "slow")).toMatchObject({
      ok: false,
      error: "slow: no answer within 5000 ms",
    });
    expect((await store.read(["slow"], [])).providers.get("slow")?.status).toBe("degraded");
  });

  it("probes with a one-token chat when configured, measuring time to first token", async () => {
    const clock = createFakeClock(0);
    const { fast, slow, store, checker } = await setup(
      { degradedTtftMs: 100 },
      ([a, b]) => [
        provider("fast", a, { healthCheck: { kind: "chat", model: "probe-model" } }),
        provider("slow", b, { healthCheck: { kind: "chat", model: "probe-model" } }),
      ],
      { clock },
    );
    // slow sends a keep-alive, waits until fast's result is written (so fast's probe sees no time
    // pass), then 200 ms pass on the clock before its first token.
    slow.queue.push({
      kind: "custom",
      respond: async (_record, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(": keep-alive\n\n");
        await expect.poll(async () => (await store.read(["fast"], [])).providers.get("fast")).toBeDefined();
        await clock.advance(200);
        res.write(sseChunk({ role: "assistant", content: "pong" }, null));
        res.end(`${sseChunk({}, "length")}data: [DONE]\n\n`);
      },
    });

    await checker.runOnce();

    const probe = fast.requests[0];
    expect(probe?.body).toMatchObject({ model: "probe-model", max_tokens: 1, stream: true });
    const { providers } = await store.read(["fast", "slow"], []);
    expect(providers.get("fast")?.status).toBe("healthy");
    expect(providers.get("fast")?.ttftMs).toBe(0);
    expect(providers.get("slow")?.status).toBe("degraded");
    expect(providers.get("slow")?.ttftMs).toBe(200);
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

  it("start() checks at once, then every intervalMs on the clock, until stop()", async () => {
    const clock = createFakeClock(0);
    const probedAt: number[] = [];
    const { checker } = await setup(
      { intervalMs: 30_000 },
      ([a, b]) => [provider("fast", a), provider("slow", b)],
      {
        clock,
        wrap: (p) => ({
          ...p,
          healthCheck: async () => {
            if (p.id === "fast") probedAt.push(clock.now());
            return OK;
          },
        }),
      },
    );

    checker.start();
    checker.start(); // a second start is no second loop
    await clock.advance(29_999);
    expect(probedAt).toEqual([0]);
    await clock.advance(1);
    expect(probedAt).toEqual([0, 30_000]);
    await clock.advance(60_000);
    expect(probedAt).toEqual([0, 30_000, 60_000, 90_000]);

    checker.stop();
    await clock.advance(300_000);
    expect(probedAt).toEqual([0, 30_000, 60_000, 90_000]);
    expect(clock.pending()).toEqual([]);
  });

  it("start() never overlaps two runs: a tick during a slow run is skipped", async () => {
    const clock = createFakeClock(0);
    const probedAt: number[] = [];
    let finish: (result: HealthResult) => void = () => {};
    const { checker } = await setup(
      { intervalMs: 1_000, timeoutMs: 10_000 },
      ([a, b]) => [provider("fast", a), provider("slow", b)],
      {
        clock,
        wrap: (p) => ({
          ...p,
          // Only "fast" is slow to answer; "slow" answers at once.
          healthCheck: () => {
            if (p.id !== "fast") return Promise.resolve(OK);
            probedAt.push(clock.now());
            return new Promise<HealthResult>((resolve) => {
              finish = resolve;
            });
          },
        }),
      },
    );

    checker.start();
    await clock.advance(3_500); // ticks at 1, 2 and 3 s find the first run still going
    expect(probedAt).toEqual([0]);

    finish(OK);
    await clock.advance(500);
    expect(probedAt).toEqual([0, 4_000]);
  });
});
