import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHealthCli } from "../../lib/health/cli.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";

let table: TestTable;

beforeAll(async () => {
  table = await startTestTable();
  await table
    .store()
    .applyCheck(
      "mock-primary",
      { ok: true, status: 200, latencyMs: 5, ttftMs: undefined, error: undefined },
      Date.now(),
    );
});
afterAll(async () => {
  await table.close();
});

describe("npm run health without --endpoint", () => {
  // Issue 13: after `DYNAMODB_PORT=9000 npm start`, `DYNAMODB_PORT=9000 npm run health` must find the
  // table npm start made, as it does when both use the default port.
  it("reads the embedded table on $DYNAMODB_PORT, the port npm start gave it", async () => {
    const port = new URL(table.dynamo.endpoint).port;
    let out = "";
    let err = "";
    const code = await runHealthCli(["--table", table.tableName], {
      out: (t) => {
        out += t;
      },
      err: (t) => {
        err += t;
      },
      env: { DYNAMODB_PORT: port },
      now: Date.now,
    });
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toMatch(/mock-primary\s+healthy/);
  });
});
