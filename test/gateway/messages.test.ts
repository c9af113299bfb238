import { readFileSync } from "node:fs";
import Anthropic from "@anthropic-ai/sdk";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import { callerPk, usageSk } from "../../lib/callers/store.ts";
import { dayOf } from "../../lib/callers/types.ts";
import { createClientAuth, hashClientKey } from "../../lib/gateway/auth.ts";
import { callersOn, createKey, testClock } from "../callers/support.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { type CustomResponder, type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { fakeProvider, jsonOf, startGateway, type TestGateway } from "../support/gateway.ts";
import { twoUpstreamGateway } from "../support/two-upstreams.ts";

/**
 * Issue 18, the caller side: Claude Code and the official Anthropic SDK against `/v1/messages`,
 * served by OpenAI-compatible targets (translated) and the mock provider, with the engine's
 * failover, continuation, caller keys and budgets.
 */

let upstream: FakeUpstream | undefined;
let a: FakeUpstream | undefined;
let b: FakeUpstream | undefined;
let gateway: TestGateway | undefined;
let table: TestTable | undefined;

afterEach(async () => {
  await gateway?.close();
  await Promise.all([upstream?.close(), a?.close(), b?.close(), table?.close()]);
  upstream = a = b = gateway = table = undefined;
});

const FAST = {
  retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 0 },
  timeouts: { idleMs: 2_000, firstTokenMs: 2_000 },
};

/** One fake OpenAI-compatible upstream behind route "claude-x", and the mock provider behind "mock". */
async function oneUpstream(gatewayOptions: Parameters<typeof startGateway>[1] = {}): Promise<TestGateway> {
  upstream = await startFakeUpstream();
  gateway = await startGateway(
    {
      defaults: FAST,
      providers: [
        fakeProvider("up", upstream.url),
        { id: "mock", type: "mock", mock: { tokenDelayMs: 0, firstTokenDelayMs: 0 } },
      ],
      models: {
        "claude-x": { targets: [{ provider: "up", model: "upstream-model" }] },
        mock: { targets: [{ provider: "mock", model: "mock-1" }] },
        "claude-opus-5-5": { targets: [{ provider: "up", model: "upstream-model" }] },
      },
    },
    gatewayOptions,
  );
  return gateway;
}

function sdk(url: string, key: { apiKey?: string; authToken?: string } = { apiKey: "unused-locally" }) {
  return new Anthropic({ baseURL: url, maxRetries: 0, apiKey: null, authToken: null, ...key });
}

const hello = { role: "user" as const, content: "Say hello" };

/** One SSE frame of a Messages stream: its `event:` name and its parsed `data:`. */
interface Frame {
  event: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests assert on arbitrary JSON shapes
  data: any;
}

function framesOf(text: string): Frame[] {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "";
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? "null";
      return { event, data: JSON.parse(data) };
    });
}

/**
 * Checks the Messages stream grammar and returns what went wrong ([] when valid): `message_start`
 * first; blocks started before their deltas, one open at a time, indexes 0, 1, 2, ...; and either
 * `message_delta` then `message_stop` last, or an `error` last and no `message_stop` anywhere.
 */
function grammarErrors(frames: Frame[]): string[] {
  const errors: string[] = [];
  if (frames[0]?.event !== "message_start") errors.push("first frame is not message_start");
  if (frames[0]?.data?.message?.usage?.input_tokens === 0) errors.push("message_start says 0 input tokens");
  let open: number | undefined;
  let next = 0;
  for (const [i, frame] of frames.entries()) {
    if (frame.event !== frame.data?.type)
      errors.push(`frame ${i}: event ${frame.event} says ${frame.data?.type}`);
    switch (frame.event) {
      case "content_block_start":
        if (open !== undefined) errors.push(`frame ${i}: block ${frame.data.index} starts inside ${open}`);
        if (frame.data.index !== next) errors.push(`frame ${i}: index ${frame.data.index}, expected ${next}`);
        open = frame.data.index;
        next++;
        break;
      case "content_block_delta":
        if (frame.data.index !== open)
          errors.push(`frame ${i}: delta for block ${frame.data.index} not open`);
        break;
      case "content_block_stop":
        if (frame.data.index !== open) errors.push(`frame ${i}: stop for block ${frame.data.index} not open`);
        open = undefined;
        break;
    }
  }
  const last = frames.at(-1)?.event;
  if (last === "error") {
    if (frames.some((f) => f.event === "message_stop")) errors.push("message_stop in a failed stream");
  } else if (last === "message_stop") {
    if (frames.at(-2)?.event !== "message_delta") errors.push("message_stop not after message_delta");
    if (open !== undefined) errors.push(`block ${open} never stopped`);
  } else errors.push(`last frame is ${last}`);
  return errors;
}

function textOf(frames: Frame[]): string {
  return frames
    .filter((f) => f.event === "content_block_delta" && f.data.delta.type === "text_delta")
    .map((f) => f.data.delta.text)
    .join("");
}

async function postMessages(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** An OpenAI chat stream of these chunks' deltas, then a finish and `[DONE]`. */
function chatStream(deltas: object[], finish = "stop"): CustomResponder {
  return (record, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    const chunk = (delta: object, finishReason: string | null) =>
      `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: record.body.model, choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;
    for (const delta of deltas) res.write(chunk(delta, null));
    res.write(chunk({}, finish));
    res.write(
      `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: record.body.model, choices: [], usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 } })}\n\n`,
    );
    res.end("data: [DONE]\n\n");
  };
}

/** A whole OpenAI chat completion with this message. */
function chatCompletion(message: object, finish = "stop"): CustomResponder {
  return (record, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id: "c",
        object: "chat.completion",
        created: 1,
        model: record.body.model,
        choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: finish }],
        usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
      }),
    );
  };
}

/** A recorded Claude Code request (test/fixtures/clients/), headers and body as sent. */
function recorded(name: string): {
  path?: string;
  headers?: Record<string, string>;
  body: Record<string, unknown>;
} {
  const file = new URL(`../fixtures/clients/claude-code-2.1.332.${name}.json`, import.meta.url);
  return JSON.parse(readFileSync(file, "utf8"));
}

describe("the official Anthropic SDK against /v1/messages", () => {
  it("gets a whole text answer from a translated target, with usage and the request id", async () => {
    const { url } = await oneUpstream();
    const client = sdk(url);

    const { data: message, response } = await client.messages
      .create({ model: "claude-x", max_tokens: 100, messages: [hello] })
      .withResponse();

    expect(message.type).toBe("message");
    expect(message.content).toEqual([{ type: "text", text: "Hello from the fake upstream." }]);
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage).toMatchObject({ input_tokens: 10, output_tokens: 6 });
    expect(response.headers.get("request-id")).toBe(response.headers.get("x-request-id"));
    expect(response.headers.get("request-id")).toMatch(/^req-/);
    // The upstream was sent an OpenAI chat body, with the target's model and the caller's cap.
    expect(upstream?.requests[0]?.body).toMatchObject({
      model: "upstream-model",
      max_tokens: 100,
      messages: [{ role: "user", content: "Say hello" }],
    });
  });

  it("streams a text answer the SDK assembles, in a valid grammar", async () => {
    const { url } = await oneUpstream();
    const client = sdk(url);

    const stream = client.messages.stream({ model: "claude-x", max_tokens: 100, messages: [hello] });
    const message = await stream.finalMessage();

    expect(message.content).toEqual([{ type: "text", text: "Hello from the fake upstream." }]);
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage.output_tokens).toBe(6);
    const res = await postMessages(url, {
      model: "claude-x",
      max_tokens: 100,
      messages: [hello],
      stream: true,
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const frames = framesOf(await res.text());
    expect(grammarErrors(frames)).toEqual([]);
    // message_start carries the prompt's estimate (the upstream says it only at the end), never 0.
    expect(frames[0]?.data.message.usage.input_tokens).toBeGreaterThan(0);
  });

  it("answers from the mock provider, streamed and not", async () => {
    const { url } = await oneUpstream();
    const client = sdk(url);

    const whole = await client.messages.create({ model: "mock", max_tokens: 50, messages: [hello] });
    const streamed = await client.messages
      .stream({ model: "mock", max_tokens: 50, messages: [hello] })
      .finalMessage();

    expect(whole.content).toEqual([{ type: "text", text: "This is the mock provider answering: Say hello" }]);
    expect(streamed.content).toEqual(whole.content);
  });

  it("turns an upstream's tool call into tool_use, streamed and not, and sends tool results back as tool messages", async () => {
    const { url } = await oneUpstream();
    const client = sdk(url);
    const tools = [
      {
        name: "lookup",
        description: "Looks a word up",
        input_schema: { type: "object" as const, properties: { q: { type: "string" } }, required: ["q"] },
      },
    ];
    upstream?.queue.push({ kind: "answer", toolCallArguments: ['{"q":', '"ping"}'] });
    upstream?.queue.push({
      kind: "custom",
      respond: chatCompletion(
        {
          content: null,
          tool_calls: [
            { id: "call_9", type: "function", function: { name: "lookup", arguments: '{"q":"pong"}' } },
          ],
        },
        "tool_calls",
      ),
    });

    const streamed = await client.messages
      .stream({ model: "claude-x", max_tokens: 100, messages: [hello], tools })
      .finalMessage();
    const whole = await client.messages.create({
      model: "claude-x",
      max_tokens: 100,
      messages: [hello],
      tools,
    });
    const answered = await client.messages.create({
      model: "claude-x",
      max_tokens: 100,
      tools,
      messages: [
        hello,
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "call_1", name: "lookup", input: { q: "ping" } }],
        },
        {
          role: "user",
          content: [{ type: "tool_result", tool_use_id: "call_1", content: "pong", is_error: false }],
        },
      ],
    });

    expect(streamed.content).toEqual([
      { type: "tool_use", id: "call_1", name: "lookup", input: { q: "ping" } },
    ]);
    expect(streamed.stop_reason).toBe("tool_use");
    expect(whole.content).toEqual([{ type: "tool_use", id: "call_9", name: "lookup", input: { q: "pong" } }]);
    expect(whole.stop_reason).toBe("tool_use");
    expect(answered.content[0]).toMatchObject({ type: "text" });
    const sent = upstream?.requests[2]?.body as { messages: unknown[]; tools: unknown[] };
    expect(sent.tools).toEqual([
      {
        type: "function",
        function: {
          name: "lookup",
          description: "Looks a word up",
          parameters: tools[0]?.input_schema,
        },
      },
    ]);
    expect(sent.messages.slice(1)).toEqual([
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "lookup", arguments: '{"q":"ping"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "pong" },
    ]);
  });

  it("writes a reasoning upstream's reasoning_content as a thinking block without a signature", async () => {
    const { url } = await oneUpstream();
    const client = sdk(url);
    upstream?.queue.push({
      kind: "custom",
      respond: chatStream([
        { role: "assistant", content: null, reasoning_content: "" },
        { reasoning_content: "The user" },
        { reasoning_content: " wants a greeting." },
        { content: "Hello" },
        { content: "!" },
      ]),
    });
    upstream?.queue.push({
      kind: "custom",
      respond: chatCompletion({ content: "Hello!", reasoning_content: "Greet them." }),
    });

    const res = await postMessages(url, {
      model: "claude-x",
      max_tokens: 100,
      messages: [hello],
      stream: true,
    });
    const frames = framesOf(await res.text());
    const whole = await client.messages.create({ model: "claude-x", max_tokens: 100, messages: [hello] });

    expect(grammarErrors(frames)).toEqual([]);
    const starts = frames.filter((f) => f.event === "content_block_start").map((f) => f.data.content_block);
    expect(starts).toEqual([
      { type: "thinking", thinking: "" },
      { type: "text", text: "" },
    ]);
    const deltas = frames.filter((f) => f.event === "content_block_delta").map((f) => f.data.delta);
    expect(deltas.filter((d) => d.type === "thinking_delta").map((d) => d.thinking)).toEqual([
      "The user",
      " wants a greeting.",
    ]);
    // DeepSeek signs nothing: a signature of another family would be refused when sent back.
    expect(deltas.some((d) => d.type === "signature_delta")).toBe(false);
    expect(textOf(frames)).toBe("Hello!");
    expect(frames.at(-2)?.data.usage).toMatchObject({ input_tokens: 12, output_tokens: 7 });
    expect(whole.content).toEqual([
      { type: "thinking", thinking: "Greet them." },
      { type: "text", text: "Hello!" },
    ]);
  });

  it("counts tokens as an estimate from the request's text, without an upstream call", async () => {
    const { url } = await oneUpstream();
    const client = sdk(url);
    const system = "s".repeat(400);
    const text = "t".repeat(800);

    const small = await client.messages.countTokens({ model: "claude-x", messages: [hello] });
    const large = await client.messages.countTokens({
      model: "claude-x",
      system,
      messages: [{ role: "user", content: text }],
    });

    // "Say hello" is 9 characters: 3 tokens at 4 characters a token; 1,200 characters are 300.
    expect(small).toEqual({ input_tokens: 3 });
    expect(large).toEqual({ input_tokens: 300 });
    expect(upstream?.requests).toHaveLength(0);
  });

  it("lists the routes in Anthropic's shape when the request carries anthropic-version", async () => {
    const { url } = await oneUpstream();
    const client = sdk(url);

    const page = await client.models.list();
    const one = await client.models.retrieve("mock");
    const openai = await jsonOf(await fetch(`${url}/v1/models`));

    expect(page.data.map((m) => [m.type, m.id, m.display_name])).toEqual([
      ["model", "claude-x", "claude-x"],
      ["model", "mock", "mock"],
      ["model", "claude-opus-5-5", "claude-opus-5-5"],
    ]);
    expect(one).toMatchObject({ type: "model", id: "mock", created_at: "1970-01-01T00:00:00Z" });
    expect(openai.object).toBe("list");
    expect(openai.data[0]).toEqual({ id: "claude-x", object: "model", created: 0, owned_by: "gateway" });
  });
});

describe("Messages errors, in Anthropic's shape", () => {
  it("answers a bad body with invalid_request_error 400 naming the field", async () => {
    const { url } = await oneUpstream();

    const noMaxTokens = await postMessages(url, { model: "claude-x", messages: [hello] });
    const notJson = await postMessages(url, "{not json");
    const sdkError = await sdk(url)
      .messages.create({ model: "claude-x", max_tokens: 0, messages: [hello] })
      .catch((e: unknown) => e);

    expect(noMaxTokens.status).toBe(400);
    const body = await jsonOf(noMaxTokens);
    expect(body).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    expect(body.error.message).toContain("max_tokens");
    expect(body.request_id).toBe(noMaxTokens.headers.get("request-id"));
    expect(notJson.status).toBe(400);
    expect((await jsonOf(notJson)).error.type).toBe("invalid_request_error");
    expect(sdkError).toBeInstanceOf(Anthropic.BadRequestError);
    expect(upstream?.requests).toHaveLength(0);
  });

  it("answers an unknown model with not_found_error 404", async () => {
    const { url } = await oneUpstream();

    const error = await sdk(url)
      .messages.create({ model: "nope", max_tokens: 10, messages: [hello] })
      .catch((e: unknown) => e);
    const count = await fetch(`${url}/v1/messages/count_tokens`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "nope", messages: [hello] }),
    });

    expect(error).toBeInstanceOf(Anthropic.NotFoundError);
    expect((error as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: "error",
      error: {
        type: "not_found_error",
        message: "The model 'nope' does not exist or you do not have access to it.",
      },
    });
    expect((error as InstanceType<typeof Anthropic.APIError>).requestID).toMatch(/^req-/);
    expect(count.status).toBe(404);
    expect((await jsonOf(count)).error.type).toBe("not_found_error");
  });

  it("answers a missing or wrong key with authentication_error 401, and takes x-api-key and Bearer keys", async () => {
    const KEY = "sk-gw-caller-key-0123456789";
    const { url } = await oneUpstream({ auth: createClientAuth(async () => [hashClientKey(KEY)]) });

    const none = await postMessages(url, { model: "claude-x", max_tokens: 10, messages: [hello] });
    const wrong = await sdk(url, { apiKey: "sk-gw-wrong-000000" })
      .messages.create({ model: "claude-x", max_tokens: 10, messages: [hello] })
      .catch((e: unknown) => e);
    const byApiKey = await sdk(url, { apiKey: KEY }).messages.create({
      model: "claude-x",
      max_tokens: 10,
      messages: [hello],
    });
    const byAuthToken = await sdk(url, { authToken: KEY }).messages.countTokens({
      model: "claude-x",
      messages: [hello],
    });

    expect(none.status).toBe(401);
    expect(await jsonOf(none)).toMatchObject({ type: "error", error: { type: "authentication_error" } });
    expect(none.headers.get("request-id")).toMatch(/^req-/);
    expect(wrong).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(byApiKey.content[0]).toMatchObject({ type: "text" });
    expect(byAuthToken.input_tokens).toBe(3);
    expect(upstream?.requests).toHaveLength(1);
  });

  it("answers 529 overloaded_error when every target fails, streamed or not", async () => {
    ({ a, b, gateway } = await twoUpstreamGateway({ defaults: { ...FAST, resumeByRestart: false } }));
    const client = sdk(gateway.url);
    a.fallback = { kind: "status", status: 500 };
    b.fallback = { kind: "status", status: 502 };

    const failed = await client.messages
      .create({ model: "m", max_tokens: 10, messages: [hello] })
      .catch((e: unknown) => e);
    const res = await postMessages(gateway.url, {
      model: "m",
      max_tokens: 10,
      messages: [hello],
      stream: true,
    });

    expect(failed).toBeInstanceOf(Anthropic.APIError);
    expect((failed as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect((failed as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      error: { type: "overloaded_error" },
    });
    // A stream that never started is refused as a whole request is: JSON, not an SSE error event.
    expect(res.status).toBe(529);
    expect(res.headers.get("x-gateway-attempts")).toBe("2");
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await jsonOf(res)).toMatchObject({ type: "error", error: { type: "overloaded_error" } });
  });
});

describe("Claude Code's recorded requests", () => {
  const firstRequest = recorded("messages-request");
  const toolResult = recorded("messages-tool-result");

  it("accepts its first request (?beta=true, its betas, system blocks, 12 tools) and answers it on a translated target", async () => {
    const { url } = await oneUpstream();
    const headers = { ...firstRequest.headers, "x-api-key": "unused-locally" };

    const res = await fetch(`${url}${firstRequest.path}`, {
      method: "POST",
      headers,
      body: JSON.stringify(firstRequest.body),
    });
    const frames = framesOf(await res.text());

    expect(res.status).toBe(200);
    expect(grammarErrors(frames)).toEqual([]);
    expect(textOf(frames)).toBe("Hello from the fake upstream.");
    const sent = upstream?.requests[0]?.body as Record<string, unknown> & {
      messages: Array<{ role: string }>;
    };
    expect(sent.model).toBe("upstream-model");
    expect(sent.stream).toBe(true);
    expect((sent.tools as unknown[]).length).toBe((firstRequest.body.tools as unknown[]).length);
    // System blocks first, then the user turn and the system entry Claude Code puts inside `messages`.
    expect(sent.messages[0]?.role).toBe("system");
    expect(sent.messages.some((m) => m.role === "user")).toBe(true);
    // What an OpenAI target has no field for is not sent.
    expect(sent).not.toHaveProperty("context_management");
    expect(sent).not.toHaveProperty("output_config");
    expect(sent).not.toHaveProperty("thinking");
  });

  it("accepts the second request of a tool loop and sends the tool_result as a tool message", async () => {
    const { url } = await oneUpstream();
    // The recording elides the tools; they are those of the first request.
    const body = { ...toolResult.body, tools: firstRequest.body.tools };

    const res = await postMessages(`${url}`, body, {
      "anthropic-beta": firstRequest.headers?.["anthropic-beta"] ?? "",
      "x-api-key": "unused-locally",
    });
    const frames = framesOf(await res.text());

    expect(res.status).toBe(200);
    expect(grammarErrors(frames)).toEqual([]);
    const sent = upstream?.requests[0]?.body as { messages: Array<Record<string, unknown>> };
    expect(sent.messages.find((m) => m.role === "assistant")).toMatchObject({
      tool_calls: [
        {
          id: "toolu_agent1",
          type: "function",
          function: { name: "Bash", arguments: expect.stringContaining("echo agent-ok-s1") },
        },
      ],
    });
    expect(sent.messages.at(-1)).toEqual({
      role: "tool",
      tool_call_id: "toolu_agent1",
      content: "agent-ok-s1",
    });
  });
});

describe("Messages streams through failover", () => {
  async function twoTargets(resumeByRestart: boolean) {
    ({ a, b, gateway } = await twoUpstreamGateway({ defaults: { ...FAST, resumeByRestart } }));
    return { a, b, url: gateway.url };
  }

  it("fails over from a dead first target before the first byte", async () => {
    const t = await twoTargets(false);
    t.a.queue.push({ kind: "reset" });

    const { data, response } = await sdk(t.url)
      .messages.stream({ model: "m", max_tokens: 100, messages: [hello] })
      .withResponse();
    const message = await data.finalMessage();

    expect(message.content).toEqual([{ type: "text", text: "Hello from the fake upstream." }]);
    expect(response.headers.get("x-gateway-provider")).toBe("b");
    expect(response.headers.get("x-gateway-attempts")).toBe("2");
  });

  it("rescues a stream cut mid-answer on the next target, with one block and valid indexes", async () => {
    const t = await twoTargets(true);
    t.a.queue.push({ kind: "answer", cutAfter: 3, tokenDelayMs: 20 });

    const res = await postMessages(t.url, { model: "m", max_tokens: 100, messages: [hello], stream: true });
    const frames = framesOf(await res.text());

    expect(grammarErrors(frames)).toEqual([]);
    expect(textOf(frames)).toBe("Hello from the fake upstream.");
    expect(frames.filter((f) => f.event === "message_start")).toHaveLength(1);
    expect(frames.filter((f) => f.event === "content_block_start")).toHaveLength(1);
    expect(frames.at(-1)?.event).toBe("message_stop");
    expect(t.b.requests).toHaveLength(1);
  });

  it("ends a cut stream nobody can continue with an error event and never message_stop", async () => {
    const t = await twoTargets(false);
    t.a.fallback = { kind: "answer", cutAfter: 3, tokenDelayMs: 20 };

    const res = await postMessages(t.url, { model: "m", max_tokens: 100, messages: [hello], stream: true });
    const frames = framesOf(await res.text());
    const sdkError = await sdk(t.url)
      .messages.stream({ model: "m", max_tokens: 100, messages: [hello] })
      .on("error", () => {})
      .finalMessage()
      .catch((e: unknown) => e);

    expect(res.status).toBe(200);
    expect(grammarErrors(frames)).toEqual([]);
    expect(textOf(frames)).toBe("Hello from the");
    expect(frames.at(-1)).toMatchObject({
      event: "error",
      data: { type: "error", error: { type: "api_error" } },
    });
    expect(frames.at(-1)?.data.error.message).toContain("cut off");
    expect(sdkError).toBeInstanceOf(Error);
    expect(t.b.requests).toHaveLength(0);
  });
});

describe("caller keys with budgets on Messages traffic", () => {
  it("meters each answer under the key and refuses the key with rate_limit_error once its budget is spent", async () => {
    table = await startTestTable();
    const clock = testClock();
    const callers = callersOn(table, { clock });
    const { url } = await oneUpstream({ auth: callers.auth });
    const { id, key } = await createKey(callers, "dev-1", { limits: { tokensPerDay: 100 } });
    const client = sdk(url, { authToken: key });
    const ask = () => client.messages.create({ model: "claude-x", max_tokens: 10, messages: [hello] });

    const statuses: number[] = [];
    let refusal: unknown;
    for (let i = 0; i < 10 && refusal === undefined; i++) {
      const outcome = await ask().catch((e: unknown) => e);
      if (outcome instanceof Anthropic.APIError) {
        statuses.push(outcome.status ?? 0);
        refusal = outcome;
      } else statuses.push(200);
    }
    const counted = await client.messages
      .countTokens({ model: "claude-x", messages: [hello] })
      .catch((e) => e);
    callers.ledger.stop();
    await callers.ledger.flush();
    const item = await table.client.send(
      new GetItemCommand({
        TableName: table.tableName,
        Key: { pk: { S: callerPk(id) }, sk: { S: usageSk(dayOf(clock.now()), "claude-x") } },
      }),
    );

    // Each answer is 16 tokens (10 prompt, 6 output): the budget holds a few, not ten.
    const answered = statuses.filter((s) => s === 200).length;
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(10);
    expect(statuses.at(-1)).toBe(429);
    expect(refusal).toBeInstanceOf(Anthropic.RateLimitError);
    expect((refusal as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: "error",
      error: { type: "rate_limit_error" },
    });
    // count_tokens holds no tokens, so it still fits; the ledger counts it as a request of none.
    expect(counted).toEqual({ input_tokens: 3 });
    expect(Number(item.Item?.requests?.N)).toBe(answered + 1);
    expect(Number(item.Item?.promptTokens?.N)).toBe(10 * answered);
    expect(Number(item.Item?.completionTokens?.N)).toBe(6 * answered);
    expect(upstream?.requests).toHaveLength(answered);
  });

  it("counts count_tokens against the key's requests per minute", async () => {
    table = await startTestTable();
    const clock = testClock();
    const callers = callersOn(table, { clock });
    const { url } = await oneUpstream({ auth: callers.auth });
    const { key } = await createKey(callers, "ide", { limits: { rpm: 2 } });
    const client = sdk(url, { apiKey: key });
    const count = () =>
      client.messages.countTokens({ model: "claude-x", messages: [hello] }).then(
        () => 200,
        (e: InstanceType<typeof Anthropic.APIError>) => e.status,
      );

    const statuses = [await count(), await count(), await count()];
    callers.ledger.stop();

    expect(statuses).toEqual([200, 200, 429]);
    expect(upstream?.requests).toHaveLength(0);
  });
});
