import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { validateConfig } from "../../lib/config/validate.ts";
import { type Deps, setTimer, silentLogger, sleep } from "../../lib/deps.ts";
import { type GatewayError, UpstreamError } from "../../lib/errors.ts";
import { createHttpClient, type HttpClient } from "../../lib/http/client.ts";
import { createProviderFactory } from "../../lib/providers/factory.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import type { ChatStream, StreamEvent } from "../../lib/providers/types.ts";
import { faultOf } from "../../lib/retry/blame.ts";
import {
  type CustomResponder,
  compressedAnswer,
  type FakeUpstream,
  hugeAnswer,
  redirectTo,
  startFakeUpstream,
  wholeCompletion,
} from "../support/fake-upstream.ts";

let upstream: FakeUpstream;
const http = createHttpClient();
const deps: Deps = {
  now: Date.now,
  sleep,
  setTimer,
  random: () => 0.5,
  newId: () => "id",
  logger: silentLogger,
};

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  http.close();
  await upstream.close();
});

function factoryFor(env: NodeJS.ProcessEnv, client: HttpClient = http, using: Deps = deps) {
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
  return createProviderFactory(config, { http: client, keys: envKeys(env), deps: using });
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
    const before = upstream.requests.length;
    await expect(
      provider?.chatCompletion({ model: "x", messages: [{ role: "user", content: "hi" }] }, options()),
    ).rejects.toMatchObject({ code: "provider_not_configured", action: "failover" });
    // No request at all: not one without a key, nor one carrying "Bearer undefined".
    expect(upstream.requests.slice(before)).toEqual([]);
  });

  it("health-checks with GET /models and reports latency", async () => {
    // The clock moves 42 ms while the upstream answers: the latency is measured on deps.now.
    let now = 1_000;
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }, http, { ...deps, now: () => now }).getProvider(
      "openai",
    );
    upstream.queue.push({
      kind: "custom",
      respond: (record, res) => {
        now += 42;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ object: "list", data: [] }));
        expect(record.path).toBe("/models");
      },
    });
    const health = await provider?.healthCheck({ timeoutMs: 500 });
    expect(health).toMatchObject({ ok: true, status: 200, error: undefined, latencyMs: 42 });
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

describe("odd upstream answers (issue 9)", () => {
  const request = { model: "x", messages: [{ role: "user", content: "hi" }] };
  const events = async (stream: ChatStream | undefined): Promise<StreamEvent[]> => {
    const out: StreamEvent[] = [];
    for await (const e of stream?.events ?? []) out.push(e);
    return out;
  };

  it("serves a whole JSON completion answered to a stream request as stream events", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
    upstream.queue.push({
      kind: "custom",
      respond: wholeCompletion("Hi there", { finishReason: "length", usage }),
    });

    const got = await events(
      await provider?.streamChat({ ...request, stream_options: { include_usage: true } }, options()),
    );

    expect(got.map((e) => (e.kind === "chunk" ? JSON.parse(e.raw) : e))).toEqual([
      {
        id: "chatcmpl-fake",
        object: "chat.completion.chunk",
        created: 1,
        model: "x",
        choices: [{ index: 0, delta: { role: "assistant", content: "Hi there" }, finish_reason: null }],
      },
      {
        id: "chatcmpl-fake",
        object: "chat.completion.chunk",
        created: 1,
        model: "x",
        choices: [{ index: 0, delta: {}, finish_reason: "length" }],
      },
      { id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1, model: "x", choices: [], usage },
      { kind: "done" },
    ]);
  });

  it("gives a replayed tool call the index a streamed one carries, and no usage chunk unasked", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    const call = { id: "call_1", type: "function", function: { name: "f", arguments: "{}" } };
    upstream.queue.push({
      kind: "custom",
      respond: (_record, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            id: "c",
            object: "chat.completion",
            created: 1,
            model: "x",
            choices: [
              {
                index: 0,
                message: { role: "assistant", content: null, tool_calls: [call] },
                finish_reason: "tool_calls",
              },
            ],
            usage: { total_tokens: 1 },
          }),
        );
      },
    });

    const got = await events(await provider?.streamChat(request, options()));

    const first = got[0]?.kind === "chunk" ? got[0].chunk : undefined;
    expect(first?.choices?.[0]?.delta?.tool_calls).toEqual([{ index: 0, ...call }]);
    expect(got.filter((e) => e.kind === "chunk" && e.chunk.usage !== undefined)).toHaveLength(0);
    expect(got.at(-1)).toEqual({ kind: "done" });
  });

  it("decodes a compressed stream", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    upstream.queue.push({ kind: "custom", respond: compressedAnswer("gzip") });
    expect(await collect(await provider?.streamChat(request, options()))).toBe(
      "Hello from the fake upstream.",
    );
  });

  it("stops an endless stream at the client's maxResponseBytes, to be returned to the caller", async () => {
    const capped = createHttpClient({ maxResponseBytes: 64 * 1024 });
    try {
      const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }, capped).getProvider("openai");
      upstream.queue.push({ kind: "custom", respond: hugeAnswer(Number.POSITIVE_INFINITY) });
      const stream = await provider?.streamChat(request, options());
      await expect(collect(stream)).rejects.toMatchObject({
        status: 502,
        code: "response_too_large",
        action: "return",
      });
    } finally {
      capped.close();
    }
  });

  it("fails a redirect over without sending the key to its Location", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    const elsewhere = await startFakeUpstream();
    try {
      upstream.queue.push({ kind: "custom", respond: redirectTo(`${elsewhere.url}/chat/completions`, 307) });
      await expect(provider?.chatCompletion(request, options())).rejects.toMatchObject({
        status: 502,
        action: "failover",
        code: "upstream_redirect",
      });
      expect(elsewhere.requests).toHaveLength(0);
    } finally {
      await elsewhere.close();
    }
  });

  it("answers overloaded at once when every connection to the provider is in use", async () => {
    const single = createHttpClient({ maxSockets: 1 });
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }, single).getProvider("openai");
    const holder = new AbortController();
    try {
      const before = upstream.requests.length;
      upstream.queue.push({ kind: "hang" });
      const held = provider?.streamChat(request, options(holder.signal)).catch(() => undefined);
      await vi.waitFor(() => expect(upstream.requests.length).toBe(before + 1));
      await expect(provider?.streamChat(request, options())).rejects.toMatchObject({
        status: 503,
        code: "gateway_overloaded",
        action: "failover",
        retryAfterMs: 1000,
      });
      holder.abort();
      await held;
    } finally {
      single.close();
    }
  });
});

describe("a 200 that is not a chat completion (issue 16)", () => {
  const request = { model: "x", messages: [{ role: "user", content: "hi" }] };
  const answering = (contentType: string, body: string) => ({
    kind: "custom" as const,
    respond: ((_record, res) => {
      res.writeHead(200, { "content-type": contentType });
      res.end(body);
    }) satisfies CustomResponder,
  });
  const blame = (error: unknown) =>
    faultOf(error as GatewayError, { now: 0, deadline: Number.POSITIVE_INFINITY });

  it.each([
    ["HTML from a proxy", "text/html", "<html><body>Bad gateway</body></html>"],
    ["a truncated body", "application/json", '{"id":"c","choices":[{"mess'],
    ["JSON that is not an object", "application/json", "[1,2]"],
    // A caller's kind of error, sent with 200: still no answer, and not the caller's 400.
    [
      "an error object",
      "application/json",
      '{"error":{"message":"bad thing","type":"invalid_request_error","code":"x"}}',
    ],
    [
      "a rate-limit error object",
      "application/json",
      '{"error":{"message":"slow down","type":"rate_limit"}}',
    ],
    ["JSON without choices", "application/json", '{"object":"list","data":[]}'],
    ["empty choices", "application/json", '{"id":"c","object":"chat.completion","choices":[]}'],
  ])("is a 502 that fails over, blamed on the provider, for %s", async (_, contentType, body) => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    upstream.queue.push(answering(contentType, body));
    const error = await provider?.chatCompletion(request, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({
      status: 502,
      kind: "upstream",
      code: "upstream_invalid_response",
      action: "failover",
      providerId: "openai",
    });
    expect((error as UpstreamError).passThrough).toBeUndefined();
    expect(blame(error)).toBe("provider");
  });

  it("names the upstream's error message, redacted and cut to a bounded length", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    const message = `echo ${"y".repeat(10_000)}`;
    upstream.queue.push(answering("application/json", JSON.stringify({ error: { message } })));
    const error = (await provider?.chatCompletion(request, options()).catch((e: unknown) => e)) as Error;
    expect(error.message).toContain("echo yyy");
    expect(error.message.length).toBeLessThan(400);
  });

  it("is the same 502 when a stream request gets a JSON error object with 200", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    upstream.queue.push(
      answering("application/json", '{"error":{"message":"nope","type":"invalid_request_error"}}'),
    );
    const error = await provider?.streamChat(request, options()).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 502, code: "upstream_invalid_response", action: "failover" });
  });

  it("ends a 200 stream whose events are all unreadable with no content (the gateway fails it over)", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    upstream.queue.push(answering("text/event-stream", "data: <html>\n\ndata: {not json\n\n"));
    const got: StreamEvent[] = [];
    for await (const e of (await provider?.streamChat(request, options()))?.events ?? []) got.push(e);
    // Nothing readable, not even [DONE]: the gateway's `upstream_empty_stream`, provider blamed.
    expect(got).toEqual([]);
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
