import { describe, expect, it } from "vitest";
import { DEFAULT_HEALTH } from "../../lib/config/defaults.ts";
import { createMemoryHealthStore } from "../../lib/health/memory-store.ts";
import type { HealthStore } from "../../lib/health/types.ts";
import { createHealthView } from "../../lib/health/view.ts";
import { createFakeClock } from "../support/fake-clock.ts";
import { type LogLine, recordingLogger } from "../support/gateway.ts";

function setup(store: HealthStore) {
  const clock = createFakeClock(0);
  const logs: LogLine[] = [];
  const view = createHealthView({
    store,
    providerIds: ["p"],
    targets: ["p/m"],
    ttlMs: 5000,
    firstReadTimeoutMs: 50,
    readTimeoutMs: 1000,
    now: clock.now,
    setTimer: clock.setTimer,
    logger: recordingLogger(logs),
  });
  return { view, logs, clock, advance: (ms: number) => clock.advance(ms) };
}

const good = { ok: true, status: 200, latencyMs: 1, ttftMs: undefined, error: undefined };

describe("health view (the request path's cached copy)", () => {
  it("reads the table once per TTL, not once per request", async () => {
    const store = createMemoryHealthStore(DEFAULT_HEALTH);
    await store.applyCheck("p", good, 0);
    const { view, advance } = setup(store);

    for (let i = 0; i < 100; i++) {
      await view.refresh();
      await advance(10);
    }
    expect(view.reads).toBe(1);
    expect(view.provider("p")?.status).toBe("healthy");

    await advance(5000);
    await view.refresh();
    expect(view.reads).toBe(2);
  });

  it("serves a stale copy while it refreshes in the background", async () => {
    const store = createMemoryHealthStore(DEFAULT_HEALTH);
    await store.applyCheck("p", good, 0);
    let releaseRead = () => {};
    let gated = false;
    const slow: HealthStore = {
      ...store,
      read: async (ids, targets) => {
        if (gated)
          await new Promise<void>((r) => {
            releaseRead = r;
          });
        return store.read(ids, targets);
      },
    };
    const { view, advance } = setup(slow);
    await view.refresh();
    await store.setEnabled("p", false);
    gated = true;

    await advance(6000);
    await view.refresh(); // the TTL passed: a read starts, and the request does not wait for it
    expect(view.provider("p")?.enabled).toBeUndefined();
    expect(view.reads).toBe(2);

    releaseRead();
    await expect.poll(() => view.provider("p")?.enabled).toBe(false);
  });

  it("keeps serving the last known state when the table becomes unreadable, and says so once", async () => {
    const store = createMemoryHealthStore(DEFAULT_HEALTH);
    await store.applyCheck("p", good, 0);
    let broken = false;
    const flaky: HealthStore = {
      ...store,
      read: (ids, targets) => (broken ? Promise.reject(new Error("unreachable")) : store.read(ids, targets)),
    };
    const { view, logs, advance } = setup(flaky);
    await view.refresh();

    broken = true;
    for (let i = 0; i < 3; i++) {
      await advance(6000);
      await view.refresh();
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(view.provider("p")?.status).toBe("healthy");
    expect(logs.filter((l) => l.msg === "health table unreadable; serving last known state")).toHaveLength(1);
  });

  it("does not hold a request longer than the first-read timeout when the table hangs", async () => {
    const hanging: HealthStore = {
      ...createMemoryHealthStore(DEFAULT_HEALTH),
      read: () => new Promise(() => {}),
    };
    const { view, advance } = setup(hanging);
    let served = false;
    const refreshed = view.refresh().then(() => {
      served = true;
    });

    await advance(49);
    expect(served).toBe(false);
    await advance(1);
    expect(served).toBe(true);
    await refreshed;
    expect(view.provider("p")).toBeUndefined();
  });

  it("abandons a read that hangs past the read timeout, so a later refresh reads again", async () => {
    const store = createMemoryHealthStore(DEFAULT_HEALTH);
    await store.applyCheck("p", good, 0);
    let hang = true;
    const sometimes: HealthStore = {
      ...store,
      read: (ids, targets) => (hang ? new Promise(() => {}) : store.read(ids, targets)),
    };
    const { view, logs, advance } = setup(sometimes);
    const first = view.refresh();
    await advance(50); // the first-read wait ends; the read itself is still out
    await first;
    expect(view.reads).toBe(1);

    await advance(949);
    expect(logs.some((l) => l.msg === "health table unreadable; serving last known state")).toBe(false);
    await advance(1); // the read timeout: abandoned, logged, and "fresh" for a TTL
    expect(logs.some((l) => l.msg === "health table unreadable; serving last known state")).toBe(true);

    hang = false;
    await advance(5000);
    await view.refresh();
    expect(view.reads).toBe(2);
    await expect.poll(() => view.provider("p")?.status).toBe("healthy");
  });

  it("reports a target's cooldown only while it is in force", async () => {
    const store = createMemoryHealthStore(DEFAULT_HEALTH);
    await store.recordTargetFailure("p/m", { until: 1000, reason: "rate_limited" }, 0);
    const { view } = setup(store);
    await view.refresh();
    expect(view.cooldown("p/m", 500)).toEqual({ until: 1000, reason: "rate_limited" });
    expect(view.cooldown("p/m", 1000)).toBeUndefined();
    expect(view.hasFailures("p/m")).toBe(true);
  });
});
