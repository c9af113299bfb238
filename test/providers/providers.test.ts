import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../lib/config/validate.ts";
import { silentLogger, sleep } from "../../lib/deps.ts";
import { createHttpClient } from "../../lib/http/client.ts";
import { createProviderFactory } from "../../lib/providers/factory.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import type { ChatStream } from "../../lib/providers/types.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";

let upstream: FakeUpstream;
const http = createHttpClient();
const deps = { now: Date.now, sleep, random: () => 0.5, newId: () => "id", logger: silentLogger };

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  http.close();
  await upstream.close();
});

function factoryFor(env: NodeJS.ProcessEnv) {
  const config = validateConfig({
    providers: [
      { id: "openai", type: "openai", baseUrl: upstream.url, apiKey: { env: "OPENAI_API_KEY" } },
      { id: "deepseek", type: "deepseek", baseUrl: upstream.url, apiKey: { env: "DEEPSEEK_API_KEY" } },
      { id: "off", type: "mock", enabled: false },
      {
        id: "mock",
        type: "mock",
        mock: {
          reply: "one two three",
          firstTokenDelayMs: 0,
          tokenDelayMs: 0,
          script: [{ status: 503 }, "ok", { cutAfterTokens: 1 }],
        },
      },
    ],
    models: { m: { targets: [{ provider: "mock", model: "x" }] } },
  });
  return createProviderFactory(config, { http, keys: envKeys(env), deps });
}

const options = (signal = new AbortController().signal) => ({
  signal,
  timeouts: { connectMs: 500, headersMs: 500, firstTokenMs: 500, idleMs: 500, responseMs: 1000 },
});

async function collect(stream: ChatStream | undefined): Promise<string> {
  if (!stream) throw new Error("no stream");
  let text = "";
  for await (const e of stream.events)
    if (e.kind === "chunk") text += e.chunk.choices?.[0]?.delta?.content ?? "";
  return text;
}

describe("provider factory", () => {
  it("knows which providers are configured (enabled, with a key)", () => {
    const factory = factoryFor({ OPENAI_API_KEY: "sk-x" });
    expect(factory.isProviderConfigured("openai")).toBe(true);
    expect(factory.isProviderConfigured("deepseek")).toBe(false);
    expect(factory.isProviderConfigured("off")).toBe(false);
    expect(factory.isProviderConfigured("mock")).toBe(true);
    expect(factory.isProviderConfigured("nope")).toBe(false);
  });

  it("picks the first configured provider as primary and the rest as fallbacks", () => {
    const factory = factoryFor({ DEEPSEEK_API_KEY: "sk-y" });
    expect(factory.createPrimaryProvider()?.id).toBe("deepseek");
    expect(factory.getFallbackProviders().map((p) => p.id)).toEqual(["mock"]);
  });

  it("keeps one instance per provider id", () => {
    const factory = factoryFor({});
    expect(factory.getProvider("mock")).toBe(factory.getProvider("mock"));
    expect(factory.getProvider("nope")).toBeUndefined();
  });
});

describe("OpenAI-compatible providers", () => {
  it("parses a DeepSeek answer preceded by keep-alive blank lines", async () => {
    const provider = factoryFor({ DEEPSEEK_API_KEY: "sk-y" }).getProvider("deepseek");
    upstream.queue.push({ kind: "answer", blankLinesFirst: 3 });
    const result = await provider?.chatCompletion(
      { model: "deepseek-chat", messages: [{ role: "user", content: "hi" }] },
      options(),
    );
    expect(
      (result?.json.choices as Array<{ message: { content: string } }> | undefined)?.[0]?.message.content,
    ).toBe("Hello from the fake upstream.");
  });

  it("streams chunks and drops keep-alive comments", async () => {
    const provider = factoryFor({ DEEPSEEK_API_KEY: "sk-y" }).getProvider("deepseek");
    upstream.queue.push({ kind: "answer", firstTokenDelayMs: 60, keepAliveEveryMs: 10 });
    const stream = await provider?.streamChat(
      { model: "deepseek-chat", messages: [{ role: "user", content: "hi" }] },
      options(),
    );
    expect(await collect(stream)).toBe("Hello from the fake upstream.");
  });

  it("fails over rather than calling a provider with no key", async () => {
    const provider = factoryFor({}).getProvider("openai");
    await expect(
      provider?.chatCompletion({ model: "x", messages: [{ role: "user", content: "hi" }] }, options()),
    ).rejects.toMatchObject({ code: "provider_not_configured", action: "failover" });
    expect(upstream.requests.filter((r) => r.headers.authorization === undefined)).toHaveLength(0);
  });

  it("health-checks with GET /models and reports latency", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    const health = await provider?.healthCheck({ timeoutMs: 500 });
    expect(health).toMatchObject({ ok: true, status: 200, error: undefined });
    expect(health?.latencyMs).toBeGreaterThanOrEqual(0);
    upstream.queue.push({ kind: "status", status: 503 });
    expect(await provider?.healthCheck({ timeoutMs: 500 })).toMatchObject({ ok: false, status: 503 });
  });

  it("applies the provider's retry policy through withRetry", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    upstream.queue.push({ kind: "status", status: 502 });
    const before = upstream.requests.length;
    const result = await provider?.withRetry(
      () => provider.chatCompletion({ model: "x", messages: [{ role: "user", content: "hi" }] }, options()),
      { signal: new AbortController().signal, deadline: Date.now() + 5000 },
    );
    expect(result?.json.model).toBe("x");
    expect(upstream.requests.length - before).toBe(2);
  });
});

describe("mock provider", () => {
  it("follows its script: a failure, an answer, a cut stream", async () => {
    const provider = factoryFor({}).getProvider("mock");
    const request = { model: "x", messages: [{ role: "user", content: "hi" }] };
    await expect(provider?.streamChat(request, options())).rejects.toMatchObject({
      status: 503,
      action: "retry",
    });
    expect(await collect(await provider?.streamChat(request, options()))).toBe("one two three");
    await expect(collect(await provider?.streamChat(request, options()))).rejects.toMatchObject({
      code: "upstream_stream_cut",
    });
  });

  it("continues a partial assistant message when asked for a prefill", async () => {
    const provider = factoryFor({}).getProvider("mock");
    await provider?.streamChat({ model: "x", messages: [] }, options()).catch(() => undefined); // consume the scripted 503
    const stream = await provider?.streamChat(
      {
        model: "x",
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "one two" },
        ],
      },
      { ...options(), prefill: true },
    );
    expect(await collect(stream)).toBe(" three");
  });
});
