import type { Logger } from "./deps.ts";

export interface OutageLogOptions {
  logger: Logger;
  /** Logged (warn) at the first failure of an outage, e.g. "health result not written". */
  failing: string;
  /** Logged (info) at the first success after failures, with the count: "<recovered>; N <unit> failed". */
  recovered: string;
  /** What one failure is, in the plural: "writes" gives "...; 12 writes failed". */
  unit: string;
  now: () => number;
}

/**
 * One warning per outage instead of one per failure. While a dependency is down, a failure that
 * happens on every request or every run would otherwise flood the log: "health result not written"
 * came once per provider per run, 200 lines in 20 s, with DynamoDB down (issue 9). The first failure
 * is logged with its details; the rest are counted; the first success after them logs one line
 * with the count and how long it lasted.
 */
export interface OutageLog {
  /** Counts a failure; logs it only if it starts an outage. */
  failed(fields?: Record<string, unknown>): void;
  /** Ends the outage, if one is going on, with one line giving the count. */
  succeeded(fields?: Record<string, unknown>): void;
  /** Whether an outage is going on (the last outcome was a failure). */
  readonly failing: boolean;
}

export function createOutageLog(options: OutageLogOptions): OutageLog {
  let failures = 0;
  let since = 0;
  return {
    failed(fields = {}) {
      if (failures === 0) {
        since = options.now();
        options.logger.warn({ msg: options.failing, ...fields });
      }
      failures++;
    },
    succeeded(fields = {}) {
      if (failures === 0) return;
      options.logger.info({
        msg: `${options.recovered}; ${failures} ${options.unit} failed`,
        failed: failures,
        outageMs: options.now() - since,
        ...fields,
      });
      failures = 0;
    },
    get failing() {
      return failures > 0;
    },
  };
}
