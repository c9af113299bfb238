import middy from "@middy/core";
import { sleep } from "../lib/deps.ts";
import { runHealthSchedule } from "../lib/health/schedule.ts";
import type { LambdaContextLike } from "../lib/lambda/function-url.ts";
import { createLambdaRuntime } from "../lib/lambda/runtime.ts";
import { emfHealthLine } from "../lib/metrics/emf.ts";
import { getHealthChecker, getSharedRuntime } from "../lib/runtime.ts";

/**
 * The scheduled health function: checks every provider and writes the results to the table,
 * looping within the invocation when the configured interval is shorter than the schedule.
 */
export const handler = middy<unknown, unknown>().handler(
  async (_event: unknown, context: LambdaContextLike) => {
    const checker = getHealthChecker(createLambdaRuntime);
    const { health } = getSharedRuntime(createLambdaRuntime).config;
    const runs = await runHealthSchedule({
      checker,
      intervalMs: health.intervalMs,
      periodMs: Number(process.env.HEALTH_SCHEDULE_MS ?? 60_000),
      remainingMs: () => context.getRemainingTimeInMillis?.() ?? 60_000,
      now: Date.now,
      sleep: (ms) => sleep(ms),
    });
    const last = runs.at(-1) ?? [];
    const available = last.filter(
      (o) => o.state?.status === "healthy" || o.state?.status === "degraded",
    ).length;
    process.stdout.write(emfHealthLine(available, last.length, Date.now()));
    return {
      runs: runs.length,
      providers: last.map((o) => ({ id: o.providerId, ok: o.ok, status: o.state?.status })),
    };
  },
);
