import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHealthCli } from "../../lib/health/cli.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";

let table: TestTable;
const NOW = 1_800_000_000_000;

beforeAll(async () => {
  table = await startTestTable();
  const store = table.store();
  await store.applyCheck(
    "openai",
    { ok: true, status: 200, latencyMs: 120, ttftMs: 80, error: undefined },
    NOW - 5000,
  );
  await store.applyCheck(
    "deepseek",
    { ok: false, status: 503, latencyMs: 30, ttftMs: undefined, error: "HTTP 503" },
    NOW - 2000,
  );
  await store.appendHistory({
    providerId: "deepseek",
    at: NOW - 2000,
    ok: false,
    status: 503,
    latencyMs: 30,
    ttftMs: undefined,
    error: "HTTP 503",
    ttl: NOW / 1000 + 60,
  });
  await store.recordTargetFailure(
    "deepseek/deepseek-chat",
    { until: NOW + 30_000, reason: "rate_limited" },
    NOW,
  );
});
afterAll(async () => {
  await table.close();
});

async function run(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await runHealthCli(["--table", table.tableName, ...argv], {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env: {},
    now: () => NOW,
    client: table.client,
  });
  return { code, out, err };
}

describe("npm run health", () => {
  it("lists each provider's status, weight, latency, failures and last check, and cooling targets", async () => {
    const { code, out } = await run("list");
    expect(code).toBe(0);
    const lines = out.split("\n");
    expect(lines[0]).toMatch(
      /^provider\s+status\s+enabled\s+weight\s+latency\s+ttft\s+failures\s+last check\s+last error$/,
    );
    expect(lines.find((l) => l.startsWith("deepseek"))).toMatch(
      /deepseek\s+degraded\s+yes\s+\(config\)\s+30 ms\s+-\s+1\s+2 s ago\s+HTTP 503/,
    );
    expect(lines.find((l) => l.startsWith("openai"))).toMatch(
      /openai\s+healthy\s+yes\s+\(config\)\s+120 ms\s+80 ms\s+0\s+5 s ago/,
    );
    expect(out).toMatch(/deepseek\/deepseek-chat\s+1\s+30 s left\s+rate_limited/);
  });

  it("sets a weight and disables a provider, and the listing shows it", async () => {
    expect((await run("set-weight", "openai", "5")).code).toBe(0);
    expect((await run("disable", "deepseek")).out).toBe("deepseek: disabled\n");
    const { out } = await run();
    expect(out).toMatch(/openai\s+healthy\s+yes\s+5\s/);
    expect(out).toMatch(/deepseek\s+degraded\s+no\s/);
  });

  it("shows a provider's history", async () => {
    const { code, out } = await run("history", "deepseek");
    expect(code).toBe(0);
    expect(out).toMatch(/2027-01-15T07:59:58.000Z\s+no\s+503\s+30 ms\s+-\s+HTTP 503/);
  });

  it("explains bad usage with exit code 2", async () => {
    expect((await run("set-weight", "openai", "heavy")).code).toBe(2);
    const unknown = await run("explode");
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("unknown command: explode");
    const option = await run("list", "--tabel", "x");
    expect(option.code).toBe(2);
    expect(option.err).toContain("Unknown option '--tabel'");
  });

  it("says which table it could not reach", async () => {
    const { code, err } = await run("list", "--table", "missing-table");
    expect(code).toBe(1);
    expect(err).toContain("missing-table");
  });
});
