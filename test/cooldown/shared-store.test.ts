import { describe, expect, it } from "vitest";
import { createMemoryCooldownStore } from "../../lib/cooldown/memory-store.ts";
import {
  createSharedCooldownStore,
  type FleetCooldownTable,
  type FleetCooldownView,
} from "../../lib/cooldown/shared-store.ts";
import type { Cooldown } from "../../lib/cooldown/types.ts";
import { type LogLine, recordingLogger } from "../support/gateway.ts";

const policy = {
  failureRateThreshold: 0.5,
  minRequests: 2,
  windowMs: 10_000,
  cooldownMs: 30_000,
  maxCooldownMs: 60_000,
};
const T = "p/m";

/**
 * A fake health table: `started` records each write when the store issues it; each write then waits
 * until `release()` lets it finish.
 */
function fakeTable(fail = false) {
  const started: string[] = [];
  const pending: Array<() => void> = [];
  const write = (what: string) => {
    started.push(what);
    return new Promise<void>((resolve, reject) => {
      pending.push(() => (fail ? reject(new Error("table down")) : resolve()));
    });
  };
  const table: FleetCooldownTable = {
    recordTargetFailure: (target: string, bench: Cooldown) => write(`bench ${target} until ${bench.until}`),
    clearTarget: (target: string) => write(`clear ${target}`),
  };
  /** Finishes every write issued so far, then lets the store's promise chains settle. */
  const release = async () => {
    for (let n = 0; n < 5; n++) {
      for (const finish of pending.splice(0)) finish();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { table, writes: started, release };
}

function fakeView(
  benches: Map<string, Cooldown> = new Map(),
  failures = new Set<string>(),
): FleetCooldownView {
  return {
    cooldown: (target, now) => {
      const b = benches.get(target);
      return b !== undefined && b.until > now ? b : undefined;
    },
    hasFailures: (target) => failures.has(target),
  };
}

function shared(view: FleetCooldownView, table: FleetCooldownTable, logs: LogLine[] = []) {
  return createSharedCooldownStore(createMemoryCooldownStore(policy), view, table, recordingLogger(logs), {
    now: () => 0,
    minSharedMs: 5_000,
  });
}

describe("the shared cooldown store", () => {
  it("refuses a target another instance benched in the table, until that bench ends", () => {
    const { table } = fakeTable();
    const store = shared(fakeView(new Map([[T, { until: 1_000, reason: "failing" }]])), table);
    expect(store.get(T, 500)).toEqual({ until: 1_000, reason: "failing" });
    expect(store.get(T, 1_000)).toBeUndefined();
    expect(store.get("p/other", 500)).toBeUndefined();
  });

  it("writes a bench it decides to the table once, and a short one not at all", async () => {
    const { table, writes, release } = fakeTable();
    const store = shared(fakeView(), table);
    // Under the sharing threshold (5 s): other instances would only read it after it ended.
    expect(store.recordFailure("p/short", { status: 429, retryAfterMs: 1_000 }, 0)).toBeDefined();
    store.recordFailure(T, { status: 500, retryAfterMs: undefined }, 0);
    expect(store.recordFailure(T, { status: 500, retryAfterMs: undefined }, 0)).toEqual({
      until: 30_000,
      reason: "failing",
      since: 0,
    });
    await release();
    expect(writes).toEqual([`bench ${T} until 30000`]);
  });

  it("clears in the table the target it benched on its next success, after the bench is written", async () => {
    const { table, writes, release } = fakeTable();
    const store = shared(fakeView(), table);
    store.recordFailure(T, { status: 500, retryAfterMs: undefined }, 0);
    store.recordFailure(T, { status: 500, retryAfterMs: undefined }, 0);
    // The bench write has not completed yet: the recovery waits behind it, never races it.
    store.recordSuccess(T, 40_000);
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([`bench ${T} until 30000`]);
    await release();
    expect(writes).toEqual([`bench ${T} until 30000`, `clear ${T}`]);
    // Nothing left to clear: healthy traffic costs no writes.
    store.recordSuccess(T, 41_000);
    await release();
    expect(writes).toHaveLength(2);
  });

  it("clears a target the fleet counts failures for on a success here", async () => {
    const { table, writes, release } = fakeTable();
    const store = shared(fakeView(new Map(), new Set([T])), table);
    store.recordSuccess(T, 0);
    await release();
    expect(writes).toEqual([`clear ${T}`]);
  });

  it("logs a table that cannot be written once per outage, not once per write", async () => {
    const { table, release } = fakeTable(true);
    const logs: LogLine[] = [];
    const store = shared(fakeView(), table, logs);
    for (const target of ["p/a", "p/b", "p/c"]) {
      store.recordFailure(target, { status: 429, retryAfterMs: 10_000 }, 0);
    }
    await release();
    expect(logs.filter((l) => l.level === "warn")).toHaveLength(1);
    expect(logs[0]).toMatchObject({ msg: "health table write failed", target: "p/a", error: "table down" });
  });
});
