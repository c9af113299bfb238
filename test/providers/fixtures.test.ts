import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { setTimer, silentLogger, sleep } from "../../lib/deps.ts";
import { chatInput } from "../../lib/dialects/openai-chat/input.ts";
import type { ChatChunk } from "../../lib/dialects/openai-chat/wire.ts";
import { UpstreamError } from "../../lib/errors.ts";
import { createHttpClient } from "../../lib/http/client.ts";
import { createProviderFactory } from "../../lib/providers/factory.ts";
import type { GenerationStream, UpstreamEvent } from "../../lib/providers/generation.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import type { Provider } from "../../lib/providers/types.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import { jsonOf, postChat, startGateway, type TestGateway } from "../support/gateway.ts";
import {
  fixtureBytes,
  type Replay,
  type ReplayUpstream,
  startReplayUpstream,
} from "../support/replay-upstream.ts";

/**
 * Answers of OpenAI and DeepSeek as their APIs send them (test/fixtures/, sources in its README),
 * replayed byte for byte through the real OpenAI-compatible provider and through the whole gateway.
 * The expected texts below are written out by hand from what each fixture says, not computed from
 * it, so a relay that drops, repeats or mangles a piece fails here.
 */

// ---- What each fixture means ----------------------------------------------------------------

const OPENAI_TEXT = "Hello! 👋 Un café crème — à bientôt.";
const OPENAI_TEXT_USAGE = { prompt_tokens: 19, completion_tokens: 10, total_tokens: 29 };
const OPENAI_TOOL_CALLS = [
  { id: "call_Pq7fixtureParis0001", name: "get_weather", arguments: { city: "Paris", unit: "celsius" } },
  { id: "call_Tk9fixtureTokyo0002", name: "get_weather", arguments: { city: "Tokyo", unit: "celsius" } },
];
const OPENAI_TOOL_USAGE = { prompt_tokens: 82, completion_tokens: 52, total_tokens: 134 };
const DEEPSEEK_TEXT = "你好！Nice to meet you — 有什么可以帮你的吗？";
const DEEPSEEK_TEXT_USAGE = { prompt_tokens: 11, completion_tokens: 12, total_tokens: 23 };
const DEEPSEEK_REASONING = "The user asks 9.11 vs 9.8. 0.8 > 0.11, so 9.8 is greater.";
const DEEPSEEK_ANSWER = "9.8 is greater than 9.11.";
const DEEPSEEK_REASONER_USAGE = {
  prompt_tokens: 18,
  completion_tokens: 22,
  total_tokens: 40,
  completion_tokens_details: { reasoning_tokens: 16 },
};
const DEEPSEEK_TOOL_CALL = {
  id: "call_0_3f6b9a2c-7d1e-4f5a-9b8c-fixture00001",
  name: "get_weather",
  arguments: { location: "Hangzhou" },
};

/** The status and headers each recorded answer came with. */
const R = {
  openaiStreamText: { fixture: "openai/chat-stream-text.sse" },
  openaiStreamTools: { fixture: "openai/chat-stream-tool-calls.sse" },
  openaiWholeText: { fixture: "openai/chat-completion-text.json" },
  openaiWholeTools: { fixture: "openai/chat-completion-tool-calls.json" },
  openai401: { fixture: "openai/error-401-invalid-api-key.json", status: 401 },
  openai429: {
    fixture: "openai/error-429-rate-limit.json",
    status: 429,
    // OpenAI sends both; `retry-after-ms` is the precise one (openai-node reads it first).
    headers: { "retry-after": "1", "retry-after-ms": "120", "x-ratelimit-remaining-requests": "0" },
  },
  openai400Context: { fixture: "openai/error-400-context-length-exceeded.json", status: 400 },
  openai500: { fixture: "openai/error-500-server-error.json", status: 500 },
  deepseekStreamText: { fixture: "deepseek/chat-stream-text-keepalive.sse" },
  deepseekStreamReasoner: { fixture: "deepseek/chat-stream-reasoner.sse" },
  deepseekStreamTool: { fixture: "deepseek/chat-stream-tool-call.sse" },
  deepseekWholeBlankLines: { fixture: "deepseek/chat-completion-blank-lines.json" },
  deepseekWholeReasoner: { fixture: "deepseek/chat-completion-reasoner.json" },
  deepseek401: { fixture: "deepseek/error-401-authentication-fails.json", status: 401 },
  deepseek400Context: { fixture: "deepseek/error-400-context-length.json", status: 400 },
  deepseek402: { fixture: "deepseek/error-402-insufficient-balance.json", status: 402 },
} satisfies Record<string, Replay>;

/** The gateway's own key for every provider here: it must never reach a caller. */
const KEY = "sk-test-secret-key-123456";

// ---- Reading answers back --------------------------------------------------------------------

/** The `data:` payloads of an SSE body, read with nothing but string splitting. */
function dataPayloads(text: string): string[] {
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice("data: ".length));
}

/** Byte offsets just inside each needle (its first `within` bytes on one side of the cut). */
function cutsInside(bytes: Buffer, cuts: Array<[needle: string, within: number]>): number[] {
  return cuts
    .map(([needle, within]) => {
      const at = bytes.indexOf(needle);
      if (at === -1) throw new Error(`fixture has no ${JSON.stringify(needle)}`);
      return at + within;
    })
    .sort((a, b) => a - b);
}

interface Assembled {
  role: string | undefined;
  content: string;
  reasoning: string;
  toolCalls: Array<{ id: string; name: string; arguments: unknown }>;
  finishReasons: string[];
  /** `usage` of every chunk that carried one (not null). */
  usages: unknown[];
  /** Chunks whose `choices` was an empty array (OpenAI's usage chunk). */
  emptyChoiceChunks: number;
}

/** What a client library builds from a stream's chunks: text, reasoning, tool calls by index. */
function assemble(chunks: ChatChunk[]): Assembled {
  const out: Assembled = {
    role: undefined,
    content: "",
    reasoning: "",
    toolCalls: [],
    finishReasons: [],
    usages: [],
    emptyChoiceChunks: 0,
  };
  const calls = new Map<number, { id: string; name: string; arguments: string }>();
  for (const chunk of chunks) {
    if (chunk.usage !== undefined && chunk.usage !== null) out.usages.push(chunk.usage);
    if (Array.isArray(chunk.choices) && chunk.choices.length === 0) out.emptyChoiceChunks++;
    for (const choice of chunk.choices ?? []) {
      const delta = choice.delta ?? {};
      if (delta.role !== undefined) out.role = delta.role;
      out.content += delta.content ?? "";
      out.reasoning += delta.reasoning_content ?? "";
      for (const piece of (delta.tool_calls ?? []) as Array<{
        index: number;
        id?: string;
        function?: { name?: string; arguments?: string };
      }>) {
        const call = calls.get(piece.index) ?? { id: "", name: "", arguments: "" };
        call.id += piece.id ?? "";
        call.name += piece.function?.name ?? "";
        call.arguments += piece.function?.arguments ?? "";
        calls.set(piece.index, call);
      }
      if (choice.finish_reason) out.finishReasons.push(choice.finish_reason);
    }
  }
  out.toolCalls = [...calls.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, c]) => ({ id: c.id, name: c.name, arguments: JSON.parse(c.arguments) as unknown }));
  return out;
}

/** The tool calls of a whole completion's first choice, arguments parsed. */
function wholeToolCalls(completion: unknown): Array<{ id: string; name: string; arguments: unknown }> {
  const choices = (completion as { choices?: Array<{ message?: { tool_calls?: unknown[] } }> }).choices;
  const calls = (choices?.[0]?.message?.tool_calls ?? []) as Array<{
    id: string;
    function: { name: string; arguments: string };
  }>;
  return calls.map((c) => ({ id: c.id, name: c.function.name, arguments: JSON.parse(c.function.arguments) }));
}

async function drain(stream: GenerationStream): Promise<UpstreamEvent[]> {
  const events: UpstreamEvent[] = [];
  for await (const event of stream.events) events.push(event);
  return events;
}

/** The chunks as the upstream sent them (each event's raw payload, passed on to OpenAI chat callers). */
const chunksOf = (events: UpstreamEvent[]): ChatChunk[] =>
  events.map((e) => {
    expect(e.dialect).toBe("openai-chat");
    return JSON.parse(e.raw ?? "") as ChatChunk;
  });

/** The stream ended as a whole answer ends: every choice finished (the `[DONE]` ends the iterator). */
const finished = (events: UpstreamEvent[]) => events.some((e) => e.events.some((x) => x.type === "finish"));

// ---- The provider alone ----------------------------------------------------------------------

describe("recorded answers through the OpenAI-compatible provider", () => {
  let upstream: ReplayUpstream;
  const http = createHttpClient();
  const deps = { now: Date.now, sleep, setTimer, random: () => 0.5, newId: () => "id", logger: silentLogger };
  let openai: Provider;
  let deepseek: Provider;

  beforeAll(async () => {
    upstream = await startReplayUpstream();
    const config = validateConfig({
      providers: [
        { id: "openai", type: "openai", baseUrl: upstream.url, apiKey: { env: "OPENAI_API_KEY" } },
        { id: "deepseek", type: "deepseek", baseUrl: upstream.url, apiKey: { env: "DEEPSEEK_API_KEY" } },
      ],
      models: { m: { targets: [{ provider: "openai", model: "gpt-4o-mini" }] } },
    });
    const factory = createProviderFactory(config, {
      http,
      keys: envKeys({ OPENAI_API_KEY: KEY, DEEPSEEK_API_KEY: KEY }),
      deps,
    });
    const get = (id: string): Provider => {
      const provider = factory.getProvider(id);
      if (provider === undefined) throw new Error(`no provider ${id}`);
      return provider;
    };
    openai = get("openai");
    deepseek = get("deepseek");
  });
  afterEach(() => {
    // A test that left a fixture unserved asked for fewer requests than it queued.
    expect(upstream.queue).toEqual([]);
  });
  afterAll(async () => {
    http.close();
    await upstream.close();
  });

  const request = (model: string, stream = false) => ({
    model,
    messages: [{ role: "user", content: "hi" }],
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
  const options = (model: string) => ({
    model,
    signal: new AbortController().signal,
    timeouts: { connectMs: 1000, headersMs: 1000, firstTokenMs: 1000, idleMs: 1000, responseMs: 2000 },
  });

  describe("OpenAI, streamed", () => {
    it("yields the role chunk, every content piece, the finish reason and the usage chunk", async () => {
      upstream.queue.push(R.openaiStreamText);
      const events = await drain(
        await openai.chat.stream(chatInput(request("gpt-4o-mini", true)), options("gpt-4o-mini")),
      );
      const got = assemble(chunksOf(events));

      expect(got.role).toBe("assistant");
      expect(got.content).toBe(OPENAI_TEXT);
      expect(got.finishReasons).toEqual(["stop"]);
      // include_usage: one extra chunk with empty choices, carrying the whole request's usage.
      expect(got.emptyChoiceChunks).toBe(1);
      expect(got.usages).toHaveLength(1);
      expect(got.usages[0]).toMatchObject(OPENAI_TEXT_USAGE);
      expect(finished(events)).toBe(true);
      // The same answer in canonical terms, decoded beside each raw event.
      const canonical = events.flatMap((e) => e.events);
      expect(canonical.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("")).toBe(OPENAI_TEXT);
      expect(canonical.filter((e) => e.type === "usage")).toEqual([
        {
          type: "usage",
          usage: expect.objectContaining({ inputTokens: 19, outputTokens: 10 }),
        },
      ]);
    });

    it("passes every event on byte for byte, fields it does not know included", async () => {
      upstream.queue.push(R.openaiStreamText);
      const events = await drain(
        await openai.chat.stream(chatInput(request("gpt-4o-mini", true)), options("gpt-4o-mini")),
      );
      const raws = events.map((e) => e.raw);

      const recorded = dataPayloads(fixtureBytes(R.openaiStreamText.fixture).toString("utf8"));
      expect([...raws, "[DONE]"]).toEqual(recorded);
      expect(raws[0]).toContain('"obfuscation":');
    });

    it("reads the same answer cut inside a 4-byte character, a `data:` prefix, a `\\n\\n` and [DONE]", async () => {
      const bytes = fixtureBytes(R.openaiStreamText.fixture);
      const splitAt = cutsInside(bytes, [
        ["👋", 1],
        ["👋", 3],
        ["é", 1],
        ["\n\ndata: ", 1],
        ["data: ", 3],
        ["[DONE]", 2],
      ]);
      upstream.queue.push({ ...R.openaiStreamText, splitAt });
      const events = await drain(
        await openai.chat.stream(chatInput(request("gpt-4o-mini", true)), options("gpt-4o-mini")),
      );
      const got = assemble(chunksOf(events));

      expect(got.content).toBe(OPENAI_TEXT);
      expect(got.usages[0]).toMatchObject(OPENAI_TEXT_USAGE);
      expect(finished(events)).toBe(true);
    });

    it("reassembles parallel tool calls from index, id, name and argument pieces", async () => {
      upstream.queue.push(R.openaiStreamTools);
      const events = await drain(
        await openai.chat.stream(chatInput(request("gpt-4o-mini", true)), options("gpt-4o-mini")),
      );
      const got = assemble(chunksOf(events));

      expect(got.toolCalls).toEqual(OPENAI_TOOL_CALLS);
      expect(got.content).toBe("");
      expect(got.finishReasons).toEqual(["tool_calls"]);
      expect(got.usages[0]).toMatchObject(OPENAI_TOOL_USAGE);
    });
  });

  describe("OpenAI, whole answers", () => {
    it("returns the completion as sent, escapes decoded", async () => {
      upstream.queue.push(R.openaiWholeText);
      const result = await openai.chat.complete(chatInput(request("gpt-4o-mini")), options("gpt-4o-mini"));

      expect(result.raw).toBe(fixtureBytes(R.openaiWholeText.fixture).toString("utf8"));
      expect(JSON.parse(result.raw ?? "")).toMatchObject({
        object: "chat.completion",
        choices: [{ message: { role: "assistant", content: OPENAI_TEXT }, finish_reason: "stop" }],
        usage: OPENAI_TEXT_USAGE,
      });
    });

    it("returns tool calls whole", async () => {
      upstream.queue.push(R.openaiWholeTools);
      const result = await openai.chat.complete(chatInput(request("gpt-4o-mini")), options("gpt-4o-mini"));

      expect(wholeToolCalls(JSON.parse(result.raw ?? ""))).toEqual(OPENAI_TOOL_CALLS);
      // And in canonical terms, for a caller of another dialect.
      expect(
        result
          .result()
          .choices[0]?.content.flatMap((p) =>
            p.type === "tool-call" ? [{ id: p.id, name: p.name, arguments: JSON.parse(p.input) }] : [],
          ),
      ).toEqual(OPENAI_TOOL_CALLS);
    });

    it("replays a whole answer to a stream request as the chunks a stream would have had", async () => {
      // Some OpenAI-compatible servers ignore `stream: true` (issue 9): the recorded whole answer stands in.
      upstream.queue.push(R.openaiWholeTools);
      const events = await drain(
        await openai.chat.stream(chatInput(request("gpt-4o-mini", true)), options("gpt-4o-mini")),
      );
      const got = assemble(chunksOf(events));

      expect(got.toolCalls).toEqual(OPENAI_TOOL_CALLS);
      expect(got.finishReasons).toEqual(["tool_calls"]);
      expect(got.usages[0]).toMatchObject(OPENAI_TOOL_USAGE);
      expect(finished(events)).toBe(true);
    });
  });

  describe("OpenAI, errors", () => {
    const refusal = (replay: Replay) => {
      upstream.queue.push(replay);
      return openai.chat.complete(chatInput(request("gpt-4o-mini")), options("gpt-4o-mini")).then(
        () => expect.unreachable("the provider accepted an error answer"),
        (error: unknown) => error,
      );
    };

    it("401 invalid_api_key: the gateway's credentials, fail over", async () => {
      const error = await refusal(R.openai401);
      expect(error).toBeInstanceOf(UpstreamError);
      expect(error).toMatchObject({
        status: 401,
        kind: "authentication",
        upstreamCode: "invalid_api_key",
        action: "failover",
      });
      expect((error as Error).message).not.toContain(KEY);
    });

    it("429 rate_limit_exceeded: retry after the wait OpenAI asked for (retry-after-ms)", async () => {
      const error = await refusal(R.openai429);
      expect(error).toMatchObject({
        status: 429,
        kind: "rate_limit",
        upstreamCode: "rate_limit_exceeded",
        action: "retry",
        retryAfterMs: 120,
      });
    });

    it("400 context_length_exceeded: the caller's request, returned with OpenAI's own body", async () => {
      const error = await refusal(R.openai400Context);
      expect(error).toMatchObject({
        status: 400,
        action: "return",
        code: "context_length_exceeded",
        passThrough: {
          dialect: "openai-chat",
          body: JSON.parse(fixtureBytes(R.openai400Context.fixture).toString("utf8")),
        },
      });
    });

    it("500 server_error: retried", async () => {
      const error = await refusal(R.openai500);
      expect(error).toMatchObject({ status: 500, kind: "upstream", action: "retry" });
    });

    it("a streamed request meets the same errors before any event", async () => {
      upstream.queue.push(R.openai429);
      await expect(
        openai.chat.stream(chatInput(request("gpt-4o-mini", true)), options("gpt-4o-mini")),
      ).rejects.toMatchObject({
        status: 429,
        retryAfterMs: 120,
      });
    });
  });

  describe("DeepSeek, streamed", () => {
    it("drops `: keep-alive` comments before the first chunk and reads usage from the finish chunk", async () => {
      upstream.queue.push(R.deepseekStreamText);
      const events = await drain(
        await deepseek.chat.stream(chatInput(request("deepseek-chat", true)), options("deepseek-chat")),
      );
      const got = assemble(chunksOf(events));

      expect(chunksOf(events)[0]).toMatchObject({ choices: [{ delta: { role: "assistant" } }] });
      expect(got.content).toBe(DEEPSEEK_TEXT);
      expect(got.finishReasons).toEqual(["stop"]);
      // DeepSeek puts usage on the chunk with the finish reason; there is no empty-choices chunk.
      expect(got.emptyChoiceChunks).toBe(0);
      expect(got.usages).toEqual([expect.objectContaining(DEEPSEEK_TEXT_USAGE)]);
      expect(finished(events)).toBe(true);
    });

    it("reads the same answer cut inside a keep-alive, a 3-byte character and a chunk", async () => {
      const bytes = fixtureBytes(R.deepseekStreamText.fixture);
      const splitAt = cutsInside(bytes, [
        [": keep-alive", 4],
        ["你好", 1],
        ["你好", 4],
        ['"content":"', 5],
      ]);
      upstream.queue.push({ ...R.deepseekStreamText, splitAt });
      const got = assemble(
        chunksOf(
          await drain(
            await deepseek.chat.stream(chatInput(request("deepseek-chat", true)), options("deepseek-chat")),
          ),
        ),
      );

      expect(got.content).toBe(DEEPSEEK_TEXT);
      expect(got.usages).toEqual([expect.objectContaining(DEEPSEEK_TEXT_USAGE)]);
    });

    it("deepseek-reasoner: reasoning_content, then content, keep-alives in between", async () => {
      upstream.queue.push(R.deepseekStreamReasoner);
      const got = assemble(
        chunksOf(
          await drain(
            await deepseek.chat.stream(
              chatInput(request("deepseek-reasoner", true)),
              options("deepseek-reasoner"),
            ),
          ),
        ),
      );

      expect(got.reasoning).toBe(DEEPSEEK_REASONING);
      expect(got.content).toBe(DEEPSEEK_ANSWER);
      expect(got.usages).toEqual([expect.objectContaining(DEEPSEEK_REASONER_USAGE)]);
    });

    it("reassembles a tool call", async () => {
      upstream.queue.push(R.deepseekStreamTool);
      const got = assemble(
        chunksOf(
          await drain(
            await deepseek.chat.stream(chatInput(request("deepseek-chat", true)), options("deepseek-chat")),
          ),
        ),
      );

      expect(got.toolCalls).toEqual([DEEPSEEK_TOOL_CALL]);
      expect(got.finishReasons).toEqual(["tool_calls"]);
    });
  });

  describe("DeepSeek, whole answers and errors", () => {
    it("parses a JSON body that blank lines precede (DeepSeek under load)", async () => {
      upstream.queue.push(R.deepseekWholeBlankLines);
      const result = await deepseek.chat.complete(
        chatInput(request("deepseek-chat")),
        options("deepseek-chat"),
      );

      expect(JSON.parse(result.raw ?? "")).toMatchObject({
        choices: [{ message: { content: DEEPSEEK_TEXT }, finish_reason: "stop" }],
        usage: DEEPSEEK_TEXT_USAGE,
      });
    });

    it("parses the same body with the blank lines in writes of their own", async () => {
      upstream.queue.push({ ...R.deepseekWholeBlankLines, splitAt: [1, 2, 3, 4] });
      const result = await deepseek.chat.complete(
        chatInput(request("deepseek-chat")),
        options("deepseek-chat"),
      );
      expect(JSON.parse(result.raw ?? "")).toMatchObject({
        choices: [{ message: { content: DEEPSEEK_TEXT } }],
      });
    });

    it("keeps reasoning_content in a whole deepseek-reasoner answer", async () => {
      upstream.queue.push(R.deepseekWholeReasoner);
      const result = await deepseek.chat.complete(
        chatInput(request("deepseek-reasoner")),
        options("deepseek-reasoner"),
      );
      expect(JSON.parse(result.raw ?? "")).toMatchObject({
        choices: [{ message: { content: DEEPSEEK_ANSWER, reasoning_content: DEEPSEEK_REASONING } }],
        usage: DEEPSEEK_REASONER_USAGE,
      });
    });

    it("401 Authentication Fails: fail over", async () => {
      upstream.queue.push(R.deepseek401);
      await expect(
        deepseek.chat.complete(chatInput(request("deepseek-chat")), options("deepseek-chat")),
      ).rejects.toMatchObject({
        status: 401,
        kind: "authentication",
        action: "failover",
      });
    });

    it("400 context length, said in words only: returned to the caller with DeepSeek's message", async () => {
      upstream.queue.push(R.deepseek400Context);
      await expect(
        deepseek.chat.complete(chatInput(request("deepseek-chat")), options("deepseek-chat")),
      ).rejects.toMatchObject({
        status: 400,
        action: "return",
        passThrough: {
          dialect: "openai-chat",
          body: {
            error: { message: expect.stringMatching(/^This model's maximum context length is 65536/) },
          },
        },
      });
    });

    it("402 Insufficient Balance keeps its status and DeepSeek's message", async () => {
      upstream.queue.push(R.deepseek402);
      await expect(
        deepseek.chat.complete(chatInput(request("deepseek-chat")), options("deepseek-chat")),
      ).rejects.toMatchObject({
        status: 402,
        message: expect.stringContaining("Insufficient Balance"),
      });
    });
  });
});

// ---- The whole gateway -----------------------------------------------------------------------

describe("recorded answers through the whole gateway", () => {
  let upstream: ReplayUpstream;
  let gateway: TestGateway;

  async function setup(defaults: Record<string, unknown> = {}) {
    upstream = await startReplayUpstream();
    gateway = await startGateway(
      {
        defaults: {
          retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 2000 },
          timeouts: { connectMs: 1000, headersMs: 1000, firstTokenMs: 1000, idleMs: 1000, responseMs: 2000 },
          ...defaults,
        },
        providers: [
          { id: "openai", type: "openai", baseUrl: upstream.url, apiKey: { env: "TEST_KEY" } },
          { id: "deepseek", type: "deepseek", baseUrl: upstream.url, apiKey: { env: "TEST_KEY" } },
        ],
        models: {
          gpt: { targets: [{ provider: "openai", model: "gpt-4o-mini" }] },
          chat: { targets: [{ provider: "deepseek", model: "deepseek-chat" }] },
          reasoner: { targets: [{ provider: "deepseek", model: "deepseek-reasoner" }] },
          // DeepSeek's 64K window first; a prompt too long for it goes to the 128K model.
          long: {
            targets: [
              { provider: "deepseek", model: "deepseek-chat", contextWindow: 65_536 },
              { provider: "openai", model: "gpt-4o-mini", contextWindow: 128_000 },
            ],
          },
        },
      },
      { env: { TEST_KEY: KEY } },
    );
  }

  afterEach(async () => {
    const left = upstream?.queue.length ?? 0;
    await gateway?.close();
    await upstream?.close();
    expect(left, "fixtures queued but never requested").toBe(0);
  });

  const body = (model: string, stream: boolean) =>
    JSON.stringify({
      model,
      messages: [{ role: "user", content: "hi" }],
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    });

  /** The caller's view of a streamed answer: its chunks assembled, and whether it ended with [DONE]. */
  async function streamed(res: Response) {
    const text = await res.text();
    const payloads = dataPayloads(text);
    const done = payloads.at(-1) === "[DONE]";
    const chunks = payloads.filter((p) => p !== "[DONE]").map((p) => JSON.parse(p) as ChatChunk);
    return { text, payloads, done, got: assemble(chunks) };
  }

  /** The usage the gateway recorded in its one log line for the request, in its own terms (issue 16). */
  const loggedUsage = () => gateway.logs.find((line) => line.msg === "chat completion")?.usage;

  describe("streamed", () => {
    it("OpenAI: the caller gets the text, the finish reason, the usage chunk and [DONE]", async () => {
      await setup();
      upstream.queue.push(R.openaiStreamText);
      const res = await postChat(gateway.url, body("gpt", true));
      const { got, done, text } = await streamed(res);

      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      expect(got.role).toBe("assistant");
      expect(got.content).toBe(OPENAI_TEXT);
      expect(got.finishReasons).toEqual(["stop"]);
      expect(got.emptyChoiceChunks).toBe(1);
      expect(got.usages).toEqual([expect.objectContaining(OPENAI_TEXT_USAGE)]);
      expect(done).toBe(true);
      expect(text).not.toContain(KEY);
      expect(loggedUsage()).toMatchObject({ inputTokens: 19, outputTokens: 10 });
      // The upstream was asked for the target's model, streamed, with the caller's stream options.
      expect(upstream.requests[0]?.body).toMatchObject({
        model: "gpt-4o-mini",
        stream: true,
        stream_options: { include_usage: true },
      });
    });

    it("OpenAI: parallel tool calls reach the caller whole, cut anywhere on the way", async () => {
      await setup();
      const bytes = fixtureBytes(R.openaiStreamTools.fixture);
      const splitAt = cutsInside(bytes, [
        ['"tool_calls":[{"index":1', 7],
        ['"arguments":"Tokyo"', 14],
        ['"finish_reason":"tool_calls"', 20],
      ]);
      upstream.queue.push({ ...R.openaiStreamTools, splitAt });
      const { got, done } = await streamed(await postChat(gateway.url, body("gpt", true)));

      expect(got.toolCalls).toEqual(OPENAI_TOOL_CALLS);
      expect(got.finishReasons).toEqual(["tool_calls"]);
      expect(got.usages).toEqual([expect.objectContaining(OPENAI_TOOL_USAGE)]);
      expect(done).toBe(true);
    });

    it("DeepSeek: keep-alive comments never reach the caller as content; usage does", async () => {
      await setup();
      upstream.queue.push(R.deepseekStreamText);
      const { got, done, payloads } = await streamed(await postChat(gateway.url, body("chat", true)));

      expect(got.content).toBe(DEEPSEEK_TEXT);
      expect(got.usages).toEqual([expect.objectContaining(DEEPSEEK_TEXT_USAGE)]);
      expect(payloads.some((p) => p.includes("keep-alive"))).toBe(false);
      // DeepSeek's usage rides on the finish chunk, not on a chunk of its own: it is recorded all the same.
      expect(loggedUsage()).toMatchObject({ inputTokens: 11, outputTokens: 12 });
      expect(done).toBe(true);
    });

    it("DeepSeek reasoner: reasoning_content reaches the caller beside the answer", async () => {
      await setup();
      upstream.queue.push(R.deepseekStreamReasoner);
      const { got, done } = await streamed(await postChat(gateway.url, body("reasoner", true)));

      expect(got.reasoning).toBe(DEEPSEEK_REASONING);
      expect(got.content).toBe(DEEPSEEK_ANSWER);
      expect(got.usages).toEqual([expect.objectContaining(DEEPSEEK_REASONER_USAGE)]);
      expect(done).toBe(true);
      expect(loggedUsage()).toMatchObject({ inputTokens: 18, outputTokens: 22, reasoningTokens: 16 });
    });

    it("DeepSeek: a tool call reaches the caller whole", async () => {
      await setup();
      upstream.queue.push(R.deepseekStreamTool);
      const { got, done } = await streamed(await postChat(gateway.url, body("chat", true)));

      expect(got.toolCalls).toEqual([DEEPSEEK_TOOL_CALL]);
      expect(done).toBe(true);
    });
  });

  describe("whole answers", () => {
    it("OpenAI: the caller gets the completion with its usage", async () => {
      await setup();
      upstream.queue.push(R.openaiWholeText);
      const res = await postChat(gateway.url, body("gpt", false));

      expect(res.status).toBe(200);
      expect(await jsonOf(res)).toMatchObject({
        choices: [{ message: { role: "assistant", content: OPENAI_TEXT }, finish_reason: "stop" }],
        usage: OPENAI_TEXT_USAGE,
      });
    });

    it("OpenAI: tool calls", async () => {
      await setup();
      upstream.queue.push(R.openaiWholeTools);
      const json = await jsonOf(await postChat(gateway.url, body("gpt", false)));

      expect(wholeToolCalls(json)).toEqual(OPENAI_TOOL_CALLS);
      expect(json.choices[0].finish_reason).toBe("tool_calls");
    });

    it("DeepSeek: blank lines before the JSON body do not reach the caller as an error", async () => {
      await setup();
      upstream.queue.push(R.deepseekWholeBlankLines);
      const res = await postChat(gateway.url, body("chat", false));

      expect(res.status).toBe(200);
      expect(await jsonOf(res)).toMatchObject({
        choices: [{ message: { content: DEEPSEEK_TEXT } }],
        usage: DEEPSEEK_TEXT_USAGE,
      });
      expect(loggedUsage()).toMatchObject({ inputTokens: 11, outputTokens: 12 });
    });

    it("DeepSeek reasoner: reasoning_content is kept", async () => {
      await setup();
      upstream.queue.push(R.deepseekWholeReasoner);
      expect(await jsonOf(await postChat(gateway.url, body("reasoner", false)))).toMatchObject({
        choices: [{ message: { content: DEEPSEEK_ANSWER, reasoning_content: DEEPSEEK_REASONING } }],
      });
    });
  });

  describe("errors, in the OpenAI shape", () => {
    const errorShape = {
      error: {
        message: expect.any(String),
        type: expect.any(String),
        param: expect.toSatisfy((p: unknown) => p === null || typeof p === "string"),
        code: expect.toSatisfy((c: unknown) => c === null || typeof c === "string"),
      },
    };

    it("OpenAI 400 context_length_exceeded goes back to the caller as OpenAI wrote it", async () => {
      await setup();
      upstream.queue.push(R.openai400Context);
      const res = await postChat(gateway.url, body("gpt", true));

      expect(res.status).toBe(400);
      expect(await jsonOf(res)).toEqual(
        JSON.parse(fixtureBytes(R.openai400Context.fixture).toString("utf8")),
      );
    });

    it("DeepSeek's context-length 400 (words only) moves the request to the larger model", async () => {
      await setup();
      upstream.queue.push(R.deepseek400Context, R.openaiWholeText);
      const res = await postChat(gateway.url, body("long", false));

      expect(res.status).toBe(200);
      expect((await jsonOf(res)).choices[0].message.content).toBe(OPENAI_TEXT);
      expect(upstream.requests.map((r) => r.body.model)).toEqual(["deepseek-chat", "gpt-4o-mini"]);
    });

    it("OpenAI 429 asking for 120 ms: the gateway waits that long and tries again", async () => {
      await setup();
      upstream.queue.push(R.openai429, R.openaiWholeText);
      const res = await postChat(gateway.url, body("gpt", false));

      expect(res.status).toBe(200);
      expect((await jsonOf(res)).choices[0].message.content).toBe(OPENAI_TEXT);
      expect(upstream.requests).toHaveLength(2);
    });

    it("OpenAI 429 asking for longer than the gateway waits: a 429 with Retry-After for the caller", async () => {
      await setup({ retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 100 } });
      upstream.queue.push(R.openai429);
      const res = await postChat(gateway.url, body("gpt", false));
      const json = await jsonOf(res);

      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(json).toMatchObject(errorShape);
      expect(json.error.code).toBe("rate_limit_exceeded");
    });

    it("OpenAI 500 then a good answer: retried, the caller only sees the answer", async () => {
      await setup({ retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 2000 } });
      upstream.queue.push(R.openai500, R.openaiStreamText);
      const res = await postChat(gateway.url, body("gpt", true));
      const { got, done } = await streamed(res);

      expect(res.status).toBe(200);
      expect(got.content).toBe(OPENAI_TEXT);
      expect(done).toBe(true);
      expect(upstream.requests).toHaveLength(2);
    });

    it("OpenAI 500 with no retry left: a 502 naming no key", async () => {
      await setup();
      upstream.queue.push(R.openai500);
      const res = await postChat(gateway.url, body("gpt", false));
      const text = await res.text();

      expect(res.status).toBe(502);
      expect(JSON.parse(text)).toMatchObject(errorShape);
      expect(JSON.parse(text).error.code).toBe("upstream_unavailable");
      expect(text).not.toContain(KEY);
    });

    it.each([
      ["OpenAI", "gpt", R.openai401],
      ["DeepSeek", "chat", R.deepseek401],
    ])("%s 401: the gateway's own credentials fail, so a 502 and never the key", async (_, model, replay) => {
      await setup();
      upstream.queue.push(replay);
      const res = await postChat(gateway.url, body(model, false));
      const text = await res.text();

      expect(res.status).toBe(502);
      expect(JSON.parse(text)).toMatchObject(errorShape);
      expect(text).not.toContain(KEY);
      // The key was sent as a bearer token, once: the key source gave the same key again.
      expect(upstream.requests).toHaveLength(1);
      expect(upstream.requests[0]?.headers.authorization).toBe(`Bearer ${KEY}`);
    });
  });
});
