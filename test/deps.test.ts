import { afterEach, describe, expect, it, vi } from "vitest";
import { DeadlineError, withDeadline } from "../lib/deadline.ts";
import { jsonLogger, logLevelFromEnv, setTimer, silentLogger, sleep, systemDeps } from "../lib/deps.ts";
import { createFakeClock } from "./support/fake-clock.ts";

describe("jsonLogger", () => {
  it("writes one JSON object per line at or above its level", () => {
    const lines: string[] = [];
    const logger = jsonLogger((line) => lines.push(line), "warn");
    logger.info({ msg: "dropped" });
    logger.warn({ msg: "kept", n: 1 });
    logger.error({ msg: "kept too" });
    expect(lines.map((l) => JSON.parse(l))).toMatchObject([
      { level: "warn", msg: "kept", n: 1 },
      { level: "error", msg: "kept too" },
    ]);
    expect(lines.every((l) => l.endsWith("\n") && !l.slice(0, -1).includes("\n"))).toBe(true);
  });

  it("takes its level from LOG_LEVEL, then Lambda's AWS_LAMBDA_LOG_LEVEL, and never silences on a typo", () => {
    expect(logLevelFromEnv({ LOG_LEVEL: "WARN", AWS_LAMBDA_LOG_LEVEL: "ERROR" })).toBe("warn");
    expect(logLevelFromEnv({ AWS_LAMBDA_LOG_LEVEL: "ERROR" })).toBe("error");
    expect(logLevelFromEnv({ LOG_LEVEL: "DEBUG" })).toBe("info");
    expect(logLevelFromEnv({ LOG_LEVEL: "eror" })).toBe("info");
    expect(logLevelFromEnv({})).toBe("info");
  });
});

describe("setTimer (the real clock)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("fires once after its delay; refresh pushes it back, clear cancels it for good", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const fired: number[] = [];
    const timer = setTimer(() => fired.push(Date.now()), 100);
    vi.advanceTimersByTime(60);
    timer.refresh();
    vi.advanceTimersByTime(99);
    expect(fired).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(fired).toHaveLength(1);

    timer.refresh(); // re-arms after firing, as Node's Timeout does
    vi.advanceTimersByTime(100);
    expect(fired).toHaveLength(2);

    timer.refresh();
    timer.clear();
    vi.advanceTimersByTime(1000);
    expect(fired).toHaveLength(2);
  });

  it("stays cancelled when refreshed after clear (Node's semantics, which the fake clock copies)", async () => {
    // Real timers: the fake timers above re-arm a cleared timer on refresh, Node does not. Ordering
    // is Node's, not a race: a 1 ms timer fires before a 5 ms sleep set after it.
    let fired = false;
    const timer = setTimer(() => {
      fired = true;
    }, 1);
    timer.clear();
    timer.refresh();
    await sleep(5);
    expect(fired).toBe(false);
  });

  it("is what systemDeps hands out", () => {
    expect(systemDeps(silentLogger).setTimer).toBe(setTimer);
  });
});

describe("fake clock", () => {
  it("fires timers in order of due time, each at its own time, ties in the order set", async () => {
    const clock = createFakeClock(0);
    const seen: string[] = [];
    clock.setTimer(() => seen.push(`b@${clock.now()}`), 20);
    clock.setTimer(() => seen.push(`a@${clock.now()}`), 10);
    clock.setTimer(() => seen.push(`c@${clock.now()}`), 20);
    clock.setTimer(() => seen.push(`late@${clock.now()}`), 31);

    await clock.advance(30);

    expect(seen).toEqual(["a@10", "b@20", "c@20"]);
    expect(clock.now()).toBe(30);
    expect(clock.pending()).toEqual([{ kind: "timer", ms: 31, due: 31 }]);
  });

  it("lets promises settle between timers, so a chain of sleeps runs on fake time", async () => {
    const clock = createFakeClock(0);
    const woke: number[] = [];
    void (async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(100);
        woke.push(clock.now());
      }
    })();

    await clock.advance(250);
    expect(woke).toEqual([100, 200]);
    await clock.runAll();
    expect(woke).toEqual([100, 200, 300]);
    expect(clock.sleeps).toEqual([100, 100, 100]);
  });

  it("refreshes from now, re-arms from inside its own callback, and stays dead once cleared", async () => {
    const clock = createFakeClock(0);
    const fired: number[] = [];
    let again = true;
    const timer = clock.setTimer(() => {
      fired.push(clock.now());
      if (again) timer.refresh();
    }, 50);
    await clock.advance(30);
    timer.refresh(); // now due at 80
    await clock.advance(49);
    expect(fired).toEqual([]);
    await clock.advance(1);
    expect(fired).toEqual([80]);
    again = false;
    await clock.advance(50);
    expect(fired).toEqual([80, 130]);
    expect(clock.pending()).toEqual([]);

    timer.refresh();
    timer.clear();
    timer.refresh();
    await clock.runAll();
    expect(fired).toEqual([80, 130]);
  });

  it("rejects a sleep when its signal aborts, and drops its timer", async () => {
    const clock = createFakeClock(0);
    const controller = new AbortController();
    const slept = clock.sleep(1000, controller.signal);
    controller.abort(new Error("left"));
    await expect(slept).rejects.toThrow("left");
    expect(clock.pending()).toEqual([]);
    await expect(clock.sleep(10, controller.signal)).rejects.toThrow("left");
  });

  it("stops runAll on a timer that re-arms forever", async () => {
    const clock = createFakeClock(0);
    const timer = clock.setTimer(() => timer.refresh(), 10);
    await expect(clock.runAll(5)).rejects.toThrow("after 5 fired");
  });

  it("tells when a matching timer is set", async () => {
    const clock = createFakeClock(0);
    const waiting = clock.scheduled((t) => t.kind === "sleep" && t.ms === 75);
    clock.setTimer(() => {}, 75);
    void clock.sleep(75);
    expect(await waiting).toEqual({ kind: "sleep", ms: 75, due: 75 });
  });
});

describe("withDeadline", () => {
  it("gives up on work that outlives its deadline, at the deadline", async () => {
    const clock = createFakeClock(0);
    let outcome: unknown;
    void withDeadline(new Promise(() => {}), 500, "table read", clock.setTimer).catch((e: unknown) => {
      outcome = e;
    });
    await clock.advance(499);
    expect(outcome).toBeUndefined();
    await clock.advance(1);
    expect(outcome).toBeInstanceOf(DeadlineError);
    expect((outcome as Error).message).toBe("table read did not finish within 500 ms");
  });

  it("settles as the work does when it is in time, and clears its timer", async () => {
    const clock = createFakeClock(0);
    await expect(withDeadline(Promise.resolve(7), 500, "x", clock.setTimer)).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error("no")), 500, "x", clock.setTimer)).rejects.toThrow(
      "no",
    );
    expect(clock.pending()).toEqual([]);
  });
});
