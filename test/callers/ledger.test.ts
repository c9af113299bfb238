import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUsageLedger, FLUSH_RETRY } from "../../lib/callers/ledger.ts";
import { createCallerStore } from "../../lib/callers/store.ts";
import { NO_USAGE } from "../../lib/core/usage.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { createFakeClock, type FakeClock } from "../support/fake-clock.ts";
import { recordingLogger } from "../support/gateway.ts";
import { seededRandom } from "../support/random.ts";

/**
 * The ledger's flush retries (issue 16, "no usage lost to a failed write"), on the fake clock: the
 * backoff, the write timeouts and the flush timer all come through Deps.
 */
let table: TestTable;
beforeAll(async () => {
  table = await startTestTable();
});
afterAll(async () => {
  await table.close();
});

const usage = { ...NO_USAGE, inputTokens: 3, outputTokens: 2 };
let callerCount = 0;
const newCaller = () => ({
  id: `ledger${String(++callerCount).padStart(6, "0")}`,
  name: undefined,
  models: undefined,
  limits: {},
});

/** The table's client, with `send` replaced while `failing()` says so (a call then rejects). */
function flakyClient(failing: () => boolean, calls: { sent: number; failed: number }): DynamoDBClient {
  return new Proxy(table.client, {
    get: (target, property) =>
      property === "send"
        ? (...args: Parameters<DynamoDBClient["send"]>) => {
            calls.sent++;
            if (failing()) {
              calls.failed++;
              return Promise.reject(new Error("table down"));
            }
            return target.send(...args);
          }
        : Reflect.get(target, property),
  });
}

function ledgerOn(client: DynamoDBClient, clock: FakeClock) {
  return createUsageLedger({
    client,
    tableName: table.tableName,
    prices: {},
    deps: {
      now: clock.now,
      setTimer: clock.setTimer,
      sleep: clock.sleep,
      random: seededRandom(7),
      logger: recordingLogger([]),
    },
  });
}

async function requestsInTable(keyId: string): Promise<number[]> {
  const rows = await createCallerStore(table.client, table.tableName).usage({ keyId });
  return rows.map((r) => r.requests);
}

/**
 * Awaits `work`, ending each backoff sleep it starts as soon as it starts. The clock moves only
 * then, never while a write is out: a write's timeout (also on this clock) never fires by accident.
 */
async function onClock<T>(clock: FakeClock, work: Promise<T>): Promise<T> {
  const end = Symbol("done");
  const finished = work.then(
    () => end,
    () => end,
  );
  for (;;) {
    const next = await Promise.race([finished, clock.scheduled((t) => t.kind === "sleep")]);
    if (next === end) return work;
    await clock.advance((next as { ms: number }).ms);
  }
}

describe("the usage ledger's flush", () => {
  it("retries a failed write before its deadline, after a jittered backoff, and the usage lands", async () => {
    const clock = createFakeClock();
    const calls = { sent: 0, failed: 0 };
    // The first round of writes fails (3 items: usage, day, month), the next one gets through.
    const ledger = ledgerOn(
      flakyClient(() => calls.sent <= 3, calls),
      clock,
    );
    const caller = newCaller();
    ledger.record(caller, "m", usage);

    await onClock(clock, ledger.flush({ deadline: clock.now() + 5_000 }));

    expect(calls.failed).toBe(3);
    expect(ledger.pendingItems).toBe(0);
    expect(await requestsInTable(caller.id)).toEqual([1]);
    // One wait, drawn by the ledger's random source from [0, 100 ms).
    expect(clock.sleeps).toHaveLength(1);
    expect(clock.sleeps[0]).toBeGreaterThanOrEqual(0);
    expect(clock.sleeps[0]).toBeLessThan(FLUSH_RETRY.baseDelayMs);
  });

  it("stops at its attempt limit and keeps the usage, which the next flush writes once", async () => {
    const clock = createFakeClock();
    const calls = { sent: 0, failed: 0 };
    let down = true;
    const ledger = ledgerOn(
      flakyClient(() => down, calls),
      clock,
    );
    const caller = newCaller();
    ledger.record(caller, "m", usage);

    await onClock(clock, ledger.flush({ deadline: clock.now() + 60_000 }));
    expect(calls.failed).toBe(3 * FLUSH_RETRY.maxAttempts);
    expect(ledger.pendingItems).toBe(3);
    expect(await requestsInTable(caller.id)).toEqual([]);

    // Recorded meanwhile, then the table is back: the very next flush writes both, no pause.
    ledger.record(caller, "m", usage);
    down = false;
    await ledger.flush();
    expect(ledger.pendingItems).toBe(0);
    expect(await requestsInTable(caller.id)).toEqual([2]);
  });

  it("tries no retry that could not end by the deadline, but always makes the first attempt", async () => {
    const clock = createFakeClock();
    const calls = { sent: 0, failed: 0 };
    const ledger = ledgerOn(
      flakyClient(() => true, calls),
      clock,
    );
    ledger.record(newCaller(), "m", usage);

    // A deadline already past (a request that used all its time): one round, no wait.
    await ledger.flush({ deadline: clock.now() });
    expect(calls.failed).toBe(3);
    expect(clock.sleeps).toEqual([]);
    // Without a deadline (the timer of a long-lived process): one round too, the next tick retries.
    await ledger.flush();
    expect(calls.failed).toBe(6);
    expect(clock.sleeps).toEqual([]);
    expect(ledger.pendingItems).toBe(3);
  });

  it("bounds a write that hangs by a timer on the ledger's clock, and keeps its usage", async () => {
    const clock = createFakeClock();
    const hanging = new Proxy(table.client, {
      get: (target, property) =>
        property === "send"
          ? (_command: unknown, options?: { abortSignal?: AbortSignal }) =>
              new Promise((_resolve, reject) => {
                options?.abortSignal?.addEventListener("abort", () => reject(options.abortSignal?.reason));
              })
          : Reflect.get(target, property),
    }) as DynamoDBClient;
    const ledger = ledgerOn(hanging, clock);
    ledger.record(newCaller(), "m", usage);

    const flushed = ledger.flush();
    await clock.scheduled((t) => t.kind === "timer" && t.ms === 1_000);
    expect(clock.pending().filter((t) => t.kind === "timer")).toHaveLength(3);
    await clock.advance(1_000);
    await flushed;
    expect(ledger.pendingItems).toBe(3);
    expect(clock.pending()).toEqual([]);
  });

  it("flushes on its timer, set through Deps, until stopped", async () => {
    const clock = createFakeClock();
    const ledger = ledgerOn(table.client, clock);
    const caller = newCaller();
    ledger.record(caller, "m", usage);
    ledger.start(2_000);
    expect(clock.pending()).toEqual([{ kind: "timer", ms: 2_000, due: clock.now() + 2_000 }]);

    await clock.advance(2_000);
    await expect.poll(() => ledger.pendingItems).toBe(0);
    expect(await requestsInTable(caller.id)).toEqual([1]);
    // Re-armed once that flush was over.
    await expect.poll(() => clock.pending().map((t) => t.ms)).toEqual([2_000]);
    ledger.stop();
    expect(clock.pending()).toEqual([]);
  });
});
