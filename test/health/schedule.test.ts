import { describe, expect, it } from "vitest";
import type { HealthChecker } from "../../lib/health/checker.ts";
import { runHealthSchedule } from "../../lib/health/schedule.ts";

function fakeChecker(clock: { now: number }, runMs = 100) {
  const runsAt: number[] = [];
  const checker: HealthChecker = {
    async runOnce() {
      runsAt.push(clock.now);
      clock.now += runMs;
      return [];
    },
    start() {},
    stop() {},
  };
  return { checker, runsAt };
}

function schedule(intervalMs: number, periodMs: number, timeoutMs: number) {
  const clock = { now: 0 };
  const { checker, runsAt } = fakeChecker(clock);
  const run = runHealthSchedule({
    checker,
    intervalMs,
    periodMs,
    remainingMs: () => timeoutMs - clock.now,
    now: () => clock.now,
    sleep: async (ms) => {
      clock.now += ms;
    },
  });
  return { run, runsAt };
}

describe("runHealthSchedule", () => {
  it("checks once per invocation when the interval is the schedule's period or longer", async () => {
    const { run, runsAt } = schedule(60_000, 60_000, 90_000);
    expect(await run).toHaveLength(1);
    expect(runsAt).toEqual([0]);
  });

  it("loops inside one invocation for sub-minute intervals, on time", async () => {
    const { run, runsAt } = schedule(15_000, 60_000, 90_000);
    expect(await run).toHaveLength(4);
    expect(runsAt).toEqual([0, 15_000, 30_000, 45_000]);
  });

  it("stops before the function would run out of time", async () => {
    const { run, runsAt } = schedule(15_000, 60_000, 40_000);
    await run;
    expect(runsAt).toEqual([0, 15_000]);
  });
});
