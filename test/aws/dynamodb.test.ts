import { describe, expect, it } from "vitest";
import { tableNameFromEnv } from "../../lib/aws/dynamodb.ts";

describe("the table's environment variable", () => {
  it("is GATEWAY_TABLE, with HEALTH_TABLE, its old name, read when it is unset or empty", () => {
    expect(tableNameFromEnv({ GATEWAY_TABLE: "gw", HEALTH_TABLE: "old" })).toBe("gw");
    expect(tableNameFromEnv({ HEALTH_TABLE: "old" })).toBe("old");
    expect(tableNameFromEnv({ GATEWAY_TABLE: "", HEALTH_TABLE: "old" })).toBe("old");
    expect(tableNameFromEnv({})).toBeUndefined();
    expect(tableNameFromEnv({ GATEWAY_TABLE: "" })).toBeUndefined();
  });
});
