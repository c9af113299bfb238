import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../lib/core/events.ts";
import type { GenerationRequest } from "../../lib/core/request.ts";
import { setTimer, silentLogger, sleep } from "../../lib/deps.ts";
import { toGeneration } from "../../lib/dialects/anthropic-messages/parse.ts";
import { chatInput } from "../../lib/dialects/openai-chat/input.ts";
import { UpstreamError, UpstreamTimeoutError } from "../../lib/errors.ts";
import { createHttpClient } from "../../lib/http/client.ts";
import { isClaudeModel } from "../../lib/providers/bedrock-invoke.ts";
import type { GenerationInput, GenerationStream, UpstreamEvent } from "../../lib/providers/generation.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import { providerRegistry } from "../../lib/providers/registry.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import { ANTHROPIC_TOKENS, FAKE_SIGNATURE } from "../support/fake-anthropic.ts";
import { type FakeBedrockInvoke, startFakeBedrockInvoke } from "../support/fake-bedrock-invoke.ts";

let fake: FakeBedrockInvoke;
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
  fake = await startFakeBedrockInvoke();
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
beforeEach(() => {
  fake.requests.length = 0;
  fake.queue.length = 0;
  delete fake.countTokens;
  warnings.length = 0;
});

function provider(fields: Record<string, unknown> = {}) {
  const config = validateConfig({
    providers: [
      {
        id: "bedrock-east",
        type: "bedrock",
        region: "us-east-1",
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

const MODEL = "us.anthropic.claude-test-v1:0";
const options = (model = MODEL) => ({
  model,
  signal: new AbortController().signal,
  timeouts: { connectMs: 1000, headersMs: 2000, firstTokenMs: 2000, idleMs: 2000, responseMs: 3000 },
});

function messagesInput(
  body: Record<string, unknown>,
  headers?: Record<string, string>,
  prefill?: string,
): GenerationInput {
  let canonical: GenerationRequest | undefined;
  return {
    dialect: "anthropic-messages",
    body,
    headers,
    prefill,
    canonical() {
      canonical ??= toGeneration(body);
      return canonical;
    },
  };
}

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

const messagesBody = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: "claude-route",
  max_tokens: 1024,
  stream: true,
  system: [{ type: "text", text: "Be terse.", cache_control: { type: "ephemeral" } }],
  messages: [
    { role: "user", content: "Hi" },
    {
      role: "assistant",
      content: [
        { type: "thinking", thinking: "A greeting.", signature: "sig-claude" },
        { type: "text", text: "Hello." },
      ],
    },
    { role: "user", content: [{ type: "text", text: "More", cache_control: { type: "ephemeral" } }] },
  ],
  thinking: { type: "enabled", budget_tokens: 512 },
  a_future_field: true,
  ...extra,
});

const BETAS = { "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,made-up-2030-01-01" };

describe("Claude models on Bedrock", () => {
  it("are told apart by their model id, profile or ARN", () => {
    expect(isClaudeModel("anthropic.claude-3-5-haiku-20241022-v1:0")).toBe(true);
    expect(isClaudeModel("us.anthropic.claude-sonnet-4-20250514-v1:0")).toBe(true);
    expect(isClaudeModel("global.anthropic.claude-sonnet-4-5-20250929-v1:0")).toBe(true);
    expect(
      isClaudeModel("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"),
    ).toBe(true);
    expect(isClaudeModel("amazon.nova-pro-v1:0")).toBe(false);
    expect(isClaudeModel("us.meta.llama4-maverick-17b-instruct-v1:0")).toBe(false);
  });

  it("take anthropicBetas as a list or all, refused otherwise", () => {
    const doc = (anthropicBetas: unknown) => ({
      providers: [
        {
          id: "b",
          type: "bedrock",
          region: "us-east-1",
          healthCheck: { kind: "chat", model: "x" },
          anthropicBetas,
        },
      ],
      models: { m: { targets: [{ provider: "b", model: "x" }] } },
    });
    expect(validateConfig(doc("all")).providers[0]?.options).toMatchObject({ anthropicBetas: "all" });
    expect(validateConfig(doc(["a-1"])).providers[0]?.options).toMatchObject({ anthropicBetas: ["a-1"] });
    expect(() => validateConfig(doc(7))).toThrow(/providers\[0\]\.anthropicBetas/);
  });
});

describe("Bedrock InvokeModel for Messages callers of Claude (fake runtime, HTTP/2)", () => {
  it("streams the caller's body in Bedrock's form and hands on each chunk's Messages event", async () => {
    const body = messagesBody();
    const p = provider();
    const { events, error } = await drain(await p.chat.stream(messagesInput(body, BETAS), options()));
    expect(error).toBeUndefined();

    expect(fake.requests).toHaveLength(1);
    const sent = fake.requests[0];
    expect(sent?.operation).toBe("invoke-with-response-stream");
    expect(sent?.modelId).toBe(MODEL);
    const { model: _m, stream: _s, ...rest } = body;
    // Every field of the caller's, no model or stream key, its betas Bedrock takes in the body.
    expect(sent?.body).toEqual({
      ...rest,
      anthropic_version: "bedrock-2023-05-31",
      anthropic_beta: ["interleaved-thinking-2025-05-14"],
    });

    expect(events.every((e) => e.dialect === "anthropic-messages")).toBe(true);
    const raws = events.map((e) => JSON.parse(e.raw ?? "{}") as Record<string, unknown>);
    expect(raws[0]?.type).toBe("message_start");
    expect(raws[raws.length - 1]?.type).toBe("message_stop");
    expect(text(events)).toBe(ANTHROPIC_TOKENS.join(""));
    expect(canonical(events).find((e) => e.type === "finish")).toMatchObject({
      reason: "stop",
      raw: "end_turn",
    });

    // The flags Bedrock does not take were dropped and logged once, not again on the next request.
    await drain(await p.chat.stream(messagesInput(body, BETAS), options()));
    const logged = warnings.filter((w) => String(w.msg).startsWith("anthropic-beta"));
    expect(logged).toEqual([
      expect.objectContaining({
        provider: "bedrock-east",
        dropped: ["claude-code-20250219", "made-up-2030-01-01"],
      }),
    ]);
  });

  it("answers a whole Message through InvokeModel, usage with its cache figures", async () => {
    const whole = await provider().chat.complete(messagesInput(messagesBody({ stream: false })), options());
    expect(fake.requests[0]?.operation).toBe("invoke");
    expect(fake.requests[0]?.body).not.toHaveProperty("model");
    expect(fake.requests[0]?.body).not.toHaveProperty("stream");
    expect(whole.dialect).toBe("anthropic-messages");
    expect((JSON.parse(whole.raw ?? "{}") as { type: string }).type).toBe("message");
    expect(whole.result().choices[0]?.content).toEqual([{ type: "text", text: ANTHROPIC_TOKENS.join("") }]);
    expect(whole.usage).toMatchObject({ inputTokens: 128, outputTokens: 4, cacheReadTokens: 100 });
  });

  it("decodes tool use and thinking with its signature", async () => {
    fake.queue.push({ kind: "thinking" }, { kind: "tool" });
    const thought = await drain(await provider().chat.stream(messagesInput(messagesBody()), options()));
    expect(canonical(thought.events)).toContainEqual({
      type: "reasoning-signature",
      choice: 0,
      signature: FAKE_SIGNATURE,
      family: "anthropic",
    });
    const tool = await drain(await provider().chat.stream(messagesInput(messagesBody()), options()));
    expect(canonical(tool.events).find((e) => e.type === "tool-call-start")).toMatchObject({
      id: "toolu_fake1",
      name: "get_weather",
    });
    const input = canonical(tool.events)
      .map((e) => (e.type === "tool-call-delta" ? e.input : ""))
      .join("");
    expect(JSON.parse(input)).toEqual({ city: "Paris" });
  });

  it("reports a stream reset before message_stop as a cut, and an exception frame as Bedrock's error", async () => {
    fake.queue.push({ kind: "cut", afterTokens: 2 });
    const cut = await drain(await provider().chat.stream(messagesInput(messagesBody()), options()));
    expect(text(cut.events)).toBe("Hello from");
    expect(cut.error).toMatchObject({ status: 502, code: "upstream_stream_cut", action: "failover" });

    fake.queue.push({ kind: "errorEvent", afterTokens: 1 });
    const failed = await drain(await provider().chat.stream(messagesInput(messagesBody()), options()));
    expect(text(failed.events)).toBe("Hello");
    // ModelStreamErrorException: Bedrock's own stall, failed over like the gateway's idle timeout.
    expect(failed.error).toBeInstanceOf(UpstreamTimeoutError);
  });

  it("maps errors before the stream through Bedrock's table", async () => {
    const failure = (behaviour: (typeof fake.queue)[number]) => {
      fake.queue.push(behaviour);
      return provider()
        .chat.stream(messagesInput(messagesBody()), options())
        .then(
          () => undefined,
          (error: unknown) => error,
        );
    };
    const throttled = await failure({
      kind: "bedrockError",
      status: 429,
      errorType: "ThrottlingException",
      message: "Too many requests",
    });
    expect(throttled).toMatchObject({ status: 429, action: "retry", kind: "rate_limit" });
    const invalid = await failure({
      kind: "bedrockError",
      status: 400,
      errorType: "ValidationException",
      message: "messages: roles must alternate",
    });
    expect(invalid).toBeInstanceOf(UpstreamError);
    expect(invalid).toMatchObject({ status: 400, action: "return", kind: "invalid_request" });
  });

  it("continues a cut answer from a trailing assistant message, trimmed, thinking off", async () => {
    const body = messagesBody();
    await drain(
      await provider({ assistantPrefill: true }).chat.stream(
        messagesInput(body, {}, "Hello from  "),
        options(),
      ),
    );
    const sent = fake.requests[0]?.body as Record<string, unknown>;
    expect(sent.thinking).toBeUndefined();
    expect(sent.messages).toEqual([
      ...(body.messages as unknown[]),
      { role: "assistant", content: "Hello from" },
    ]);
  });

  it("serves OpenAI chat callers, and other models, through Converse, never InvokeModel", async () => {
    const chat = chatInput({ model: "m", messages: [{ role: "user", content: "Hi" }] });
    const viaConverse = await provider()
      .chat.complete(chat, options())
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    // The fake serves only InvokeModel: the Converse route is not found there.
    expect(viaConverse).toMatchObject({ code: "bedrock_model_not_found" });
    const nova = await provider()
      .chat.complete(
        messagesInput({ model: "r", max_tokens: 10, messages: [{ role: "user", content: "Hi" }] }),
        options("amazon.nova-pro-v1:0"),
      )
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(nova).toMatchObject({ code: "bedrock_model_not_found" });
    expect(fake.requests).toHaveLength(0);
  });

  it("counts tokens with Bedrock's CountTokens, for the profile's foundation model", async () => {
    fake.countTokens = 17;
    const { max_tokens: _, ...countBody } = messagesBody();
    const n = await provider().chat.countTokens?.(messagesInput(countBody, BETAS), options());
    expect(n).toBe(17);
    const sent = fake.requests[0];
    expect(sent?.operation).toBe("count-tokens");
    expect(sent?.modelId).toBe("anthropic.claude-test-v1:0");
    expect(sent?.body).toMatchObject({
      anthropic_version: "bedrock-2023-05-31",
      // Required by the InvokeModel body; above the thinking budget.
      max_tokens: 4096,
      messages: countBody.messages,
    });
    expect(sent?.body).not.toHaveProperty("model");
    expect(sent?.body).not.toHaveProperty("stream");

    // An OpenAI chat caller is counted in the Messages form of its canonical request.
    await provider().chat.countTokens?.(
      chatInput({ model: "m", messages: [{ role: "user", content: "Hi" }] }),
      options(),
    );
    expect(fake.requests[1]?.body).toMatchObject({
      messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }],
    });

    const other = await provider()
      .chat.countTokens?.(messagesInput(countBody), options("amazon.nova-pro-v1:0"))
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(other).toMatchObject({ code: "count_tokens_unsupported" });
  });
});
