import { afterEach, describe, expect, it } from "vitest";
import { createFakeClock, type FakeClock } from "../support/fake-clock.ts";
import { type FakeUpstream, sseDataLines } from "../support/fake-upstream.ts";
import { chatBody, jsonOf, postChat, startGateway, type TestGateway } from "../support/gateway.ts";
import { type TwoUpstreamOptions, twoUpstreamGateway } from "../support/two-upstreams.ts";

const FAST = {
  retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 2000 },
  timeouts: { connectMs: 500, headersMs: 300, firstTokenMs: 250, idleMs: 250, responseMs: 600 },
};

let a: FakeUpstream;
let b: FakeUpstream;
let gateway: TestGateway;

async function setup(
  options: Pick<TwoUpstreamOptions, "b" | "defaults"> & {
    /** The gateway's clock (sleeps and timers); the upstreams and sockets stay on real time. */
    clock?: FakeClock;
  } = {},
) {
  ({ a, b, gateway } = await twoUpstreamGateway({
    ...(options.b ? { b: options.b } : {}),
    defaults: { ...FAST, resumeByRestart: false, ...options.defaults },
    gateway: options.clock ? { clock: options.clock } : {},
  }));
}

/** The request's one log line ("chat completion"), once written. */
async function logged() {
  await expect.poll(() => gateway.logs.some((l) => l.msg === "chat completion")).toBe(true);
  const line = gateway.logs.find((l) => l.msg === "chat completion");
  return { attempts: (line?.attempts ?? []) as Array<Record<string, unknown>> };
}

afterEach(async () => {
  await gateway?.close();
  await a?.close();
  await b?.close();
});

function streamed(events: string[]): string {
  return events
    .filter((e) => e.startsWith("{"))
    .map((e) => JSON.parse(e))
    .filter((c) => !c.error)
    .map((c) => c.choices?.[0]?.delta?.content ?? "")
    .join("");
}

const FULL = "Hello from the fake upstream.";

describe("retry on the same target", () => {
  it("retries a 500 once and answers from the same target", async () => {
    await setup();
    a.queue.push({ kind: "status", status: 500 });

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(200);
    expect(res.headers.get("x-gateway-provider")).toBe("a");
    expect(res.headers.get("x-gateway-attempts")).toBe("2");
    expect(a.requests).toHaveLength(2);
    expect(b.requests).toHaveLength(0);
  });

  it("retries a reset before headers", async () => {
    await setup();
    a.queue.push({ kind: "reset" });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));

    expect(streamed(sseDataLines(await res.text()))).toBe(FULL);
    expect(a.requests).toHaveLength(2);
  });

  it("waits the retry-after-ms the provider asked for on a 429", async () => {
    const clock = createFakeClock();
    await setup({ clock });
    a.queue.push({ kind: "status", status: 429, headers: { "retry-after-ms": "150" } });

    const pending = postChat(gateway.url, chatBody("m"));
    await clock.scheduled((t) => t.kind === "sleep");
    expect(clock.sleeps).toEqual([150]);
    expect(a.requests).toHaveLength(1);
    await clock.advance(150);
    const res = await pending;

    expect(res.status).toBe(200);
    expect(a.requests).toHaveLength(2);
  });

  it("waits a Retry-After given in seconds", async () => {
    const clock = createFakeClock();
    await setup({ clock });
    a.queue.push({ kind: "status", status: 429, headers: { "retry-after": "1" } });

    const pending = postChat(gateway.url, chatBody("m"));
    await clock.scheduled((t) => t.kind === "sleep");
    expect(clock.sleeps).toEqual([1000]);
    await clock.advance(1000);
    const res = await pending;

    expect(res.status).toBe(200);
    expect(a.requests).toHaveLength(2);
  });

  it("backs off on a 429 without Retry-After, then fails over when attempts are spent", async () => {
    await setup();
    a.fallback = { kind: "status", status: 429 };

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(200);
    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(a.requests).toHaveLength(2);
    expect(b.requests).toHaveLength(1);
  });
});

describe("failover", () => {
  it("fails over from a target that answers 503 every time", async () => {
    await setup();
    a.fallback = { kind: "status", status: 503 };

    const res = await postChat(gateway.url, chatBody("m"));
    const body = await jsonOf(res);

    expect(res.status).toBe(200);
    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(res.headers.get("x-gateway-model")).toBe("model-b");
    expect(res.headers.get("x-gateway-attempts")).toBe("3");
    expect(body.model).toBe("model-b");
    expect(a.requests).toHaveLength(2);
  });

  it("fails over at once when Retry-After is longer than the cap, and benches the target", async () => {
    await setup();
    a.fallback = { kind: "status", status: 429, headers: { "retry-after": "30" } };

    const first = await postChat(gateway.url, chatBody("m"));
    const second = await postChat(gateway.url, chatBody("m"));

    expect(first.status).toBe(200);
    expect(first.headers.get("x-gateway-provider")).toBe("b");
    expect(second.headers.get("x-gateway-provider")).toBe("b");
    expect(second.headers.get("x-gateway-attempts")).toBe("1");
    expect(a.requests).toHaveLength(1);
  });

  it("answers 429 with Retry-After when every target is rate limited", async () => {
    await setup();
    a.fallback = { kind: "status", status: 429, headers: { "retry-after": "30" } };
    b.fallback = { kind: "status", status: 429, headers: { "retry-after": "20" } };

    const first = await postChat(gateway.url, chatBody("m"));
    const second = await postChat(gateway.url, chatBody("m"));

    expect(first.status).toBe(429);
    expect(Number(first.headers.get("retry-after"))).toBe(20);
    expect((await jsonOf(first)).error.type).toBe("rate_limit_error");
    expect(second.status).toBe(429);
    expect(Number(second.headers.get("retry-after"))).toBeGreaterThanOrEqual(19);
    expect((await jsonOf(second)).error.code).toBe("rate_limit_exceeded");
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toHaveLength(1);
  });

  it("fails over instead of waiting when Retry-After is longer than the time left", async () => {
    // On a fake clock that never moves: a wait would never end, and the request could not answer.
    const clock = createFakeClock();
    await setup({ defaults: { requestTimeoutMs: 800 }, clock });
    a.queue.push({ kind: "status", status: 429, headers: { "retry-after-ms": "1500" } });

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(200);
    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(a.requests).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it("benches a failing target, per target; with all benched, one trial, then 503", async () => {
    await setup({ defaults: { cooldown: { minRequests: 2, cooldownMs: 60_000 } } });
    a.fallback = { kind: "status", status: 503 };

    const first = await postChat(gateway.url, chatBody("m"));
    const second = await postChat(gateway.url, chatBody("m"));

    expect(first.headers.get("x-gateway-provider")).toBe("b");
    expect(second.headers.get("x-gateway-provider")).toBe("b");
    expect(second.headers.get("x-gateway-attempts")).toBe("1");
    expect(a.requests).toHaveLength(2);

    b.fallback = { kind: "status", status: 500 };
    const third = await postChat(gateway.url, chatBody("m"));
    // b fails too and is benched; with every target benched a is given one trial (half-open).
    expect(third.status).toBe(502);
    expect(a.requests).toHaveLength(3);
    expect(b.requests).toHaveLength(4);
    // a's trial failed moments ago; b has not had one yet.
    const fourth = await postChat(gateway.url, chatBody("m"));
    expect(fourth.status).toBe(502);
    expect(b.requests).toHaveLength(5);
    // Both trials failed: refused at once, with the time until a bench ends.
    const fifth = await postChat(gateway.url, chatBody("m"));
    expect(fifth.status).toBe(503);
    expect((await jsonOf(fifth)).error.code).toBe("providers_cooling_down");
    expect(Number(fifth.headers.get("retry-after"))).toBeGreaterThan(50);
    expect(a.requests).toHaveLength(3);
    expect(b.requests).toHaveLength(5);
  });

  it("does not wait on a provider that accepts and never answers, nor ask it again", async () => {
    await setup();
    a.fallback = { kind: "hang" };

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(streamed(events)).toBe(FULL);
    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(a.requests).toHaveLength(1);
    // One timed-out attempt on a, then b: no retry on a target that does not answer.
    const { attempts } = await logged();
    expect(attempts.map((x) => [x.provider, x.outcome, x.code])).toEqual([
      ["a", "error", "first_token_timeout"],
      ["b", "ok", undefined],
    ]);
  });

  it("fails over on a slow first token, keep-alive comments notwithstanding", async () => {
    await setup();
    a.fallback = { kind: "answer", firstTokenDelayMs: 5000, keepAliveEveryMs: 20 };

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(streamed(events)).toBe(FULL);
    expect(events.at(-1)).toBe("[DONE]");
    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(a.requests).toHaveLength(1);
    await expect.poll(() => a.requests[0]?.closedEarly).toBe(true);
  });

  it("fails over invisibly when the first event is an error event", async () => {
    await setup();
    a.fallback = { kind: "answer", errorEvent: { message: "overloaded", type: "server_error" } };

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(streamed(events)).toBe(FULL);
    expect(events.some((e) => e.includes("overloaded"))).toBe(false);
    expect(res.headers.get("x-gateway-provider")).toBe("b");
  });

  it("returns a context-length error as is, without resending it anywhere", async () => {
    await setup();
    a.queue.push({
      kind: "status",
      status: 400,
      error: {
        message: "This model's maximum context length is 8192 tokens.",
        type: "invalid_request_error",
        code: "context_length_exceeded",
      },
    });

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(400);
    expect((await jsonOf(res)).error.code).toBe("context_length_exceeded");
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toHaveLength(0);
  });

  it("returns a content-policy rejection with the provider's reason", async () => {
    await setup();
    a.queue.push({
      kind: "status",
      status: 400,
      error: {
        message: "Your request was rejected by the safety system: violence.",
        type: "invalid_request_error",
        code: "content_policy_violation",
      },
    });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const body = await jsonOf(res);

    expect(res.status).toBe(400);
    expect(body.error.code).toBe("content_policy_violation");
    expect(body.error.message).toContain("safety system: violence");
    expect(b.requests).toHaveLength(0);
  });

  it("keeps the whole request inside its deadline", async () => {
    await setup({
      defaults: { requestTimeoutMs: 300, timeouts: { ...FAST.timeouts, headersMs: 5000, responseMs: 5000 } },
    });
    a.fallback = { kind: "hang" };
    b.fallback = { kind: "hang" };

    const res = await postChat(gateway.url, chatBody("m"));

    const body = await jsonOf(res);
    expect(res.status).toBe(504);
    expect(body.error.code).toBe("deadline_exceeded");
    expect(body.error.message).toContain("a: timed out waiting for response");
    // a's wait was cut to what was left of the 300 ms, not its own 5 s headers timeout.
    const waited = Number(/a: timed out waiting for response after (\d+) ms/.exec(body.error.message)?.[1]);
    expect(waited).toBeGreaterThan(0);
    expect(waited).toBeLessThanOrEqual(300);
  });

  it("cuts a stream that would outlive the deadline, honestly", async () => {
    const clock = createFakeClock();
    // Tokens flow in real time, which the fake clock does not see: the idle timeout is set long, so
    // capped at the time left it comes due with the deadline, whose timer was set first and fires
    // first, as on the real clock.
    await setup({
      defaults: {
        requestTimeoutMs: 400,
        resumeByRestart: true,
        timeouts: { ...FAST.timeouts, idleMs: 5000 },
      },
      clock,
    });
    a.queue.push({ kind: "answer", tokenDelayMs: 20, tokens: Array(100).fill(" tok") });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    await clock.advance(400);
    const events = sseDataLines(await res.text());

    expect(events).not.toContain("[DONE]");
    const error = JSON.parse(events.at(-1) ?? "{}").error;
    expect(error.code).toBe("stream_interrupted");
    expect(error.message).toContain("deadline");
    expect(b.requests).toHaveLength(0);
  });

  it("reports every failure when no target can answer, and still serves the next request", async () => {
    await setup();
    a.queue.push({ kind: "status", status: 503 }, { kind: "status", status: 503 });
    b.queue.push({ kind: "status", status: 502 }, { kind: "status", status: 502 });

    const failed = await postChat(gateway.url, chatBody("m"));
    const body = await jsonOf(failed);
    const next = await postChat(gateway.url, chatBody("m"));

    expect(failed.status).toBe(502);
    expect(body.error.code).toBe("upstream_unavailable");
    expect(body.error.message).toContain("a answered with HTTP 503");
    expect(body.error.message).toContain("b answered with HTTP 502");
    expect(next.status).toBe(200);
  });
});

describe("with the mock provider", () => {
  it("fails over from a mock that hangs, after the first-token timeout", async () => {
    const clock = createFakeClock();
    gateway = await startGateway(
      {
        defaults: { timeouts: { firstTokenMs: 150 } },
        providers: [
          { id: "stuck", type: "mock", mock: { script: [{ hang: true }] } },
          { id: "fine", type: "mock", mock: { reply: "fine answer", firstTokenDelayMs: 0, tokenDelayMs: 0 } },
        ],
        models: {
          m: {
            targets: [
              { provider: "stuck", model: "s" },
              { provider: "fine", model: "f" },
            ],
          },
        },
      },
      { clock },
    );

    const pending = postChat(gateway.url, chatBody("m", { stream: true }));
    await clock.scheduled((t) => t.kind === "timer" && t.ms === 150);
    await clock.advance(150);
    const res = await pending;
    const events = sseDataLines(await res.text());

    expect(res.headers.get("x-gateway-provider")).toBe("fine");
    expect(streamed(events)).toBe("fine answer");
    // Given up on at exactly the first-token timeout, on the fake clock.
    const { attempts } = await logged();
    expect(attempts[0]).toMatchObject({ provider: "stuck", outcome: "error", ms: 150 });
  });
});

describe("streams that never lie", () => {
  it("ends a cut stream with an error event and no [DONE] when nobody can continue", async () => {
    await setup();
    a.queue.push({ kind: "answer", cutAfter: 3, tokenDelayMs: 20 });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(res.status).toBe(200);
    expect(events).not.toContain("[DONE]");
    expect(streamed(events)).toBe("Hello from the");
    const error = JSON.parse(events.at(-1) ?? "{}").error;
    expect(error.code).toBe("stream_interrupted");
    expect(error.message).toContain("cut off");
    expect(b.requests).toHaveLength(0);
    await expect.poll(() => gateway.logs.find((l) => l.msg === "chat completion")?.status).toBe(502);
  });

  it("continues a cut answer on a target that takes an assistant prefill", async () => {
    await setup({ b: (url) => ({ assistantPrefill: true, prefillBaseUrl: `${url}/beta` }) });
    a.queue.push({ kind: "answer", cutAfter: 3, tokenDelayMs: 20 });

    const res = await postChat(
      gateway.url,
      chatBody("m", { stream: true, stream_options: { include_usage: true } }),
    );
    const events = sseDataLines(await res.text());

    expect(streamed(events)).toBe(FULL);
    expect(events.at(-1)).toBe("[DONE]");
    const continuation = b.requests[0];
    expect(continuation?.path).toBe("/beta/chat/completions");
    expect(continuation?.body.messages).toEqual([
      { role: "user", content: "Say hello" },
      { role: "assistant", content: "Hello from the", prefix: true },
    ]);
    const usage = JSON.parse(events.at(-2) ?? "{}").usage;
    expect(usage).toEqual({ prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 });
  });

  it("restarts on a target that cannot continue and streams only what extends the sent text", async () => {
    await setup({ defaults: { resumeByRestart: true } });
    a.queue.push({ kind: "answer", cutAfter: 2, tokenDelayMs: 20 });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(streamed(events)).toBe(FULL);
    expect(events.at(-1)).toBe("[DONE]");
    expect(b.requests[0]?.body.messages).toEqual([{ role: "user", content: "Say hello" }]);
  });

  it("names the cut, not the restart, when the restarted answer diverges", async () => {
    await setup({ defaults: { resumeByRestart: true } });
    // a cuts every answer, its own restarts included.
    a.fallback = { kind: "answer", cutAfter: 2, tokenDelayMs: 20 };
    b.fallback = { kind: "answer", tokens: ["Hi", " there", "!"] };

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(events).not.toContain("[DONE]");
    expect(streamed(events)).toBe("Hello from");
    const error = JSON.parse(events.at(-1) ?? "{}").error;
    expect(error.code).toBe("stream_interrupted");
    expect(error.message).toContain("a: connection failed");
  });

  it("does not take a restarted answer that ends before catching up for a whole one", async () => {
    await setup({ defaults: { resumeByRestart: true } });
    a.fallback = { kind: "answer", cutAfter: 3, tokenDelayMs: 20 };
    b.fallback = { kind: "answer", tokens: ["Hello"], omitFinish: true };

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(events).not.toContain("[DONE]");
    expect(streamed(events)).toBe("Hello from the");
    expect(JSON.parse(events.at(-1) ?? "{}").error.code).toBe("stream_interrupted");
  });

  it("never sends a prefill to a target not declared capable", async () => {
    await setup({ defaults: { resumeByRestart: false } });
    a.queue.push({ kind: "answer", cutAfter: 2, tokenDelayMs: 20 });

    await (await postChat(gateway.url, chatBody("m", { stream: true }))).text();

    expect(b.requests).toHaveLength(0);
  });

  it("reports the cut, not the continuation's 400, when the prefill is rejected", async () => {
    await setup({ b: () => ({ assistantPrefill: true }) });
    a.queue.push({ kind: "answer", cutAfter: 3, tokenDelayMs: 20 });
    b.queue.push({
      kind: "status",
      status: 400,
      error: { message: "prefix not supported", type: "invalid_request_error" },
    });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(events).not.toContain("[DONE]");
    const error = JSON.parse(events.at(-1) ?? "{}").error;
    expect(error.code).toBe("stream_interrupted");
    expect(error.message).not.toContain("prefix not supported");
    expect(b.requests).toHaveLength(1);
  });

  it("treats a stall mid-stream as a failure once the idle timeout passes", async () => {
    await setup();
    a.queue.push({ kind: "answer", stallAfter: 2, tokenDelayMs: 20 });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(events).not.toContain("[DONE]");
    expect(JSON.parse(events.at(-1) ?? "{}").error.message).toContain("idle");
  });

  it("skips a malformed event, logs it, and keeps the stream", async () => {
    await setup();
    a.queue.push({ kind: "answer", malformedAfter: 2 });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(streamed(events)).toBe(FULL);
    expect(events).not.toContain("{not json");
    expect(events.at(-1)).toBe("[DONE]");
    expect(gateway.logs.some((l) => l.msg === "skipped malformed upstream SSE event")).toBe(true);
  });

  it("finalises a stream that ends without [DONE] after its finish reason", async () => {
    await setup();
    a.queue.push({ kind: "answer", omitDone: true });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(streamed(events)).toBe(FULL);
    expect(events.at(-1)).toBe("[DONE]");
    expect(b.requests).toHaveLength(0);
  });

  it("does not continue an answer with several choices", async () => {
    await setup({ b: () => ({ assistantPrefill: true }) });
    a.queue.push({ kind: "answer", cutAfter: 2, tokenDelayMs: 20 });

    const res = await postChat(gateway.url, chatBody("m", { stream: true, n: 2 }));
    const events = sseDataLines(await res.text());

    expect(events).not.toContain("[DONE]");
    expect(b.requests).toHaveLength(0);
  });

  it("gives a non-streaming caller a clear error status, never a truncated body", async () => {
    await setup();
    a.fallback = { kind: "reset" };
    b.fallback = { kind: "reset" };

    const res = await postChat(gateway.url, chatBody("m"));
    const body = await jsonOf(res);

    expect(res.status).toBe(502);
    expect(body.error.code).toBe("upstream_unavailable");
    expect(body.choices).toBeUndefined();
  });
});
