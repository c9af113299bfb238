import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashClientKey } from "../../lib/gateway/auth.ts";
import { createLambdaRuntime } from "../../lib/lambda/runtime.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { type FakeSecrets, startFakeSecrets, useLoopbackAws } from "../support/fake-secrets.ts";

let table: TestTable;
let secrets: FakeSecrets;

beforeAll(async () => {
  table = await startTestTable();
  secrets = await startFakeSecrets({
    "warm/provider-keys": JSON.stringify({ p: "sk-provider-123456" }),
    "warm/client-keys": JSON.stringify({ sha256: [hashClientKey("sk-gw-caller-123456")] }),
  });
  useLoopbackAws(table.dynamo.endpoint, secrets.endpoint);
});
afterAll(async () => {
  await secrets.close();
  await table.close();
});

describe("the Lambda runtime", () => {
  const minimal = {
    LOG_LEVEL: "off",
    AUTH_MODE: "NONE",
    GATEWAY_CONFIG_JSON: JSON.stringify({
      providers: [{ id: "mock", type: "mock" }],
      models: { m: { targets: [{ provider: "mock", model: "x" }] } },
    }),
  };

  it("names the table by GATEWAY_TABLE, and still by HEALTH_TABLE, its name before callers moved in", async () => {
    expect(() => createLambdaRuntime(minimal, () => {})).toThrow("GATEWAY_TABLE is not set");
    for (const env of [{ GATEWAY_TABLE: table.tableName }, { HEALTH_TABLE: table.tableName }]) {
      const checks = async () => (await table.store().history("mock", 100, Date.now())).length;
      const before = await checks();
      const runtime = createLambdaRuntime({ ...minimal, ...env }, () => {});
      // The check lands in this table: the runtime found it by that name.
      await runtime.healthChecker.runOnce();
      expect(await checks()).toBe(before + 1);
      runtime.http.close();
    }
  });

  it("starts the first request's fetches side by side as soon as it is built, and requests join them", async () => {
    const runtime = createLambdaRuntime({
      ...process.env,
      LOG_LEVEL: "off",
      GATEWAY_TABLE: table.tableName,
      CLIENT_KEYS_SECRET: "warm/client-keys",
      AUTH_MODE: "NONE",
      GATEWAY_CONFIG_JSON: JSON.stringify({
        providers: [
          {
            id: "p",
            type: "openai",
            baseUrl: "http://127.0.0.1:9",
            apiKey: { secretId: "warm/provider-keys", jsonKey: "p" },
          },
        ],
        models: { m: { targets: [{ provider: "p", model: "x" }] } },
      }),
    });

    // No request yet: both secrets are already being fetched, and the table read too.
    await expect
      .poll(() => [secrets.reads.get("warm/client-keys"), secrets.reads.get("warm/provider-keys")])
      .toEqual([1, 1]);
    await expect.poll(() => runtime.healthView.reads).toBe(1);

    const res = await runtime.gateway.handle({
      method: "GET",
      path: "/v1/models",
      headers: { authorization: "Bearer sk-gw-caller-123456" },
      body: "",
      signal: new AbortController().signal,
    });
    expect(res.status).toBe(200);
    expect(secrets.reads.get("warm/client-keys")).toBe(1);
    runtime.http.close();
  });
});
