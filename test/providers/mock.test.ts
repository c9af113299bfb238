import { afterAll, describe, expect, it } from "vitest";
import { type Deps, setTimer, silentLogger } from "../../lib/deps.ts";
import { chatInput } from "../../lib/dialects/openai-chat/input.ts";
import type { ChatChunk } from "../../lib/dialects/openai-chat/wire.ts";
import { ClientAbortError } from "../../lib/errors.ts";
import { createHttpClient } from "../../lib/http/client.ts";
import { createProviderFactory } from "../../lib/providers/factory.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import type { Provider } from "../../lib/providers/types.ts";
import { validateConfig } from "../../lib/setup/validate.ts";

const http = createHttpClient();
afterAll(() => http.close());

/**
 * A mock provider whose waits go to a fake `sleep` that returns at once and writes them into `log`,
 * next to the tokens as they are yielded: the delays are seen in order, without real time.
 */
function mockWith(mock: Record<string, unknown>, sleep?: Deps["sleep"]) {
  const log: string[] = [];
  const deps: Deps = {
    now: () => 1_700_000_000_000,
    sleep:
      sleep ??
      (async (ms) => {
        log.push(`sleep ${ms}`);
      }),
    random: () => 0.5,
    newId: () => "id",
    setTimer,
    logger: silentLogger,
  };
  const config = validateConfig({
    providers: [{ id: "m", type: "mock", mock }],
    models: { m: { targets: [{ provider: "m", model: "x" }] } },
  });
  const provider = createProviderFactory(config, { http, keys: envKeys({}), deps }).getProvider("m");
  if (provider === undefined) throw new Error("no mock provider");
  return { provider, log };
}

const request = chatInput({ model: "route", messages: [{ role: "user", content: "hi" }] });
const call = (signal = new AbortController().signal) => ({
  model: "x",
  signal,
  timeouts: { connectMs: 100, headersMs: 100, firstTokenMs: 100, idleMs: 100, responseMs: 100 },
});

async function streamInto(provider: Provider, log: string[]): Promise<void> {
  const stream = await provider.chat.stream(request, call());
  for await (const event of stream.events) {
    // A mock of an OpenAI-compatible server: its chunks as such a server writes them.
    expect(event.dialect).toBe("openai-chat");
    const chunk = JSON.parse(event.raw ?? "") as ChatChunk;
    expect(chunk.model).toBe("x");
    const choice = chunk.choices?.[0];
    if (choice?.delta?.role) log.push("role");
    else if (choice?.delta?.content) log.push(`token ${JSON.stringify(choice.delta.content)}`);
    else if (choice?.finish_reason) log.push(`finish ${choice.finish_reason}`);
    else if (chunk.usage) log.push("usage");
    for (const e of event.events) log.push(`event ${e.type}`);
  }
  log.push("[end]");
}

describe("mock provider delays", () => {
  it("streams the first token after firstTokenDelayMs and each next one after tokenDelayMs", async () => {
    const { provider, log } = mockWith({ reply: "one two three", firstTokenDelayMs: 120, tokenDelayMs: 7 });

    await streamInto(provider, log);

    expect(log).toEqual([
      "role",
      "sleep 120",
      'token "one"',
      "event text",
      "sleep 7",
      'token " two"',
      "event text",
      "sleep 7",
      'token " three"',
      "event text",
      "finish stop",
      "event finish",
      // Always: every stream asks for usage, the caller's dialect decides whether it is shown.
      "usage",
      "event usage",
      "[end]",
    ]);
  });

  it("answers a non-streamed request after the whole answer's time: first token, then every token", async () => {
    const { provider, log } = mockWith({ reply: "one two three", firstTokenDelayMs: 120, tokenDelayMs: 7 });

    const result = await provider.chat.complete(request, call());

    expect(log).toEqual([`sleep ${120 + 7 * 3}`]);
    expect(JSON.parse(result.raw ?? "")).toMatchObject({
      model: "x",
      choices: [{ message: { content: "one two three" } }],
    });
    expect(result.result().choices[0]?.content).toEqual([{ type: "text", text: "one two three" }]);
    expect(result.usage).toMatchObject({ inputTokens: 4, outputTokens: 3 });
    expect(result.outputChars).toBe("one two three".length);
  });

  it("does not wait at all with zero delays", async () => {
    const { provider, log } = mockWith({ reply: "one two", firstTokenDelayMs: 0, tokenDelayMs: 0 });

    await streamInto(provider, log);
    await provider.chat.complete(request, call());

    expect(log.filter((line) => line.startsWith("sleep"))).toEqual([]);
  });

  it("waits the default delays when the configuration names none", async () => {
    const { provider, log } = mockWith({ reply: "one two" });

    await streamInto(provider, log);

    expect(log.filter((line) => line.startsWith("sleep"))).toEqual(["sleep 50", "sleep 20"]);
  });

  it("stops waiting when the caller goes away", async () => {
    const caller = new AbortController();
    const { provider } = mockWith(
      { firstTokenDelayMs: 1_000 },
      // Like the real sleep: never resolves by itself here, rejects once the signal aborts.
      (_ms, signal) =>
        new Promise((_resolve, reject) => {
          if (signal?.aborted) reject(signal.reason);
          signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
        }),
    );

    const answered = provider.chat.complete(request, call(caller.signal));
    caller.abort();

    await expect(answered).rejects.toBeInstanceOf(ClientAbortError);
  });
});

describe("mock provider prompts", () => {
  it("answers a caller of any dialect from its canonical request's last user text", async () => {
    const { provider } = mockWith({ reply: "You said: {input}", firstTokenDelayMs: 0, tokenDelayMs: 0 });
    const canonical = chatInput({
      model: "route",
      messages: [{ role: "user", content: [{ type: "text", text: "bonjour" }] }],
    }).canonical;
    const input = { dialect: "anthropic-messages" as const, body: {}, canonical };
    const answer = await provider.chat.complete(input, call());
    expect(answer.result().choices[0]?.content).toEqual([{ type: "text", text: "You said: bonjour" }]);
  });
});

describe("mock provider health", () => {
  it("is healthy by default, reporting its first-token delay as its latency", async () => {
    const { provider } = mockWith({ firstTokenDelayMs: 35 });
    expect(await provider.healthCheck({ timeoutMs: 100 })).toEqual({
      ok: true,
      status: 200,
      latencyMs: 35,
      ttftMs: 35,
      error: undefined,
    });
  });

  it("reports unhealthy when configured so, whatever it would answer", async () => {
    const { provider } = mockWith({ healthy: false });
    expect(await provider.healthCheck({ timeoutMs: 100 })).toEqual({
      ok: false,
      status: 503,
      latencyMs: 0,
      ttftMs: undefined,
      error: "mock configured unhealthy",
    });
  });
});
