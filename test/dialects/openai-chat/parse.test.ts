import { describe, expect, it } from "vitest";
import type { GenerationRequest } from "../../../lib/core/request.ts";
import { toGeneration } from "../../../lib/dialects/openai-chat/parse.ts";
import type { ChatRequest } from "../../../lib/dialects/openai-chat/wire.ts";
import { InvalidRequestError } from "../../../lib/errors.ts";

/** The 400 `toGeneration` throws for `body`; fails the test when it returns or throws another error. */
function refused(body: unknown): InvalidRequestError {
  try {
    toGeneration(body as ChatRequest);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  throw new Error("expected a 400");
}

const PNG = "iVBORw0KGgoAAAANSUhEUg==";

describe("toGeneration: the canonical request for an OpenAI chat body", () => {
  it("maps a whole tool-using conversation, every part in place", () => {
    // Prepare: system first and a developer message mid-conversation, user parts of each kind,
    // an assistant turn with reasoning and two calls, answered by two consecutive tool messages.
    const body: ChatRequest = {
      model: "route-a",
      messages: [
        { role: "system", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?", cache_control: { type: "ephemeral" } },
            { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}`, detail: "low" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
          ],
        },
        {
          role: "assistant",
          reasoning_content: "Two images; look up both.",
          content: "Checking.",
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "lookup", arguments: '{"q":"png"}' } },
            { id: "call_2", type: "function", function: { name: "lookup", arguments: '{"q":"cat"}' } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "a chart" },
        { role: "tool", tool_call_id: "call_2", name: "lookup", content: [{ type: "text", text: "a cat" }] },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "user", content: "So?" },
      ],
      tools: [
        {
          type: "function",
          function: {
            name: "lookup",
            description: "Looks things up",
            parameters: { type: "object", properties: { q: { type: "string" } } },
            strict: true,
          },
        },
        { type: "custom", custom: { name: "apply_patch", format: { type: "grammar", syntax: "lark" } } },
      ],
      tool_choice: { type: "function", function: { name: "lookup" } },
      parallel_tool_calls: false,
      max_completion_tokens: 300,
      max_tokens: 100,
      temperature: 0.5,
      top_p: 0.9,
      stop: "END",
      n: 2,
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", description: "The answer", schema: { type: "object" }, strict: true },
      },
      reasoning_effort: "low",
      user: "user-42",
      stream: true,
      stream_options: { include_usage: true },
      bedrock: { cachePoints: { system: true } },
    };
    // Act
    const g = toGeneration(body);
    // Assess: written out by hand.
    const expected: GenerationRequest = {
      model: "route-a",
      system: [
        { type: "text", text: "Be brief." },
        { type: "text", text: "Answer in French." },
      ],
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?", cache: {} },
            { type: "image", mediaType: "image/png", data: PNG, detail: "low" },
            { type: "image", mediaType: "image/*", url: "https://example.com/cat.jpg" },
          ],
        },
        {
          role: "assistant",
          content: [
            { type: "reasoning", text: "Two images; look up both." },
            { type: "text", text: "Checking." },
            { type: "tool-call", id: "call_1", name: "lookup", input: '{"q":"png"}' },
            { type: "tool-call", id: "call_2", name: "lookup", input: '{"q":"cat"}' },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool-result", callId: "call_1", content: [{ type: "text", text: "a chart" }] },
            { type: "tool-result", callId: "call_2", content: [{ type: "text", text: "a cat" }] },
          ],
        },
        { role: "user", content: [{ type: "text", text: "So?" }] },
      ],
      tools: [
        {
          name: "lookup",
          description: "Looks things up",
          parameters: { type: "object", properties: { q: { type: "string" } } },
          strict: true,
        },
        { name: "apply_patch", custom: { format: { type: "grammar", syntax: "lark" } } },
      ],
      toolChoice: { type: "tool", name: "lookup" },
      parallelToolCalls: false,
      maxOutputTokens: 300,
      temperature: 0.5,
      topP: 0.9,
      stop: ["END"],
      choices: 2,
      responseFormat: {
        type: "json",
        name: "answer",
        description: "The answer",
        schema: { type: "object" },
        strict: true,
      },
      reasoning: { effort: "low" },
      user: "user-42",
      stream: true,
      extensions: { bedrock: { cachePoints: { system: true } } },
      unmapped: {},
    };
    expect(g).toEqual(expected);
  });

  it("keeps every field it has no place for under its OpenAI name, and nothing that is null", () => {
    // Prepare: top-level, message-level and part-level extras, and well-formed kinds with no mapping.
    const audio = { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } };
    const file = { type: "file", file: { file_id: "file-1" } };
    const body = {
      model: "m",
      seed: 7,
      logprobs: true,
      top_logprobs: 2,
      presence_penalty: 0.5,
      frequency_penalty: null,
      prediction: { type: "content", content: "x" },
      messages: [
        { role: "system", content: "s", name: "rules" },
        { role: "user", content: [{ type: "text", text: "hi" }, audio, file] },
        { role: "user", name: "alice", content: "hello" },
        { role: "assistant", content: "a", prefix: true, annotations: [], audio: null },
        { role: "function", name: "legacy", content: "42" },
        { role: "assistant", content: null, tool_calls: [{ id: "s1", type: "web_search_call" }] },
      ],
      tools: [{ type: "web_search_preview" }],
      tool_choice: { type: "allowed_tools", allowed_tools: { mode: "auto", tools: [] } },
      response_format: { type: "grammar", grammar: "start: x" },
    };
    // Act
    const g = toGeneration(body as ChatRequest);
    // Assess
    expect(g.unmapped).toEqual({
      seed: 7,
      logprobs: true,
      top_logprobs: 2,
      presence_penalty: 0.5,
      prediction: { type: "content", content: "x" },
      "messages[0].name": "rules",
      "messages[1].content[1]": audio,
      "messages[1].content[2]": file,
      "messages[2].name": "alice",
      "messages[3].prefix": true,
      "messages[4]": { role: "function", name: "legacy", content: "42" },
      "messages[5].tool_calls[0]": { id: "s1", type: "web_search_call" },
      "tools[0]": { type: "web_search_preview" },
      tool_choice: { type: "allowed_tools", allowed_tools: { mode: "auto", tools: [] } },
      response_format: { type: "grammar", grammar: "start: x" },
    });
    // What was mapped stays mapped: the text part beside the audio, the named user's text.
    expect(g.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "hi" }] },
      { role: "user", content: [{ type: "text", text: "hello" }] },
      { role: "assistant", content: [{ type: "text", text: "a" }] },
      { role: "assistant", content: [] },
    ]);
    expect(g.tools).toEqual([]);
    expect(g.toolChoice).toBeUndefined();
    expect(g.responseFormat).toBeUndefined();
  });

  it("keeps a `__proto__` field as an own key, never as the prototype", () => {
    // Prepare: JSON.parse makes `__proto__` an own property, as a caller's body would.
    const body = JSON.parse('{"model":"m","messages":[],"__proto__":{"polluted":true}}') as ChatRequest;
    // Act
    const g = toGeneration(body);
    // Assess
    expect(Object.getPrototypeOf(g.unmapped)).toBe(Object.prototype);
    expect(Object.keys(g.unmapped)).toEqual(["__proto__"]);
    expect((g.unmapped as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it("merges consecutive tool messages only, and no other messages of one role", () => {
    // Prepare
    const body: ChatRequest = {
      model: "m",
      messages: [
        { role: "user", content: "a" },
        { role: "user", content: "b" },
        { role: "assistant", content: "c" },
        { role: "assistant", content: "d" },
        { role: "tool", tool_call_id: "1", content: "r1" },
        { role: "user", content: "e" },
        { role: "tool", tool_call_id: "2", content: "r2" },
      ],
    };
    // Act
    const g = toGeneration(body);
    // Assess
    expect(g.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "a" }] },
      { role: "user", content: [{ type: "text", text: "b" }] },
      { role: "assistant", content: [{ type: "text", text: "c" }] },
      { role: "assistant", content: [{ type: "text", text: "d" }] },
      {
        role: "user",
        content: [{ type: "tool-result", callId: "1", content: [{ type: "text", text: "r1" }] }],
      },
      { role: "user", content: [{ type: "text", text: "e" }] },
      {
        role: "user",
        content: [{ type: "tool-result", callId: "2", content: [{ type: "text", text: "r2" }] }],
      },
    ]);
  });

  it("reads refusals, custom tool calls and content parts of the assistant", () => {
    // Act
    const g = toGeneration({
      model: "m",
      messages: [
        { role: "assistant", content: null, refusal: "I can't help with that." },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Part one. " },
            { type: "refusal", refusal: "No more." },
          ],
        },
        {
          role: "assistant",
          content: "",
          tool_calls: [
            { id: "c1", type: "custom", custom: { name: "apply_patch", input: "*** Begin Patch" } },
          ],
        },
      ],
    });
    // Assess
    expect(g.messages).toEqual([
      { role: "assistant", content: [{ type: "refusal", text: "I can't help with that." }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Part one. " },
          { type: "refusal", text: "No more." },
        ],
      },
      {
        role: "assistant",
        content: [
          { type: "text", text: "" },
          { type: "tool-call", id: "c1", name: "apply_patch", input: "*** Begin Patch", custom: true },
        ],
      },
    ]);
  });

  it("marks the last part of a message, and a tool, that carries cache_control", () => {
    // Act
    const g = toGeneration({
      model: "m",
      messages: [
        { role: "system", content: "long rules", cache_control: { type: "ephemeral", ttl: "1h" } },
        {
          role: "user",
          content: [
            { type: "text", text: "a" },
            { type: "text", text: "b" },
          ],
          cache_control: { type: "ephemeral" },
        },
      ],
      tools: [{ type: "function", function: { name: "t" }, cache_control: { type: "ephemeral" } }],
    });
    // Assess
    expect(g.system).toEqual([{ type: "text", text: "long rules", cache: { ttl: "1h" } }]);
    expect(g.messages).toEqual([
      {
        role: "user",
        content: [
          { type: "text", text: "a" },
          { type: "text", text: "b", cache: {} },
        ],
      },
    ]);
    expect(g.tools).toEqual([{ name: "t", cache: {} }]);
  });

  it.each([
    ["none", { type: "none" }],
    ["auto", { type: "auto" }],
    ["required", { type: "required" }],
    [
      { type: "custom", custom: { name: "apply_patch" } },
      { type: "tool", name: "apply_patch" },
    ],
  ])("reads tool_choice %j", (choice, expected) => {
    expect(toGeneration({ model: "m", messages: [], tool_choice: choice }).toolChoice).toEqual(expected);
  });

  it("reads response_format text as none, json_object as JSON of any shape", () => {
    const text = toGeneration({ model: "m", messages: [], response_format: { type: "text" } });
    const json = toGeneration({ model: "m", messages: [], response_format: { type: "json_object" } });
    expect(text.responseFormat).toBeUndefined();
    expect(text.unmapped).toEqual({});
    expect(json.responseFormat).toEqual({ type: "json" });
  });

  it("takes max_tokens when max_completion_tokens is absent, and stop as an array", () => {
    const g = toGeneration({ model: "m", messages: [], max_tokens: 64, stop: ["a", "b"] });
    expect(g.maxOutputTokens).toBe(64);
    expect(g.stop).toEqual(["a", "b"]);
    expect(g.stream).toBe(false);
  });

  it("reads a data URL that is not base64 as a URL", () => {
    const g = toGeneration({
      model: "m",
      messages: [
        {
          role: "user",
          content: [{ type: "image_url", image_url: { url: "data:image/svg+xml,%3Csvg%3E" } }],
        },
      ],
    });
    expect(g.messages[0]?.content).toEqual([
      { type: "image", mediaType: "image/*", url: "data:image/svg+xml,%3Csvg%3E" },
    ]);
  });
});

describe("toGeneration: a malformed body is a 400 naming the field", () => {
  const base = { model: "m", messages: [{ role: "user", content: "hi" }] };
  it.each<[string, unknown]>([
    ["model", { ...base, model: 42 }],
    ["messages", { ...base, messages: "hi" }],
    ["messages[0]", { ...base, messages: ["hi"] }],
    ["messages[0].role", { ...base, messages: [{ content: "hi" }] }],
    ["messages[0].role", { ...base, messages: [{ role: "robot", content: "hi" }] }],
    ["messages[0].role", { ...base, messages: [{ role: "constructor", content: "hi" }] }],
    ["messages[0].role", { ...base, messages: [{ role: "__proto__", content: "hi" }] }],
    ["messages[0].content", { ...base, messages: [{ role: "user" }] }],
    ["messages[0].content", { ...base, messages: [{ role: "user", content: 5 }] }],
    ["messages[0].content[0]", { ...base, messages: [{ role: "user", content: ["hi"] }] }],
    [
      "messages[0].content[0].text",
      { ...base, messages: [{ role: "user", content: [{ type: "text", text: 1 }] }] },
    ],
    ["messages[0].content[0].type", { ...base, messages: [{ role: "user", content: [{ text: "hi" }] }] }],
    [
      "messages[0].content[0].image_url.url",
      { ...base, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: 1 } }] }] },
    ],
    [
      "messages[0].content[0].cache_control",
      { ...base, messages: [{ role: "user", content: [{ type: "text", text: "a", cache_control: "yes" }] }] },
    ],
    ["messages[0].tool_calls", { ...base, messages: [{ role: "assistant", tool_calls: {} }] }],
    [
      "messages[0].tool_calls[0].id",
      { ...base, messages: [{ role: "assistant", tool_calls: [{ function: { name: "f" } }] }] },
    ],
    [
      "messages[0].tool_calls[0].function.name",
      {
        ...base,
        messages: [{ role: "assistant", tool_calls: [{ id: "c", type: "function", function: {} }] }],
      },
    ],
    [
      "messages[0].tool_calls[0].function.arguments",
      {
        ...base,
        messages: [{ role: "assistant", tool_calls: [{ id: "c", function: { name: "f", arguments: {} } }] }],
      },
    ],
    ["messages[0].reasoning_content", { ...base, messages: [{ role: "assistant", reasoning_content: 1 }] }],
    ["messages[0].refusal", { ...base, messages: [{ role: "assistant", refusal: true }] }],
    ["messages[0].tool_call_id", { ...base, messages: [{ role: "tool", content: "r" }] }],
    ["messages[0].tool_call_id", { ...base, messages: [{ role: "tool", tool_call_id: "", content: "r" }] }],
    ["tools", { ...base, tools: {} }],
    ["tools[0]", { ...base, tools: [1] }],
    ["tools[0].type", { ...base, tools: [{ function: { name: "f" } }] }],
    ["tools[0].function.name", { ...base, tools: [{ type: "function", function: { description: "d" } }] }],
    [
      "tools[0].function.parameters",
      { ...base, tools: [{ type: "function", function: { name: "f", parameters: "{}" } }] },
    ],
    ["tool_choice", { ...base, tool_choice: "sometimes" }],
    ["tool_choice", { ...base, tool_choice: 1 }],
    ["tool_choice.function.name", { ...base, tool_choice: { type: "function", function: {} } }],
    ["stop", { ...base, stop: 1 }],
    ["stop[1]", { ...base, stop: ["a", 2] }],
    ["response_format", { ...base, response_format: "json" }],
    ["response_format.json_schema", { ...base, response_format: { type: "json_schema" } }],
    ["temperature", { ...base, temperature: "hot" }],
    ["max_tokens", { ...base, max_tokens: 1.5 }],
    ["n", { ...base, n: "2" }],
    ["stream", { ...base, stream: "yes" }],
    ["parallel_tool_calls", { ...base, parallel_tool_calls: 1 }],
    ["user", { ...base, user: 7 }],
  ])("names %s", (param, body) => {
    // Act
    const error = refused(body);
    // Assess
    expect(error.status).toBe(400);
    expect(error.param).toBe(param);
    expect(error.message).toContain(`'${param}'`);
  });

  it("quotes caller text in the message bounded, however long", () => {
    // Prepare: a 100,000-character value in two places that are quoted.
    const long = "x".repeat(100_000);
    // Act
    const choice = refused({ model: "m", messages: [], tool_choice: long });
    const role = refused({ model: "m", messages: [{ role: long, content: "hi" }] });
    // Assess
    expect(choice.message.length).toBeLessThan(400);
    expect(choice.message).toContain("xxx…");
    expect(role.message.length).toBeLessThan(400);
  });
});

describe("toGeneration: bounded over the caller's structure", () => {
  it("reads a system message of 130,000 parts", () => {
    // Prepare
    const parts = Array.from({ length: 130_000 }, (_, i) => ({ type: "text", text: `p${i}` }));
    // Act
    const g = toGeneration({ model: "m", messages: [{ role: "system", content: parts }] });
    // Assess
    expect(g.system).toHaveLength(130_000);
    expect(g.system[129_999]).toEqual({ type: "text", text: "p129999" });
  });

  it("reads an assistant turn of 130,000 tool calls and keeps a 100,000-level schema by reference", () => {
    // Prepare: the schema is built with a loop (a literal this deep would not parse as source).
    const calls = Array.from({ length: 130_000 }, (_, i) => ({
      id: `c${i}`,
      type: "function",
      function: { name: "f", arguments: "{}" },
    }));
    let schema: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 100_000; i++) schema = { type: "object", properties: { x: schema } };
    // Act
    const g = toGeneration({
      model: "m",
      messages: [{ role: "assistant", content: null, tool_calls: calls }],
      tools: [{ type: "function", function: { name: "f", parameters: schema } }],
    });
    // Assess
    const content = g.messages[0]?.content ?? [];
    expect(content).toHaveLength(130_000);
    expect(content[129_999]).toEqual({ type: "tool-call", id: "c129999", name: "f", input: "{}" });
    expect(g.tools?.[0]?.parameters).toBe(schema);
  });
});
