import { describe, expect, it } from "vitest";
import { jsonLogger, logLevelFromEnv } from "../lib/deps.ts";

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
