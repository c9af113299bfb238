import { describe, expect, it } from "vitest";
import type { GenerationRequest } from "../../../lib/core/request.ts";
import { toGeneration } from "../../../lib/dialects/openai-chat/parse.ts";
import { toChatRequest } from "../../../lib/dialects/openai-chat/request.ts";
import type { ChatRequest } from "../../../lib/dialects/openai-chat/wire.ts";

const PNG = "iVBORw0KGgoAAAANSUhEUg==";

/** A canonical request as an Anthropic Messages caller's would read: signed thinking, cache marks. */
function fromAnotherDialect(): GenerationRequest {
  return {
    model: "deepseek-chat",
    system: [
      { type: "text", text: "You are Claude Code.", cache: { ttl: "1h" } },
      { type: "text", text: "Be brief." },
    ],
    messages: [
      { role: "user", content: [{ type: "text", text: "Read the screenshot." }] },
      {
        role: "assistant",
        content: [
          { type: "reasoning", text: "Use the tool.", signature: "EqQB...", family: "anthropic" },
          { type: "text", text: "Reading." },
          { type: "tool-call", id: "toolu_1", name: "Read", input: '{"path":"a.png"}' },
        ],
      },
      {
        role: "user",
        content: [
          {
            type: "tool-result",
            callId: "toolu_1",
            isError: true,
            content: [
              { type: "text", text: "Here it is:" },
              { type: "image", mediaType: "image/png", data: PNG },
            ],
          },
          { type: "text", text: "What does it show?" },
        ],
      },
    ],
    tools: [{ name: "Read", description: "Reads a file", parameters: { type: "object" }, cache: {} }],
    toolChoice: { type: "tool", name: "Read" },
    maxOutputTokens: 1024,
    temperature: 1,
    topK: 40,
    stop: ["\n\nHuman:"],
    reasoning: { budgetTokens: 2048 },
    user: "dev-7",
    stream: true,
    extensions: {},
    unmapped: { context_management: { edits: [] }, metadata: { user_id: "dev-7" } },
  };
}

describe("toChatRequest", () => {
  it("writes a canonical request as an OpenAI chat body, reporting what it cannot carry", () => {
    // Prepare
    const dropped: string[] = [];
    // Act
    const body = toChatRequest(fromAnotherDialect(), { onDrop: (what) => dropped.push(what) });
    // Assess: written out by hand.
    expect(body).toEqual({
      model: "deepseek-chat",
      messages: [
        { role: "system", content: "You are Claude Code." },
        { role: "system", content: "Be brief." },
        { role: "user", content: "Read the screenshot." },
        {
          role: "assistant",
          content: "Reading.",
          tool_calls: [
            { id: "toolu_1", type: "function", function: { name: "Read", arguments: '{"path":"a.png"}' } },
          ],
        },
        { role: "tool", tool_call_id: "toolu_1", content: "Here it is:" },
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}` } },
            { type: "text", text: "What does it show?" },
          ],
        },
      ],
      tools: [
        {
          type: "function",
          function: { name: "Read", description: "Reads a file", parameters: { type: "object" } },
        },
      ],
      tool_choice: { type: "function", function: { name: "Read" } },
      max_tokens: 1024,
      temperature: 1,
      stop: ["\n\nHuman:"],
      user: "dev-7",
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(dropped.sort()).toEqual(
      [
        "cache",
        "cache",
        "context_management",
        "isError",
        "metadata",
        "reasoning",
        "reasoning.budgetTokens",
        "topK",
      ].sort(),
    );
  });

  it("with cacheControl writes Anthropic's cache_control, and with a family keeps that family's reasoning", () => {
    // Prepare
    const g = fromAnotherDialect();
    const dropped: string[] = [];
    // Act
    const body = toChatRequest(g, {
      cacheControl: true,
      family: "anthropic",
      maxTokensField: "max_completion_tokens",
      onDrop: (what) => dropped.push(what),
    });
    // Assess
    expect(body.messages[0]).toEqual({
      role: "system",
      content: [
        { type: "text", text: "You are Claude Code.", cache_control: { type: "ephemeral", ttl: "1h" } },
      ],
    });
    expect(body.messages[3]).toMatchObject({ role: "assistant", reasoning_content: "Use the tool." });
    expect(body.tools).toEqual([
      {
        type: "function",
        function: { name: "Read", description: "Reads a file", parameters: { type: "object" } },
        cache_control: { type: "ephemeral" },
      },
    ]);
    expect(body.max_completion_tokens).toBe(1024);
    expect(body.max_tokens).toBeUndefined();
    expect(dropped).not.toContain("cache");
    expect(dropped).not.toContain("reasoning");
  });

  it("writes custom tools, their choice, refusals, JSON output and the other options", () => {
    const body = toChatRequest({
      model: "m",
      system: [],
      messages: [
        {
          role: "assistant",
          content: [
            { type: "refusal", text: "No." },
            { type: "tool-call", id: "c", name: "apply_patch", input: "*** Begin", custom: true },
          ],
        },
      ],
      tools: [{ name: "apply_patch", custom: { format: { type: "grammar" } } }],
      toolChoice: { type: "tool", name: "apply_patch" },
      parallelToolCalls: false,
      topP: 0.5,
      choices: 2,
      responseFormat: { type: "json", schema: { type: "object" }, strict: true },
      reasoning: { effort: "high" },
      stream: false,
      extensions: { bedrock: { cachePoints: {} } },
      unmapped: {},
    });
    expect(body).toEqual({
      model: "m",
      messages: [
        {
          role: "assistant",
          content: null,
          refusal: "No.",
          tool_calls: [{ id: "c", type: "custom", custom: { name: "apply_patch", input: "*** Begin" } }],
        },
      ],
      tools: [{ type: "custom", custom: { name: "apply_patch", format: { type: "grammar" } } }],
      tool_choice: { type: "custom", custom: { name: "apply_patch" } },
      parallel_tool_calls: false,
      top_p: 0.5,
      n: 2,
      response_format: {
        type: "json_schema",
        json_schema: { name: "response", schema: { type: "object" }, strict: true },
      },
      reasoning_effort: "high",
    });
  });
});

describe("parse then toChatRequest gives back an equivalent body", () => {
  it.each<[string, ChatRequest]>([
    [
      "a plain chat",
      {
        model: "m",
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Hello." },
          { role: "user", content: "Bye" },
        ],
        temperature: 0.2,
        top_p: 0.9,
        max_tokens: 100,
        stop: ["END"],
        user: "u1",
      },
    ],
    [
      "a streamed tool loop with two parallel calls",
      {
        model: "m",
        messages: [
          { role: "user", content: "Weather in Paris and Rome?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              {
                id: "call_1",
                type: "function",
                function: { name: "weather", arguments: '{"city":"Paris"}' },
              },
              { id: "call_2", type: "function", function: { name: "weather", arguments: '{"city":"Rome"}' } },
            ],
          },
          { role: "tool", tool_call_id: "call_1", content: "18C" },
          { role: "tool", tool_call_id: "call_2", content: "24C" },
        ],
        tools: [
          {
            type: "function",
            function: {
              name: "weather",
              description: "Weather now",
              parameters: { type: "object", properties: { city: { type: "string" } } },
              strict: true,
            },
          },
        ],
        tool_choice: "auto",
        parallel_tool_calls: true,
        stream: true,
        stream_options: { include_usage: true },
      },
    ],
    [
      "images, JSON output, reasoning from a DeepSeek answer",
      {
        model: "m",
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Describe both." },
              { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}`, detail: "high" } },
              { type: "image_url", image_url: { url: "https://example.com/a.jpg" } },
            ],
          },
          { role: "assistant", content: "Done.", reasoning_content: "Two images." },
          { role: "user", content: "As JSON." },
        ],
        response_format: {
          type: "json_schema",
          json_schema: { name: "desc", schema: { type: "object" }, strict: true },
        },
        reasoning_effort: "medium",
        n: 1,
      },
    ],
  ])("%s", (_, body) => {
    // Act
    const back = toChatRequest(toGeneration(body));
    // Assess: the same body.
    expect(back).toEqual(body);
  });

  it("normalises the shorthands: stop as an array, developer as system, max_completion_tokens as max_tokens", () => {
    // Prepare
    const body: ChatRequest = {
      model: "m",
      messages: [
        { role: "developer", content: [{ type: "text", text: "Rules." }] },
        { role: "user", content: [{ type: "text", text: "Hi" }] },
      ],
      stop: "END",
      max_completion_tokens: 50,
      response_format: { type: "json_object" },
      tool_choice: "none",
    };
    // Act
    const back = toChatRequest(toGeneration(body));
    // Assess
    expect(back).toEqual({
      model: "m",
      messages: [
        { role: "system", content: "Rules." },
        { role: "user", content: "Hi" },
      ],
      stop: ["END"],
      max_tokens: 50,
      response_format: { type: "json_object" },
      tool_choice: "none",
    });
  });
});
