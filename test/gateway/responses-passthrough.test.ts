/**
 * A Responses caller on a target that speaks Responses itself (`responsesApi: true`, issue 19): the
 * official `openai` SDK's `client.responses` against the gateway, over the fake Responses server
 * (test/support/fake-responses-upstream.ts) and, for failover, the OpenAI-compatible chat fake.
 */
import OpenAI from "openai";
import type { ResponseStreamEvent } from "openai/resources/responses/responses";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createMemoryResponseStore } from "../../lib/responses/store.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import {
  FAKE_TEXT,
  type FakeResponsesUpstream,
  startFakeResponsesUpstream,
} from "../support/fake-responses-upstream.ts";
import { DEFAULT_TOKENS, type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { fakeProvider, startGateway, type TestGateway } from "../support/gateway.ts";

let native: FakeResponsesUpstream;
let chat: FakeUpstream;
let gateway: TestGateway;
let stored: TestGateway;
let client: OpenAI;

const document = (nativeUrl: string, chatUrl: string) => ({
  defaults: { timeouts: { idleMs: 2000, firstTokenMs: 2000 }, retry: { maxAttempts: 1 } },
  providers: [fakeProvider("native", nativeUrl, { responsesApi: true }), fakeProvider("chat", chatUrl)],
  models: {
    only: { targets: [{ provider: "native", model: "gpt-native" }] },
    both: {
      targets: [
        { provider: "native", model: "gpt-native" },
        { provider: "chat", model: "chat-model" },
      ],
    },
  },
});

const sdk = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused-locally", maxRetries: 0 });

beforeAll(async () => {
  native = await startFakeResponsesUpstream();
  chat = await startFakeUpstream();
  gateway = await startGateway(document(native.url, chat.url));
  let n = 0;
  stored = await startGateway(document(native.url, chat.url), {
    responses: createMemoryResponseStore(Date.now),
    newId: () => `s${++n}`,
  });
  client = sdk(gateway.url);
});

afterAll(async () => {
  await gateway?.close();
  await stored?.close();
  await native?.close();
  await chat?.close();
});

beforeEach(() => {
  native.requests.length = 0;
  native.responses.length = 0;
  native.queue.length = 0;
  chat.requests.length = 0;
  chat.queue.length = 0;
});

async function collect(stream: AsyncIterable<ResponseStreamEvent>): Promise<ResponseStreamEvent[]> {
  const events: ResponseStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

const postResponses = (url: string, body: Record<string, unknown>) =>
  fetch(`${url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("responsesApi: the option", () => {
  it("is false unless set, and must be a boolean", () => {
    const providers = (extra: Record<string, unknown>) =>
      validateConfig({
        providers: [fakeProvider("p", "http://127.0.0.1:9", extra)],
        models: { m: { targets: [{ provider: "p", model: "x" }] } },
      }).providers;
    expect(providers({})[0]?.options).toEqual({ responsesApi: false });
    expect(providers({ responsesApi: true })[0]?.options).toEqual({ responsesApi: true });
    expect(() => providers({ responsesApi: "yes" })).toThrow(
      /providers\[0\]\.responsesApi: must be true or false/,
    );
  });
});

describe("a Responses caller on a target that speaks Responses", () => {
  it("sends the caller's body to /responses with only the model changed, and hands back the answer's bytes", async () => {
    const caller = {
      model: "only",
      input: [{ role: "user", content: [{ type: "input_text", text: "Say hello" }] }],
      instructions: "Be brief.",
      store: false,
      include: ["reasoning.encrypted_content"],
      text: { verbosity: "low" },
      client_metadata: { session: "abc" },
    };
    const res = await postResponses(gateway.url, caller);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(native.requests).toHaveLength(1);
    expect(native.requests[0]?.path).toBe("/responses");
    expect(native.requests[0]?.headers.authorization).toBe("Bearer sk-test-secret-key-123456");
    expect(native.requests[0]?.body).toEqual({ ...caller, model: "gpt-native" });
    expect(text).toBe(native.responses[0]);
    expect(res.headers.get("x-gateway-provider")).toBe("native");
    expect(chat.requests).toHaveLength(0);
  });

  it("answers the SDK whole: text, usage, and the upstream's own fields", async () => {
    const response = await client.responses.create({ model: "only", input: "Say hello", store: false });
    expect(response.output_text).toBe(FAKE_TEXT.join(""));
    expect(response.usage).toMatchObject({ input_tokens: 12, output_tokens: 7, total_tokens: 19 });
    expect(response.id).toBe(JSON.parse(native.responses[0] ?? "{}").id);
    expect(response.id).toMatch(/^resp_fake\d+$/);
    expect((response as unknown as { service_tier?: unknown }).service_tier).toBe("default");
  });

  it("sends store false upstream for a caller that relies on stored state, with reasoning content asked", async () => {
    await client.responses.create({ model: "only", input: "Say hello" });
    expect(native.requests[0]?.body).toEqual({
      model: "gpt-native",
      input: "Say hello",
      store: false,
      include: ["reasoning.encrypted_content"],
    });
  });

  it("streams text to the SDK, re-encoded under one numbering", async () => {
    const events = await collect(
      await client.responses.create({ model: "only", input: "Say hello", store: false, stream: true }),
    );
    expect(native.requests[0]?.body).toEqual({
      model: "gpt-native",
      input: "Say hello",
      store: false,
      stream: true,
    });
    const deltas = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : []));
    expect(deltas).toEqual(FAKE_TEXT);
    const last = events[events.length - 1];
    expect(last?.type).toBe("response.completed");
    if (last?.type !== "response.completed") throw new Error("no completion");
    expect(last.response.usage).toMatchObject({ input_tokens: 12, output_tokens: 7 });
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
  });

  it("streams a function call, its arguments as they come", async () => {
    native.queue.push({ kind: "function_call", name: "get_weather", pieces: ['{"city":', '"Paris"}'] });
    const events = await collect(
      await client.responses.create({
        model: "only",
        input: "Weather in Paris?",
        store: false,
        stream: true,
        tools: [{ type: "function", name: "get_weather", parameters: { type: "object" }, strict: false }],
      }),
    );
    const args = events.flatMap((e) =>
      e.type === "response.function_call_arguments.delta" ? [e.delta] : [],
    );
    expect(args).toEqual(['{"city":', '"Paris"}']);
    const last = events[events.length - 1];
    if (last?.type !== "response.completed") throw new Error(`ended with ${last?.type}`);
    expect(last.response.output).toMatchObject([
      { type: "function_call", name: "get_weather", call_id: "call_fake1", arguments: '{"city":"Paris"}' },
    ]);
  });

  it("answers a whole function call with the upstream's bytes", async () => {
    native.queue.push({ kind: "function_call", name: "get_weather", pieces: ['{"city":"Paris"}'] });
    const res = await postResponses(gateway.url, { model: "only", input: "Weather?", store: false });
    expect(await res.text()).toBe(native.responses[0]);
  });
});

describe("failover from a Responses target", () => {
  it("fails a stream's response.failed over to the chat target before the first token", async () => {
    native.queue.push({ kind: "failed", afterDeltas: 0 });
    const events = await collect(
      await client.responses.create({ model: "both", input: "Say hello", store: false, stream: true }),
    );
    expect(native.requests).toHaveLength(1);
    expect(chat.requests).toHaveLength(1);
    expect(chat.requests[0]?.path).toBe("/chat/completions");
    const text = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : [])).join("");
    expect(text).toBe(DEFAULT_TOKENS.join(""));
    expect(events[events.length - 1]?.type).toBe("response.completed");
  });

  it("fails an in-band error event over to the chat target", async () => {
    native.queue.push({ kind: "error-event", code: "server_error" });
    const events = await collect(
      await client.responses.create({ model: "both", input: "Say hello", store: false, stream: true }),
    );
    expect(chat.requests).toHaveLength(1);
    expect(events[events.length - 1]?.type).toBe("response.completed");
  });

  it("fails a whole answer with status failed over, answered in the gateway's own shape", async () => {
    native.queue.push({ kind: "failed" });
    const response = await client.responses.create({ model: "both", input: "Say hello", store: false });
    expect(chat.requests).toHaveLength(1);
    expect(response.output_text).toBe(DEFAULT_TOKENS.join(""));
    expect(response.id).toMatch(/^resp_/);
    expect(response.id).not.toMatch(/^resp_fake/);
  });

  it("ends a stream cut mid-answer with no continuation as response.failed, never completed", async () => {
    // The cut target is tried again (a cut is often a passing fault), and cuts every time.
    for (let i = 0; i < 4; i++) native.queue.push({ kind: "cut", afterDeltas: 2 });
    const events = await collect(
      await client.responses.create({ model: "only", input: "Say hello", store: false, stream: true }),
    );
    const text = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : [])).join("");
    expect(text).toBe("Hello from");
    expect(events[events.length - 1]?.type).toBe("response.failed");
    expect(events.some((e) => e.type === "response.completed")).toBe(false);
  });

  it("continues a cut stream on the chat target under one response and one numbering", async () => {
    // The chat fake's answer begins with the text already sent: the restart keeps only the rest.
    native.queue.push({ kind: "cut", afterDeltas: 2 });
    const events = await collect(
      await client.responses.create({ model: "both", input: "Say hello", store: false, stream: true }),
    );
    expect(chat.requests).toHaveLength(1);
    const text = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : [])).join("");
    expect(text).toBe(DEFAULT_TOKENS.join(""));
    expect(events.filter((e) => e.type === "response.created")).toHaveLength(1);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events[events.length - 1]?.type).toBe("response.completed");
  });
});

describe("a stored answer from a Responses target", () => {
  it("carries the gateway's id and store, is retrievable, and continues with the history expanded", async () => {
    const storedClient = sdk(stored.url);
    const first = await storedClient.responses.create({ model: "only", input: "Say hello" });
    expect(first.id).toMatch(/^resp_s\d+$/);
    expect((first as unknown as { store?: unknown }).store).toBe(true);
    expect(first.output_text).toBe(FAKE_TEXT.join(""));
    const again = await storedClient.responses.retrieve(first.id);
    expect(again).toEqual(first);

    const second = await storedClient.responses.create({
      model: "only",
      input: "And again",
      previous_response_id: first.id,
    });
    expect(second.previous_response_id).toBe(first.id);
    const sent = native.requests[1]?.body ?? {};
    // The gateway's id stays the gateway's: the upstream gets the whole input instead.
    expect(sent).not.toHaveProperty("previous_response_id");
    expect(sent.store).toBe(false);
    expect(sent.input).toEqual([
      { type: "message", role: "user", content: "Say hello" },
      {
        id: "msg_fake1",
        type: "message",
        status: "completed",
        content: [{ type: "output_text", annotations: [], logprobs: [], text: FAKE_TEXT.join("") }],
        role: "assistant",
      },
      { type: "message", role: "user", content: "And again" },
    ]);
  });
});
