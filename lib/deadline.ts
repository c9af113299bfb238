import { sleep as timerSleep } from "./deps.ts";

/** A piece of I/O that did not settle within its deadline and was abandoned. */
export class DeadlineError extends Error {
  override name = "DeadlineError";
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what} did not finish within ${ms} ms`);
  }
}

/**
 * Settles as `work` does, or rejects with a {@link DeadlineError} once `ms` have passed. The work is
 * abandoned, not stopped: pass it a signal of its own if it can be cancelled. Its late outcome is
 * ignored (Promise.race keeps a handler on it, so a late rejection is never "unhandled").
 *
 * Why: a DynamoDB endpoint that accepts connections and never answers held a health-table read
 * for minutes, and every later refresh joined that read (issue 9). A deadline at the caller is the
 * backstop behind the SDK's own timeouts, whatever the store underneath is.
 */
export async function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  sleep: (ms: number, signal?: AbortSignal) => Promise<void> = timerSleep,
): Promise<T> {
  const timer = new AbortController();
  const expired = sleep(ms, timer.signal).then(
    () => {
      throw new DeadlineError(what, ms);
    },
    () => new Promise<never>(() => {}), // cancelled because the work settled: never wins the race
  );
  try {
    return await Promise.race([work, expired]);
  } finally {
    timer.abort();
  }
}
