import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import { callerPk, usageSk } from "../../lib/callers/store.ts";
import { dayOf } from "../../lib/callers/types.ts";
import type { MeteredUsage } from "../../lib/core/usage.ts";
import type { ClientAuth } from "../../lib/gateway/auth.ts";
import type { GatewayResponse } from "../../lib/gateway/response.ts";
import { callersOn, createKey, testClock } from "../callers/support.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { createFakeClock, type FakeClock } from "../support/fake-clock.ts";
import { type FakeUpstream, sseDataLines } from "../support/fake-upstream.ts";
import { chatBody, type TestGateway } from "../support/gateway.ts";
import { type TwoUpstreamOptions, twoUpstreamGateway } from "../support/two-upstreams.ts";

/**
 * Issue 16, "hanging up is free": every admitted request, however it ends, tells its meter once what
 * the upstreams produced for it, failed attempts included; the provider's usage where it arrived,
 * else an estimate marked as one.
 */

/** Long timeouts: the gateway's timers run on a fake clock; the HTTP client's never fire in a test. */
const SLOW = {
  retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 2000 },
  timeouts: {
    connectMs: 10_000,
    headersMs: 10_000,
    firstTokenMs: 10_000,
    idleMs: 10_000,
    responseMs: 10_000,
  },
};

/** A token of exactly four characters: the estimate counts each as one token. */
const tokens = (count: number) => Array.from({ length: count }, () => "abcd");

let a: FakeUpstream;
let b: FakeUpstream;
let gateway: TestGateway;
let table: TestTable | undefined;

afterEach(async () => {
  await gateway?.close();
  await a?.close();
  await b?.close();
  await table?.close();
  table = undefined;
});

/** A meter per admitted request, each recording what it is told. */
function recordingAuth(): { auth: ClientAuth; meters: MeteredUsage[][] } {
  const meters: MeteredUsage[][] = [];
  const auth: ClientAuth = {
    verify: async () => ({ id: "k1", name: "probe", models: undefined, limits: {} }),
    admit: async () => {
      const told: MeteredUsage[] = [];
      meters.push(told);
      return { keyId: "k1", keyName: "probe", record: (usage) => told.push(usage) };
    },
  };
  return { auth, meters };
}

async function setup(
  options: Pick<TwoUpstreamOptions, "b" | "defaults"> & { clock?: FakeClock; auth?: ClientAuth } = {},
) {
  ({ a, b, gateway } = await twoUpstreamGateway({
    ...(options.b ? { b: options.b } : {}),
    defaults: { ...SLOW, resumeByRestart: false, ...options.defaults },
    gateway: {
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.auth ? { auth: options.auth } : {}),
    },
  }));
}

function post(body: string, signal: AbortSignal, headers: Record<string, string> = {}) {
  return gateway.runtime.gateway.handle({
    method: "POST",
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json", ...headers },
    body,
    signal,
  });
}

/** Parsed chunks of an SSE text. */
function chunksOf(text: string): Array<Record<string, unknown>> {
  return sseDataLines(text)
    .filter((e) => e.startsWith("{"))
    .map((e) => JSON.parse(e) as Record<string, unknown>);
}

/** Content pieces and finish reasons the caller has seen, every choice. */
function seen(text: string): { pieces: number; finishes: number } {
  let pieces = 0;
  let finishes = 0;
  for (const chunk of chunksOf(text)) {
    for (const choice of (chunk.choices ?? []) as Array<Record<string, unknown>>) {
      if ((choice.delta as { content?: string } | undefined)?.content) pieces++;
      if (choice.finish_reason) finishes++;
    }
  }
  return { pieces, finishes };
}

/**
 * Reads a streamed body as a caller does, always with one pull outstanding (the relay is never
 * left waiting on this reader, so the idle timeout runs as it would against a reading caller).
 */
function reader(response: GatewayResponse) {
  if (typeof response.body === "string") throw new Error(`not a stream: ${response.status} ${response.body}`);
  const iterator = response.body[Symbol.asyncIterator]();
  let text = "";
  let ended = false;
  let pull = iterator.next();
  return {
    text: () => text,
    async until(done: (text: string) => boolean): Promise<void> {
      while (!ended && !done(text)) {
        const next = await pull;
        if (next.done) ended = true;
        else {
          text += next.value;
          pull = iterator.next();
        }
      }
    },
    /** The caller hangs up: its signal aborts and the adapter closes the body. */
    leave(controller: AbortController): Promise<unknown> {
      controller.abort();
      return pull.then(() => iterator.return?.(undefined));
    },
  };
}

/** The request's one log line. */
function logLine() {
  const lines = gateway.logs.filter((l) => l.msg === "chat completion");
  expect(lines).toHaveLength(1);
  return lines[0] as Record<string, unknown>;
}

describe("metering: a caller who hangs up", () => {
  it("is billed what it received when it leaves mid-stream, and the provider is cancelled at once", async () => {
    const clock = createFakeClock();
    const { auth, meters } = recordingAuth();
    await setup({ clock, auth });
    // A provider still generating: 96 of 100 tokens sent, the rest on its way.
    a.queue.push({ kind: "answer", tokens: tokens(100), stallAfter: 96 });
    const controller = new AbortController();

    const body = reader(await post(chatBody("m", { stream: true }), controller.signal));
    await body.until((text) => seen(text).pieces >= 95);
    await body.leave(controller);

    expect(meters).toHaveLength(1);
    expect(meters[0]).toHaveLength(1);
    const usage = meters[0]?.[0] as MeteredUsage;
    expect(usage.estimated).toBe(true);
    expect(usage.outputTokens).toBeGreaterThanOrEqual(95);
    expect(usage.outputTokens).toBeLessThanOrEqual(96);
    expect(usage.inputTokens).toBeGreaterThan(0);
    // No grace for a provider still at work: cancelled without the clock moving.
    await expect.poll(() => a.requests[0]?.closedEarly).toBe(true);
    expect(logLine()).toMatchObject({
      status: 499,
      outcome: "client_closed",
      usageEstimated: true,
      usage: { outputTokens: usage.outputTokens, inputTokens: usage.inputTokens },
    });
  });

  it("is billed the provider's own usage when it leaves after the last token, before the usage chunk", async () => {
    const clock = createFakeClock();
    const { auth, meters } = recordingAuth();
    await setup({ clock, auth });
    // The whole answer, then the usage chunk 300 ms later (OpenAI's final chunk, Bedrock's metadata).
    a.queue.push({ kind: "answer", tokens: tokens(6), usageDelayMs: 300 });
    const controller = new AbortController();

    const body = reader(await post(chatBody("m", { stream: true }), controller.signal));
    await body.until((text) => seen(text).finishes >= 1);
    const leaving = body.leave(controller);
    // The upstream is read on under a bound on the gateway's clock, which never moves here.
    expect((await clock.scheduled((t) => t.ms === 2_000)).ms).toBe(2_000);
    await leaving;

    expect(meters).toEqual([
      [
        {
          inputTokens: 10,
          outputTokens: 6,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
          estimated: false,
        },
      ],
    ]);
    expect(logLine()).toMatchObject({ status: 499, outcome: "client_closed" });
    expect(logLine().usageEstimated).toBeUndefined();
    expect(logLine().usage).toMatchObject({ inputTokens: 10, outputTokens: 6 });
    // Read to its end: the upstream was not cut.
    expect(a.requests[0]?.closedEarly).toBe(false);
  });

  it("reads on for the usage chunk no longer than the grace, then cancels and estimates", async () => {
    const clock = createFakeClock();
    const { auth, meters } = recordingAuth();
    await setup({ clock, auth });
    a.queue.push({ kind: "answer", tokens: tokens(6), stallAfterFinish: true });
    const controller = new AbortController();

    const body = reader(await post(chatBody("m", { stream: true }), controller.signal));
    await body.until((text) => seen(text).finishes >= 1);
    const leaving = body.leave(controller);
    await clock.scheduled((t) => t.ms === 2_000);
    expect(meters[0]).toEqual([]);
    await clock.advance(2_000);
    await leaving;

    expect(meters[0]).toEqual([expect.objectContaining({ outputTokens: 6, estimated: true })]);
    await expect.poll(() => a.requests[0]?.closedEarly).toBe(true);
  });
});

describe("metering: failed attempts count", () => {
  it("counts a cut attempt's tokens beside the continuation's usage", async () => {
    const { auth, meters } = recordingAuth();
    await setup({ auth, b: (url) => ({ assistantPrefill: true, prefillBaseUrl: `${url}/beta` }) });
    // a streams 40 of 100 tokens and cuts; b continues with the other 60 and reports them.
    a.queue.push({ kind: "answer", tokens: tokens(100), cutAfter: 40, tokenDelayMs: 5 });
    b.fallback = { kind: "answer", tokens: tokens(100) };

    const response = await post(chatBody("m", { stream: true }), new AbortController().signal);
    const body = reader(response);
    await body.until(() => false);

    expect(seen(body.text()).pieces).toBe(100);
    expect(b.requests[0]?.path).toBe("/beta/chat/completions");
    const usage = meters[0]?.[0] as MeteredUsage;
    expect(meters[0]).toHaveLength(1);
    // 40 estimated for the cut attempt (160 characters), 60 as b reported them.
    expect(usage.outputTokens).toBe(100);
    expect(usage.estimated).toBe(true);
    // b's 10 prompt tokens, and a's prompt estimated.
    expect(usage.inputTokens).toBeGreaterThan(10);
  });

  it("counts both targets' tokens when each stalls after producing some", async () => {
    const clock = createFakeClock();
    const { auth, meters } = recordingAuth();
    await setup({ clock, auth, b: (url) => ({ assistantPrefill: true, prefillBaseUrl: `${url}/beta` }) });
    a.queue.push({ kind: "answer", tokens: tokens(100), stallAfter: 30 });
    b.queue.push({ kind: "answer", tokens: tokens(100), stallAfter: 20 });
    b.fallback = { kind: "status", status: 503 };

    const body = reader(await post(chatBody("m", { stream: true }), new AbortController().signal));
    await body.until((text) => seen(text).pieces >= 30);
    await clock.advance(SLOW.timeouts.idleMs);
    await body.until((text) => seen(text).pieces >= 50);
    await clock.advance(SLOW.timeouts.idleMs);
    await body.until(() => false);

    expect(JSON.parse(sseDataLines(body.text()).at(-1) ?? "{}").error.code).toBe("stream_interrupted");
    const usage = meters[0]?.[0] as MeteredUsage;
    expect(meters[0]).toHaveLength(1);
    expect(usage.outputTokens).toBe(50);
    expect(usage.estimated).toBe(true);
    // Two prompts worked on (b's with the 120-character prefill); the 503 cost nothing. The prompt's
    // size is the caller's body as it came.
    const prompt = chatBody("m", { stream: true }).length;
    expect(usage.inputTokens).toBe(Math.ceil(prompt / 4) + Math.ceil((prompt + 120) / 4));
  });

  it("counts the prompt of every attempt that timed out after it was sent", async () => {
    const { auth, meters } = recordingAuth();
    await setup({ auth, defaults: { timeouts: { ...SLOW.timeouts, responseMs: 300 } } });
    a.fallback = { kind: "hang" };
    b.fallback = { kind: "hang" };

    const body = chatBody("m");
    const response = await post(body, new AbortController().signal);

    expect(response.status).toBe(504);
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toHaveLength(1);
    expect(meters).toEqual([
      [
        expect.objectContaining({
          inputTokens: 2 * Math.ceil(body.length / 4),
          outputTokens: 0,
          estimated: true,
        }),
      ],
    ]);
  });
});

describe("metering: n > 1", () => {
  it("counts every choice's text when no usage arrives, streamed and whole", async () => {
    const { auth, meters } = recordingAuth();
    await setup({ auth });
    // Three choices of 12 characters each: 36 characters, 9 tokens.
    a.queue.push({ kind: "answer", tokens: tokens(3), choices: 3, omitUsage: true });
    a.queue.push({ kind: "answer", tokens: tokens(3), choices: 3, omitUsage: true });

    const streamed = reader(await post(chatBody("m", { stream: true, n: 3 }), new AbortController().signal));
    await streamed.until(() => false);
    const whole = await post(chatBody("m", { n: 3 }), new AbortController().signal);

    expect(seen(streamed.text())).toEqual({ pieces: 9, finishes: 3 });
    expect(whole.status).toBe(200);
    expect(meters.map((m) => m.map((u) => [u.outputTokens, u.estimated]))).toEqual([
      [[9, true]],
      [[9, true]],
    ]);
  });
});

describe("metering: the meter is told once on every path", () => {
  const once = async (meters: MeteredUsage[][]) => {
    await expect.poll(() => meters.at(-1)?.length).toBe(1);
    expect(meters.at(-1)).toHaveLength(1);
    return meters.at(-1)?.[0] as MeteredUsage;
  };

  it("answered, refused, exhausted, abandoned, the caller gone, the deadline passed", async () => {
    const clock = createFakeClock();
    const { auth, meters } = recordingAuth();
    // A deadline shorter than the idle timeout, so the last case is the deadline's.
    await setup({ clock, auth, defaults: { requestTimeoutMs: 5_000 } });
    const signal = () => new AbortController().signal;

    // Answered, whole and streamed: the provider's usage.
    await post(chatBody("m"), signal());
    expect(await once(meters)).toMatchObject({ inputTokens: 10, outputTokens: 6, estimated: false });
    await reader(await post(chatBody("m", { stream: true }), signal())).until(() => false);
    expect(await once(meters)).toMatchObject({ inputTokens: 10, outputTokens: 6, estimated: false });

    // The caller's 400, and every target failing with a 5xx: no upstream work, nothing counted.
    a.queue.push({ kind: "status", status: 400, error: { message: "bad", type: "invalid_request_error" } });
    expect((await post(chatBody("m"), signal())).status).toBe(400);
    expect(await once(meters)).toMatchObject({ inputTokens: 0, outputTokens: 0, estimated: false });
    a.queue.push({ kind: "status", status: 503 }, { kind: "status", status: 503 });
    b.queue.push({ kind: "status", status: 503 }, { kind: "status", status: 503 });
    const exhausted = post(chatBody("m"), signal());
    for (const _target of ["a", "b"]) {
      await clock.scheduled((t) => t.kind === "sleep");
      await clock.advance(SLOW.retry.maxDelayMs);
    }
    expect((await exhausted).status).toBe(502);
    expect(await once(meters)).toMatchObject({ inputTokens: 0, outputTokens: 0, estimated: false });

    // A body given up before it was read: the first token it had counts.
    const abandoned = await post(chatBody("m", { stream: true }), signal());
    if (typeof abandoned.body !== "string") await abandoned.body[Symbol.asyncIterator]().return?.(undefined);
    // "Hello": five characters, two tokens.
    expect(await once(meters)).toMatchObject({ outputTokens: 2, estimated: true });

    // The caller gone while a whole answer was being made: the prompt was being worked on.
    a.queue.push({ kind: "hang" });
    const leaving = new AbortController();
    const gone = post(chatBody("m"), leaving.signal);
    await expect.poll(() => a.requests.length).toBe(7);
    leaving.abort();
    expect((await gone).status).toBe(499);
    const left = await once(meters);
    expect(left).toMatchObject({ outputTokens: 0, estimated: true });
    expect(left.inputTokens).toBeGreaterThan(0);

    // The deadline passing mid-stream: what had been sent counts.
    a.queue.push({ kind: "answer", tokens: tokens(10), stallAfter: 4 });
    const late = reader(await post(chatBody("m", { stream: true }), signal()));
    await late.until((text) => seen(text).pieces >= 4);
    await clock.advance(5_000);
    await late.until(() => false);
    expect(JSON.parse(sseDataLines(late.text()).at(-1) ?? "{}").error).toBeDefined();
    expect(await once(meters)).toMatchObject({ outputTokens: 4, estimated: true });

    expect(meters.every((m) => m.length === 1)).toBe(true);
  });
});

describe("metering: the caller gate and the ledger", () => {
  it("stops a key that hangs up on every stream, and the ledger marks the usage estimated", async () => {
    table = await startTestTable();
    const at = testClock();
    const callers = callersOn(table, { clock: at });
    await setup({ auth: callers.auth });
    const { id, auth } = await createKey(callers, "hangs-up", { limits: { tokensPerDay: 250 } });
    a.fallback = { kind: "answer", tokens: tokens(100), stallAfter: 96 };

    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const controller = new AbortController();
      // A cap of 40 keeps the reservation (about 25 prompt + 40) small beside the budget: what
      // stops the key is the tokens it was billed for leaving early, not what admission held.
      const response = await post(chatBody("m", { stream: true, max_tokens: 40 }), controller.signal, auth);
      statuses.push(response.status);
      if (response.status !== 200) continue;
      const body = reader(response);
      await body.until((text) => seen(text).pieces >= 95);
      await body.leave(controller);
    }
    callers.ledger.stop();
    await callers.ledger.flush();

    // 96 + the prompt on the first (about 121 of 250), about 242 after the second: the third's
    // reservation no longer fits and it is refused.
    expect(statuses).toEqual([200, 200, 429, 429, 429, 429]);
    const item = await table.client.send(
      new GetItemCommand({
        TableName: table.tableName,
        Key: { pk: { S: callerPk(id) }, sk: { S: usageSk(dayOf(at.now()), "m") } },
      }),
    );
    expect(Number(item.Item?.requests?.N)).toBe(2);
    expect(Number(item.Item?.completionTokens?.N)).toBeGreaterThanOrEqual(2 * 95);
    expect(Number(item.Item?.estimatedRequests?.N)).toBe(2);
  });
});
