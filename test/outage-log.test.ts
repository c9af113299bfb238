import { describe, expect, it } from "vitest";
import { createOutageLog } from "../lib/outage-log.ts";
import { type LogLine, recordingLogger } from "./support/gateway.ts";

describe("outage log", () => {
  it("logs the first failure of an outage and its end with the count, nothing in between", () => {
    let now = 1_000;
    const logs: LogLine[] = [];
    const outage = createOutageLog({
      logger: recordingLogger(logs),
      failing: "health result not written",
      recovered: "health results written again",
      unit: "writes",
      now: () => now,
    });

    outage.succeeded(); // no outage: nothing to say
    for (let i = 0; i < 200; i++) {
      outage.failed({ provider: `p${i % 2}`, error: "timeout" });
      now += 100;
    }
    expect(outage.failing).toBe(true);
    outage.succeeded();
    outage.succeeded();
    outage.failed({ error: "again" });

    expect(logs).toEqual([
      { level: "warn", msg: "health result not written", provider: "p0", error: "timeout" },
      {
        level: "info",
        msg: "health results written again; 200 writes failed",
        failed: 200,
        outageMs: 20_000,
      },
      { level: "warn", msg: "health result not written", error: "again" },
    ]);
  });
});
