import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../lib/core/events.ts";
import type { GenerationRequest } from "../../lib/core/request.ts";
import { setTimer, silentLogger, sleep } from "../../lib/deps.ts";
import { toGeneration } from "../../lib/dialects/anthropic-messages/parse.ts";
import { anthropicToolNames } from "../../lib/dialects/anthropic-messages/request.ts";
import { chatInput } from "../../lib/dialects/openai-chat/input.ts";
import { UpstreamError } from "../../lib/errors.ts";
import { createHttpClient } from "../../lib/http/client.ts";
import type { GenerationInput, GenerationStream, UpstreamEvent } from "../../lib/providers/generation.ts";
import { type ApiKeys, envKeys } from "../../lib/providers/keys.ts";
import { providerRegistry } from "../../lib/providers/registry.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import {
  ANTHROPIC_TOKENS,
  FAKE_ANTHROPIC_KEY,
  FAKE_SIGNATURE,
  type FakeAnthropic,
  scriptOf,
  sseFrame,
  startFakeAnthropic,
  streamEvents,
} from "../support/fake-anthropic.ts";

let fake: FakeAnthropic;
const warnings: Array<Record<string, unknown>> = [];
const deps = {
  now: Date.now,
  sleep,
  random: () => 0.5,
  newId: () => "id-1",
  setTimer,
  logger: { ...silentLogger, warn: (f: Record<string, unknown>) => warnings.push(f) },
};
const client = createHttpClient();

beforeAll(async () => {
  fake = await startFakeAnthropic();
});
afterAll(async () => {
  client.close();
  await fake.close();
});
beforeEach(() => {
  fake.requests.length = 0;
  fake.queue.length = 0;
  delete fake.countTokens;
  warnings.length = 0;
});

const MODEL = "claude-target-1";

function provider(fields: Record<string, unknown> = {}, keys: ApiKeys = envKeys({ K: FAKE_ANTHROPIC_KEY })) {
  const config = validateConfig({
    providers: [{ id: "anthropic", type: "anthropic", baseUrl: fake.url, apiKey: { env: "K" }, ...fields }],
    models: { m: { targets: [{ provider: "anthropic", model: MODEL }] } },
  }).providers[0];
  if (!config) throw new Error("no provider");
  return providerRegistry.get("anthropic").create(config, { deps, http: client, keys });
}

const options = (signal = new AbortController().signal) => ({
  model: MODEL,
  signal,
  timeouts: { connectMs: 1000, headersMs: 2000, firstTokenMs: 2000, idleMs: 2000, responseMs: 3000 },
});

/** A Messages caller's request, as the endpoint hands it to the provider. */
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

/** What Claude Code sends, in small: unknown fields, cache marks, a signed thinking block in history. */
const claudeCodeBody = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: "claude-route",
  max_tokens: 32000,
  stream: true,
  system: [{ type: "text", text: "You are terse.", cache_control: { type: "ephemeral" } }],
  messages: [
    { role: "user", content: [{ type: "text", text: "Hi", cache_control: { type: "ephemeral" } }] },
    {
      role: "assistant",
      content: [
        { type: "thinking", thinking: "They greet.", signature: "sig-from-anthropic" },
        { type: "text", text: "Hello." },
      ],
    },
    { role: "user", content: "Say more" },
  ],
  thinking: { type: "adaptive" },
  context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
  output_config: { effort: "medium" },
  metadata: { user_id: "dev-1" },
  a_future_field: { nested: [1, 2] },
  ...extra,
});

describe("the anthropic provider type's configuration", () => {
  const document = (provider: Record<string, unknown>) => ({
    providers: [{ id: "a", type: "anthropic", apiKey: { env: "K" }, ...provider }],
    models: { m: { targets: [{ provider: "a", model: "x" }] } },
  });

  it("defaults to the Anthropic API, every beta flag forwarded, the models probe and no prefill", () => {
    const config = validateConfig(document({})).providers[0];
    expect(config?.baseUrl).toBe("https://api.anthropic.com");
    expect(config?.options).toEqual({ betas: "all" });
    expect(config?.healthProbe).toEqual({ kind: "models" });
    expect(config?.assistantPrefill).toBe(false);
  });

  it("takes a list of betas and refuses anything else, naming the field", () => {
    expect(validateConfig(document({ betas: ["a-1", "b-2"] })).providers[0]?.options).toEqual({
      betas: ["a-1", "b-2"],
    });
    expect(() => validateConfig(document({ betas: "some" }))).toThrow(/providers\[0\]\.betas/);
    expect(() => validateConfig(document({ betas: [""] }))).toThrow(/providers\[0\]\.betas\[0\]/);
    expect(() => validateConfig(document({ apiKey: undefined }))).toThrow(/apiKey/);
  });
});

describe("anthropic provider against a fake Anthropic API", () => {
  it("passes a Messages caller's body through with only the model changed, and hands on the bytes", async () => {
    const body = claudeCodeBody();
    const stream = await provider().chat.stream(
      messagesInput(body, { "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14" }),
      options(),
    );
    const { events, error } = await drain(stream);
    expect(error).toBeUndefined();

    expect(fake.requests).toHaveLength(1);
    const sent = fake.requests[0];
    expect(sent?.path).toBe("/v1/messages");
    expect(sent?.body).toEqual({ ...body, model: MODEL });
    expect(sent?.headers["x-api-key"]).toBe(FAKE_ANTHROPIC_KEY);
    expect(sent?.headers["anthropic-version"]).toBe("2023-06-01");
    // "all" by default: the Anthropic API is the authority on its own flags.
    expect(sent?.headers["anthropic-beta"]).toBe("claude-code-20250219,interleaved-thinking-2025-05-14");
    // The caller's body is never mutated.
    expect(body.model).toBe("claude-route");

    // Every event is handed on as the upstream wrote it, in the caller's dialect.
    expect(events.every((e) => e.dialect === "anthropic-messages")).toBe(true);
    const types = events.map((e) => (JSON.parse(e.raw ?? "{}") as { type: string }).type);
    expect(types[0]).toBe("message_start");
    expect(types[1]).toBe("ping");
    expect(types[types.length - 1]).toBe("message_stop");
    expect(text(events)).toBe(ANTHROPIC_TOKENS.join(""));
    const finish = canonical(events).find((e) => e.type === "finish");
    expect(finish).toEqual({ type: "finish", choice: 0, reason: "stop", raw: "end_turn" });
    const usage = canonical(events).filter((e) => e.type === "usage");
    // 21 uncached + 100 read + 7 written: the canonical input counts every prompt token.
    expect(usage[usage.length - 1]).toMatchObject({ usage: { inputTokens: 128, outputTokens: 4 } });
  });

  it("sets stream to how the call is made, and answers whole with the upstream's bytes", async () => {
    const body = claudeCodeBody();
    const whole = await provider().chat.complete(messagesInput(body), options());
    const { stream: _, ...rest } = body;
    expect(fake.requests[0]?.body).toEqual({ ...rest, model: MODEL, stream: false });
    expect(whole.dialect).toBe("anthropic-messages");
    const raw = JSON.parse(whole.raw ?? "{}") as { id: string; content: unknown[] };
    expect(raw.id).toBe("msg_fake2");
    const result = whole.result();
    expect(result.choices[0]?.content).toEqual([{ type: "text", text: ANTHROPIC_TOKENS.join("") }]);
    expect(whole.usage).toMatchObject({
      inputTokens: 128,
      outputTokens: 4,
      cacheReadTokens: 100,
      cacheWriteTokens: 7,
    });
    expect(whole.outputChars).toBe(ANTHROPIC_TOKENS.join("").length);

    // Without `stream`, no `stream` key is added: the caller's body goes as it is.
    const { stream: __, ...unstreamed } = body;
    await provider().chat.complete(messagesInput(unstreamed), options());
    expect(fake.requests[1]?.body).toEqual({ ...unstreamed, model: MODEL });
  });

  it("translates an OpenAI chat caller, its tool names mapped there and back", async () => {
    const chat = {
      model: "claude-route",
      max_tokens: 50,
      messages: [
        { role: "system" as const, content: "Be brief." },
        { role: "user" as const, content: "Weather in Paris?" },
      ],
      tools: [
        {
          type: "function" as const,
          function: { name: "weather.get", parameters: { type: "object", properties: {} } },
        },
      ],
    };
    const input = chatInput(chat);
    const wire = anthropicToolNames(input.canonical()).toWire("weather.get");
    expect(wire).not.toBe("weather.get");
    fake.queue.push({ kind: "tool", name: wire });
    const { events, error } = await drain(await provider().chat.stream(input, options()));
    expect(error).toBeUndefined();

    const sent = fake.requests[0]?.body;
    expect(sent).toMatchObject({
      model: MODEL,
      max_tokens: 50,
      stream: true,
      system: "Be brief.",
      messages: [{ role: "user", content: [{ type: "text", text: "Weather in Paris?" }] }],
      tools: [{ name: wire, input_schema: { type: "object", properties: {} } }],
    });
    const start = canonical(events).find((e) => e.type === "tool-call-start");
    expect(start).toMatchObject({ name: "weather.get", id: "toolu_fake1" });
    const input2 = canonical(events)
      .map((e) => (e.type === "tool-call-delta" ? e.input : ""))
      .join("");
    expect(JSON.parse(input2)).toEqual({ city: "Paris" });
    expect(canonical(events).find((e) => e.type === "finish")).toMatchObject({ reason: "tool-calls" });
    // No caller of another dialect forwards betas.
    expect(fake.requests[0]?.headers["anthropic-beta"]).toBeUndefined();
  });

  it("reads a thinking block with its signature, and sends an Anthropic-signed one back, another family's not", async () => {
    fake.queue.push({ kind: "thinking" });
    const { events } = await drain(await provider().chat.stream(messagesInput(claudeCodeBody()), options()));
    const reasoning = canonical(events)
      .map((e) => (e.type === "reasoning" ? e.text : ""))
      .join("");
    expect(reasoning).toBe("Let me think about it.");
    expect(canonical(events)).toContainEqual({
      type: "reasoning-signature",
      choice: 0,
      signature: FAKE_SIGNATURE,
      family: "anthropic",
    });

    // A caller of another dialect (say OpenAI Responses) whose history holds both families' reasoning.
    const request: GenerationRequest = {
      model: "claude-route",
      system: [],
      messages: [
        { role: "user", content: [{ type: "text", text: "Hi" }] },
        {
          role: "assistant",
          content: [
            { type: "reasoning", text: "Mine.", signature: FAKE_SIGNATURE, family: "anthropic" },
            { type: "reasoning", text: "Theirs.", signature: "enc-openai", family: "openai" },
            { type: "text", text: "Hello." },
          ],
        },
        { role: "user", content: [{ type: "text", text: "More" }] },
      ],
      stream: false,
      extensions: {},
      unmapped: {},
    };
    const translated: GenerationInput = { dialect: "openai-responses", body: {}, canonical: () => request };
    await provider().chat.complete(translated, options());
    const sent = fake.requests[1]?.body as { messages: Array<{ content: unknown[] }> };
    expect(sent.messages[1]?.content).toEqual([
      { type: "thinking", thinking: "Mine.", signature: FAKE_SIGNATURE },
      { type: "text", text: "Hello." },
    ]);
  });

  it("classifies 429 with its Retry-After, 529 overloaded, and hands a 400 back to the caller", async () => {
    const failure = async (behaviour: (typeof fake.queue)[number]) => {
      fake.queue.push(behaviour);
      return provider()
        .chat.stream(messagesInput(claudeCodeBody()), options())
        .then(
          () => undefined,
          (error: unknown) => error,
        );
    };
    const limited = await failure({ kind: "status", status: 429, type: "rate_limit_error", retryAfter: "3" });
    expect(limited).toBeInstanceOf(UpstreamError);
    expect(limited).toMatchObject({
      status: 429,
      action: "retry",
      kind: "rate_limit",
      retryAfterMs: 3000,
    });

    const overloaded = await failure({ kind: "status", status: 529, type: "overloaded_error" });
    expect(overloaded).toMatchObject({ status: 529, action: "retry", kind: "overloaded" });

    const refused = await failure({
      kind: "status",
      status: 400,
      type: "invalid_request_error",
      message: "prompt is too long",
    });
    // "prompt is too long" in words: the context-window fallback's code, as for OpenAI's wording.
    expect(refused).toMatchObject({ status: 400, action: "return", code: "context_length_exceeded" });
    expect(JSON.stringify((refused as UpstreamError).passThrough?.body)).toContain("prompt is too long");
  });

  it("reports a stream cut before message_stop, and an error event as the provider's error", async () => {
    fake.queue.push({ kind: "cut", afterTokens: 2 });
    const cut = await drain(await provider().chat.stream(messagesInput(claudeCodeBody()), options()));
    expect(text(cut.events)).toBe("Hello from");
    // The socket dropped mid-answer: a failed-over connection error, never a finished answer.
    expect(cut.error).toMatchObject({ code: "upstream_connection_error", action: "failover" });

    fake.queue.push({ kind: "errorEvent", afterTokens: 1 });
    const failed = await drain(await provider().chat.stream(messagesInput(claudeCodeBody()), options()));
    expect(text(failed.events)).toBe("Hello");
    // An overloaded_error event is retried, then failed over (its type is read by the classifier).
    expect(failed.error).toMatchObject({ action: "retry" });
  });

  it("reports a body that ends cleanly before message_stop as a cut", async () => {
    const events = streamEvents("msg_1", MODEL, scriptOf({ kind: "text" })).events;
    // A server that closes the answer properly, one message_delta short of the end.
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const event of events.slice(0, 5)) res.write(sseFrame(event));
      res.end();
    });
    server.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const cut = await drain(
        await provider({ baseUrl: url }).chat.stream(messagesInput(claudeCodeBody()), options()),
      );
      expect(text(cut.events)).toBe("Hello from");
      expect(cut.error).toMatchObject({ code: "upstream_stream_cut", action: "failover", status: 502 });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("forwards only the betas its list allows, and logs each dropped flag once", async () => {
    const p = provider({ betas: ["interleaved-thinking-2025-05-14"] });
    const headers = { "anthropic-beta": "claude-code-20250219, interleaved-thinking-2025-05-14" };
    await p.chat.complete(messagesInput(claudeCodeBody(), headers), options());
    await p.chat.complete(messagesInput(claudeCodeBody(), headers), options());
    expect(fake.requests.map((r) => r.headers["anthropic-beta"])).toEqual([
      "interleaved-thinking-2025-05-14",
      "interleaved-thinking-2025-05-14",
    ]);
    const dropped = warnings.filter((w) => String(w.msg).startsWith("anthropic-beta"));
    expect(dropped).toEqual([
      expect.objectContaining({ provider: "anthropic", dropped: ["claude-code-20250219"] }),
    ]);

    // An empty list forwards none, and sends no header at all.
    await provider({ betas: [] }).chat.complete(messagesInput(claudeCodeBody(), headers), options());
    expect(fake.requests[2]?.headers["anthropic-beta"]).toBeUndefined();
  });

  it("counts tokens with the API's own count_tokens, without the fields it refuses", async () => {
    fake.countTokens = 42;
    const count = provider().chat.countTokens;
    expect(count).toBeDefined();
    const body = claudeCodeBody();
    const n = await provider().chat.countTokens?.(messagesInput(body), options());
    expect(n).toBe(42);
    const sent = fake.requests[0];
    expect(sent?.path).toBe("/v1/messages/count_tokens");
    const { max_tokens: _a, stream: _b, metadata: _c, ...counted } = body;
    expect(sent?.body).toEqual({ ...counted, model: MODEL });
  });

  it("continues a cut answer as a trailing assistant message, trimmed, with thinking off", async () => {
    const p = provider({ assistantPrefill: true });
    expect(p.chat.resume).toBe("prefill");
    expect(provider().chat.resume).toBe("restart");
    const body = claudeCodeBody();
    await drain(await p.chat.stream(messagesInput(body, undefined, "Hello from "), options()));
    const sent = fake.requests[0]?.body as Record<string, unknown>;
    const { thinking: _, ...rest } = body;
    expect(sent).toEqual({
      ...rest,
      model: MODEL,
      messages: [...(body.messages as unknown[]), { role: "assistant", content: "Hello from" }],
    });

    // The same for a translated caller: the canonical request gains the assistant turn.
    await drain(
      await p.chat.stream(
        chatInput(
          { model: "r", messages: [{ role: "user", content: "Hi" }], reasoning_effort: "high" },
          "Part ",
        ),
        options(),
      ),
    );
    const translated = fake.requests[1]?.body as { messages: unknown[]; thinking?: unknown };
    expect(translated.messages[translated.messages.length - 1]).toEqual({
      role: "assistant",
      content: [{ type: "text", text: "Part" }],
    });
    expect(translated.thinking).toBeUndefined();
  });

  it("tries a rotated key once after a 401, and probes GET /v1/models", async () => {
    let current = "sk-ant-old";
    const invalidated: string[] = [];
    const keys: ApiKeys = {
      get: async () => current,
      has: () => true,
      invalidate: (_p, rejected) => {
        invalidated.push(rejected);
        current = FAKE_ANTHROPIC_KEY;
      },
    };
    const whole = await provider({}, keys).chat.complete(messagesInput(claudeCodeBody()), options());
    expect(whole.result().choices[0]?.finish).toBe("stop");
    expect(invalidated).toEqual(["sk-ant-old"]);
    expect(fake.requests.map((r) => r.headers["x-api-key"])).toEqual(["sk-ant-old", FAKE_ANTHROPIC_KEY]);

    const health = await provider().healthCheck({ timeoutMs: 2000 });
    expect(health).toMatchObject({ ok: true, status: 200 });
    const bad = await provider({}, envKeys({ K: "sk-ant-wrong" })).healthCheck({ timeoutMs: 2000 });
    expect(bad).toMatchObject({ ok: false, status: 401 });
  });
});
