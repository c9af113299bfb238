import { readFileSync } from "node:fs";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { App, Validations } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayStack } from "../../infra/stack.ts";
import { CHAT_CALLER_ATTRIBUTES } from "../../infra/table-access.ts";
import { createDynamoClient } from "../../lib/aws/dynamodb.ts";
import { createCallers } from "../../lib/callers/callers.ts";
import { type KeyLimits, LIMIT_NAMES } from "../../lib/callers/types.ts";
import { DEFAULT_CALLERS } from "../../lib/config/defaults.ts";
import { silentLogger, systemDeps } from "../../lib/deps.ts";
import { createDynamoHealthStore } from "../../lib/health/dynamo-store.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import { createDynamoResponseStore } from "../../lib/responses/dynamo-store.ts";
import { createRuntime } from "../../lib/runtime.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import { createKey } from "../callers/support.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { chatBody, jsonOf, postChat, startGateway, type TestGateway } from "../support/gateway.ts";
import {
  allows,
  roleStatements,
  type Statement,
  type TableRequest,
  tableRequest,
  tableStatements,
} from "./iam.ts";

/** Synthesizes without bundling, cdk-nag on (an unacknowledged finding throws). */
function synth(): Template {
  const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
  const stack = new GatewayStack(app, "Test", {
    configText: readFileSync("config/aws.example.json", "utf8"),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
  return Template.fromStack(stack);
}

const template = synth();
const chatRole = tableStatements(roleStatements(template, /streaming Function URL/));
const healthRole = tableStatements(roleStatements(template, /health checks/));

/** A DynamoDB client that records every command the code sends through it, as IAM would see it. */
function recordingClient(endpoint: string, into: TableRequest[]): DynamoDBClient {
  const client = createDynamoClient({ endpoint });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      // Recorded once answered (or refused): a test that waits for a write waits for it to land.
      try {
        return await next(args);
      } finally {
        into.push(tableRequest(context.commandName ?? "?", args.input as Parameters<typeof tableRequest>[1]));
      }
    },
    { step: "initialize", name: "recordForIam" },
  );
  return client;
}

const denied = (statements: Statement[], requests: TableRequest[]) =>
  requests.filter((r) => !allows(statements, r)).map((r) => r.label);
/** `action pk-prefix sk-prefix` of each item each request touched, to show which paths ran. */
const shapes = (requests: TableRequest[]) => {
  const prefix = (text: string) => text.replace(/#.*/, "#");
  return [
    ...new Set(requests.flatMap((r) => r.items.map(([pk, sk]) => `${r.action} ${prefix(pk)} ${prefix(sk)}`))),
  ];
};

const update = (pk: string, sk: string, expression: string, extra: Record<string, unknown> = {}) =>
  tableRequest("UpdateItemCommand", {
    Key: { pk: { S: pk }, sk: { S: sk } },
    UpdateExpression: expression,
    ...extra,
  });

describe("the table grants, judged on the requests the code sends (dynalite, recorded)", () => {
  let upstream: FakeUpstream;
  let table: TestTable;
  let gateway: TestGateway;
  const chatSent: TableRequest[] = [];
  const healthSent: TableRequest[] = [];
  let stop = () => {};

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    table = await startTestTable();
    const document = {
      // One failure benches a target; no retry on it, so the bench stands until a health run.
      defaults: {
        cooldown: { minRequests: 1, failureRateThreshold: 0.5, cooldownMs: 60_000 },
        retry: { maxAttempts: 1 },
      },
      providers: [{ id: "p", type: "openai", baseUrl: upstream.url, apiKey: { env: "TEST_KEY" } }],
      models: {
        m: {
          targets: [
            { provider: "p", model: "x" },
            { provider: "p", model: "y" },
          ],
        },
      },
    };
    const chatClient = recordingClient(table.dynamo.endpoint, chatSent);
    const callers = createCallers({
      client: chatClient,
      tableName: table.tableName,
      policy: DEFAULT_CALLERS,
      now: Date.now,
      logger: silentLogger,
      // On real time, like the gateway beside it (its runtime's timers and health writes are real).
      timers: systemDeps(silentLogger),
      flushAfterResponse: true,
      register: () => {},
    });
    stop = () => callers.ledger.stop();
    gateway = await startGateway(document, {
      auth: callers.auth,
      healthStore: createDynamoHealthStore({
        client: chatClient,
        tableName: table.tableName,
        health: validateConfig(document).health,
      }),
      responses: createDynamoResponseStore({ client: chatClient, tableName: table.tableName, now: Date.now }),
    });
    // The operator's key, with every limit there is, so every counter the gate keeps is written.
    const operator = createCallers({
      client: table.client,
      tableName: table.tableName,
      policy: DEFAULT_CALLERS,
      now: Date.now,
      logger: silentLogger,
      timers: systemDeps(silentLogger),
      register: () => {},
    });
    operator.ledger.stop();
    const limits = Object.fromEntries(LIMIT_NAMES.map((name) => [name, 1_000_000])) as KeyLimits;
    const { auth } = await createKey(operator, "everything-limited", { limits });

    // A failure benches the first target (written to the table), the second answers.
    upstream.queue = [{ kind: "status", status: 500 }];
    expect((await postChat(gateway.url, chatBody("m"), auth)).status).toBe(200);
    const streamed = await postChat(gateway.url, chatBody("m", { stream: true }), auth);
    expect(streamed.status).toBe(200);
    await streamed.text();
    // One stored response (issue 19): written, continued, read back, listed and deleted.
    const responses = (path: string, init: RequestInit = {}) =>
      fetch(`${gateway.url}/v1/responses${path}`, {
        ...init,
        headers: { "content-type": "application/json", ...auth },
      });
    const stored = await jsonOf(
      await responses("", { method: "POST", body: JSON.stringify({ model: "m", input: "hi" }) }),
    );
    expect(stored.store).toBe(true);
    const next = await responses("", {
      method: "POST",
      body: JSON.stringify({ model: "m", input: "again", previous_response_id: stored.id }),
    });
    expect(next.status).toBe(200);
    expect((await responses(`/${stored.id}`)).status).toBe(200);
    expect((await responses(`/${stored.id}/input_items`)).status).toBe(200);
    expect((await responses(`/${stored.id}`, { method: "DELETE" })).status).toBe(200);
    await callers.ledger.flush();
    const wroteBench = () =>
      chatSent.some((r) => r.action === "dynamodb:UpdateItem" && r.leadingKeys[0]?.startsWith("TARGET#"));
    for (let i = 0; i < 100 && !wroteBench(); i++) await new Promise((r) => setTimeout(r, 10));

    // The health function's run: it reads the benches, checks the provider, clears the bench.
    const healthRuntime = createRuntime(validateConfig(document), {
      deps: systemDeps(silentLogger),
      keys: envKeys({ TEST_KEY: "sk-test-secret-key-123456" }),
      healthStore: createDynamoHealthStore({
        client: recordingClient(table.dynamo.endpoint, healthSent),
        tableName: table.tableName,
        health: validateConfig(document).health,
      }),
    });
    await healthRuntime.healthChecker.runOnce();
    healthRuntime.http.close();

    // The chat function's own recovery write: its next success on the target it benched.
    const benched = chatSent.find(
      (r) => r.leadingKeys[0]?.startsWith("TARGET#") && r.action.endsWith("UpdateItem"),
    );
    const before = chatSent.length;
    gateway.runtime.cooldowns.recordSuccess(
      benched?.leadingKeys[0]?.slice("TARGET#".length) ?? "none",
      Date.now(),
    );
    for (let i = 0; i < 100 && chatSent.length === before; i++) await new Promise((r) => setTimeout(r, 10));
  }, 30_000);

  afterAll(async () => {
    stop();
    await gateway?.close();
    await upstream?.close();
    await table?.close();
  });

  it("allows every call the chat function made: key and totals, counters, ledger, lastUsedAt, benches", () => {
    expect(shapes(chatSent)).toEqual(
      expect.arrayContaining([
        "dynamodb:BatchGetItem CALLER# KEY",
        "dynamodb:UpdateItem CALLER# MINUTE#",
        "dynamodb:UpdateItem CALLER# USAGE#",
        "dynamodb:UpdateItem CALLER# DAY#",
        "dynamodb:UpdateItem CALLER# MONTH#",
        "dynamodb:UpdateItem CALLER# KEY",
        "dynamodb:UpdateItem CALLER# CONCURRENT",
        "dynamodb:UpdateItem TARGET# STATE",
        "dynamodb:PutItem RESPONSE# PART#",
        "dynamodb:Query RESPONSE# ",
        "dynamodb:DeleteItem RESPONSE# PART#",
      ]),
    );
    expect(
      chatSent.filter((r) => r.leadingKeys[0]?.startsWith("TARGET#") && r.action === "dynamodb:UpdateItem"),
    ).toHaveLength(2);
    expect(denied(chatRole, chatSent)).toEqual([]);
    // The message a new ledger attribute gets: add it to the list, the writers are named there.
    const callerAttributes = chatSent
      .filter(
        (r) => r.action === "dynamodb:UpdateItem" && r.leadingKeys.every((k) => k.startsWith("CALLER#")),
      )
      .flatMap((r) => (r.attributes === "all" ? [] : r.attributes))
      .filter((a) => a !== "pk" && a !== "sk");
    expect(
      [...new Set(callerAttributes)].filter((a) => !CHAT_CALLER_ATTRIBUTES.includes(a)),
      "attributes the chat function writes under CALLER# but infra/table-access.ts CHAT_CALLER_ATTRIBUTES lacks",
    ).toEqual([]);
  });

  it("allows every call the health function made, and none of them touched a caller", () => {
    expect(shapes(healthSent)).toEqual(
      expect.arrayContaining([
        "dynamodb:BatchGetItem TARGET# STATE",
        "dynamodb:GetItem PROVIDER# STATE",
        "dynamodb:UpdateItem PROVIDER# STATE",
        "dynamodb:PutItem PROVIDER# CHECK#",
        "dynamodb:UpdateItem TARGET# STATE",
      ]),
    );
    expect(denied(healthRole, healthSent)).toEqual([]);
    expect(healthSent.some((r) => r.leadingKeys.some((k) => k.startsWith("CALLER#")))).toBe(false);
  });
});

describe("the chat function's role refuses what only the operator may do", () => {
  const key = "CALLER#k1";
  const hostile: Record<string, TableRequest> = {
    "un-revoke a key": update(key, "KEY", "REMOVE revokedAt"),
    "replace a key's hash": update(key, "KEY", "SET #h = :h", { ExpressionAttributeNames: { "#h": "hash" } }),
    "lift a key's limits": update(key, "KEY", "SET limits = :l"),
    "widen a key's models": update(key, "KEY", "REMOVE models"),
    "mint a key by update": update("CALLER#new", "KEY", "SET #h = :h, createdAt = :c", {
      ExpressionAttributeNames: { "#h": "hash" },
    }),
    "mint a key by put": tableRequest("PutItemCommand", {
      Item: { pk: { S: "CALLER#new" }, sk: { S: "KEY" }, hash: { S: "0" }, createdAt: { N: "0" } },
    }),
    "delete a key": tableRequest("DeleteItemCommand", { Key: { pk: { S: key }, sk: { S: "KEY" } } }),
    "read a whole key item back from a counter update": update(key, "KEY", "SET lastUsedAt = :t", {
      ReturnValues: "ALL_OLD",
    }),
    "switch a provider off": update("PROVIDER#openai", "STATE", "SET enabled = :f"),
    "reweight a provider": update("PROVIDER#openai", "STATE", "SET weight = :w"),
    "write a bench attribute on a caller item": update(key, "KEY", "SET cooldownUntil = :u"),
    "write a caller attribute on a bench": update("TARGET#p/x", "STATE", "SET lastUsedAt = :u"),
    "scan the table": tableRequest("ScanCommand", {}),
    "query a caller's items": tableRequest("QueryCommand", {
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": { S: key } },
    }),
    "put a caller attribute into a stored response": tableRequest("PutItemCommand", {
      Item: { pk: { S: "RESPONSE#resp_1" }, sk: { S: "PART#000" }, hash: { S: "0" } },
    }),
    "read a stored response back from a put": tableRequest("PutItemCommand", {
      Item: { pk: { S: "RESPONSE#resp_1" }, sk: { S: "PART#000" }, owner: { S: "k1" } },
      ReturnValues: "ALL_OLD",
    }),
    "delete a bench": tableRequest("DeleteItemCommand", {
      Key: { pk: { S: "TARGET#p/x" }, sk: { S: "STATE" } },
    }),
  };

  for (const [what, request] of Object.entries(hostile)) {
    it(`cannot ${what}`, () => {
      expect(allows(chatRole, request)).toBe(false);
    });
  }

  it("still may do what the ledger does on the same items", () => {
    expect(
      allows(
        chatRole,
        update(key, "KEY", "SET lastUsedAt = :t", { ConditionExpression: "attribute_exists(pk)" }),
      ),
    ).toBe(true);
    expect(
      allows(
        chatRole,
        update(key, "DAY#2026-01-01", "ADD tokens :t, cost :c", { ReturnValues: "UPDATED_NEW" }),
      ),
    ).toBe(true);
  });

  it("carries its conditions in the template: leading keys on every table statement, attributes on every update", () => {
    for (const statement of chatRole) {
      expect(statement.Condition?.["ForAllValues:StringLike"]?.["dynamodb:LeadingKeys"]).toBeDefined();
      const actions = [statement.Action].flat();
      expect(actions.some((a) => /Scan|BatchWriteItem|\*/.test(a))).toBe(false);
      // A put or a delete only on stored responses (issue 19), never on a caller's or a health item.
      if (actions.some((a) => /PutItem|DeleteItem/.test(a)))
        expect(statement.Condition?.["ForAllValues:StringLike"]?.["dynamodb:LeadingKeys"]).toEqual([
          "RESPONSE#*",
        ]);
      if (actions.includes("dynamodb:UpdateItem")) {
        expect(statement.Condition?.["ForAllValues:StringEquals"]?.["dynamodb:Attributes"]).toEqual(
          expect.arrayContaining(["pk", "sk"]),
        );
        expect(statement.Condition?.StringEqualsIfExists?.["dynamodb:ReturnValues"]).toEqual([
          "NONE",
          "UPDATED_OLD",
          "UPDATED_NEW",
        ]);
      }
    }
    expect(
      chatRole.flatMap((s) => [s.Condition?.["ForAllValues:StringLike"]?.["dynamodb:LeadingKeys"]].flat()),
    ).toEqual(expect.arrayContaining(["CALLER#*", "TARGET#*"]));
  });
});

describe("the health function's role", () => {
  it("reaches health items only, never a caller's", () => {
    const leading = healthRole.flatMap((s) =>
      [s.Condition?.["ForAllValues:StringLike"]?.["dynamodb:LeadingKeys"]].flat(),
    );
    expect([...new Set(leading)].sort()).toEqual(["PROVIDER#*", "TARGET#*"]);
    for (const request of [
      tableRequest("BatchGetItemCommand", {
        RequestItems: {
          t: {
            Keys: [
              { pk: { S: "PROVIDER#p" }, sk: { S: "STATE" } },
              { pk: { S: "CALLER#k1" }, sk: { S: "KEY" } },
            ],
          },
        },
      }),
      tableRequest("GetItemCommand", { Key: { pk: { S: "CALLER#k1" }, sk: { S: "KEY" } } }),
      update("CALLER#k1", "KEY", "REMOVE revokedAt"),
      tableRequest("PutItemCommand", { Item: { pk: { S: "CALLER#new" }, sk: { S: "KEY" } } }),
      tableRequest("ScanCommand", {}),
    ]) {
      expect(allows(healthRole, request), request.label).toBe(false);
    }
  });

  it("is not given the caller keys' secret or its name", () => {
    const health = Object.values(template.findResources("AWS::Lambda::Function")).find((f) =>
      /health checks/.test(String(f.Properties.Description)),
    );
    expect(Object.keys(health?.Properties.Environment.Variables ?? {}).sort()).toEqual([
      "GATEWAY_TABLE",
      "HEALTH_SCHEDULE_MS",
    ]);
    const reads = roleStatements(template, /health checks/).filter((s) =>
      [s.Action].flat().includes("secretsmanager:GetSecretValue"),
    );
    expect(JSON.stringify(reads)).not.toContain("ClientKeys");
  });
});
