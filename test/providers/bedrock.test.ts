import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../lib/core/events.ts";
import { setTimer, silentLogger, sleep } from "../../lib/deps.ts";
import { createChunkEncoder, toCompletion } from "../../lib/dialects/openai-chat/encode.ts";
import { chatInput } from "../../lib/dialects/openai-chat/input.ts";
import type { ChatRequest } from "../../lib/dialects/openai-chat/wire.ts";
import { GatewayError, InvalidRequestError, UpstreamError, UpstreamTimeoutError } from "../../lib/errors.ts";
import { createHttpClient } from "../../lib/http/client.ts";
import { BEDROCK_DEFAULT_BETAS } from "../../lib/providers/anthropic-betas.ts";
import { createProviderFactory } from "../../lib/providers/factory.ts";
import type { GenerationStream, UpstreamEvent, WholeGeneration } from "../../lib/providers/generation.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import { providerRegistry } from "../../lib/providers/registry.ts";
import type { Provider } from "../../lib/providers/types.ts";
import { faultOf } from "../../lib/retry/blame.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import {
  BEDROCK_TOKENS,
  eventFrame,
  type FakeBedrock,
  rawEventFrame,
  startFakeBedrock,
} from "../support/fake-bedrock.ts";
import { DEFAULT_TOKENS, type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import {
  chatBody,
  fakeProvider,
  jsonOf,
  postChat,
  startGateway,
  type TestGateway,
} from "../support/gateway.ts";

let fake: FakeBedrock;
const saved = { ...process.env };
const warnings: Array<Record<string, unknown>> = [];
const deps = {
  now: Date.now,
  sleep,
  random: () => 0.5,
  newId: () => "id-1",
  setTimer,
  logger: { ...silentLogger, warn: (f: Record<string, unknown>) => warnings.push(f) },
};

beforeAll(async () => {
  fake = await startFakeBedrock();
  // The SDK's own configuration: endpoint and dummy credentials, as on a developer's machine.
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

function provider(region = "us-east-1", fields: Record<string, unknown> = {}) {
  const config = validateConfig({
    providers: [
      {
        id: "bedrock-east",
        type: "bedrock",
        region,
        healthCheck: { kind: "chat", model: "anthropic.claude-probe" },
        ...fields,
      },
    ],
    models: { m: { targets: [{ provider: "bedrock-east", model: "x" }] } },
  }).providers[0];
  if (!config) throw new Error("no provider");
  return providerRegistry
    .get("bedrock")
    .create(config, { deps, http: createHttpClient(), keys: envKeys({}) });
}

const MODEL = "us.anthropic.claude-test";

const options = (signal = new AbortController().signal) => ({
  model: MODEL,
  signal,
  timeouts: { connectMs: 1000, headersMs: 2000, firstTokenMs: 2000, idleMs: 2000, responseMs: 3000 },
});

/** An OpenAI chat caller's request, as the engine hands it to the provider. */
const complete = (
  p: Provider,
  body: ChatRequest,
  o = options(),
  prefill?: string,
): Promise<WholeGeneration> => p.chat.complete(chatInput(body, prefill), o);
const stream = (p: Provider, body: ChatRequest, o = options(), prefill?: string): Promise<GenerationStream> =>
  p.chat.stream(chatInput(body, prefill), o);

async function drain(stream: GenerationStream): Promise<{ events: UpstreamEvent[]; error: unknown }> {
  const events: UpstreamEvent[] = [];
  try {
    for await (const event of stream.events) events.push(event);
    return { events, error: undefined };
  } catch (error) {
    return { events, error };
  }
}

const canonical = (events: UpstreamEvent[]): GenerationEvent[] => events.flatMap((e) => e.events);
const text = (events: UpstreamEvent[]) =>
  canonical(events)
    .map((e) => (e.type === "text" ? e.text : ""))
    .join("");
const finished = (events: UpstreamEvent[]) => canonical(events).some((e) => e.type === "finish");

const request = (extra: Record<string, unknown> = {}): ChatRequest => ({
  model: "claude",
  messages: [{ role: "user", content: "Hi" }],
  ...extra,
});
const head = { id: "chatcmpl-1", created: 1, model: MODEL };

describe("the bedrock provider type's configuration", () => {
  it("needs a region and a chat health probe, and refuses an API key", () => {
    const document = (provider: Record<string, unknown>) => ({
      providers: [{ id: "b", type: "bedrock", ...provider }],
      models: { m: { targets: [{ provider: "b", model: "x" }] } },
    });
    const probe = { healthCheck: { kind: "chat", model: "x" } };
    expect(() => validateConfig(document(probe))).toThrow(/providers\[0\]\.region/);
    expect(() => validateConfig(document({ ...probe, region: "moon-1" }))).toThrow(/region/);
    expect(() => validateConfig(document({ region: "us-east-1" }))).toThrow(/providers\[0\]\.healthCheck/);
    expect(() =>
      validateConfig(document({ ...probe, region: "us-east-1", healthCheck: { kind: "models" } })),
    ).toThrow(/healthCheck\.kind/);
    expect(() => validateConfig(document({ ...probe, region: "us-east-1", apiKey: { env: "X" } }))).toThrow(
      /apiKey/,
    );
    const config = validateConfig(document({ ...probe, region: "eu-west-3" })).providers[0];
    expect(config?.options).toEqual({ region: "eu-west-3", anthropicBetas: BEDROCK_DEFAULT_BETAS });
    expect(config?.apiKey).toBeUndefined();
  });
});

describe("Bedrock provider against a fake runtime endpoint (HTTP/2, eventstream)", () => {
  it("answers a non-streaming request in canonical terms (a chat.completion for OpenAI callers), sending a signed Converse", async () => {
    fake.queue.push({ kind: "text" });
    const answer = await complete(provider(), request({ max_tokens: 20 }));
    // Bedrock speaks no caller's dialect: no raw bytes to pass on.
    expect(answer.raw).toBeUndefined();
    expect(answer.dialect).toBeUndefined();
    expect(answer.usage).toMatchObject({ inputTokens: 12, outputTokens: 4 });
    expect(answer.outputChars).toBe(BEDROCK_TOKENS.join("").length);
    expect(toCompletion(answer.result(), head)).toMatchObject({
      object: "chat.completion",
      model: "us.anthropic.claude-test",
      choices: [{ message: { role: "assistant", content: BEDROCK_TOKENS.join("") }, finish_reason: "stop" }],
      usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 },
    });
    const sent = fake.requests.at(-1);
    expect(sent?.operation).toBe("converse");
    expect(sent?.modelId).toBe("us.anthropic.claude-test");
    expect(sent?.body).toMatchObject({ messages: [{ role: "user", content: [{ text: "Hi" }] }] });
    expect(sent?.body.inferenceConfig).toEqual({ maxTokens: 20 });
    expect(String(sent?.headers.authorization)).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDFAKEFAKEFAKE\/\d+\/us-east-1\/bedrock\//,
    );
  });

  it("streams text as canonical events, then the finish, then usage, and ends", async () => {
    fake.queue.push({
      kind: "text",
      usage: { inputTokens: 5, outputTokens: 4, totalTokens: 29, cacheReadInputTokens: 20 },
    });
    const { events, error } = await drain(
      await stream(provider(), request({ stream: true, stream_options: { include_usage: true } })),
    );
    expect(error).toBeUndefined();
    expect(text(events)).toBe(BEDROCK_TOKENS.join(""));
    expect(fake.requests.at(-1)?.operation).toBe("converse-stream");
    expect(canonical(events).slice(-2)).toEqual([
      { type: "finish", choice: 0, reason: "stop", raw: "end_turn" },
      {
        type: "usage",
        usage: {
          inputTokens: 25,
          outputTokens: 4,
          cacheReadTokens: 20,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
      },
    ]);
    // Encoded for an OpenAI caller: the usage chunk and finish reason it got before.
    const encoder = createChunkEncoder(head);
    const chunks = canonical(events).flatMap((e) => encoder.encode(e) ?? []);
    expect(chunks.at(-1)?.usage).toMatchObject({
      prompt_tokens: 25,
      completion_tokens: 4,
      total_tokens: 29,
      prompt_tokens_details: { cached_tokens: 20, cache_write_tokens: 0 },
    });
    expect(chunks.at(-2)?.choices?.[0]?.finish_reason).toBe("stop");
    // Bedrock speaks no caller's dialect: nothing to pass on byte for byte.
    for (const e of events) expect([e.raw, e.dialect]).toEqual([undefined, undefined]);
  });

  it("reports usage whether or not the caller asked (the caller's dialect decides what it sees)", async () => {
    fake.queue.push({ kind: "text" });
    const { events, error } = await drain(await stream(provider(), request({ stream: true })));
    expect(error).toBeUndefined();
    expect(canonical(events).at(-1)?.type).toBe("usage");
  });

  it("continues a cut answer from a trailing assistant message, trimmed, when declared able to", async () => {
    const able = provider("us-east-1", { assistantPrefill: true });
    expect(able.chat.resume).toBe("prefill");
    expect(provider().chat.resume).toBe("restart");
    fake.queue.push({ kind: "text" });
    await drain(await stream(able, request({ stream: true }), options(), "One, two, "));
    expect(fake.requests.at(-1)?.body.messages).toEqual([
      { role: "user", content: [{ text: "Hi" }] },
      { role: "assistant", content: [{ text: "One, two," }] },
    ]);
  });

  it("streams a tool call as tool-call deltas with their index", async () => {
    fake.queue.push({ kind: "tool", inputPieces: ['{"ci', 'ty":"Paris"}'] });
    const { events } = await drain(
      await stream(
        provider(),
        request({ stream: true, tools: [{ type: "function", function: { name: "get_weather" } }] }),
      ),
    );
    expect(canonical(events).filter((e) => e.type.startsWith("tool-call"))).toEqual([
      { type: "tool-call-start", choice: 0, index: 0, id: "tooluse_1", name: "get_weather" },
      { type: "tool-call-delta", choice: 0, index: 0, input: '{"ci' },
      { type: "tool-call-delta", choice: 0, index: 0, input: 'ty":"Paris"}' },
      { type: "tool-call-end", choice: 0, index: 0 },
    ]);
    const encoder = createChunkEncoder(head);
    const calls = canonical(events).flatMap((e) => encoder.encode(e)?.choices?.[0]?.delta?.tool_calls ?? []);
    expect(calls).toEqual([
      { index: 0, id: "tooluse_1", type: "function", function: { name: "get_weather", arguments: "" } },
      { index: 0, function: { arguments: '{"ci' } },
      { index: 0, function: { arguments: 'ty":"Paris"}' } },
    ]);
    expect(fake.requests.at(-1)?.body.toolConfig).toEqual({
      tools: [
        { toolSpec: { name: "get_weather", inputSchema: { json: { type: "object", properties: {} } } } },
      ],
    });
  });

  it("rejects a throttled stream before it starts as a 429 rate limit to retry", async () => {
    fake.queue.push({
      kind: "error",
      status: 429,
      type: "ThrottlingException",
      message: "Too many requests",
    });
    const error = await stream(provider(), request({ stream: true })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ status: 429, action: "retry", kind: "rate_limit" });
  });

  it("throws a throttling exception event met mid-stream as a rate limit, after the text before it", async () => {
    fake.queue.push({ kind: "exceptionAfter", tokens: 2, exception: "throttlingException" });
    const { events, error } = await drain(await stream(provider(), request({ stream: true })));
    expect(text(events)).toBe(BEDROCK_TOKENS.slice(0, 2).join(""));
    expect(error).toMatchObject({ status: 429, action: "retry" });
    expect(finished(events)).toBe(false);
  });

  it("reports a stream reset before messageStop as a cut, never as done", async () => {
    fake.queue.push({ kind: "cut", afterTokens: 2 });
    const { events, error } = await drain(await stream(provider(), request({ stream: true })));
    expect(text(events)).toBe(BEDROCK_TOKENS.slice(0, 2).join(""));
    expect(error).toMatchObject({ status: 502, code: "upstream_stream_cut", action: "failover" });
    expect(finished(events)).toBe(false);
  });

  it("returns a validation error as the caller's 400, context length included", async () => {
    fake.queue.push({
      kind: "error",
      status: 400,
      type: "ValidationException",
      message: "Input is too long for requested model.",
    });
    const error = await complete(provider(), request()).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 400, action: "return", code: "context_length_exceeded" });
  });

  it("fails over on access denied, with one log line naming the fix", async () => {
    warnings.length = 0;
    fake.queue.push({
      kind: "error",
      status: 403,
      type: "AccessDeniedException",
      message: "You don't have access to the model with the specified model ID.",
    });
    const error = await complete(provider("eu-west-1"), request()).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 403, action: "failover" });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ region: "eu-west-1", model: "us.anthropic.claude-test" });
  });

  it("refuses a field it cannot carry before calling Bedrock", async () => {
    const before = fake.requests.length;
    const error = await complete(provider(), request({ logprobs: true })).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 400, param: "logprobs" });
    expect(fake.requests.length).toBe(before);
  });

  it("times out a hung call with the response timeout", async () => {
    fake.queue.push({ kind: "hang" });
    const error = await complete(provider(), request(), {
      ...options(),
      timeouts: { ...options().timeouts, responseMs: 50 },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamTimeoutError);
  });

  it("probes health with a one-token streamed Converse on the probe model", async () => {
    fake.queue.push({ kind: "text", tokens: ["Po"] });
    const health = await provider().healthCheck({ timeoutMs: 3000 });
    expect(health).toMatchObject({ ok: true, status: 200 });
    expect(health.ttftMs).toBeTypeOf("number");
    const sent = fake.requests.at(-1);
    expect(sent?.modelId).toBe("anthropic.claude-probe");
    expect(sent?.body.inferenceConfig).toEqual({ maxTokens: 1 });

    fake.queue.push({ kind: "error", status: 403, type: "AccessDeniedException", message: "no access" });
    expect(await provider().healthCheck({ timeoutMs: 3000 })).toMatchObject({ ok: false, status: 403 });
  });
});

describe("a Bedrock 200 that is not a readable answer (issue 16)", () => {
  const blame = (error: unknown) =>
    faultOf(error as GatewayError, { now: 0, deadline: Number.POSITIVE_INFINITY });
  const garbledWhole = [
    ["HTML", "<html><body>Service Unavailable</body></html>"],
    ["an empty body", ""],
    ["an empty object", "{}"],
    ["an error object", '{"error":{"message":"internal","type":"invalid_request_error"}}'],
    ["an output that is not an object", '{"output":"x"}'],
    ["a message without content", '{"output":{"message":{"role":"assistant"}}}'],
    ["content that is not a list", '{"output":{"message":{"role":"assistant","content":"hi"}}}'],
  ] as const;

  it.each(garbledWhole)("is a 502 that fails over, blamed on the provider, for %s", async (_, body) => {
    fake.queue.push({ kind: "garbled", body });
    const error = await complete(provider(), request()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({
      status: 502,
      kind: "upstream",
      code: "upstream_invalid_response",
      action: "failover",
      providerId: "bedrock-east",
    });
    expect(blame(error)).toBe("provider");
    // The body is not quoted: it may hold anything.
    expect((error as Error).message).not.toContain("Service Unavailable");
  });

  it("is a 502 that fails over when a stream's first bytes are not eventstream frames", async () => {
    fake.queue.push({ kind: "garbled", body: "<html>oops</html>", contentType: "text/html" });
    const error = await stream(provider(), request({ stream: true })).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 502, code: "upstream_invalid_response", action: "failover" });
    expect(blame(error)).toBe("provider");
  });

  const start = eventFrame("messageStart", { role: "assistant" });
  const delta = eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "Hel" } });
  it.each([
    ["a truncated frame", Buffer.concat([start, delta, Buffer.from([0, 0, 0, 64, 0, 0, 0, 0, 1, 2, 3])])],
    ["an event whose payload is not JSON", Buffer.concat([start, delta, rawEventFrame("<not json")])],
  ])("ends a stream with %s as a 502 that fails over, after the text before it", async (_, body) => {
    fake.queue.push({ kind: "garbled", body });
    const { events, error } = await drain(await stream(provider(), request({ stream: true })));
    expect(text(events)).toBe("Hel");
    expect(error).toMatchObject({ status: 502, code: "upstream_invalid_response", action: "failover" });
    expect(blame(error)).toBe("provider");
    expect(finished(events)).toBe(false);
  });

  it("refuses an answer nested too deep to relay as the caller's, benching nothing", async () => {
    const answer = (depth: number) =>
      `{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"t","name":"f","input":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}}]}},"stopReason":"tool_use"}`;
    // Past the gateway's limit, and past what the SDK itself can read (it overflows the stack).
    for (const depth of [100, 50_000]) {
      fake.queue.push({ kind: "garbled", body: answer(depth) });
      const error = await complete(provider(), request()).catch((e: unknown) => e);
      expect(error).toMatchObject({ status: 502, code: "response_too_deep", action: "return" });
      expect(blame(error)).toBe("caller");
    }
    fake.queue.push({ kind: "garbled", body: answer(10) });
    const result = await complete(provider(), request());
    expect(result.result().choices).toMatchObject([{ finish: "tool-calls", rawFinish: "tool_use" }]);
  });
});

describe("caller shapes past the translation's bounds, against the fake (issue 16)", () => {
  it("refuses tool-call arguments nested 100,000 deep with a 400, calling nothing", async () => {
    const before = fake.requests.length;
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const error = await complete(
      provider(),
      request({
        messages: [
          { role: "user", content: "hi" },
          {
            role: "assistant",
            tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: deep } }],
          },
        ],
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error).toMatchObject({ status: 400, param: "messages[1].tool_calls[0].function.arguments" });
    expect(fake.requests.length).toBe(before);
  });

  it("holds caller JSON to the configured maxNestingDepth", async () => {
    const config = validateConfig({
      defaults: { maxNestingDepth: 8 },
      providers: [
        { id: "b", type: "bedrock", region: "us-east-1", healthCheck: { kind: "chat", model: "p" } },
      ],
      models: { m: { targets: [{ provider: "b", model: "x" }] } },
    });
    const factory = createProviderFactory(config, { deps, http: createHttpClient(), keys: envKeys({}) });
    const call = (args: string) =>
      factory
        .getProvider("b")
        ?.chat.complete(
          chatInput(
            request({
              messages: [
                { role: "user", content: "hi" },
                {
                  role: "assistant",
                  tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: args } }],
                },
              ],
            }),
          ),
          options(),
        )
        .catch((e: unknown) => e);
    expect(await call("[[[[[[[[[1]]]]]]]]]")).toMatchObject({ status: 400, code: "nesting_too_deep" });
    fake.queue.push({ kind: "text" });
    const answer = (await call("[[[[[[[[1]]]]]]]]")) as WholeGeneration;
    expect(answer.result().choices[0]?.content).toEqual([{ type: "text", text: BEDROCK_TOKENS.join("") }]);
  });
});

describe("through the gateway: a garbled 200 and hostile shapes (issue 16)", () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;
  const bedrockProvider = (id: string) => ({
    id,
    type: "bedrock",
    region: "us-east-1",
    healthCheck: { kind: "chat", model: "p" },
  });

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gateway = await startGateway({
      defaults: { retry: { maxAttempts: 1 } },
      providers: [
        bedrockProvider("bedrock-a"),
        bedrockProvider("bedrock-only"),
        fakeProvider("openai", upstream.url),
      ],
      models: {
        claude: {
          targets: [
            { provider: "bedrock-a", model: "us.anthropic.claude-test" },
            { provider: "openai", model: "gpt-fallback" },
          ],
        },
        lonely: { targets: [{ provider: "bedrock-only", model: "us.anthropic.claude-test" }] },
      },
    });
  });
  afterAll(async () => {
    await gateway.close();
    await upstream.close();
  });

  it("fails over from a Bedrock 200 the SDK cannot read to the next target", async () => {
    fake.queue.length = 0;
    fake.queue.push({ kind: "garbled", body: "<html>proxy error</html>" });
    const res = await postChat(gateway.url, chatBody("claude"));
    expect(res.status).toBe(200);
    const body = await jsonOf(res);
    expect(body.choices[0].message.content).toBe(DEFAULT_TOKENS.join(""));
    expect(upstream.requests.at(-1)?.body.model).toBe("gpt-fallback");
  });

  it("answers 502, never a 200 carrying an error, when no target is left", async () => {
    fake.queue.length = 0;
    fake.queue.push({ kind: "garbled", body: '{"error":{"message":"oops"}}' });
    const res = await postChat(gateway.url, chatBody("lonely"));
    expect(res.status).toBe(502);
    const body = await jsonOf(res);
    expect(body.choices).toBeUndefined();
    expect(body.error).toMatchObject({ type: "api_error" });
    expect(JSON.stringify(gateway.logs)).toContain("upstream_invalid_response");
  });

  it("answers a system message of 130,000 text parts (3.5 MB), not a 500", async () => {
    fake.queue.length = 0;
    const parts = Array.from({ length: 130_000 }, () => ({ type: "text", text: "a" }));
    const body = JSON.stringify({
      model: "lonely",
      messages: [
        { role: "system", content: parts },
        { role: "user", content: "hi" },
      ],
    });
    expect(body.length).toBeGreaterThan(3_400_000);
    const res = await postChat(gateway.url, body);
    expect(res.status).toBe(200);
    expect(fake.requests.at(-1)?.body.system).toHaveLength(130_000);
  });

  it("answers tool-call arguments nested 100,000 deep with a 400 naming them, not a 500", async () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const res = await postChat(
      gateway.url,
      JSON.stringify({
        model: "lonely",
        messages: [
          { role: "user", content: "hi" },
          {
            role: "assistant",
            tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: deep } }],
          },
        ],
      }),
    );
    expect(res.status).toBe(400);
    expect((await jsonOf(res)).error).toMatchObject({
      type: "invalid_request_error",
      param: "messages[1].tool_calls[0].function.arguments",
      code: "nesting_too_deep",
    });
  });
});
