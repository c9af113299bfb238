import { BatchGetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Callers } from "../../lib/callers/callers.ts";
import { createUsageLedger } from "../../lib/callers/ledger.ts";
import { callerPk, createCallerStore, KEY_SK } from "../../lib/callers/store.ts";
import { NO_USAGE } from "../../lib/core/usage.ts";
import type { GatewayError } from "../../lib/errors.ts";
import { hashClientKey } from "../../lib/gateway/auth.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { DEFAULT_TOKENS, type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import {
  chatBody,
  jsonOf,
  type LogLine,
  postChat,
  recordingLogger,
  startGateway,
  type TestGateway,
} from "../support/gateway.ts";
import { callersOn, config, createKey, testClock, timersOn } from "./support.ts";

/** What one answer of the fake upstream costs: 10 prompt tokens, one completion token per piece. */
const TOKENS_PER_ANSWER = 10 + DEFAULT_TOKENS.length;

let upstream: FakeUpstream;
let table: TestTable;
const open: Array<{ close(): Promise<void> | void }> = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
  table = await startTestTable();
});
afterAll(async () => {
  await upstream.close();
  await table.close();
});
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

async function gatewayWith(callers: Callers): Promise<TestGateway> {
  const gateway = await startGateway(config(upstream.url), { auth: callers.auth });
  open.push(gateway, { close: () => callers.ledger.stop() });
  return gateway;
}

describe("callers: limits across instances sharing one table", () => {
  it("refuses a key's 6th request in a minute with 429 and Retry-After, whichever instance gets it", async () => {
    const clock = testClock();
    const a = callersOn(table, { clock });
    const b = callersOn(table, { clock });
    const [ga, gb] = [await gatewayWith(a), await gatewayWith(b)];
    const { auth } = await createKey(a, "five-a-minute", { limits: { rpm: 5 } });

    const statuses: number[] = [];
    for (const g of [ga, gb, ga, gb, ga]) statuses.push((await postChat(g.url, chatBody("m"), auth)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);

    for (const g of [gb, ga]) {
      const refused = await postChat(g.url, chatBody("m"), auth);
      expect(refused.status).toBe(429);
      // The clock stands 30 s into its minute: the window resets in 30 s.
      expect(refused.headers.get("retry-after")).toBe("30");
      const body = await jsonOf(refused);
      expect(body.error).toMatchObject({ code: "rate_limit_exceeded", param: "rpm" });
      expect(body.error.message).toContain("5 requests per minute");
      expect(body.error.message).toContain("five-a-minute");
    }
    // The next minute is a new window.
    await clock.advance(30_000);
    expect((await postChat(ga.url, chatBody("m"), auth)).status).toBe(200);
  });

  it("stops a key once its daily token budget is spent, overshooting by at most (N − 1) reservations", async () => {
    const clock = testClock();
    // As on Lambda: each instance flushes after its response, so it learns the fleet's totals then.
    const a = callersOn(table, { clock, flushAfterResponse: true });
    const b = callersOn(table, { clock, flushAfterResponse: true });
    const [ga, gb] = [await gatewayWith(a), await gatewayWith(b)];
    const budget = 100;
    const { id, auth } = await createKey(a, "budgeted", { limits: { tokensPerDay: budget } });
    const bodies = [false, true].map((stream) =>
      chatBody("m", { stream, max_tokens: DEFAULT_TOKENS.length }),
    );
    // What admission reserves: the body's length / 4 (the prompt estimate) plus max_tokens.
    const reservations = bodies.map((body) => Math.ceil(body.length / 4) + DEFAULT_TOKENS.length);

    let served = 0;
    const refusals: Response[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await postChat((i % 2 === 0 ? ga : gb).url, bodies[i % 4 < 2 ? 1 : 0] as string, auth);
      if (res.status === 200) {
        await res.text();
        served++;
      } else refusals.push(res);
    }
    const spent = (await a.store.totals(id, clock.now())).dayTokens;
    expect(spent).toBe(served * TOKENS_PER_ANSWER);
    // The stated bound (README "Callers"): past the budget by at most (N − 1) of the largest reservation.
    expect(spent - budget).toBeLessThanOrEqual((2 - 1) * Math.max(...reservations));
    // This sequence exactly: six answers (96 tokens). Each instance admits while its view plus a
    // reservation (about 28) fits in 100; the sixth was admitted on a view of 64 that lacked the
    // other instance's last answer (its view is refreshed only by its own loads and flushes).
    expect(served).toBe(6);
    expect(refusals.length).toBeGreaterThan(0);
    const refused = refusals[0] as Response;
    expect(refused.status).toBe(429);
    // 12:00:30 UTC: the day resets at midnight, in 12 hours less 30 s.
    expect(refused.headers.get("retry-after")).toBe(String(12 * 3600 - 30));
    expect((await jsonOf(refused)).error).toMatchObject({
      code: "budget_exceeded",
      type: "insufficient_quota",
    });
    // Once both instances know, every further request is refused.
    for (const g of [ga, gb]) expect((await postChat(g.url, bodies[0] as string, auth)).status).toBe(429);
  });
});

describe("callers: the usage ledger", () => {
  it("adds every answer's usage per key, model and day, streams included, and hides the usage it asked for", async () => {
    const clock = testClock();
    const callers = callersOn(table, { clock });
    const gateway = await gatewayWith(callers);
    const { id, auth } = await createKey(callers, "metered");
    const before = upstream.requests.length;

    const plain = await jsonOf(await postChat(gateway.url, chatBody("m"), auth));
    const asked = await (
      await postChat(
        gateway.url,
        chatBody("m", { stream: true, stream_options: { include_usage: true } }),
        auth,
      )
    ).text();
    const unasked = await (await postChat(gateway.url, chatBody("other", { stream: true }), auth)).text();

    // The caller who asked sees the usage chunk; the one who did not never does...
    expect(asked).toContain('"usage"');
    expect(unasked).not.toContain('"usage"');
    expect(unasked).toContain("data: [DONE]");
    // ...though the gateway asked upstream for it.
    expect(upstream.requests[before + 2]?.body.stream_options).toEqual({ include_usage: true });

    await callers.ledger.flush();
    const rows = await callers.store.usage({ keyId: id });
    const sum = (f: "requests" | "promptTokens" | "completionTokens") => rows.reduce((t, r) => t + r[f], 0);
    expect(sum("requests")).toBe(3);
    expect(sum("promptTokens")).toBe(plain.usage.prompt_tokens * 3);
    expect(sum("completionTokens")).toBe(plain.usage.completion_tokens * 3);
    expect(rows.map((r) => [r.model, r.day, r.requests])).toEqual([
      ["m", "2026-11-29", 2],
      ["other", "2026-11-29", 1],
    ]);
    expect(callers.ledger.pendingItems).toBe(0);
  });

  it("logs the key's id and name with each request, never the key", async () => {
    const logs: LogLine[] = [];
    const callers = callersOn(table, { clock: testClock(), logs });
    const gateway = await gatewayWith(callers);
    const { id, key, auth } = await createKey(callers, "logged");
    expect((await postChat(gateway.url, chatBody("m"), auth)).status).toBe(200);
    const line = gateway.logs.find((l) => l.msg === "chat completion");
    expect(line).toMatchObject({ keyId: id, keyName: "logged" });
    expect(JSON.stringify([gateway.logs, logs])).not.toContain(key);
  });
});

describe("callers: keys", () => {
  it("refuses a revoked key once the key cache's TTL has passed", async () => {
    const clock = testClock();
    const callers = callersOn(table, { clock, policy: { cacheTtlMs: 5_000 } });
    const gateway = await gatewayWith(callers);
    const { id, auth } = await createKey(callers, "soon-revoked");
    expect((await postChat(gateway.url, chatBody("m"), auth)).status).toBe(200);

    await callers.store.revoke(id, clock.now());
    await clock.advance(5_001);
    const refused = await postChat(gateway.url, chatBody("m"), auth);
    expect(refused.status).toBe(401);
    expect((await jsonOf(refused)).error).toMatchObject({
      code: "invalid_api_key",
      message: "This API key has been revoked.",
    });
  });

  it("skips a malformed key record with a 401, logged once, never a 500", async () => {
    const logs: LogLine[] = [];
    const callers = callersOn(table, { clock: testClock(), logs });
    const gateway = await gatewayWith(callers);
    const { id, auth } = await createKey(callers, "broken");
    await table.client.send(
      new UpdateItemCommand({
        TableName: table.tableName,
        Key: { pk: { S: callerPk(id) }, sk: { S: KEY_SK } },
        UpdateExpression: "SET limits = :bad",
        ExpressionAttributeValues: { ":bad": { M: { rpm: { N: "-1" } } } },
      }),
    );
    for (let i = 0; i < 2; i++) expect((await postChat(gateway.url, chatBody("m"), auth)).status).toBe(401);
    expect(logs.filter((l) => l.msg === "caller key record skipped")).toHaveLength(1);
  });

  it("keeps the legacy { sha256: [...] } secret's keys working, unnamed and unlimited", async () => {
    const legacy = "sk-gw-legacy-key-0123456789";
    const callers = callersOn(table, { clock: testClock(), legacyHashes: [hashClientKey(legacy)] });
    const gateway = await gatewayWith(callers);
    for (let i = 0; i < 3; i++) {
      const res = await postChat(gateway.url, chatBody("m"), { authorization: `Bearer ${legacy}` });
      expect(res.status).toBe(200);
    }
    expect(gateway.logs.find((l) => l.msg === "chat completion")?.keyId).toBe(
      `legacy-${hashClientKey(legacy).slice(0, 12)}`,
    );
    expect((await postChat(gateway.url, chatBody("m"), { authorization: "Bearer sk-gw-nope" })).status).toBe(
      401,
    );
  });
});

describe("callers: the table down", () => {
  it("keeps usage the table could not take and writes it once, exactly, when it is back", async () => {
    const clock = testClock();
    let down = false;
    const flaky = new Proxy(table.client, {
      get: (target, property) =>
        property === "send" && down
          ? () => Promise.reject(new Error("table down"))
          : Reflect.get(target, property),
    });
    const ledger = createUsageLedger({
      client: flaky,
      tableName: table.tableName,
      prices: {},
      deps: { ...timersOn(clock), now: clock.now, logger: recordingLogger([]) },
    });
    const caller = { id: "flakyflaky23", name: "flaky", models: undefined, limits: {} };
    const usage = { ...NO_USAGE, inputTokens: 3, outputTokens: 2 };
    ledger.record(caller, "m", usage);
    down = true;
    await ledger.flush();
    expect(ledger.pendingItems).toBeGreaterThan(0);
    ledger.record(caller, "m", usage);
    down = false;
    await ledger.flush(); // no pause after a failure: the next flush writes both (issue 16)
    expect(ledger.pendingItems).toBe(0);
    const rows = await createCallerStore(table.client, table.tableName).usage({ keyId: caller.id });
    expect(rows.map((r) => [r.requests, r.promptTokens, r.completionTokens])).toEqual([[2, 6, 4]]);
  });

  /**
   * The test table, except that the commands `hangs` picks are never answered: they end only when
   * the caller's abort signal fires (what the gate's timeouts do).
   */
  function hangingTable(hangs: (command: object) => boolean): TestTable {
    const client = new Proxy(table.client, {
      get: (target, property) =>
        property === "send"
          ? (command: Parameters<typeof target.send>[0], options?: { abortSignal?: AbortSignal }) =>
              hangs(command)
                ? new Promise((_, reject) =>
                    options?.abortSignal?.addEventListener("abort", () =>
                      reject(options.abortSignal?.reason),
                    ),
                  )
                : target.send(command, options)
          : Reflect.get(target, property),
    });
    return { ...table, client };
  }

  it("ends a counter update the table never answers after limitTimeoutMs on the gate's clock", async () => {
    const clock = testClock();
    const hung = hangingTable((command) => command instanceof UpdateItemCommand);
    const callers = callersOn(hung, { clock, policy: { failOpen: false, limitTimeoutMs: 300 } });
    const { key } = await createKey(callers, "hung-counter", { limits: { rpm: 5 } });
    const caller = await callers.auth.verify({ authorization: `Bearer ${key}` });
    const admitted = callers.auth.admit(caller, {
      model: "m",
      promptTokens: 1,
      maxOutputTokens: 1,
      choices: 1,
    });
    const outcome = admitted.then(
      () => "admitted",
      (error: GatewayError) => `${error.status} ${error.code}`,
    );
    // The bound is a timer on the test's clock, not a real one: nothing ends until the clock moves.
    expect(await clock.scheduled((t) => t.kind === "timer" && t.ms === 300)).toMatchObject({ ms: 300 });
    await clock.advance(299);
    expect(await Promise.race([outcome, Promise.resolve("pending")])).toBe("pending");
    await clock.advance(1);
    expect(await outcome).toBe("503 limits_unavailable");
  });

  it("serves a known key from its cached record when a reload hangs past limitTimeoutMs", async () => {
    const clock = testClock();
    let hang = false;
    const hung = hangingTable((command) => hang && command instanceof BatchGetItemCommand);
    const callers = callersOn(hung, { clock, policy: { cacheTtlMs: 1_000, limitTimeoutMs: 300 } });
    const { id, key } = await createKey(callers, "hung-reload");
    const headers = { authorization: `Bearer ${key}` };
    expect((await callers.auth.verify(headers)).id).toBe(id);
    hang = true;
    await clock.advance(1_001);
    const verified = callers.auth.verify(headers);
    await clock.scheduled((t) => t.kind === "timer" && t.ms === 300);
    await clock.advance(300);
    expect((await verified).id).toBe(id);
  });

  async function outage(failOpen: boolean): Promise<number[]> {
    const own = await startTestTable();
    const clock = testClock();
    const callers = callersOn(own, { clock, policy: { failOpen, limitTimeoutMs: 200 } });
    const gateway = await gatewayWith(callers);
    const { auth } = await createKey(callers, "limited", { limits: { rpm: 2 } });
    const statuses = [(await postChat(gateway.url, chatBody("m"), auth)).status];
    await own.dynamo.close();
    // Past the key cache's TTL too: the key's last record serves while the table cannot be read.
    await clock.advance(31_000);
    for (let i = 0; i < 3; i++) statuses.push((await postChat(gateway.url, chatBody("m"), auth)).status);
    own.client.destroy();
    return statuses;
  }

  it("fails open by default: known keys are served, each instance holding the limit on its own", async () => {
    expect(await outage(true)).toEqual([200, 200, 200, 429]);
  });

  it("fails closed when configured: 503 while the counters cannot be reached", async () => {
    expect(await outage(false)).toEqual([200, 503, 503, 503]);
  });
});
