import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BEDROCK_TOKENS, type FakeBedrock, startFakeBedrock } from "../support/fake-bedrock.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { fakeProvider, startGateway, type TestGateway } from "../support/gateway.ts";

/**
 * The official openai client against the gateway with a Bedrock route: Claude on Bedrock in one
 * region, then another, then an OpenAI-compatible provider (config/bedrock.example.json's shape).
 * Both "regions" are the one fake Bedrock endpoint, told apart by the signed region.
 */
let bedrock: FakeBedrock;
let upstream: FakeUpstream;
let gateway: TestGateway;
let client: OpenAI;
const saved = { ...process.env };

const probe = { kind: "chat", model: "amazon.nova-micro-v1:0" };
const US = "us.anthropic.claude-test-v1:0";
const EU = "eu.anthropic.claude-test-v1:0";

beforeAll(async () => {
  bedrock = await startFakeBedrock();
  upstream = await startFakeUpstream();
  process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME = bedrock.url;
  process.env.AWS_ACCESS_KEY_ID = "AKIDFAKEFAKEFAKE";
  process.env.AWS_SECRET_ACCESS_KEY = "fake-secret";
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
  gateway = await startGateway({
    defaults: { retry: { maxAttempts: 1 }, timeouts: { idleMs: 2000, firstTokenMs: 2000 } },
    providers: [
      { id: "bedrock-us", type: "bedrock", region: "us-east-1", assistantPrefill: true, healthCheck: probe },
      { id: "bedrock-eu", type: "bedrock", region: "eu-west-1", assistantPrefill: true, healthCheck: probe },
      fakeProvider("openai", upstream.url),
    ],
    models: {
      claude: {
        targets: [
          { provider: "bedrock-us", model: US },
          { provider: "bedrock-eu", model: EU },
          { provider: "openai", model: "gpt-fallback" },
        ],
      },
    },
  });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "unused-locally", maxRetries: 0 });
});

afterAll(async () => {
  process.env = saved;
  await gateway.close();
  await upstream.close();
  await bedrock.close();
});

beforeEach(() => {
  bedrock.queue.length = 0;
  bedrock.requests.length = 0;
  upstream.queue.length = 0;
  upstream.requests.length = 0;
});

const throttled = {
  kind: "error" as const,
  status: 429,
  type: "ThrottlingException",
  message: "Too many requests, please wait before trying again.",
};

describe("a Bedrock route through the official openai client", () => {
  it("answers a whole completion from Bedrock", async () => {
    const completion = await client.chat.completions.create({
      model: "claude",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Say hello" },
      ],
      max_tokens: 32,
    });
    expect(completion.choices[0]?.message.content).toBe(BEDROCK_TOKENS.join(""));
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    expect(completion.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 });
    expect(bedrock.requests).toHaveLength(1);
    expect(bedrock.requests[0]).toMatchObject({ operation: "converse", modelId: US });
    expect(bedrock.requests[0]?.body.system).toEqual([{ text: "Be brief." }]);
  });

  it("streams from Bedrock with usage", async () => {
    const stream = await client.chat.completions.create({
      model: "claude",
      messages: [{ role: "user", content: "Say hello" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: unknown;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      finish ??= chunk.choices[0]?.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(BEDROCK_TOKENS.join(""));
    expect(finish).toBe("stop");
    expect(usage).toMatchObject({ total_tokens: 16 });
    expect(bedrock.requests[0]?.operation).toBe("converse-stream");
  });

  it("carries a tool call both ways, streamed and not", async () => {
    const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
      {
        type: "function",
        function: {
          name: "get_weather",
          parameters: { type: "object", properties: { city: { type: "string" } } },
        },
      },
    ];
    bedrock.queue.push({ kind: "tool" });
    const whole = await client.chat.completions.create({
      model: "claude",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools,
    });
    const call = whole.choices[0]?.message.tool_calls?.[0];
    expect(whole.choices[0]?.finish_reason).toBe("tool_calls");
    expect(call).toMatchObject({
      id: "tooluse_1",
      type: "function",
      function: { name: "get_weather", arguments: '{"city":"Paris"}' },
    });

    bedrock.queue.push({ kind: "tool" });
    const stream = client.chat.completions.stream({
      model: "claude",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools,
      stream: true,
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      id: "tooluse_1",
      function: { name: "get_weather", arguments: '{"city":"Paris"}' },
    });
    expect(final.choices[0]?.finish_reason).toBe("tool_calls");

    // The tool's result goes back as a Converse toolResult, after the assistant's toolUse.
    await client.chat.completions.create({
      model: "claude",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: null, tool_calls: whole.choices[0]?.message.tool_calls ?? [] },
        { role: "tool", tool_call_id: "tooluse_1", content: "18C" },
      ],
      tools,
    });
    expect(bedrock.requests.at(-1)?.body.messages).toEqual([
      { role: "user", content: [{ text: "Weather in Paris?" }] },
      {
        role: "assistant",
        content: [{ toolUse: { toolUseId: "tooluse_1", name: "get_weather", input: { city: "Paris" } } }],
      },
      { role: "user", content: [{ toolResult: { toolUseId: "tooluse_1", content: [{ text: "18C" }] } }] },
    ]);
  });

  it("fails over from a throttled region to the next, then to the OpenAI-compatible provider", async () => {
    bedrock.queue.push(throttled);
    const fromEu = await client.chat.completions.create({
      model: "claude",
      messages: [{ role: "user", content: "Say hello" }],
    });
    expect(fromEu.choices[0]?.message.content).toBe(BEDROCK_TOKENS.join(""));
    expect(bedrock.requests.map((r) => r.modelId)).toEqual([US, EU]);
    // Each region's request is signed for its own region.
    expect(String(bedrock.requests[1]?.headers.authorization)).toContain("/eu-west-1/bedrock/");

    bedrock.queue.push(throttled, throttled);
    const stream = await client.chat.completions.create({
      model: "claude",
      messages: [{ role: "user", content: "Say hello" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe("Hello from the fake upstream.");
    expect(upstream.requests.at(-1)?.body.model).toBe("gpt-fallback");
  });

  it("continues a Bedrock stream throttled mid-answer on the next region, with the partial answer as prefill", async () => {
    bedrock.queue.push(
      { kind: "exceptionAfter", tokens: 2, exception: "throttlingException" },
      { kind: "text", tokens: [" Bedrock", "."] },
    );
    const stream = await client.chat.completions.create({
      model: "claude",
      messages: [{ role: "user", content: "Say hello" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(BEDROCK_TOKENS.join(""));
    const continuation = bedrock.requests[1];
    expect(continuation?.modelId).toBe(EU);
    expect(continuation?.body.messages).toEqual([
      { role: "user", content: [{ text: "Say hello" }] },
      { role: "assistant", content: [{ text: "Hello from" }] },
    ]);
  });

  it("answers a field Bedrock cannot carry with a 400 naming it", async () => {
    const call = client.chat.completions.create({
      model: "claude",
      messages: [{ role: "user", content: "x" }],
      logprobs: true,
    });
    await expect(call).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(call).rejects.toMatchObject({ status: 400, param: "logprobs" });
    expect(bedrock.requests).toHaveLength(0);
  });
});
