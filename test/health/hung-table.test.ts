import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import { createDynamoClient } from "../../lib/aws/dynamodb.ts";
import { DEFAULT_HEALTH } from "../../lib/config/defaults.ts";
import { type Deps, setTimer, sleep } from "../../lib/deps.ts";
import { createHealthChecker } from "../../lib/health/checker.ts";
import { runHealthCli } from "../../lib/health/cli.ts";
import { createDynamoHealthStore } from "../../lib/health/dynamo-store.ts";
import type { HealthStore } from "../../lib/health/types.ts";
import { createHealthView } from "../../lib/health/view.ts";
import { createHttpClient } from "../../lib/http/client.ts";
import { createProviderFactory } from "../../lib/providers/factory.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import type { Provider } from "../../lib/providers/types.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { type LogLine, recordingLogger } from "../support/gateway.ts";
import { type HangingEndpoint, startHangingEndpoint } from "../support/hanging-endpoint.ts";

// Issue 9: a DynamoDB endpoint that accepts connections and never answers froze health for good.
// Here the table hangs first, then answers (the endpoint relays to dynalite): everything must go on.

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** dynalite holding the table, and a client that reaches it only through an endpoint that hangs. */
async function hungTable(): Promise<{
  table: TestTable;
  hanging: HangingEndpoint;
  client: DynamoDBClient;
  store: HealthStore;
}> {
  const table = await startTestTable();
  const hanging = await startHangingEndpoint();
  // Short timeouts keep the test fast; the defaults are in DYNAMO_TIMEOUTS.
  const client = createDynamoClient({
    endpoint: hanging.endpoint,
    timeouts: { connectMs: 200, requestMs: 300 },
  });
  cleanup.push(
    () => table.close(),
    () => hanging.close(),
    () => client.destroy(),
  );
  const store = createDynamoHealthStore({
    client,
    tableName: table.tableName,
    health: DEFAULT_HEALTH,
  });
  return { table, hanging, client, store };
}

const good = { ok: true, status: 200, latencyMs: 5, ttftMs: undefined, error: undefined };

function view(store: HealthStore, logs: LogLine[] = [], readTimeoutMs = 1_000) {
  return createHealthView({
    store,
    providerIds: ["p"],
    targets: ["p/m"],
    ttlMs: 50,
    firstReadTimeoutMs: 50,
    readTimeoutMs,
    now: Date.now,
    setTimer,
    logger: recordingLogger(logs),
  });
}

describe("a health table that accepts connections and never answers", () => {
  it("the request path's view serves defaults while it hangs, and the table's state once it answers", async () => {
    const { table, hanging, store } = await hungTable();
    await table.store().setEnabled("p", false);
    const logs: LogLine[] = [];
    const health = view(store, logs);

    await health.refresh(); // resolves although the read hangs
    expect(hanging.connections).toBeGreaterThan(0);
    expect(health.provider("p")).toBeUndefined(); // the configured defaults
    const unreadable = () =>
      logs.filter((l) => l.msg === "health table unreadable; serving last known state");
    await expect.poll(() => unreadable().length, { timeout: 10_000 }).toBe(1);
    await health.refresh(); // a known-sick table: served at once, with the defaults still
    expect(health.provider("p")).toBeUndefined();

    hanging.relayTo(table.dynamo.endpoint);
    await expect
      .poll(
        async () => {
          await health.refresh();
          return health.provider("p")?.enabled;
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBe(false);
    expect(unreadable()).toHaveLength(1);
    expect(logs.filter((l) => String(l.msg).startsWith("health table readable again; "))).toHaveLength(1);
  });

  it("the view abandons a read that never settles, so a later refresh reads again", async () => {
    const healthy = (await hungTable()).table.store();
    await healthy.applyCheck("p", good, 0);
    let first = true;
    const store: HealthStore = {
      ...healthy,
      read: (ids, targets) => {
        if (!first) return healthy.read(ids, targets);
        first = false;
        return new Promise(() => {}); // not even a client timeout ends this one
      },
    };
    const health = view(store, [], 30);
    await health.refresh();
    expect(health.provider("p")).toBeUndefined();
    await expect
      .poll(
        async () => {
          await health.refresh();
          return health.provider("p")?.status;
        },
        { timeout: 10_000, interval: 20 },
      )
      .toBe("healthy");
    expect(health.reads).toBeGreaterThanOrEqual(2);
  });

  it("an operator's disable fails instead of hanging, then goes through and reaches the view", async () => {
    const { table, hanging, client, store } = await hungTable();
    const health = view(store);
    const cli = async (...argv: string[]) => {
      let err = "";
      const code = await runHealthCli(["--table", table.tableName, ...argv], {
        out: () => {},
        err: (t) => {
          err += t;
        },
        env: {},
        now: Date.now,
        client,
      });
      return { code, err };
    };

    const refused = await cli("disable", "p");
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("TimeoutError");
    await health.refresh();

    hanging.relayTo(table.dynamo.endpoint);
    expect((await cli("disable", "p")).code).toBe(0);
    await expect
      .poll(
        async () => {
          await health.refresh();
          return health.provider("p")?.enabled;
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBe(false);
  });
});

describe("the health checker against a table that hangs", () => {
  const http = createHttpClient();
  const config = validateConfig({
    health: { intervalMs: 1_000, timeoutMs: 500 },
    providers: [
      { id: "a", type: "mock" },
      { id: "b", type: "mock" },
    ],
    models: {
      m: {
        targets: [
          { provider: "a", model: "m1" },
          { provider: "b", model: "m2" },
        ],
      },
    },
  });

  function checker(store: HealthStore, logs: LogLine[], storeTimeoutMs?: number) {
    const deps: Deps = {
      now: Date.now,
      sleep,
      setTimer,
      random: () => 0.5,
      newId: () => "id",
      logger: recordingLogger(logs),
    };
    const factory = createProviderFactory(config, { http, keys: envKeys({}), deps });
    const job = createHealthChecker({
      config,
      providers: () => config.providers.map((p) => factory.getProvider(p.id) as Provider),
      store,
      deps,
      ...(storeTimeoutMs === undefined ? {} : { storeTimeoutMs }),
    });
    cleanup.push(() => job.stop());
    return job;
  }

  it("keeps running while writes fail, logs the outage once, and its results land after recovery", async () => {
    const { table, hanging, store } = await hungTable();
    const logs: LogLine[] = [];
    const job = checker(store, logs);
    job.start();
    // Two runs over two providers fail to write...
    await expect.poll(() => logs.filter((l) => l.msg === "health check").length, { timeout: 10_000 }).toBe(2);
    hanging.relayTo(table.dynamo.endpoint);
    // ...and a later run's results land.
    const direct = table.store();
    await expect
      .poll(async () => (await direct.read(["a", "b"], [])).providers.get("b")?.status, { timeout: 10_000 })
      .toBe("healthy");
    await expect
      .poll(() => logs.some((l) => String(l.msg).startsWith("health results written again; ")), {
        timeout: 10_000,
      })
      .toBe(true);

    const notWritten = logs.filter((l) => l.msg === "health result not written");
    expect(notWritten).toHaveLength(1);
    const recovered = logs.filter((l) => String(l.msg).startsWith("health results written again; "));
    expect(recovered).toHaveLength(1);
    expect(recovered[0]?.failed).toBeGreaterThanOrEqual(4); // 2 providers x 2 runs, at least
  });

  it("abandons a store write that never settles: the run ends and the next one writes", async () => {
    const { table } = await hungTable();
    const healthy = table.store();
    let hangs = 2; // the first run's two writes never settle
    const store: HealthStore = {
      ...healthy,
      applyCheck: (id, result, now) => {
        if (hangs > 0) {
          hangs--;
          return new Promise(() => {});
        }
        return healthy.applyCheck(id, result, now);
      },
    };
    const logs: LogLine[] = [];
    const job = checker(store, logs, 50);

    const outcomes = await job.runOnce();
    expect(outcomes.map((o) => o.state)).toEqual([undefined, undefined]);
    expect(logs.filter((l) => l.msg === "health result not written")).toHaveLength(1);

    job.start();
    await expect
      .poll(async () => (await healthy.read(["a"], [])).providers.get("a")?.status, { timeout: 10_000 })
      .toBe("healthy");
  });
});
