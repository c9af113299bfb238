import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_HEALTH } from "../../lib/config/defaults.ts";
import { createMemoryHealthStore } from "../../lib/health/memory-store.ts";
import type { HealthStore } from "../../lib/health/types.ts";
import type { HttpClient } from "../../lib/http/client.ts";
import type { ApiKeys } from "../../lib/providers/keys.ts";
import { type FakeBedrock, startFakeBedrock } from "../support/fake-bedrock.ts";
import { type FakeUpstream, sseDataLines } from "../support/fake-upstream.ts";
import { chatBody, jsonOf, postChat, startGateway, type TestGateway } from "../support/gateway.ts";
import { type TwoUpstreamOptions, twoUpstreamGateway } from "../support/two-upstreams.ts";

// One provider fault is enough to bench a target here: whatever these tests do must not bench it.
const STRICT = {
  retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 2000 },
  timeouts: { connectMs: 500, headersMs: 300, firstTokenMs: 250, idleMs: 150, responseMs: 600 },
  cooldown: { minRequests: 1, failureRateThreshold: 0.01, cooldownMs: 60_000 },
};

let a: FakeUpstream;
let b: FakeUpstream;
let gateway: TestGateway;

/** Providers a and b at two fake upstreams; `gateway` options go to startGateway (keys, http). */
async function setup(options: TwoUpstreamOptions & { gateway?: Parameters<typeof startGateway>[1] } = {}) {
  ({ a, b, gateway } = await twoUpstreamGateway({
    ...options,
    defaults: { ...STRICT, resumeByRestart: false, ...options.defaults },
  }));
}

afterEach(async () => {
  await gateway?.close();
  await a?.close();
  await b?.close();
});

const benched = (target: string) => gateway.runtime.cooldowns.get(target, Date.now());
const chatLines = () => gateway.logs.filter((l) => l.msg === "chat completion");

describe("only a provider's own faults count against it", () => {
  it("does not blame the provider for the request's own deadline (not streamed)", async () => {
    await setup({ defaults: { requestTimeoutMs: 200 } });
    a.fallback = { kind: "answer", firstTokenDelayMs: 400 };

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(504);
    expect((await jsonOf(res)).error.code).toBe("deadline_exceeded");
    expect(benched("a/model-a")).toBeUndefined();
    expect(chatLines()[0]?.attempts).toMatchObject([{ provider: "a", outcome: "error", fault: "caller" }]);
  });

  it("does not blame the provider for the request's own deadline (streamed)", async () => {
    await setup({ defaults: { requestTimeoutMs: 300, timeouts: { ...STRICT.timeouts, idleMs: 1000 } } });
    a.fallback = { kind: "answer", tokenDelayMs: 40, tokens: Array(50).fill(" tok") };

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(JSON.parse(events.at(-1) ?? "{}").error.code).toBe("stream_interrupted");
    expect(benched("a/model-a")).toBeUndefined();
    expect(chatLines()[0]?.attempts).toMatchObject([
      { provider: "a", outcome: "ok" },
      { provider: "a", outcome: "error", code: "deadline_timeout", fault: "caller" },
    ]);
  });
  it("does not time out a provider while the caller is not reading", async () => {
    await setup();
    a.fallback = { kind: "answer", tokenDelayMs: 5, tokens: Array(20).fill(" tok") };
    const controller = new AbortController();

    const response = await gateway.runtime.gateway.handle({
      method: "POST",
      path: "/v1/chat/completions",
      headers: { "content-type": "application/json" },
      body: chatBody("m", { stream: true }),
      signal: controller.signal,
    });
    // The caller takes the headers, then reads nothing for several idle timeouts.
    await new Promise((r) => setTimeout(r, 600));
    let text = "";
    for await (const part of response.body) text += part;

    const events = sseDataLines(text);
    expect(events.at(-1)).toBe("[DONE]");
    expect(benched("a/model-a")).toBeUndefined();
    expect(b.requests).toHaveLength(0);
  });

  it("fails over when a provider's key cannot be read, and blames no provider", async () => {
    const keys: ApiKeys = {
      get: async (provider) => {
        if (provider.id === "a") throw Object.assign(new Error("timed out"), { name: "TimeoutError" });
        return "sk-test-secret-key-123456";
      },
      has: () => true,
      invalidate() {},
    };
    await setup({ gateway: { keys } });

    const streamed = await postChat(gateway.url, chatBody("m", { stream: true }));
    const whole = await postChat(gateway.url, chatBody("m"));

    expect(streamed.status).toBe(200);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("x-gateway-provider")).toBe("b");
    expect(a.requests).toHaveLength(0);
    expect(benched("a/model-a")).toBeUndefined();
    expect(chatLines()[1]?.attempts).toMatchObject([
      { provider: "a", outcome: "error", code: "provider_key_unavailable", fault: "gateway" },
      { provider: "b", outcome: "ok" },
    ]);
  });

  it("hands a 403 for the caller's flagged input back to it, and benches nothing", async () => {
    await setup();
    a.queue.push({
      kind: "status",
      status: 403,
      error: { message: 'model-a requires moderation. Your input was flagged for "harassment"', code: "403" },
    });

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(403);
    expect((await jsonOf(res)).error.message).toContain("flagged");
    expect(b.requests).toHaveLength(0);
    expect(benched("a/model-a")).toBeUndefined();
    expect(chatLines()[0]?.attempts).toMatchObject([{ provider: "a", status: 403, fault: "caller" }]);
  });

  it("answers our own bug with a 500 naming the request, and blames no provider", async () => {
    const http: HttpClient = {
      request: () => {
        throw new TypeError("a bug in the gateway");
      },
      close() {},
    };
    await setup({ gateway: { http } });

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(500);
    const body = await jsonOf(res);
    expect(body.error.code).toBe("internal_error");
    expect(body.error.message).toContain(res.headers.get("x-request-id"));
    expect(benched("a/model-a")).toBeUndefined();
    expect(b.requests).toHaveLength(0);
    expect(gateway.logs.filter((l) => l.level === "error")).toHaveLength(1);
  });

  it("answers 503 gateway_overloaded when every upstream connection is busy, and blames no provider", async () => {
    await setup({
      defaults: { upstreamMaxSockets: 1 },
      targets: [{ provider: "a", model: "model-a" }],
    });
    a.fallback = { kind: "answer", firstTokenDelayMs: 150 };

    const [first, second] = await Promise.all([
      postChat(gateway.url, chatBody("m")),
      new Promise<Response>((resolve) => setTimeout(() => resolve(postChat(gateway.url, chatBody("m"))), 30)),
    ]);

    expect(first.status).toBe(200);
    expect(second.status).toBe(503);
    expect((await jsonOf(second)).error.code).toBe("gateway_overloaded");
    expect(second.headers.get("retry-after")).toBe("1");
    expect(benched("a/model-a")).toBeUndefined();
    expect(a.requests).toHaveLength(1);
  });
});

describe("a long whole answer is not the provider's fault", () => {
  it("fails a non-streamed answer past responseMs over without benching its target", async () => {
    await setup();
    // The caller asked for a whole answer that takes longer than responseMs (600 ms here).
    a.queue.push({ kind: "answer", firstTokenDelayMs: 900 });

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(200);
    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(chatLines()[0]?.attempts).toMatchObject([
      { provider: "a", outcome: "error", code: "response_timeout", fault: "caller" },
      { provider: "b", outcome: "ok" },
    ]);
    expect(benched("a/model-a")).toBeUndefined();
  });

  it("still benches a target whose stream never sends a first token", async () => {
    await setup();
    a.queue.push({ kind: "answer", firstTokenDelayMs: 900 });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    await res.text();

    expect(chatLines()[0]?.attempts).toMatchObject([
      { provider: "a", outcome: "error", code: "first_token_timeout", fault: "provider" },
      { provider: "b", outcome: "ok" },
    ]);
    expect(benched("a/model-a")).toMatchObject({ reason: "failing" });
  });
});

describe("Bedrock access denied: the caller's feature or the configuration's model", () => {
  const US = "us.anthropic.claude-test-v1:0";
  const EU = "eu.anthropic.claude-test-v1:0";
  // What AWS says to a role without bedrock:ApplyGuardrail: the role's ARN and the account id.
  const APPLY_GUARDRAIL_DENIED =
    "User: arn:aws:sts::123456789012:assumed-role/gateway-chat-role/gateway-chat is not authorized to perform: bedrock:ApplyGuardrail on resource: arn:aws:bedrock:us-east-1:123456789012:guardrail/gr-abc123 because no identity-based policy allows the bedrock:ApplyGuardrail action";
  const guardrailed = chatBody("claude", {
    bedrock: { guardrailConfig: { guardrailIdentifier: "gr-abc123", guardrailVersion: "1" } },
  });
  let fake: FakeBedrock;
  let health: HealthStore;
  const saved = { ...process.env };

  // One fake for the whole block: the SDK's clients are kept per region for the process.
  beforeAll(async () => {
    fake = await startFakeBedrock();
    process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME = fake.url;
    process.env.AWS_ACCESS_KEY_ID = "AKIDFAKEFAKEFAKE";
    process.env.AWS_SECRET_ACCESS_KEY = "fake-secret";
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;
  });

  afterAll(async () => {
    process.env = saved;
    await fake.close();
  });

  async function setupBedrock() {
    health = createMemoryHealthStore(DEFAULT_HEALTH);
    fake.queue.length = 0;
    fake.requests.length = 0;
    fake.guardrailDenied = undefined;
    const probe = { kind: "chat", model: "amazon.nova-micro-v1:0" };
    gateway = await startGateway(
      {
        defaults: STRICT,
        providers: [
          { id: "bedrock-us", type: "bedrock", region: "us-east-1", healthCheck: probe },
          { id: "bedrock-eu", type: "bedrock", region: "eu-west-1", healthCheck: probe },
        ],
        models: {
          claude: {
            targets: [
              { provider: "bedrock-us", model: US },
              { provider: "bedrock-eu", model: EU },
            ],
          },
        },
      },
      { healthStore: health },
    );
  }

  /** What the shared table holds for the route's targets. */
  const table = async () => [
    ...(await health.read([], [`bedrock-us/${US}`, `bedrock-eu/${EU}`])).targets.values(),
  ];

  it("answers a guardrail the role cannot apply with the caller's 403, and benches nothing", async () => {
    await setupBedrock();
    fake.guardrailDenied = APPLY_GUARDRAIL_DENIED;

    const denied = await postChat(gateway.url, guardrailed);
    const text = await denied.text();

    expect(denied.status).toBe(403);
    expect(JSON.parse(text).error).toEqual({
      message:
        "The guardrail in 'bedrock.guardrailConfig' cannot be applied: the gateway's role lacks permission to apply it (bedrock:ApplyGuardrail).",
      type: "permission_error",
      param: "bedrock.guardrailConfig",
      code: "bedrock_feature_denied",
    });
    expect(text).not.toContain("123456789012");
    expect(text).not.toContain("arn:");
    // Not failed over (every target would refuse it), nothing benched here or in the table.
    expect(fake.requests.map((r) => r.modelId)).toEqual([US]);
    expect(chatLines()[0]?.attempts).toMatchObject([{ provider: "bedrock-us", fault: "caller" }]);
    expect(benched(`bedrock-us/${US}`)).toBeUndefined();
    expect(benched(`bedrock-eu/${EU}`)).toBeUndefined();
    await new Promise((r) => setImmediate(r));
    expect(await table()).toEqual([]);
    // The operator learns the fix, with Bedrock's own text kept in the log line only.
    expect(gateway.logs.filter((l) => l.level === "warn")).toMatchObject([
      { provider: "bedrock-us", model: US, field: "bedrock.guardrailConfig" },
    ]);

    // Another caller's request, without a guardrail, is served by the same target.
    const other = await postChat(gateway.url, chatBody("claude"));
    expect(other.status).toBe(200);
    expect(other.headers.get("x-gateway-provider")).toBe("bedrock-us");
  });

  it("fails over access denied on the routed model, and benches that target only", async () => {
    await setupBedrock();
    fake.queue.push({
      kind: "error",
      status: 403,
      type: "AccessDeniedException",
      message: "You don't have access to the model with the specified model ID.",
    });

    const res = await postChat(gateway.url, chatBody("claude"));

    expect(res.status).toBe(200);
    expect(res.headers.get("x-gateway-provider")).toBe("bedrock-eu");
    expect(chatLines()[0]?.attempts).toMatchObject([
      { provider: "bedrock-us", outcome: "error", code: "bedrock_access_denied", fault: "config" },
      { provider: "bedrock-eu", outcome: "ok" },
    ]);
    expect(benched(`bedrock-us/${US}`)).toMatchObject({ reason: "failing" });
    expect(benched(`bedrock-eu/${EU}`)).toBeUndefined();
    await expect.poll(table).toMatchObject([{ target: `bedrock-us/${US}` }]);
    expect(gateway.logs.filter((l) => l.level === "warn")).toMatchObject([
      { msg: "Bedrock access denied", provider: "bedrock-us", region: "us-east-1", model: US },
    ]);
  });
});

describe("every request leaves one log line", () => {
  it("logs a request whose caller left before the answer, at info, as client_closed", async () => {
    await setup();
    a.fallback = { kind: "hang" };
    const controller = new AbortController();

    const pending = gateway.runtime.gateway.handle({
      method: "POST",
      path: "/v1/chat/completions",
      headers: { "content-type": "application/json" },
      body: chatBody("m"),
      signal: controller.signal,
    });
    await expect.poll(() => a.requests.length).toBe(1);
    controller.abort();
    await pending;

    expect(chatLines()).toEqual([
      expect.objectContaining({ level: "info", outcome: "client_closed", status: 499 }),
    ]);
    expect(benched("a/model-a")).toBeUndefined();
    expect(gateway.logs.filter((l) => l.level === "error")).toEqual([]);
  });

  it("logs and cleans up a stream whose body the adapter gave up before reading it", async () => {
    await setup();
    a.fallback = { kind: "answer", tokenDelayMs: 50, tokens: Array(20).fill(" tok") };

    const response = await gateway.runtime.gateway.handle({
      method: "POST",
      path: "/v1/chat/completions",
      headers: { "content-type": "application/json" },
      body: chatBody("m", { stream: true }),
      signal: new AbortController().signal,
    });
    if (typeof response.body === "string") throw new Error("expected a stream");
    await response.body[Symbol.asyncIterator]().return?.(undefined);

    expect(chatLines()).toEqual([expect.objectContaining({ outcome: "client_closed", status: 499 })]);
    await expect.poll(() => a.requests[0]?.closedEarly).toBe(true);
  });
});

describe("when every target is benched", () => {
  it("waits for the first rate limit to end when that fits the deadline, instead of refusing", async () => {
    await setup({ defaults: { retry: { ...STRICT.retry, maxRetryAfterMs: 1000 } } });
    // a asks for longer than the cap; b for a moment. Both are benched by this request.
    a.queue.push({ kind: "status", status: 429, headers: { "retry-after-ms": "5000" } });
    b.queue.push({ kind: "status", status: 429, headers: { "retry-after-ms": "300" } });

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(200);
    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(res.headers.get("x-gateway-attempts")).toBe("3");
    expect(b.requests).toHaveLength(2);
    expect(a.requests).toHaveLength(1);
  });

  it("answers 429 at once when the first bench ends past the cap", async () => {
    await setup({ defaults: { retry: { ...STRICT.retry, maxRetryAfterMs: 1000 } } });
    a.queue.push({ kind: "status", status: 429, headers: { "retry-after-ms": "5000" } });
    b.queue.push({ kind: "status", status: 429, headers: { "retry-after-ms": "4000" } });

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("4");
    expect(b.requests).toHaveLength(1);
  });
});

describe("context-window fallback", () => {
  const tooLong = {
    kind: "status" as const,
    status: 400,
    error: {
      message: "This model's maximum context length is 8192 tokens.",
      type: "invalid_request_error",
      code: "context_length_exceeded",
    },
  };

  it("falls back to a later target declared with a larger window, and blames nobody", async () => {
    await setup({
      targets: [
        { provider: "a", model: "small", contextWindow: 8192 },
        { provider: "b", model: "large", contextWindow: 128_000 },
      ],
    });
    a.queue.push(tooLong);

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(200);
    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(b.requests[0]?.body.model).toBe("large");
    expect(benched("a/small")).toBeUndefined();
  });

  it("returns the 400 unchanged when no later target has a larger window", async () => {
    await setup({
      targets: [
        { provider: "a", model: "small", contextWindow: 8192 },
        { provider: "b", model: "same", contextWindow: 8192 },
      ],
    });
    a.queue.push(tooLong);

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(400);
    expect((await jsonOf(res)).error).toMatchObject({
      code: "context_length_exceeded",
      message: tooLong.error.message,
    });
    expect(b.requests).toHaveLength(0);
  });

  it("never sends it again to the same model, even on another provider", async () => {
    await setup({
      targets: [
        { provider: "a", model: "shared", contextWindow: 8192 },
        { provider: "b", model: "shared", contextWindow: 128_000 },
      ],
    });
    a.queue.push(tooLong);

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(400);
    expect(b.requests).toHaveLength(0);
  });
});

describe("the text kept to continue a cut answer is bounded", () => {
  it("reports a cut past the limit instead of continuing it", async () => {
    await setup({
      defaults: { maxResumeChars: 8 },
      b: (url) => ({ assistantPrefill: true, prefillBaseUrl: `${url}/beta` }),
    });
    a.queue.push({ kind: "answer", cutAfter: 4, tokenDelayMs: 10 });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    expect(events).not.toContain("[DONE]");
    expect(JSON.parse(events.at(-1) ?? "{}").error.code).toBe("stream_interrupted");
    expect(b.requests).toHaveLength(0);
  });
});

describe("a cut answer never looks whole", () => {
  it("does not pass on a [DONE] that came before any finish reason", async () => {
    await setup({ b: (url) => ({ assistantPrefill: true, prefillBaseUrl: `${url}/beta` }) });
    a.queue.push({ kind: "answer", omitFinish: true });
    b.queue.push({ kind: "answer", tokens: [] });

    const res = await postChat(gateway.url, chatBody("m", { stream: true }));
    const events = sseDataLines(await res.text());

    // Continued on b, which finishes the answer properly; without b it would be an error event.
    expect(b.requests[0]?.path).toBe("/beta/chat/completions");
    expect(events.at(-1)).toBe("[DONE]");
    const finishes = events
      .filter((e) => e.startsWith("{"))
      .map((e) => JSON.parse(e).choices?.[0]?.finish_reason)
      .filter(Boolean);
    expect(finishes).toEqual(["stop"]);
  });
});
