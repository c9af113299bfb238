import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { createUsageLedger } from "../../lib/callers/ledger.ts";
import { NO_USAGE } from "../../lib/core/usage.ts";
import { silentLogger } from "../../lib/deps.ts";
import { emfTokenSink } from "../../lib/metrics/emf.ts";
import { createFakeClock } from "../support/fake-clock.ts";

function tokenLines(perKey: boolean) {
  const lines: string[] = [];
  const ledger = createUsageLedger({
    // Never called: recording is memory only, and nothing is flushed here.
    client: {} as DynamoDBClient,
    tableName: "unused",
    prices: {},
    deps: { ...createFakeClock(0), random: () => 0, logger: silentLogger },
    metrics: emfTokenSink(
      (line) => lines.push(line),
      () => 42,
      { perKey },
    ),
  });
  ledger.record({ id: "abcdefghijkl", name: "alice", models: undefined, limits: {} }, "m", {
    ...NO_USAGE,
    inputTokens: 11,
    outputTokens: 7,
  });
  return lines.map((l) => JSON.parse(l));
}

describe("token metrics (EMF)", () => {
  it("counts prompt and completion tokens per model, without a key dimension by default", () => {
    const [line] = tokenLines(false);
    expect(line).toMatchObject({ Model: "m", PromptTokens: 11, CompletionTokens: 7 });
    expect(line.KeyId).toBeUndefined();
    expect(line._aws.CloudWatchMetrics[0].Dimensions).toEqual([["Model"]]);
  });

  it("adds the key id as a dimension only when asked", () => {
    const [line] = tokenLines(true);
    expect(line.KeyId).toBe("abcdefghijkl");
    expect(line._aws.CloudWatchMetrics[0].Dimensions).toEqual([["Model"], ["Model", "KeyId"]]);
  });
});
