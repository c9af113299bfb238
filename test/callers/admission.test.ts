import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Callers } from "../../lib/callers/callers.ts";
import { worstCase } from "../../lib/callers/gate.ts";
import type { AdmissionRequest } from "../../lib/callers/types.ts";
import { DEFAULT_CALLERS } from "../../lib/config/defaults.ts";
import { ConfigError } from "../../lib/config/fields.ts";
import { NO_USAGE } from "../../lib/core/usage.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { type CustomResponder, type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { chatBody, jsonOf, postChat, startGateway, type TestGateway } from "../support/gateway.ts";
import { callersOn, config, createKey, testClock } from "./support.ts";

/** What the held stream below reports: 10 prompt and 6 completion tokens. */
const STREAM_TOKENS = 16;

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
  upstream.fallback = { kind: "answer" };
  for (const o of open.splice(0)) await o.close();
});

async function gatewayWith(callers: Callers): Promise<TestGateway> {
  const gateway = await startGateway(config(upstream.url), { auth: callers.auth });
  open.push(gateway, { close: () => callers.ledger.stop() });
  return gateway;
}

/**
 * Streams that send their first token at once and the rest only once `release()` is called: long
 * answers whose usage is not known while they run.
 */
function heldStreams(): { responder: CustomResponder; release(): void } {
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const chunk = (fields: object) =>
    `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "x", ...fields })}\n\n`;
  const responder: CustomResponder = async (_record, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(
      chunk({ choices: [{ index: 0, delta: { role: "assistant", content: "Hi" }, finish_reason: null }] }),
    );
    await released;
    res.write(chunk({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }));
    res.write(chunk({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 } }));
    res.end("data: [DONE]\n\n");
  };
  return { responder, release: () => release() };
}

/** The worst case the gateway reserves for `body`: its length / 4 (the prompt estimate) plus max_tokens × n. */
function reservationOf(body: string, maxTokens: number, n = 1): number {
  return Math.ceil(body.length / 4) + maxTokens * n;
}

describe("admission reserves a request's worst case (issue 16)", () => {
  it("admits only the staggered long streams whose reservation fits, and settles each to its real usage", async () => {
    const held = heldStreams();
    upstream.fallback = { kind: "custom", respond: held.responder };
    const callers = callersOn(table, { clock: testClock() });
    const gateway = await gatewayWith(callers);
    const budget = 100;
    const { auth } = await createKey(callers, "staggered", { limits: { tokensPerDay: budget } });
    const body = chatBody("m", { stream: true, max_tokens: 20 });
    const reservation = reservationOf(body, 20);
    expect(Math.floor(budget / reservation)).toBe(2);
    const before = upstream.requests.length;

    // One after the other, each started once the one before is streaming (as the probe's 2 s apart).
    const responses: Response[] = [];
    for (let i = 0; i < 5; i++) responses.push(await postChat(gateway.url, body, auth));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 429, 429, 429]);
    expect(upstream.requests.length - before).toBe(2);
    const refused = await jsonOf(responses[2] as Response);
    expect(refused.error).toMatchObject({ code: "budget_exceeded", param: "tokensPerDay" });
    expect(refused.error.message).toContain(
      `${budget} tokens left, ${2 * reservation} tokens held by its requests in flight`,
    );
    expect(responses[2]?.headers.get("retry-after")).toBe("1");

    held.release();
    for (const r of responses.slice(0, 2)) expect(await r.text()).toContain("data: [DONE]");
    // Settled to what they used (16 each), not what they held: two more fit, one by one.
    upstream.fallback = { kind: "answer" };
    const plain = chatBody("m", { max_tokens: 20 });
    const spent = [2 * STREAM_TOKENS];
    for (let total = spent[0] as number; total + reservationOf(plain, 20) <= budget; spent.push(total)) {
      const res = await postChat(gateway.url, plain, auth);
      expect(res.status).toBe(200);
      total += (await jsonOf(res)).usage.total_tokens;
    }
    expect(spent).toEqual([32, 48, 64]);
    const last = await postChat(gateway.url, plain, auth);
    expect(last.status).toBe(429);
    expect((await jsonOf(last)).error.message).toContain(
      "cannot hold this request: 100 tokens per day, 36 tokens left",
    );
  });

  it("admits only as many parallel streams as fit, the default reservation standing in for a missing max_tokens", async () => {
    const held = heldStreams();
    upstream.fallback = { kind: "custom", respond: held.responder };
    const callers = callersOn(table, { clock: testClock(), policy: { defaultOutputReservation: 40 } });
    const gateway = await gatewayWith(callers);
    const { auth } = await createKey(callers, "parallel", { limits: { tokensPerDay: 100 } });

    const capped = chatBody("m", { stream: true, max_tokens: 20 });
    const statuses = (await Promise.all([1, 2, 3, 4, 5].map(() => postChat(gateway.url, capped, auth)))).map(
      (r) => r.status,
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    expect(statuses.filter((s) => s === 429)).toHaveLength(3);
    held.release();

    // Without max_tokens, each answer reserves defaultOutputReservation (40 here): only one fits in 100.
    const other = await createKey(callers, "uncapped", { limits: { tokensPerDay: 100 } });
    const uncapped = chatBody("m", { stream: true });
    expect(reservationOf(uncapped, 40)).toBeGreaterThan(50);
    const again = heldStreams();
    upstream.fallback = { kind: "custom", respond: again.responder };
    const second = await Promise.all([1, 2, 3].map(() => postChat(gateway.url, uncapped, other.auth)));
    expect(second.map((r) => r.status).sort()).toEqual([200, 429, 429]);
    const refusal = await jsonOf(second.find((r) => r.status === 429) as Response);
    expect(refusal.error.message).toContain("40 tokens per answer without max_tokens");
    again.release();
  });

  it("refuses a request whose n answers cannot fit up front, before any upstream call", async () => {
    const callers = callersOn(table, { clock: testClock() });
    const gateway = await gatewayWith(callers);
    const { auth } = await createKey(callers, "many-answers", { limits: { tokensPerDay: 100 } });
    const before = upstream.requests.length;
    const fifty = chatBody("m", { n: 50, max_completion_tokens: 10 });
    expect(reservationOf(fifty, 10, 50)).toBeGreaterThan(500);

    const refused = await postChat(gateway.url, fifty, auth);
    expect(refused.status).toBe(429);
    const error = (await jsonOf(refused)).error;
    expect(error).toMatchObject({
      code: "budget_exceeded",
      type: "insufficient_quota",
      param: "tokensPerDay",
    });
    expect(error.message).toContain(`may use up to ${reservationOf(fifty, 10, 50)} tokens`);
    expect(error.message).toContain("Lower max_tokens or n");
    expect(upstream.requests.length).toBe(before);
    // The refusal held nothing: one answer of the same request fits.
    expect((await postChat(gateway.url, chatBody("m", { max_completion_tokens: 10 }), auth)).status).toBe(
      200,
    );
  });

  it("holds the stated overshoot bound: none in one environment, (N − 1) × what was left across N", async () => {
    const clock = testClock();
    const limit = 100;
    const request: AdmissionRequest = { model: "m", promptTokens: 10, maxOutputTokens: 15, choices: 1 };
    const worst = { ...NO_USAGE, inputTokens: 10, outputTokens: 15, estimated: false };
    expect(worstCase(DEFAULT_CALLERS, request).tokens).toBe(25);

    /** Admits requests on `callers` until one is refused; the meters of those admitted. */
    async function fill(callers: Callers, headers: Record<string, string>) {
      const caller = await callers.auth.verify(headers);
      const meters = [];
      for (;;) {
        try {
          meters.push(await (callers.auth.admit?.(caller, request) as Promise<unknown>));
        } catch (error) {
          expect(error).toMatchObject({ status: 429, code: "budget_exceeded" });
          return meters as Array<{ record(u: typeof worst): void }>;
        }
      }
    }

    // One environment: four reservations of 25 fill 100 exactly; every answer using its worst case
    // spends exactly the limit, never more.
    const one = callersOn(table, { clock });
    const alone = await createKey(one, "alone", { limits: { tokensPerDay: limit } });
    const meters = await fill(one, alone.auth);
    expect(meters).toHaveLength(4);
    for (const m of meters) m.record(worst);
    await one.ledger.flush();
    expect((await one.store.totals(alone.id, clock.now())).dayTokens).toBe(limit);

    // Two environments that have not seen each other's holds: each fills what it saw left (100).
    const a = callersOn(table, { clock });
    const b = callersOn(table, { clock });
    const shared = await createKey(a, "shared", { limits: { tokensPerDay: limit } });
    const inA = await fill(a, shared.auth);
    const inB = await fill(b, shared.auth);
    expect([inA.length, inB.length]).toEqual([4, 4]);
    for (const m of [...inA, ...inB]) m.record(worst);
    await Promise.all([a.ledger.flush(), b.ledger.flush()]);
    const spent = (await a.store.totals(shared.id, clock.now())).dayTokens;
    const environments = 2;
    expect(spent - limit).toBe((environments - 1) * limit);
    // Once they have flushed, both see the total and refuse.
    for (const c of [a, b]) expect(await fill(c, shared.auth)).toHaveLength(0);
    for (const c of [one, a, b]) c.ledger.stop();
  });
});

describe("maxConcurrent (issue 16)", () => {
  it("caps a key's requests in flight across instances, frees a slot when a request ends", async () => {
    const held = heldStreams();
    upstream.fallback = { kind: "custom", respond: held.responder };
    const clock = testClock();
    const a = callersOn(table, { clock, flushAfterResponse: true });
    const b = callersOn(table, { clock, flushAfterResponse: true });
    const [ga, gb] = [await gatewayWith(a), await gatewayWith(b)];
    const { auth } = await createKey(a, "two-at-a-time", { limits: { maxConcurrent: 2 } });
    const body = chatBody("m", { stream: true });

    const first = [await postChat(ga.url, body, auth), await postChat(gb.url, body, auth)];
    expect(first.map((r) => r.status)).toEqual([200, 200]);
    for (const g of [ga, gb]) {
      const refused = await postChat(g.url, body, auth);
      expect(refused.status).toBe(429);
      const error = (await jsonOf(refused)).error;
      expect(error).toMatchObject({ code: "rate_limit_exceeded", param: "maxConcurrent" });
      expect(error.message).toContain("2 requests at a time");
    }
    held.release();
    for (const r of first) await r.text();
    // As on Lambda before the invocation returns: the slots given back are written.
    await Promise.all([
      a.auth.afterResponse?.(clock.now() + 5_000),
      b.auth.afterResponse?.(clock.now() + 5_000),
    ]);
    upstream.fallback = { kind: "answer" };
    const after = [await postChat(gb.url, body, auth), await postChat(ga.url, body, auth)];
    expect(after.map((r) => r.status)).toEqual([200, 200]);
  });

  it("frees the slot of an environment that died holding it once its lease ends", async () => {
    const clock = testClock();
    const policy = { concurrencyLeaseMs: 60_000 };
    const dead = callersOn(table, { clock, policy });
    const alive = callersOn(table, { clock, policy });
    const { auth } = await createKey(dead, "one-at-a-time", { limits: { maxConcurrent: 1 } });
    const request: AdmissionRequest = { model: "m", promptTokens: 1, maxOutputTokens: 1, choices: 1 };
    // Admitted, and never recorded: the environment is gone.
    await dead.auth.admit?.(await dead.auth.verify(auth), request);
    const caller = await alive.auth.verify(auth);
    await expect(alive.auth.admit?.(caller, request)).rejects.toMatchObject({ param: "maxConcurrent" });
    await clock.advance(60_001);
    const meter = await alive.auth.admit?.(caller, request);
    expect(meter?.keyId).toBe(caller.id);
    for (const c of [dead, alive]) c.ledger.stop();
  });
});

describe("models a key may not use do not exist for it (issue 16)", () => {
  it("answers a forbidden model exactly as an unknown one, in chat, the list and the model's page", async () => {
    const callers = callersOn(table, { clock: testClock() });
    const gateway = await gatewayWith(callers);
    const { auth } = await createKey(callers, "only-m", { models: ["m"] });
    const before = upstream.requests.length;

    const forbidden = await postChat(gateway.url, chatBody("other"), auth);
    const unknown = await postChat(gateway.url, chatBody("nosuch"), auth);
    expect([forbidden.status, unknown.status]).toEqual([404, 404]);
    const [f, u] = [await forbidden.text(), await unknown.text()];
    expect(f).toBe(u.replaceAll("nosuch", "other"));
    expect(JSON.parse(f).error).toMatchObject({ code: "model_not_found", param: "model" });
    expect(upstream.requests.length).toBe(before);

    const list = await jsonOf(await fetch(`${gateway.url}/v1/models`, { headers: auth }));
    expect(list.data.map((m: { id: string }) => m.id)).toEqual(["m"]);
    expect((await fetch(`${gateway.url}/v1/models/m`, { headers: auth })).status).toBe(200);
    const page = await fetch(`${gateway.url}/v1/models/other`, { headers: auth });
    const none = await fetch(`${gateway.url}/v1/models/nosuch`, { headers: auth });
    expect([page.status, none.status]).toEqual([404, 404]);
    expect(await page.text()).toBe((await none.text()).replaceAll("nosuch", "other"));
    expect((await postChat(gateway.url, chatBody("m"), auth)).status).toBe(200);
  });
});

describe("key expiry and revocation, judged by the function's clock (issue 16)", () => {
  it("refuses a key once its expiry has passed by the gateway's clock", async () => {
    const clock = testClock();
    const callers = callersOn(table, { clock });
    const gateway = await gatewayWith(callers);
    const { auth } = await createKey(callers, "expiring", { expiresAt: clock.now() + 1_000 });
    expect((await postChat(gateway.url, chatBody("m"), auth)).status).toBe(200);
    await clock.advance(1_000);
    const refused = await postChat(gateway.url, chatBody("m"), auth);
    expect(refused.status).toBe(401);
    expect((await jsonOf(refused)).error).toMatchObject({
      code: "invalid_api_key",
      message: "This API key has expired.",
    });
  });

  it("refuses a revoked key whatever time the CLI's clock wrote", async () => {
    const clock = testClock();
    const callers = callersOn(table, { clock, policy: { cacheTtlMs: 1_000 } });
    const gateway = await gatewayWith(callers);
    const { id, auth } = await createKey(callers, "revoked-ahead");
    expect((await postChat(gateway.url, chatBody("m"), auth)).status).toBe(200);
    // The operator's machine runs an hour ahead of the function's.
    await callers.store.revoke(id, clock.now() + 3_600_000);
    await clock.advance(1_001);
    const refused = await postChat(gateway.url, chatBody("m"), auth);
    expect(refused.status).toBe(401);
    expect((await jsonOf(refused)).error.message).toBe("This API key has been revoked.");
  });
});

describe("callers.defaultOutputReservation and concurrencyLeaseMs", () => {
  const document = (callers: object) => ({ ...config("http://127.0.0.1:9"), callers });

  it("defaults to 4096 tokens and 15 minutes, and refuses values out of range by name", () => {
    expect(validateConfig(document({})).callers).toMatchObject({
      defaultOutputReservation: 4096,
      concurrencyLeaseMs: 900_000,
    });
    expect(validateConfig(document({ defaultOutputReservation: 512 })).callers.defaultOutputReservation).toBe(
      512,
    );
    expect(() => validateConfig(document({ defaultOutputReservation: -1 }))).toThrow(ConfigError);
    expect(() => validateConfig(document({ defaultOutputReservation: -1 }))).toThrow(
      /callers\.defaultOutputReservation/,
    );
    expect(() => validateConfig(document({ concurrencyLeaseMs: 5 }))).toThrow(/callers\.concurrencyLeaseMs/);
  });
});
