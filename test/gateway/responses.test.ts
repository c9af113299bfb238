/**
 * `POST /v1/responses` and the stored-response routes (issue 19), driven by the official `openai`
 * SDK's `client.responses` against the gateway, over the OpenAI-compatible fake (a translated
 * target: the gateway sends it chat completions) and the mock provider; stored responses on a
 * dynalite table shared by two gateway instances.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import OpenAI from "openai";
import type { ResponseStreamEvent } from "openai/resources/responses/responses";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredResponse } from "../../lib/dialects/openai-responses/store.ts";
import { createDynamoResponseStore } from "../../lib/responses/dynamo-store.ts";
import { createMemoryResponseStore, type ResponseStore } from "../../lib/responses/store.ts";
import { callersOn, createKey, testClock } from "../callers/support.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { type CustomResponder, type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { fakeProvider, jsonOf, startGateway, type TestGateway } from "../support/gateway.ts";

const MODEL = "gpt-test";
const HELLO = "Hello from the fake upstream.";

let upstream: FakeUpstream;
let table: TestTable;
let first: TestGateway;
let second: TestGateway;
let client: OpenAI;
let other: OpenAI;

const document = (url: string) => ({
  defaults: { timeouts: { idleMs: 300, firstTokenMs: 300 } },
  providers: [fakeProvider("primary", url)],
  models: { [MODEL]: { targets: [{ provider: "primary", model: "upstream-model" }] } },
});

function ids(prefix: string): () => string {
  let n = 0;
  return () => `${prefix}${++n}`;
}

const sdk = (url: string, apiKey = "unused-locally") =>
  new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });

/** The text of a response's output (the SDK adds `output_text` to a streamed one only when it parses). */
const textOf = (response: { output: unknown[] }) =>
  (response.output as Array<{ content?: Array<{ text?: string }> }>)
    .flatMap((item) => item.content ?? [])
    .map((part) => part.text ?? "")
    .join("");

/** `store` as the response object says it (the SDK's type leaves it out). */
const storeOf = (response: object) => (response as { store?: unknown }).store;

/** The chat body the fake received last (what the translated target was sent). */
const lastSent = () => upstream.requests[upstream.requests.length - 1]?.body ?? {};

beforeAll(async () => {
  upstream = await startFakeUpstream();
  table = await startTestTable();
  const onTable = () =>
    createDynamoResponseStore({ client: table.client, tableName: table.tableName, now: Date.now });
  first = await startGateway(document(upstream.url), { responses: onTable(), newId: ids("a") });
  second = await startGateway(document(upstream.url), { responses: onTable(), newId: ids("b") });
  client = sdk(first.url);
  other = sdk(second.url);
});

afterAll(async () => {
  await first?.close();
  await second?.close();
  await upstream?.close();
  await table?.close();
});

/** A chat answer that is one tool call, streamed or whole as the request asked. */
function toolCallAnswer(name: string, args: string): CustomResponder {
  return (record, res) => {
    const call = { index: 0, id: "call_7", type: "function", function: { name, arguments: args } };
    const base = { id: "chatcmpl-fake", created: 1, model: String(record.body.model) };
    if (record.body.stream !== true) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          ...base,
          object: "chat.completion",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: null, tool_calls: [call] },
              finish_reason: "tool_calls",
            },
          ],
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
        }),
      );
      return;
    }
    const chunk = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(chunk({ role: "assistant", content: null }, null));
    res.write(chunk({ tool_calls: [call] }, null));
    res.write(chunk({}, "tool_calls"));
    res.end("data: [DONE]\n\n");
  };
}

async function collect(stream: AsyncIterable<ResponseStreamEvent>): Promise<ResponseStreamEvent[]> {
  const events: ResponseStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

describe("POST /v1/responses through the official SDK, on a translated (chat) target", () => {
  it("answers text whole, in the response object's shape", async () => {
    const response = await client.responses.create({ model: MODEL, input: "Say hello", store: false });
    expect(response.output_text).toBe(HELLO);
    expect(response).toMatchObject({ object: "response", status: "completed", model: "upstream-model" });
    expect(response.id).toMatch(/^resp_a\d+$/);
    expect(response.usage).toMatchObject({ input_tokens: 10, output_tokens: 6, total_tokens: 16 });
    expect(lastSent().messages).toEqual([{ role: "user", content: "Say hello" }]);
  });

  it("streams text with every event numbered, ending response.completed", async () => {
    const events = await collect(
      await client.responses.create({ model: MODEL, input: "Say hello", stream: true, store: false }),
    );
    const types = events.map((e) => e.type);
    expect(types.slice(0, 2)).toEqual(["response.created", "response.in_progress"]);
    expect(types[types.length - 1]).toBe("response.completed");
    expect(types).not.toContain("response.failed");
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const text = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : [])).join("");
    expect(text).toBe(HELLO);
  });

  it("calls a function, and sends its output back on the next turn", async () => {
    upstream.queue.push({ kind: "answer", toolCallArguments: ['{"q":', '"weather"}'] });
    const tools = [
      {
        type: "function" as const,
        name: "lookup",
        parameters: { type: "object", properties: { q: { type: "string" } } },
        strict: false,
      },
    ];
    const stream = client.responses.stream({ model: MODEL, input: "Look it up", tools, store: false });
    const answer = await stream.finalResponse();
    const call = answer.output[0];
    expect(call).toMatchObject({
      type: "function_call",
      name: "lookup",
      call_id: "call_1",
      arguments: '{"q":"weather"}',
    });
    expect(lastSent().tools).toEqual([
      {
        type: "function",
        function: { name: "lookup", parameters: tools[0]?.parameters, strict: false },
      },
    ]);

    const next = await client.responses.create({
      model: MODEL,
      tools,
      store: false,
      input: [
        { role: "user", content: "Look it up" },
        { type: "function_call", call_id: "call_1", name: "lookup", arguments: '{"q":"weather"}' },
        { type: "function_call_output", call_id: "call_1", output: "sunny" },
      ],
    });
    expect(next.output_text).toBe(HELLO);
    expect(lastSent().messages).toEqual([
      { role: "user", content: "Look it up" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "lookup", arguments: '{"q":"weather"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "sunny" },
    ]);
  });

  it("turns a custom tool (apply_patch) into a function for the target, and its call back into a custom call", async () => {
    const patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch";
    const tool = {
      type: "custom" as const,
      name: "apply_patch",
      description: "Edit files.",
      format: { type: "grammar" as const, syntax: "lark" as const, definition: "start: /.+/s" },
    };
    for (const stream of [false, true]) {
      upstream.queue.push({
        kind: "custom",
        respond: toolCallAnswer("apply_patch", JSON.stringify({ input: patch })),
      });
      const response = stream
        ? await client.responses
            .stream({ model: MODEL, input: "Add a.txt", tools: [tool], store: false })
            .finalResponse()
        : await client.responses.create({ model: MODEL, input: "Add a.txt", tools: [tool], store: false });
      expect(response.output).toEqual([
        expect.objectContaining({
          type: "custom_tool_call",
          name: "apply_patch",
          call_id: "call_7",
          input: patch,
        }),
      ]);
      const sent = lastSent().tools as Array<{
        type: string;
        function: { name: string; parameters: unknown };
      }>;
      expect(sent.map((t) => [t.type, t.function.name])).toEqual([["function", "apply_patch"]]);
      expect(sent[0]?.function.parameters).toMatchObject({ properties: { input: { type: "string" } } });
    }
  });

  it("asks the target for JSON-schema output (text.format) and answers it as text", async () => {
    upstream.queue.push({ kind: "answer", tokens: ['{"city":', '"Paris"}'] });
    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
    const response = await client.responses.create({
      model: MODEL,
      input: "Capital of France?",
      store: false,
      text: { format: { type: "json_schema", name: "place", schema, strict: true } },
    });
    expect(JSON.parse(response.output_text)).toEqual({ city: "Paris" });
    expect(lastSent().response_format).toEqual({
      type: "json_schema",
      json_schema: { name: "place", schema, strict: true },
    });
  });

  it("rescues a stream cut mid-answer by the engine's continuation", async () => {
    const before = upstream.requests.length;
    upstream.queue.push({ kind: "answer", cutAfter: 3, tokenDelayMs: 20 });
    const events = await collect(
      await client.responses.create({ model: MODEL, input: "Say hello", stream: true, store: false }),
    );
    const text = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : [])).join("");
    expect(text).toBe(HELLO);
    expect(events[events.length - 1]?.type).toBe("response.completed");
    expect(upstream.requests.length - before).toBe(2);
  });

  it("ends a stream that cannot be completed with response.failed, never response.completed", async () => {
    const cut = { kind: "answer" as const, cutAfter: 3, tokenDelayMs: 20 };
    upstream.queue.push(cut, cut, cut, cut);
    const response = await fetch(`${first.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, input: "Say hello", stream: true }),
    });
    const text = await response.text();
    expect(text).toContain("event: response.failed");
    expect(text).not.toContain("response.completed");
    upstream.queue.length = 0;
  });

  it("refuses an unknown model with OpenAI's 404", async () => {
    const call = client.responses.create({ model: "nope", input: "x" });
    await expect(call).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(call).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });
});

describe("stored responses on the shared table", () => {
  it("continues a conversation from a second gateway instance, then retrieves, lists and deletes it", async () => {
    const opening = await client.responses.create({ model: MODEL, input: "My name is Ada." });
    expect(storeOf(opening)).toBe(true);

    const next = await other.responses.create({
      model: MODEL,
      previous_response_id: opening.id,
      input: "What is my name?",
    });
    expect(next.previous_response_id).toBe(opening.id);
    expect(lastSent().messages).toEqual([
      { role: "user", content: "My name is Ada." },
      { role: "assistant", content: HELLO },
      { role: "user", content: "What is my name?" },
    ]);

    // A streamed turn is stored too, after its last event: the next turn, elsewhere, finds it.
    const streamed = await other.responses
      .stream({ model: MODEL, previous_response_id: next.id, input: "And again?" })
      .finalResponse();
    const third = await client.responses.create({
      model: MODEL,
      previous_response_id: streamed.id,
      input: "Once more.",
    });
    expect((lastSent().messages as unknown[]).length).toBe(7);
    expect(third.output_text).toBe(HELLO);

    const retrieved = await client.responses.retrieve(next.id);
    expect(retrieved).toMatchObject({ id: next.id, status: "completed", output_text: HELLO });

    const items = await other.responses.inputItems.list(next.id);
    expect(items.data).toEqual([
      expect.objectContaining({
        type: "message",
        role: "user",
        content: [{ type: "input_text", text: "What is my name?" }],
      }),
    ]);
    const listed = await jsonOf(await fetch(`${first.url}/v1/responses/${third.id}/input_items?limit=1`));
    expect(listed).toMatchObject({ object: "list", has_more: false, data: [{ role: "user" }] });
    expect(listed.first_id).toBe(listed.last_id);

    const deleted = await fetch(`${second.url}/v1/responses/${opening.id}`, { method: "DELETE" });
    expect(await deleted.json()).toEqual({ id: opening.id, object: "response", deleted: true });
    await expect(client.responses.retrieve(opening.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const again = client.responses.create({ model: MODEL, previous_response_id: opening.id, input: "?" });
    await expect(again).rejects.toMatchObject({ status: 404 });
  });

  it("answers an unknown id with OpenAI's 404, without reading the table for a malformed one", async () => {
    for (const id of ["resp_unknown", `resp_${"x".repeat(300)}`]) {
      const response = await fetch(`${first.url}/v1/responses/${id}`);
      expect(response.status).toBe(404);
      expect((await jsonOf(response)).error).toMatchObject({ type: "invalid_request_error" });
    }
  });
});

describe("stored responses and caller keys", () => {
  let gateway: TestGateway;
  let keyed: TestTable;
  let stop = () => {};

  beforeAll(async () => {
    keyed = await startTestTable();
    const callers = callersOn(keyed, { clock: testClock() });
    stop = () => callers.ledger.stop();
    gateway = await startGateway(document(upstream.url), {
      auth: callers.auth,
      responses: createDynamoResponseStore({
        client: keyed.client,
        tableName: keyed.tableName,
        now: Date.now,
      }),
    });
    owner = await createKey(callers, "owner");
    stranger = await createKey(callers, "stranger");
    budgeted = await createKey(callers, "budgeted", { limits: { tokensPerDay: 200 } });
  });
  let owner: Awaited<ReturnType<typeof createKey>>;
  let stranger: Awaited<ReturnType<typeof createKey>>;
  let budgeted: Awaited<ReturnType<typeof createKey>>;

  afterAll(async () => {
    stop();
    await gateway?.close();
    await keyed?.close();
  });

  it("gives another key a 404 for every use of a stored response", async () => {
    const mine = await sdk(gateway.url, owner.key).responses.create({ model: MODEL, input: "secret" });
    const theirs = sdk(gateway.url, stranger.key);
    await expect(theirs.responses.retrieve(mine.id)).rejects.toMatchObject({ status: 404 });
    await expect(theirs.responses.inputItems.list(mine.id)).rejects.toMatchObject({ status: 404 });
    await expect(
      theirs.responses.create({ model: MODEL, previous_response_id: mine.id, input: "tell me" }),
    ).rejects.toMatchObject({ status: 404 });
    const deleted = await fetch(`${gateway.url}/v1/responses/${mine.id}`, {
      method: "DELETE",
      headers: stranger.auth,
    });
    expect(deleted.status).toBe(404);
    // Still there for its owner.
    expect((await sdk(gateway.url, owner.key).responses.retrieve(mine.id)).id).toBe(mine.id);
  });

  it("enforces a key's budget before any upstream call (max_output_tokens reserved)", async () => {
    const budget = sdk(gateway.url, budgeted.key);
    expect((await budget.responses.create({ model: MODEL, input: "hi", max_output_tokens: 20 })).status).toBe(
      "completed",
    );
    const before = upstream.requests.length;
    const refused = budget.responses.create({ model: MODEL, input: "hi", max_output_tokens: 5_000 });
    await expect(refused).rejects.toMatchObject({ status: 429 });
    expect(upstream.requests.length).toBe(before);
  });
});

describe("failover", () => {
  let dead: FakeUpstream;
  let gateway: TestGateway;

  beforeAll(async () => {
    dead = await startFakeUpstream();
    dead.fallback = { kind: "reset" };
    gateway = await startGateway({
      defaults: { retry: { maxAttempts: 1 } },
      providers: [fakeProvider("dead", dead.url), fakeProvider("live", upstream.url)],
      models: {
        [MODEL]: {
          targets: [
            { provider: "dead", model: "d" },
            { provider: "live", model: "l" },
          ],
        },
      },
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await dead?.close();
  });

  it("answers from the second target when the first is dead, streamed and not", async () => {
    const whole = await sdk(gateway.url).responses.create({ model: MODEL, input: "x" }).withResponse();
    expect(whole.data.output_text).toBe(HELLO);
    expect(whole.response.headers.get("x-gateway-provider")).toBe("live");
    const streamed = await sdk(gateway.url).responses.stream({ model: MODEL, input: "x" }).finalResponse();
    expect(streamed).toMatchObject({ status: "completed", model: "l" });
    expect(textOf(streamed)).toBe(HELLO);
    expect(dead.requests.length).toBeGreaterThanOrEqual(2);
  });
});

describe("the mock provider", () => {
  it("answers whole and streamed", async () => {
    const gateway = await startGateway({
      providers: [{ id: "m", type: "mock", mock: { reply: "You said: {input}" } }],
      models: { [MODEL]: { targets: [{ provider: "m", model: "mock-1" }] } },
    });
    try {
      const mock = sdk(gateway.url);
      expect((await mock.responses.create({ model: MODEL, input: "ping" })).output_text).toBe(
        "You said: ping",
      );
      const streamed = await mock.responses.stream({ model: MODEL, input: "pong" }).finalResponse();
      expect(textOf(streamed)).toBe("You said: pong");
      // No store configured: the answer says it was not stored.
      expect(storeOf(streamed)).toBe(false);
    } finally {
      await gateway.close();
    }
  });
});

/** A store that fails any call: the Codex path (`store: false`, whole input) must never reach it. */
function refusingStore(calls: string[]): ResponseStore {
  const refuse = (what: string) => async (): Promise<never> => {
    calls.push(what);
    throw new Error(`the table was touched: ${what}`);
  };
  return { put: refuse("put"), get: refuse("get"), delete: refuse("delete") };
}

describe("Codex CLI 0.171.0's recorded requests", () => {
  const recorded = (name: string): Record<string, unknown> => {
    const file = new URL(`../fixtures/clients/codex-0.171.0.${name}.json`, import.meta.url);
    return (JSON.parse(readFileSync(file, "utf8")) as { body: Record<string, unknown> }).body;
  };
  const firstTurn = recorded("responses-request");
  const toolTurn = { ...recorded("responses-tool-result"), tools: firstTurn.tools };
  const calls: string[] = [];
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startGateway(
      {
        defaults: { timeouts: { idleMs: 300, firstTokenMs: 300 } },
        providers: [fakeProvider("primary", upstream.url)],
        models: { "gpt-5.5": { targets: [{ provider: "primary", model: "deepseek-chat" }] } },
      },
      { responses: refusingStore(calls) },
    );
  });

  afterAll(async () => {
    await gateway?.close();
  });

  const post = (body: unknown) =>
    fetch(`${gateway.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer codex" },
      body: JSON.stringify(body),
    });
  const eventsOf = (text: string) =>
    text
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)) as { type: string; response?: { store?: boolean } });

  it("accepts both turns and answers them, never touching the table", async () => {
    for (const body of [firstTurn, toolTurn]) {
      const response = await post(body);
      expect(response.status).toBe(200);
      const events = eventsOf(await response.text());
      const last = events[events.length - 1];
      expect(last?.type).toBe("response.completed");
      expect(last?.response?.store).toBe(false);
    }
    expect(calls).toEqual([]);
  });

  it("sends the target Codex's function tools and apply_patch as a function, drops the hosted ones with one line per kind", async () => {
    await (await post(firstTurn)).text();
    const sent = lastSent();
    const names = (sent.tools as Array<{ function: { name: string } }>).map((t) => t.function.name);
    expect(names).toEqual([
      "exec_command",
      "write_stdin",
      "request_user_input",
      "apply_patch",
      "view_image",
      "get_goal",
      "create_goal",
      "update_goal",
    ]);
    const dropped = gateway.logs.filter((l) => String(l.msg).startsWith("hosted tool dropped"));
    expect(dropped.map((l) => l.tool)).toEqual(["tool_search", "web_search"]);
  });

  it("sends the tool loop's call and output to the target as chat tool messages", async () => {
    await (await post(toolTurn)).text();
    const messages = lastSent().messages as Array<{ role: string; tool_calls?: unknown; content?: unknown }>;
    expect(messages.slice(-2)).toEqual([
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_agent1",
            type: "function",
            function: { name: "exec_command", arguments: '{"cmd":"echo agent-ok-s2"}' },
          },
        ],
      },
      { role: "tool", tool_call_id: "call_agent1", content: "<text: 114 chars>" },
    ]);
  });
});

describe("a response that cannot be stored", () => {
  it("is answered with store: false past the size bound, streamed and not, and is not kept", async () => {
    const store = createMemoryResponseStore(Date.now);
    const gateway = await startGateway(
      { ...document(upstream.url), defaults: { maxBodyBytes: 6 * 1024 * 1024 } },
      { responses: store },
    );
    try {
      // Random text does not compress: about 4.4 MB gzipped, past the bound of 12 parts of 350,000 bytes.
      const input = randomBytes(4_400_000).toString("base64");
      const big = sdk(gateway.url);
      const whole = await big.responses.create({ model: MODEL, input });
      expect(storeOf(whole)).toBe(false);
      const streamed = await big.responses.stream({ model: MODEL, input }).finalResponse();
      expect(storeOf(streamed)).toBe(false);
      expect(textOf(streamed)).toBe(HELLO);
      for (const id of [whole.id, streamed.id]) expect(await store.get(id, "open")).toBeUndefined();
      // A small one on the same gateway is stored: the bound, not the gateway, said no.
      const small = await big.responses.create({ model: MODEL, input: "hi" });
      expect(storeOf(small)).toBe(true);
      expect((await store.get(small.id, "open"))?.id).toBe(small.id);
    } finally {
      await gateway.close();
    }
  });

  it("is answered with store: false when the table fails the write, and the failure is logged", async () => {
    const failing: ResponseStore = {
      ...createMemoryResponseStore(Date.now),
      put: async () => {
        throw new Error("ProvisionedThroughputExceededException");
      },
    };
    const gateway = await startGateway(document(upstream.url), { responses: failing });
    try {
      const response = await sdk(gateway.url).responses.create({ model: MODEL, input: "hi" });
      expect(response.output_text).toBe(HELLO);
      expect(storeOf(response)).toBe(false);
      expect(gateway.logs.filter((l) => l.msg === "stored response not written")).toHaveLength(1);
    } finally {
      await gateway.close();
    }
  });
});

describe("the memory store", () => {
  it("keeps records per owner, through the table's serialisation and expiry", async () => {
    let now = 1_000_000_000_000;
    const store = createMemoryResponseStore(() => now);
    const record: StoredResponse = {
      id: "resp_1",
      owner: "k1",
      createdAt: now / 1000,
      expiresAt: now / 1000 + 60,
      response: { id: "resp_1", output: [] },
      input: [{ type: "message", role: "user", content: "hi" }],
      ownInputFrom: 0,
    };
    expect(await store.put(record)).toBe(true);
    expect(await store.get("resp_1", "k2")).toBeUndefined();
    expect((await store.get("resp_1", "k1"))?.input).toEqual(record.input);
    expect(await store.delete("resp_1", "k2")).toBe(false);
    now += 61_000;
    expect(await store.get("resp_1", "k1")).toBeUndefined();
  });
});
