import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runClientKeyCli } from "../../lib/aws/client-key-cli.ts";
import { createCallers } from "../../lib/callers/callers.ts";
import { keyIdOf } from "../../lib/callers/key.ts";
import { DEFAULT_CALLERS } from "../../lib/config/defaults.ts";
import { NO_USAGE } from "../../lib/core/usage.ts";
import { silentLogger } from "../../lib/deps.ts";
import { timersOn } from "../callers/support.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { createFakeClock } from "../support/fake-clock.ts";

const NOW = Date.UTC(2026, 10, 29, 12, 0, 30);
let table: TestTable;

beforeAll(async () => {
  table = await startTestTable();
});
afterAll(async () => {
  await table.close();
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runClientKeyCli([...argv, "--table", table.tableName], {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env: {},
    dynamo: table.client,
    now: () => NOW,
    randomBytes,
  });
  return { code, out, err };
}

describe("npm run client-key (caller keys in the table)", () => {
  it("creates a key shown once, lists, limits and revokes it", async () => {
    const made = await cli(
      "create",
      "--name",
      "alice",
      "--rpm",
      "5",
      "--tokens-per-day",
      "1000",
      "--models",
      "m,other",
    );
    expect(made.code).toBe(0);
    const key = made.out.trim();
    const id = keyIdOf(key) as string;
    expect(id).toMatch(/^[a-z2-7]{12}$/);

    const listed = await cli("list");
    expect(listed.out).toMatch(/^ID\s+NAME\s+STATUS\s+LIMITS/);
    expect(listed.out).toContain(id);
    expect(listed.out).toContain("rpm=5 tokensPerDay=1000");
    expect(listed.out).toContain("m,other");
    expect(listed.out).not.toContain(key);

    expect((await cli("set", id, "--rpm", "none", "--tpm", "900", "--models", "all")).code).toBe(0);
    const [record] = JSON.parse((await cli("list", "--json")).out);
    expect(record).toMatchObject({
      id,
      name: "alice",
      limits: { tpm: 900, tokensPerDay: 1000 },
      models: null,
    });
    expect(record.limits.rpm).toBeUndefined();

    expect((await cli("revoke", id)).code).toBe(0);
    expect((await cli("list")).out).toMatch(new RegExp(`${id}\\s+alice\\s+revoked`));
    expect((await cli("revoke", "nosuchkeyid2")).code).toBe(1);
    expect((await cli("create")).code).toBe(2);
    expect((await cli("set", id, "--rpm", "lots")).code).toBe(2);
  });

  it("sets maxConcurrent and an expiry, shows them in the list, removes the expiry with none", async () => {
    const made = await cli("create", "--name", "carol", "--max-concurrent", "3", "--expires", "30d");
    expect(made.code).toBe(0);
    const id = keyIdOf(made.out.trim()) as string;
    const find = async () =>
      (JSON.parse((await cli("list", "--json")).out) as Array<Record<string, unknown>>).find(
        (r) => r.id === id,
      );
    expect(await find()).toMatchObject({
      limits: { maxConcurrent: 3 },
      expiresAt: new Date(NOW + 30 * 86_400_000).toISOString(),
      status: "active",
    });
    const listed = await cli("list");
    expect(listed.out).toMatch(/\bEXPIRES\b/);
    expect(listed.out).toContain("maxConcurrent=3");
    expect(listed.out).toContain("2026-12-29T12:00:30.000Z");

    expect((await cli("set", id, "--expires", "2027-01-31T18:00:00Z", "--max-concurrent", "1")).code).toBe(0);
    expect(await find()).toMatchObject({
      limits: { maxConcurrent: 1 },
      expiresAt: "2027-01-31T18:00:00.000Z",
    });
    expect((await cli("set", id, "--expires", "none")).code).toBe(0);
    expect(await find()).toMatchObject({ expiresAt: null });

    for (const bad of [
      ["--expires", "2026-01-01"], // already passed
      ["--expires", "soon"],
      ["--max-concurrent", "1.5"],
    ]) {
      const refused = await cli("set", id, ...bad);
      expect(refused.code).toBe(2);
      expect(refused.err).toContain(bad[0] as string);
    }
  });

  it("prints usage per key × model × day as a table and as JSON", async () => {
    const callers = createCallers({
      client: table.client,
      tableName: table.tableName,
      policy: { ...DEFAULT_CALLERS, prices: { m: { input: 1, output: 2, cachedInput: 0.5 } } },
      now: () => NOW,
      logger: silentLogger,
      timers: timersOn(createFakeClock(NOW)),
      flushAfterResponse: true,
    });
    const id = keyIdOf((await cli("create", "--name", "bob")).out.trim()) as string;
    const caller = { id, name: "bob", models: undefined, limits: {} };
    callers.ledger.record(caller, "m", {
      ...NO_USAGE,
      inputTokens: 1000,
      outputTokens: 500,
      cacheReadTokens: 200,
    });
    callers.ledger.record(caller, "m", { ...NO_USAGE, inputTokens: 10, outputTokens: 5 });
    callers.ledger.record(caller, "other", { ...NO_USAGE, inputTokens: 7, outputTokens: 3 });
    await callers.ledger.flush();

    const printed = await cli("usage", "--key", id);
    expect(printed.code).toBe(0);
    const lines = printed.out.trim().split("\n");
    expect(lines[0]).toMatch(/^DAY\s+KEY\s+NAME\s+MODEL\s+REQUESTS\s+PROMPT\s+COMPLETION\s+CACHED\s+COST$/);
    // 800 × $1 + 200 × $0.5 + 500 × $2 per million, plus 10 × $1 + 5 × $2: $0.00192.
    expect(lines[1]?.split(/\s+/)).toEqual([
      "2026-11-29",
      id,
      "bob",
      "m",
      "2",
      "1010",
      "505",
      "200",
      "$0.001920",
    ]);
    expect(lines[2]?.split(/\s+/)).toEqual(["2026-11-29", id, "bob", "other", "1", "7", "3", "0", "$0.00"]);

    const rows = JSON.parse((await cli("usage", "--key", id, "--json")).out);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ keyId: id, model: "m", requests: 2, promptTokens: 1010, cost: 0.00192 });
  });

  it("runs as `npm run client-key -- usage` against a table by endpoint", async () => {
    const run = promisify(execFile);
    const { stdout } = await run(
      "npm",
      [
        "run",
        "--silent",
        "client-key",
        "--",
        "usage",
        "--endpoint",
        table.dynamo.endpoint,
        "--table",
        table.tableName,
        "--days",
        "3650",
      ],
      { env: { ...process.env, AWS_REGION: "local" } },
    );
    expect(stdout).toMatch(/^DAY\s+KEY\s+NAME\s+MODEL/);
    expect(stdout).toMatch(/2026-11-29\s+\S+\s+bob\s+m\s+2\s+1010/);
  });
});
