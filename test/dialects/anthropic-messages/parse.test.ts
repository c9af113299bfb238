import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { GenerationRequest } from "../../../lib/core/request.ts";
import { toGeneration } from "../../../lib/dialects/anthropic-messages/parse.ts";
import { InvalidRequestError, MAX_ECHO_CHARS } from "../../../lib/errors.ts";

/** The 400 `toGeneration` throws for `body`; fails the test when it returns or throws another error. */
function refused(body: unknown): InvalidRequestError {
  try {
    toGeneration(body);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  throw new Error("expected a 400");
}

/** A recorded Claude Code request (copied from shared/clients/ into test/fixtures/clients/), its body as sent. */
function recorded(name: string): Record<string, unknown> {
  const file = new URL(`../../fixtures/clients/claude-code-2.1.332.${name}.json`, import.meta.url);
  return (JSON.parse(readFileSync(file, "utf8")) as { body: Record<string, unknown> }).body;
}

const PNG = "iVBORw0KGgoAAAANSUhEUg==";

describe("toGeneration: the canonical request for a Messages body", () => {
  it("maps a whole tool-using conversation with thinking, every block in place", () => {
    // Prepare
    const body = {
      model: "claude-sonnet-4-5",
      max_tokens: 1024,
      system: [
        { type: "text", text: "You are terse." },
        { type: "text", text: "Tools first.", cache_control: { type: "ephemeral", ttl: "1h" } },
      ],
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: PNG } },
            {
              type: "image",
              source: { type: "url", url: "https://example.com/cat.jpg" },
              cache_control: { type: "ephemeral" },
            },
          ],
        },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "Two images.", signature: "sig-1" },
            { type: "redacted_thinking", data: "opaque" },
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_1", name: "lookup", input: { q: "cat" } },
          ],
        },
        {
          role: "user",
          content: [
            {
              type: "tool_result",
              tool_use_id: "toolu_1",
              content: [
                { type: "text", text: "a cat" },
                { type: "image", source: { type: "base64", media_type: "image/jpeg", data: PNG } },
              ],
              is_error: true,
            },
            { type: "text", text: "So?" },
          ],
        },
        { role: "system", content: "Answer in French." },
      ],
      tools: [
        {
          name: "lookup",
          description: "Looks things up",
          input_schema: { type: "object", properties: { q: { type: "string" } } },
          strict: true,
          cache_control: { type: "ephemeral" },
        },
      ],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
      temperature: 0.5,
      top_p: 0.9,
      top_k: 40,
      stop_sequences: ["END"],
      metadata: { user_id: "user-42" },
      thinking: { type: "enabled", budget_tokens: 2048 },
      stream: true,
    };
    // Act
    const g = toGeneration(body);
    // Assess: written out by hand.
    expect(g).toEqual({
      model: "claude-sonnet-4-5",
      system: [
        { type: "text", text: "You are terse." },
        { type: "text", text: "Tools first.", cache: { ttl: "1h" } },
        { type: "text", text: "Answer in French." },
      ],
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?" },
            { type: "image", mediaType: "image/png", data: PNG },
            { type: "image", mediaType: "image/*", url: "https://example.com/cat.jpg", cache: {} },
          ],
        },
        {
          role: "assistant",
          content: [
            { type: "reasoning", text: "Two images.", signature: "sig-1", family: "anthropic" },
            { type: "reasoning", text: "", redacted: "opaque", family: "anthropic" },
            { type: "text", text: "Checking." },
            { type: "tool-call", id: "toolu_1", name: "lookup", input: '{"q":"cat"}' },
          ],
        },
        {
          role: "user",
          content: [
            {
              type: "tool-result",
              callId: "toolu_1",
              content: [
                { type: "text", text: "a cat" },
                { type: "image", mediaType: "image/jpeg", data: PNG },
              ],
              isError: true,
            },
            { type: "text", text: "So?" },
          ],
        },
      ],
      tools: [
        {
          name: "lookup",
          description: "Looks things up",
          parameters: { type: "object", properties: { q: { type: "string" } } },
          strict: true,
          cache: {},
        },
      ],
      toolChoice: { type: "required" },
      parallelToolCalls: false,
      maxOutputTokens: 1024,
      temperature: 0.5,
      topP: 0.9,
      topK: 40,
      stop: ["END"],
      reasoning: { mode: "enabled", budgetTokens: 2048 },
      user: "user-42",
      stream: true,
      extensions: {},
      unmapped: {},
    } satisfies GenerationRequest);
  });

  it("keeps what has no canonical place in `unmapped`, by its path", () => {
    const search = { type: "search_result", source: "s", title: "t", content: [] };
    const server = { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: { query: "x" } };
    const document = { type: "document", source: { type: "text", media_type: "text/plain", data: "d" } };
    const g = toGeneration({
      model: "m",
      max_tokens: 10,
      messages: [
        {
          role: "user",
          content: [{ type: "text", text: "hi", citations: [{ type: "x" }] }, document, search],
        },
        { role: "assistant", content: [server, { type: "text", text: "ok" }] },
        {
          role: "user",
          content: [
            { type: "image", source: { type: "file", file_id: "file_1" } },
            { type: "tool_result", tool_use_id: "t", content: [document] },
          ],
        },
      ],
      tools: [{ type: "web_search_20250305", name: "web_search", max_uses: 3 }],
      tool_choice: { type: "auto" },
      thinking: { type: "adaptive", display: "omitted" },
      metadata: { user_id: null, tier: "gold" },
      context_management: { edits: [] },
      output_config: { effort: "low" },
      service_tier: "auto",
      container: "c1",
      mcp_servers: [{ type: "url", url: "https://mcp.example", name: "x" }],
    });
    expect(g.unmapped).toEqual({
      "messages[0].content[0].citations": [{ type: "x" }],
      "messages[0].content[1]": document,
      "messages[0].content[2]": search,
      "messages[1].content[0]": server,
      "messages[2].content[0]": { type: "image", source: { type: "file", file_id: "file_1" } },
      "messages[2].content[1].content[0]": document,
      "tools[0]": { type: "web_search_20250305", name: "web_search", max_uses: 3 },
      "thinking.display": "omitted",
      "metadata.tier": "gold",
      context_management: { edits: [] },
      output_config: { effort: "low" },
      service_tier: "auto",
      container: "c1",
      mcp_servers: [{ type: "url", url: "https://mcp.example", name: "x" }],
    });
    expect(g.reasoning).toEqual({ mode: "adaptive" });
    expect(g.tools).toEqual([]);
    expect(g.user).toBeUndefined();
    expect(g.messages[1]).toEqual({ role: "assistant", content: [{ type: "text", text: "ok" }] });
    expect(g.messages[2]).toEqual({
      role: "user",
      content: [{ type: "tool-result", callId: "t", content: [] }],
    });
  });

  it("reads tool_choice tool and none, parallel calls left on, thinking disabled, a thinking block unsigned", () => {
    const g = toGeneration({
      model: "m",
      max_tokens: 10,
      messages: [
        { role: "user", content: "hi" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "hmm" },
            { type: "text", text: "yo" },
          ],
        },
      ],
      tool_choice: { type: "tool", name: "lookup", disable_parallel_tool_use: false },
      thinking: { type: "disabled" },
    });
    expect(g.toolChoice).toEqual({ type: "tool", name: "lookup" });
    expect(g.parallelToolCalls).toBe(true);
    expect(g.reasoning).toEqual({ mode: "disabled" });
    // No signature: it came from a translated target, and has no family.
    expect(g.messages[1]?.content[0]).toEqual({ type: "reasoning", text: "hmm" });
    expect(
      toGeneration({ model: "m", max_tokens: 1, messages: [], tool_choice: { type: "none" } }).toolChoice,
    ).toEqual({
      type: "none",
    });
  });

  it("accepts Claude Code's first request, system entries inside messages included", () => {
    // Prepare
    const body = recorded("messages-request");
    // Act
    const g = toGeneration(body);
    // Assess
    expect(g.model).toBe("claude-opus-5-5");
    expect(g.maxOutputTokens).toBe(128000);
    expect(g.stream).toBe(true);
    expect(g.user).toBe("<opaque>");
    expect(g.reasoning).toEqual({ mode: "adaptive" });
    expect(g.system).toEqual([
      { type: "text", text: "<text: 74 chars>" },
      { type: "text", text: "<text: 62 chars>", cache: {} },
      { type: "text", text: "<text: 7011 chars>", cache: {} },
      { type: "text", text: "<text: 9189 chars>", cache: {} },
    ]);
    expect(g.messages).toEqual([
      {
        role: "user",
        content: [
          { type: "text", text: "<text: 581 chars>" },
          { type: "text", text: "say ping" },
        ],
      },
    ]);
    expect(g.tools?.map((tool) => tool.name)).toEqual([
      "Agent",
      "Bash",
      "Edit",
      "ListAgents",
      "Read",
      "ReportFindings",
      "ScheduleWakeup",
      "Skill",
      "ToolSearch",
      "Workflow",
      "DeferredToolPlaceholder",
      "Write",
    ]);
    expect(g.unmapped).toEqual({
      "messages[1].output_config": { effort: "medium" },
      "tools[10].defer_loading": true,
      "thinking.display": "omitted",
      context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
      output_config: { effort: "medium" },
    });
  });

  it("accepts Claude Code's tool-loop request: the tool_use answered by its tool_result", () => {
    // Prepare: the recording elides the tools; they are those of the first request.
    const body = { ...recorded("messages-tool-result"), tools: recorded("messages-request").tools };
    // Act
    const g = toGeneration(body);
    // Assess
    expect(g.system.map((part) => part.text)).toEqual([
      "<text: 74 chars>",
      "<text: 62 chars>",
      "<text: 7030 chars>",
      "<text: 9201 chars>",
    ]);
    expect(g.messages.slice(1)).toEqual([
      {
        role: "assistant",
        content: [
          {
            type: "tool-call",
            id: "toolu_agent1",
            name: "Bash",
            input: '{"command":"echo agent-ok-s1","description":"<description>"}',
          },
        ],
      },
      {
        role: "user",
        content: [
          {
            type: "tool-result",
            callId: "toolu_agent1",
            content: [{ type: "text", text: "agent-ok-s1" }],
            cache: {},
          },
        ],
      },
    ]);
    expect(g.unmapped).toEqual({
      "messages[1].output_config": { effort: "medium" },
      "tools[10].defer_loading": true,
      "thinking.display": "omitted",
      context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
      output_config: { effort: "medium" },
    });
  });

  it.each([
    [{ model: "m", messages: [] }, "max_tokens", "max_tokens: Field required"],
    [
      { model: "m", max_tokens: 1.5, messages: [] },
      "max_tokens",
      "max_tokens: Input should be a positive integer",
    ],
    [{ max_tokens: 1, messages: [] }, "model", "model: Field required"],
    [{ model: "m", max_tokens: 1, messages: {} }, "messages", "messages: Input should be an array"],
    [
      { model: "m", max_tokens: 1, messages: [{ content: "x" }] },
      "messages[0].role",
      "messages[0].role: Field required",
    ],
    [
      { model: "m", max_tokens: 1, messages: [{ role: "user" }] },
      "messages[0].content",
      "messages[0].content: Field required",
    ],
    [
      { model: "m", max_tokens: 1, messages: [{ role: "user", content: [{ type: "text" }] }] },
      "messages[0].content[0].text",
      "messages[0].content[0].text: Field required",
    ],
    [
      {
        model: "m",
        max_tokens: 1,
        messages: [{ role: "assistant", content: [{ type: "tool_use", name: "x", input: {} }] }],
      },
      "messages[0].content[0].id",
      "messages[0].content[0].id: Field required",
    ],
    [
      {
        model: "m",
        max_tokens: 1,
        messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "t", is_error: "yes" }] }],
      },
      "messages[0].content[0].is_error",
      "messages[0].content[0].is_error: Input should be a boolean",
    ],
    [
      { model: "m", max_tokens: 1, messages: [{ role: "system", content: [{ type: "image" }] }] },
      "messages[0].content[0].type",
      "messages[0].content[0].type: Input should be 'text'",
    ],
    [
      { model: "m", max_tokens: 1, messages: [], system: 3 },
      "system",
      "system: Input should be a string or an array of text blocks",
    ],
    [
      { model: "m", max_tokens: 1, messages: [], tools: [{ name: "x" }] },
      "tools[0].input_schema",
      "tools[0].input_schema: Field required",
    ],
    [
      { model: "m", max_tokens: 1, messages: [], tool_choice: { type: "tool" } },
      "tool_choice.name",
      "tool_choice.name: Field required",
    ],
    [
      { model: "m", max_tokens: 1, messages: [], thinking: { type: "enabled" } },
      "thinking.budget_tokens",
      "thinking.budget_tokens: Field required",
    ],
    [
      { model: "m", max_tokens: 1, messages: [], stop_sequences: [1] },
      "stop_sequences[0]",
      "stop_sequences[0]: Input should be a string",
    ],
    [{ model: "m", max_tokens: 1, messages: [], top_k: 1.5 }, "top_k", "top_k: Input should be an integer"],
  ])("refuses a malformed body, naming the field (%#)", (body, param, message) => {
    const error = refused(body);
    expect(error.status).toBe(400);
    expect(error.kind).toBe("invalid_request");
    expect(error.param).toBe(param);
    expect(error.message).toBe(message);
  });

  it("quotes an invalid role bounded, never whole", () => {
    const role = "x".repeat(100_000);
    const error = refused({ model: "m", max_tokens: 1, messages: [{ role, content: "hi" }] });
    expect(error.param).toBe("messages[0].role");
    expect(error.message.length).toBeLessThan(MAX_ECHO_CHARS + 100);
    expect(error.message).toContain(`'${"x".repeat(MAX_ECHO_CHARS)}…'`);
  });

  it("walks 130,000 blocks and a schema nested 10,000 deep without overflowing the stack", () => {
    let schema: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 10_000; i++) schema = { type: "object", properties: { a: schema } };
    const content = Array.from({ length: 130_000 }, () => ({ type: "text", text: "a" }));
    const g = toGeneration({
      model: "m",
      max_tokens: 1,
      messages: [{ role: "user", content }],
      tools: [{ name: "deep", input_schema: schema }],
    });
    expect(g.messages[0]?.content.length).toBe(130_000);
    expect(g.tools?.[0]?.parameters).toBe(schema);
  });

  it("refuses a tool_use input too deep for JSON as the caller's 400, not a crash", () => {
    let input: unknown = 1;
    for (let i = 0; i < 200_000; i++) input = [input];
    const error = refused({
      model: "m",
      max_tokens: 1,
      messages: [{ role: "assistant", content: [{ type: "tool_use", id: "t", name: "n", input }] }],
    });
    expect(error.param).toBe("messages[0].content[0].input");
  });

  it("keeps a `__proto__` field as an own unmapped key", () => {
    const body = JSON.parse('{"model":"m","max_tokens":1,"messages":[],"__proto__":{"polluted":true}}');
    const g = toGeneration(body);
    expect(Object.keys(g.unmapped)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
