import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type FakeUpstream, sseDataLines, startFakeUpstream } from "../support/fake-upstream.ts";
import {
  chatBody,
  fakeProvider,
  jsonOf,
  postChat,
  startGateway,
  type TestGateway,
} from "../support/gateway.ts";

let upstream: FakeUpstream;
let gateway: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gateway = await startGateway({
    defaults: { maxBodyBytes: 4096 },
    providers: [
      fakeProvider("primary", upstream.url),
      { id: "local-mock", type: "mock", mock: { tokenDelayMs: 0, firstTokenDelayMs: 0 } },
    ],
    models: {
      "gpt-4o-mini": { targets: [{ provider: "primary", model: "upstream-model" }] },
      "mock-model": { targets: [{ provider: "local-mock", model: "m1" }] },
    },
  });
});

afterAll(async () => {
  await gateway.close();
  await upstream.close();
});

afterEach(() => {
  upstream.requests.length = 0;
  upstream.queue.length = 0;
});

describe("POST /v1/chat/completions", () => {
  it("passes a non-streaming answer through and names who answered", async () => {
    // Act
    const res = await postChat(gateway.url, chatBody("gpt-4o-mini"));
    const body = await jsonOf(res);

    // Assess
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("x-gateway-provider")).toBe("primary");
    expect(res.headers.get("x-gateway-model")).toBe("upstream-model");
    expect(res.headers.get("x-gateway-attempts")).toBe("1");
    expect(res.headers.get("x-request-id")).toMatch(/^req-\d+$/);
    expect(body.model).toBe("upstream-model");
    expect(body.choices[0].message.content).toBe("Hello from the fake upstream.");
  });

  it("sends the upstream model name, the key as a bearer token, and unknown fields untouched", async () => {
    const tools = [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }];
    await postChat(
      gateway.url,
      chatBody("gpt-4o-mini", {
        temperature: 0.2,
        tools,
        response_format: { type: "json_object" },
        user: "u1",
        seed: 7,
      }),
    );

    const seen = upstream.requests[0];
    expect(seen?.path).toBe("/chat/completions");
    expect(seen?.headers.authorization).toBe("Bearer sk-test-secret-key-123456");
    expect(seen?.body).toEqual({
      model: "upstream-model",
      messages: [{ role: "user", content: "Say hello" }],
      temperature: 0.2,
      tools,
      response_format: { type: "json_object" },
      user: "u1",
      seed: 7,
    });
  });

  it("streams SSE chunks then [DONE], with the usage block when asked", async () => {
    const res = await postChat(
      gateway.url,
      chatBody("gpt-4o-mini", { stream: true, stream_options: { include_usage: true } }),
    );
    const events = sseDataLines(await res.text());

    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("x-gateway-provider")).toBe("primary");
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(text).toBe("Hello from the fake upstream.");
    expect(chunks.at(-1).usage).toEqual({ prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 });
    expect(upstream.requests[0]?.body.stream_options).toEqual({ include_usage: true });
  });

  it("streams a tool call (no text at all) through untouched", async () => {
    upstream.queue.push({ kind: "answer", toolCallArguments: ['{"city":', '"Paris"}'] });
    const res = await postChat(
      gateway.url,
      chatBody("gpt-4o-mini", { stream: true, tools: [{ type: "function", function: { name: "lookup" } }] }),
    );
    const events = sseDataLines(await res.text());

    expect(res.status).toBe(200);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const args = chunks.map((c) => c.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? "").join("");
    expect(args).toBe('{"city":"Paris"}');
    expect(chunks[1].choices[0].delta.tool_calls[0]).toEqual({
      index: 0,
      id: "call_1",
      type: "function",
      function: { name: "lookup", arguments: '{"city":' },
    });
    expect(chunks.at(-1).choices[0].finish_reason).toBe("tool_calls");
  });

  it("serves the mock provider with no network and no key", async () => {
    const res = await postChat(gateway.url, chatBody("mock-model"));
    const body = await jsonOf(res);
    expect(res.status).toBe(200);
    expect(body.choices[0].message.content).toBe("This is the mock provider answering: Say hello");
    expect(upstream.requests).toHaveLength(0);
  });
});

describe("errors in the OpenAI shape", () => {
  const cases: Array<[string, string, number, string | null, string | null]> = [
    ["malformed JSON", "{not json", 400, "invalid_json", null],
    ["an empty body", "", 400, "invalid_json", null],
    ["a JSON array", "[]", 400, "invalid_json", null],
    [
      "missing messages",
      JSON.stringify({ model: "gpt-4o-mini" }),
      400,
      "missing_required_parameter",
      "messages",
    ],
    [
      "empty messages",
      JSON.stringify({ model: "gpt-4o-mini", messages: [] }),
      400,
      "invalid_value",
      "messages",
    ],
    [
      "messages not an array",
      JSON.stringify({ model: "gpt-4o-mini", messages: "hi" }),
      400,
      "invalid_type",
      "messages",
    ],
    [
      "a message without role",
      JSON.stringify({ model: "gpt-4o-mini", messages: [{ content: "hi" }] }),
      400,
      "missing_required_parameter",
      "messages[0].role",
    ],
    [
      "an unknown role",
      JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "robot", content: "hi" }] }),
      400,
      "invalid_value",
      "messages[0].role",
    ],
    [
      "a user message without content",
      JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user" }] }),
      400,
      "missing_required_parameter",
      "messages[0].content",
    ],
    [
      "missing model",
      JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
      400,
      "missing_required_parameter",
      "model",
    ],
    [
      "model not a string",
      JSON.stringify({ model: 4, messages: [{ role: "user", content: "hi" }] }),
      400,
      "invalid_type",
      "model",
    ],
    ["stream not a boolean", chatBody("gpt-4o-mini", { stream: "yes" }), 400, "invalid_type", "stream"],
    [
      "stream_options without stream",
      chatBody("gpt-4o-mini", { stream_options: { include_usage: true } }),
      400,
      "invalid_value",
      "stream_options",
    ],
    [
      "temperature out of range",
      chatBody("gpt-4o-mini", { temperature: 3 }),
      400,
      "invalid_value",
      "temperature",
    ],
    ["n not an integer", chatBody("gpt-4o-mini", { n: 1.5 }), 400, "invalid_type", "n"],
    ["an unknown model", chatBody("no-such-model"), 404, "model_not_found", "model"],
  ];

  it.each(cases)("rejects %s", async (_what, body, status, code, param) => {
    const res = await postChat(gateway.url, body);
    const json = await jsonOf(res);

    expect(res.status).toBe(status);
    expect(json).toEqual({
      error: { message: expect.any(String), type: "invalid_request_error", param, code },
    });
    expect(upstream.requests).toHaveLength(0);
  });

  it("rejects a body over the size limit with 413", async () => {
    const res = await postChat(gateway.url, chatBody("gpt-4o-mini", { padding: "x".repeat(10_000) }));
    const json = await jsonOf(res);
    expect(res.status).toBe(413);
    expect(json.error.code).toBe("request_too_large");
    expect(upstream.requests).toHaveLength(0);
  });

  it("answers a wrong method with 405 and Allow", async () => {
    const res = await fetch(`${gateway.url}/v1/chat/completions`);
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST, OPTIONS");
    expect((await jsonOf(res)).error.code).toBe("method_not_allowed");
  });

  it("answers an unknown path with 404", async () => {
    const res = await fetch(`${gateway.url}/v1/audio/speech`, { method: "POST", body: "{}" });
    expect(res.status).toBe(404);
    expect((await jsonOf(res)).error).toMatchObject({ type: "invalid_request_error", code: "unknown_url" });
  });

  it("passes an upstream 400 back with the provider's message, never a stack", async () => {
    upstream.queue.push({
      kind: "status",
      status: 400,
      error: {
        message: "Invalid 'tools[0]': bad schema",
        type: "invalid_request_error",
        code: "invalid_value",
      },
    });
    const res = await postChat(gateway.url, chatBody("gpt-4o-mini"));
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(JSON.parse(text).error).toEqual({
      message: "Invalid 'tools[0]': bad schema",
      type: "invalid_request_error",
      param: null,
      code: "invalid_value",
    });
    expect(text).not.toMatch(/at .*\.ts:\d+/);
  });

  it("never shows the provider key, even when the provider echoes it", async () => {
    upstream.queue.push({
      kind: "status",
      status: 400,
      error: { message: "Bad request for key sk-test-secret-key-123456", type: "invalid_request_error" },
    });
    const res = await postChat(gateway.url, chatBody("gpt-4o-mini"));
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(text).not.toContain("sk-test-secret");
    expect(JSON.stringify(gateway.logs)).not.toContain("sk-test-secret");
  });
});

/** A chat body whose first message's content nests `depth` levels in all (the body itself is level 1). */
function nestedBody(depth: number): string {
  // body (1) > messages (2) > message (3) > content array (4) > ... arrays down to `depth`.
  const inner = depth - 3;
  const content = `${"[".repeat(inner)}"x"${"]".repeat(inner)}`;
  return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":${content}}]}`;
}

describe("hostile bodies (issue 9)", () => {
  it("refuses a body nested deeper than 64 levels with a 400, before any upstream call", async () => {
    upstream.queue.push({ kind: "answer" });
    const ok = await postChat(gateway.url, nestedBody(64));
    expect(ok.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);

    const res = await postChat(gateway.url, nestedBody(65));
    expect(res.status).toBe(400);
    expect((await jsonOf(res)).error).toEqual({
      message: "The request body nests arrays and objects deeper than the limit of 64 levels.",
      type: "invalid_request_error",
      param: null,
      code: "nesting_too_deep",
    });
    expect(upstream.requests).toHaveLength(1);
  });

  it("takes the limit from defaults.maxNestingDepth", async () => {
    const strict = await startGateway({
      defaults: { maxNestingDepth: 8 },
      providers: [{ id: "mock", type: "mock", mock: { tokenDelayMs: 0, firstTokenDelayMs: 0 } }],
      models: { "gpt-4o-mini": { targets: [{ provider: "mock", model: "m1" }] } },
    });
    try {
      expect((await postChat(strict.url, nestedBody(8))).status).toBe(200);
      const res = await postChat(strict.url, nestedBody(9));
      expect(res.status).toBe(400);
      expect((await jsonOf(res)).error.message).toContain("limit of 8 levels");
    } finally {
      await strict.close();
    }
  });

  describe("with room for a 20 KB body", () => {
    let roomy: TestGateway;
    beforeAll(async () => {
      roomy = await startGateway({
        health: { failureThreshold: 1 },
        providers: [fakeProvider("primary", upstream.url)],
        models: { "gpt-4o-mini": { targets: [{ provider: "primary", model: "upstream-model" }] } },
      });
    });
    afterAll(() => roomy.close());

    it("answers a body nested 10,000 levels deep with a 400 and never benches the provider", async () => {
      // The attack from issue 9: three of these used to come back 502 and bench a healthy provider.
      for (let i = 0; i < 3; i++) {
        const res = await postChat(roomy.url, nestedBody(10_000));
        expect(res.status).toBe(400);
        expect((await jsonOf(res)).error.code).toBe("nesting_too_deep");
      }
      expect(upstream.requests).toHaveLength(0);
      expect(roomy.logs.filter((l) => l.level === "error")).toEqual([]);

      // A million levels (2 MB): the check itself is iterative, so it cannot overflow either.
      const deepest = await postChat(roomy.url, nestedBody(1_000_000));
      expect(deepest.status).toBe(400);
      expect(upstream.requests).toHaveLength(0);

      upstream.queue.push({ kind: "answer" });
      const normal = await postChat(roomy.url, chatBody("gpt-4o-mini"));
      expect(normal.status).toBe(200);
      expect(normal.headers.get("x-gateway-provider")).toBe("primary");
    });
  });
});

describe("the HTTP surface in the OpenAI error shape (issue 9)", () => {
  it("answers malformed percent-encoding in a path with a 400, not a 500", async () => {
    const res = await fetch(`${gateway.url}/v1/models/%E0%A4%A`);
    expect(res.status).toBe(400);
    expect((await jsonOf(res)).error).toMatchObject({ type: "invalid_request_error", code: "invalid_path" });
    expect(gateway.logs.filter((l) => l.level === "error")).toEqual([]);
  });

  it("answers HEAD like GET, without a body", async () => {
    const get = await fetch(`${gateway.url}/v1/models`);
    const head = await fetch(`${gateway.url}/v1/models`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe(get.headers.get("content-type"));
    expect(await head.text()).toBe("");
    const unknown = await fetch(`${gateway.url}/v1/models/nope`, { method: "HEAD" });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("content-type")).toBe("application/json");
  });

  it("answers HEAD on the chat path with 405 and Allow", async () => {
    const res = await fetch(`${gateway.url}/v1/chat/completions`, { method: "HEAD" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST, OPTIONS");
  });

  it("answers OPTIONS on known paths with 204 and Allow, and 404 elsewhere", async () => {
    const chat = await fetch(`${gateway.url}/v1/chat/completions`, { method: "OPTIONS" });
    expect(chat.status).toBe(204);
    expect(chat.headers.get("allow")).toBe("POST, OPTIONS");
    const models = await fetch(`${gateway.url}/v1/models/gpt-4o-mini`, { method: "OPTIONS" });
    expect(models.status).toBe(204);
    expect(models.headers.get("allow")).toBe("GET, HEAD, OPTIONS");
    const unknown = await fetch(`${gateway.url}/v1/audio/speech`, { method: "OPTIONS" });
    expect(unknown.status).toBe(404);
    expect((await jsonOf(unknown)).error.code).toBe("unknown_url");
  });

  it("answers an internal exception with a 500 naming the request id, logged once at error", async () => {
    const broken = await startGateway(
      {
        providers: [{ id: "mock", type: "mock" }],
        models: { m: { targets: [{ provider: "mock", model: "m" }] } },
      },
      {
        auth: {
          verify: async () => {
            throw new TypeError("Cannot read properties of undefined (reading 'keys')");
          },
        },
      },
    );
    try {
      const res = await fetch(`${broken.url}/v1/models`);
      const requestId = res.headers.get("x-request-id");
      expect(res.status).toBe(500);
      expect(requestId).toMatch(/^req-\d+$/);
      const { error } = await jsonOf(res);
      expect(error).toMatchObject({ type: "api_error", code: "internal_error" });
      expect(error.message).toContain(requestId);
      expect(error.message).not.toContain("Cannot read");
      expect(broken.logs.filter((l) => l.level === "error")).toEqual([
        expect.objectContaining({ msg: "unhandled error", requestId }),
      ]);
    } finally {
      await broken.close();
    }
  });
});

describe("other endpoints", () => {
  it("lists the public model names", async () => {
    const res = await fetch(`${gateway.url}/v1/models`);
    expect(res.status).toBe(200);
    const body = await jsonOf(res);
    expect(body.object).toBe("list");
    expect(body.data.map((m: { id: string }) => m.id)).toEqual(["gpt-4o-mini", "mock-model"]);
  });

  it("retrieves one model and 404s an unknown one", async () => {
    expect((await jsonOf(await fetch(`${gateway.url}/v1/models/gpt-4o-mini`))).id).toBe("gpt-4o-mini");
    expect((await fetch(`${gateway.url}/v1/models/nope`)).status).toBe(404);
  });

  it("says it is up on /health", async () => {
    const res = await fetch(`${gateway.url}/health`);
    expect(res.status).toBe(200);
    expect(await jsonOf(res)).toEqual({ status: "ok" });
  });
});

describe("client disconnect", () => {
  it("aborts the upstream request when the caller goes away", async () => {
    upstream.queue.push({
      kind: "answer",
      firstTokenDelayMs: 0,
      tokenDelayMs: 100,
      tokens: Array(50).fill(" tok"),
    });
    const res = await postChat(gateway.url, chatBody("gpt-4o-mini", { stream: true }), {});
    const reader = res.body?.getReader();
    await reader?.read();
    await reader?.cancel();

    await expect.poll(() => upstream.requests[0]?.closedEarly, { timeout: 3000 }).toBe(true);
  });
});
