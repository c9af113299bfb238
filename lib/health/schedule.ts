import type { HealthChecker, HealthCheckOutcome } from "./checker.ts";

export interface ScheduleOptions {
  checker: HealthChecker;
  /** The wanted time between checks. */
  intervalMs: number;
  /** How often the schedule invokes us (EventBridge's shortest rate is one minute). */
  periodMs: number;
  remainingMs: () => number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Time kept back from the function's remaining time. */
  marginMs?: number;
}

/**
 * Runs the health checks for one scheduled invocation. When the wanted interval is shorter than the
 * schedule's period, loops inside the invocation (e.g. every 15 s within a 1-minute schedule),
 * stopping before the next invocation is due or the function would run out of time.
 */
export async function runHealthSchedule(options: ScheduleOptions): Promise<HealthCheckOutcome[][]> {
  const margin = options.marginMs ?? 2_000;
  const started = options.now();
  const runs: HealthCheckOutcome[][] = [];
  for (let n = 0; ; n++) {
    const due = started + n * options.intervalMs;
    const wait = due - options.now();
    if (n > 0) {
      if (due - started >= options.periodMs) break;
      if (options.remainingMs() < wait + options.intervalMs + margin) break;
      if (wait > 0) await options.sleep(wait);
    }
    runs.push(await options.checker.runOnce());
    if (options.intervalMs >= options.periodMs) break;
  }
  return runs;
}
