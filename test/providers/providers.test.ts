import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Deps, setTimer, silentLogger, sleep } from "../../lib/deps.ts";
import { chatInput } from "../../lib/dialects/openai-chat/input.ts";
import type { ChatRequest } from "../../lib/dialects/openai-chat/wire.ts";
import { type GatewayError, UpstreamError } from "../../lib/errors.ts";
import { createHttpClient, type HttpClient } from "../../lib/http/client.ts";
import { createProviderFactory } from "../../lib/providers/factory.ts";
import type { GenerationStream, UpstreamEvent } from "../../lib/providers/generation.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import type { Provider } from "../../lib/providers/types.ts";
import { faultOf } from "../../lib/retry/blame.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
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

const options = (signal = new AbortController().signal, model = "x") => ({
  model,
  signal,
  timeouts: { connectMs: 500, headersMs: 500, firstTokenMs: 500, idleMs: 500, responseMs: 1000 },
});

/** An OpenAI chat caller's request to `provider`, its target model the body's unless `model` says. */
const complete = (provider: Provider | undefined, body: ChatRequest, o = options(undefined, body.model)) => {
  if (!provider) throw new Error("no provider");
  return provider.chat.complete(chatInput(body), o);
};
const stream = (
  provider: Provider | undefined,
  body: ChatRequest,
  o = options(undefined, body.model),
  prefill?: string,
) => {
  if (!provider) throw new Error("no provider");
  return provider.chat.stream(chatInput(body, prefill), o);
};

async function collect(stream: GenerationStream | undefined): Promise<string> {
  if (!stream) throw new Error("no stream");
  let text = "";
  for await (const e of stream.events)
    for (const event of e.events) if (event.type === "text") text += event.text;
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
    const result = await complete(provider, {
      model: "deepseek-chat",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(result.result().choices[0]?.content).toEqual([
      { type: "text", text: "Hello from the fake upstream." },
    ]);
    // The upstream's own bytes, for an OpenAI chat caller.
    expect(result.dialect).toBe("openai-chat");
    expect(JSON.parse(result.raw ?? "").choices[0].message.content).toBe("Hello from the fake upstream.");
  });

  it("streams chunks and drops keep-alive comments", async () => {
    const provider = factoryFor({ DEEPSEEK_API_KEY: "sk-y" }).getProvider("deepseek");
    upstream.queue.push({ kind: "answer", firstTokenDelayMs: 60, keepAliveEveryMs: 10 });
    const answer = await stream(provider, {
      model: "deepseek-chat",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(await collect(answer)).toBe("Hello from the fake upstream.");
  });

  it("fails over rather than calling a provider with no key", async () => {
    const provider = factoryFor({}).getProvider("openai");
    const before = upstream.requests.length;
    await expect(
      complete(provider, { model: "x", messages: [{ role: "user", content: "hi" }] }),
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

  it("calls the upstream once: a 502 is the engine's to retry under the provider's policy", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    upstream.queue.push({ kind: "status", status: 502 });
    const before = upstream.requests.length;
    await expect(
      complete(provider, { model: "x", messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toMatchObject({ status: 502, action: "retry" });
    expect(upstream.requests.length - before).toBe(1);
    expect(provider?.config.retry.maxAttempts).toBeGreaterThan(1);
  });
});

describe("what an OpenAI-compatible upstream is sent", () => {
  /** The body the upstream received, as JSON text in its key order. */
  const sent = () => JSON.stringify(upstream.requests.at(-1)?.body);
  const caller = {
    model: "route",
    messages: [{ role: "user", content: "hi", x_unknown: { kept: true } }],
    x_vendor: [1, 2],
    stream: true,
  };

  it("passes an OpenAI chat caller's body on as it came, with the target's model and usage asked", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    await collect(await stream(provider, caller, options(undefined, "gpt-x")));
    expect(sent()).toBe(
      JSON.stringify({
        model: "gpt-x",
        messages: [{ role: "user", content: "hi", x_unknown: { kept: true } }],
        x_vendor: [1, 2],
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(upstream.requests.at(-1)?.path).toBe("/chat/completions");
    // The caller's body itself is never changed.
    expect(caller).toEqual({
      model: "route",
      messages: [{ role: "user", content: "hi", x_unknown: { kept: true } }],
      x_vendor: [1, 2],
      stream: true,
    });
  });

  it("keeps the caller's stream_options as they came, and sends a whole request unstreamed", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    const asked = { ...caller, model: "gpt-x", stream_options: { include_usage: true, other: 1 } };
    await collect(await stream(provider, asked, options(undefined, "gpt-x")));
    expect(sent()).toBe(JSON.stringify(asked));
    await complete(provider, caller, options(undefined, "gpt-x"));
    expect(sent()).toBe(
      JSON.stringify({
        model: "gpt-x",
        messages: caller.messages,
        x_vendor: [1, 2],
        stream: false,
      }),
    );
  });

  it("continues a prefill as DeepSeek's prefix completion, on its /beta base", async () => {
    const config = validateConfig({
      providers: [
        {
          id: "deepseek",
          type: "deepseek",
          baseUrl: upstream.url,
          prefillBaseUrl: `${upstream.url}/beta`,
          apiKey: { env: "DEEPSEEK_API_KEY" },
          assistantPrefill: true,
        },
      ],
      models: { m: { targets: [{ provider: "deepseek", model: "x" }] } },
    });
    const provider = createProviderFactory(config, {
      http,
      keys: envKeys({ DEEPSEEK_API_KEY: "sk-y" }),
      deps,
    }).getProvider("deepseek");
    expect(provider?.chat.resume).toBe("prefill");
    expect(factoryFor({}).getProvider("openai")?.chat.resume).toBe("restart");
    await collect(await stream(provider, caller, options(undefined, "deepseek-chat"), "Hello fr"));
    expect(upstream.requests.at(-1)?.path).toBe("/beta/chat/completions");
    expect(upstream.requests.at(-1)?.body.messages).toEqual([
      { role: "user", content: "hi", x_unknown: { kept: true } },
      { role: "assistant", content: "Hello fr", prefix: true },
    ]);
  });

  it("sends a caller of another dialect the OpenAI body of its canonical request", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    const base = chatInput({ model: "route", messages: [{ role: "user", content: "hi" }], max_tokens: 5 });
    const input = {
      dialect: "anthropic-messages" as const,
      body: { anything: true },
      canonical: base.canonical,
    };
    const answer = await provider?.chat.complete(input, options(undefined, "gpt-x"));
    expect(sent()).toBe(
      JSON.stringify({ model: "gpt-x", messages: [{ role: "user", content: "hi" }], max_tokens: 5 }),
    );
    expect(answer?.result().choices[0]?.content).toEqual([
      { type: "text", text: "Hello from the fake upstream." },
    ]);
  });
});

describe("odd upstream answers (issue 9)", () => {
  const request = { model: "x", messages: [{ role: "user", content: "hi" }] };
  const events = async (stream: GenerationStream | undefined): Promise<UpstreamEvent[]> => {
    const out: UpstreamEvent[] = [];
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

    const got = await events(await stream(provider, { ...request, stream_options: { include_usage: true } }));

    expect(got.map((e) => e.dialect)).toEqual(["openai-chat", "openai-chat", "openai-chat"]);
    expect(got.flatMap((e) => e.events)).toEqual([
      { type: "text", choice: 0, text: "Hi there" },
      { type: "finish", choice: 0, reason: "length", raw: "length" },
      {
        type: "usage",
        usage: {
          inputTokens: 3,
          outputTokens: 2,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
      },
    ]);
    // The iterator ends after the usage chunk: a replayed answer is a whole one.
    expect(got.map((e) => JSON.parse(e.raw ?? ""))).toEqual([
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
    ]);
  });

  it("gives a replayed tool call the index a streamed one carries, and its usage chunk asked or not", async () => {
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

    const got = await events(await stream(provider, request));

    const first = JSON.parse(got[0]?.raw ?? "");
    expect(first?.choices?.[0]?.delta?.tool_calls).toEqual([{ index: 0, ...call }]);
    expect(got[0]?.events).toEqual([
      { type: "tool-call-start", choice: 0, index: 0, id: "call_1", name: "f" },
      { type: "tool-call-delta", choice: 0, index: 0, input: "{}" },
    ]);
    // Every stream asks for usage: the caller's dialect adapter keeps it from a caller who did not.
    expect(JSON.parse(got.at(-1)?.raw ?? "")).toMatchObject({ choices: [], usage: { total_tokens: 1 } });
  });

  it("decodes a compressed stream", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    upstream.queue.push({ kind: "custom", respond: compressedAnswer("gzip") });
    expect(await collect(await stream(provider, request))).toBe("Hello from the fake upstream.");
  });

  it("stops an endless stream at the client's maxResponseBytes, to be returned to the caller", async () => {
    const capped = createHttpClient({ maxResponseBytes: 64 * 1024 });
    try {
      const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }, capped).getProvider("openai");
      upstream.queue.push({ kind: "custom", respond: hugeAnswer(Number.POSITIVE_INFINITY) });
      const answer = await stream(provider, request);
      await expect(collect(answer)).rejects.toMatchObject({
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
      await expect(complete(provider, request)).rejects.toMatchObject({
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
      const held = stream(provider, request, options(holder.signal)).catch(() => undefined);
      await vi.waitFor(() => expect(upstream.requests.length).toBe(before + 1));
      await expect(stream(provider, request)).rejects.toMatchObject({
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
    const error = await complete(provider, request).catch((e: unknown) => e);
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
    const error = (await complete(provider, request).catch((e: unknown) => e)) as Error;
    expect(error.message).toContain("echo yyy");
    expect(error.message.length).toBeLessThan(400);
  });

  it("is the same 502 when a stream request gets a JSON error object with 200", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    upstream.queue.push(
      answering("application/json", '{"error":{"message":"nope","type":"invalid_request_error"}}'),
    );
    const error = await stream(provider, request).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 502, code: "upstream_invalid_response", action: "failover" });
  });

  it("ends a 200 stream whose events are all unreadable with no content (the gateway fails it over)", async () => {
    const provider = factoryFor({ OPENAI_API_KEY: "sk-x" }).getProvider("openai");
    upstream.queue.push(answering("text/event-stream", "data: <html>\n\ndata: {not json\n\n"));
    const got: UpstreamEvent[] = [];
    for await (const e of (await stream(provider, request)).events) got.push(e);
    // Nothing readable, not even [DONE]: the gateway's `upstream_empty_stream`, provider blamed.
    expect(got).toEqual([]);
  });
});

describe("mock provider", () => {
  it("follows its script: a failure, an answer, a cut stream", async () => {
    const provider = factoryFor({}).getProvider("mock");
    const request = { model: "x", messages: [{ role: "user", content: "hi" }] };
    await expect(stream(provider, request)).rejects.toMatchObject({
      status: 503,
      action: "retry",
    });
    expect(await collect(await stream(provider, request))).toBe("one two three");
    await expect(collect(await stream(provider, request))).rejects.toMatchObject({
      code: "upstream_stream_cut",
    });
  });

  it("continues a partial answer when given a prefill", async () => {
    const provider = factoryFor({}).getProvider("mock");
    await stream(provider, { model: "x", messages: [] }).catch(() => undefined); // consume the scripted 503
    const answer = await stream(
      provider,
      { model: "x", messages: [{ role: "user", content: "hi" }] },
      options(),
      "one two",
    );
    expect(await collect(answer)).toBe(" three");
  });
});
