import type { Deps } from "./deps.ts";

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
 * ignored (a handler stays on it, so a late rejection is never "unhandled"). The timer comes from
 * {@link Deps.setTimer}, so tests run it on a fake clock.
 *
 * Why: a DynamoDB endpoint that accepts connections and never answers held a health-table read
 * for minutes, and every later refresh joined that read (issue 9). A deadline at the caller is the
 * backstop behind the SDK's own timeouts, whatever the store underneath is.
 */
export function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  setTimer: Deps["setTimer"],
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimer(() => reject(new DeadlineError(what, ms)), ms);
    // Whichever comes first settles the promise; the other is a no-op.
    work.then(
      (value) => {
        timer.clear();
        resolve(value);
      },
      (error: unknown) => {
        timer.clear();
        reject(error);
      },
    );
  });
}
