import { describe, expect, it } from "vitest";
import type { GenerationRequest } from "../../../lib/core/request.ts";
import { fromMessage } from "../../../lib/dialects/anthropic-messages/decode.ts";
import { toGeneration } from "../../../lib/dialects/anthropic-messages/parse.ts";
import {
  anthropicToolId,
  anthropicToolNames,
  toBedrockInvokeBody,
  toMessagesRequest,
} from "../../../lib/dialects/anthropic-messages/request.ts";
import { toGeneration as fromChat } from "../../../lib/dialects/openai-chat/parse.ts";

function request(over: Partial<GenerationRequest>): GenerationRequest {
  return {
    model: "claude-x",
    system: [],
    messages: [],
    stream: false,
    extensions: {},
    unmapped: {},
    ...over,
  };
}

describe("toMessagesRequest: the Messages body for a canonical request", () => {
  it("writes an OpenAI chat caller's tool loop as Messages, turns merged and tool results first", () => {
    // Prepare: an OpenAI chat body, read by the OpenAI dialect.
    const g = fromChat({
      model: "route-a",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: "",
          reasoning_content: "Two cities.",
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "weather.get", arguments: '{"city":"Paris"}' },
            },
            {
              id: "functions.weather:1",
              type: "function",
              function: { name: "weather.get", arguments: "{broken" },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "sunny" },
        { role: "tool", tool_call_id: "functions.weather:1", content: "rain" },
        { role: "user", content: "Thanks. Which is warmer?  " },
      ],
      tools: [{ type: "function", function: { name: "weather.get", parameters: { type: "object" } } }],
      tool_choice: "required",
      parallel_tool_calls: false,
      temperature: 0.2,
      stop: ["END"],
      user: "u1",
      seed: 7,
      stream: true,
    });
    const drops: string[] = [];
    // Act
    const body = toMessagesRequest(g, { onDrop: (what) => drops.push(what) });
    // Assess: written out by hand.
    const wire = `weather_get_${/_([0-9a-f]{8})$/.exec(String((body.tools as Array<{ name: string }>)[0]?.name))?.[1]}`;
    const id2 = anthropicToolId("functions.weather:1");
    expect(body).toEqual({
      model: "route-a",
      max_tokens: 4096,
      system: "Be brief.",
      messages: [
        { role: "user", content: [{ type: "text", text: "Weather in Paris and Rome?" }] },
        {
          role: "assistant",
          content: [
            { type: "tool_use", id: "call_1", name: wire, input: { city: "Paris" } },
            { type: "tool_use", id: id2, name: wire, input: {} },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "call_1", content: "sunny" },
            { type: "tool_result", tool_use_id: id2, content: "rain" },
            { type: "text", text: "Thanks. Which is warmer?  " },
          ],
        },
      ],
      tools: [{ name: wire, input_schema: { type: "object" } }],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
      temperature: 0.2,
      stop_sequences: ["END"],
      metadata: { user_id: "u1" },
      stream: true,
    });
    expect(id2).toMatch(/^functions_weather_1_[0-9a-f]{8}$/);
    // DeepSeek-style reasoning has no Anthropic signature; broken arguments cannot be an object.
    expect(drops).toEqual(["reasoning", "tool-call.input", "seed"]);
  });

  it("maps a tool name Anthropic refuses, and maps the answer's name back", () => {
    const long = `t${"x".repeat(80)}`;
    const g = request({
      tools: [{ name: "mcp.server:tool" }, { name: long }, { name: "ok_name-1" }],
      messages: [
        { role: "assistant", content: [{ type: "tool-call", id: "c", name: "other.tool", input: "{}" }] },
      ],
    });
    const names = anthropicToolNames(g);
    const wire = names.toWire("mcp.server:tool");
    expect(wire).toMatch(/^mcp_server_tool_[0-9a-f]{8}$/);
    expect(names.toWire(long)).toMatch(/^tx{54}_[0-9a-f]{8}$/);
    expect(names.toWire(long).length).toBe(64);
    expect(names.toWire("ok_name-1")).toBe("ok_name-1");
    expect(names.toWire("mcp.server-tool")).not.toBe(wire);
    // Back: the answer's tool_use names, read with the same map.
    const result = fromMessage(
      {
        content: [
          { type: "tool_use", id: "toolu_1", name: wire, input: {} },
          { type: "tool_use", id: "toolu_2", name: names.toWire("other.tool"), input: {} },
          { type: "tool_use", id: "toolu_3", name: "ok_name-1", input: {} },
        ],
        stop_reason: "tool_use",
      },
      { toolName: names.fromWire },
    );
    expect(result.choices[0]?.content.map((part) => (part.type === "tool-call" ? part.name : ""))).toEqual([
      "mcp.server:tool",
      "other.tool",
      "ok_name-1",
    ]);
  });

  it("sends thinking only when Anthropic signed it, never another family's or an unsigned one", () => {
    const drops: string[] = [];
    const body = toMessagesRequest(
      request({
        messages: [
          { role: "user", content: [{ type: "text", text: "hi" }] },
          {
            role: "assistant",
            content: [
              { type: "reasoning", text: "mine", signature: "sig-a", family: "anthropic" },
              { type: "reasoning", text: "", redacted: "opaque", family: "anthropic" },
              { type: "reasoning", text: "theirs", signature: "enc", family: "openai" },
              { type: "reasoning", text: "unsigned" },
              { type: "text", text: "yo" },
            ],
          },
          { role: "user", content: [{ type: "text", text: "again" }] },
        ],
      }),
      { onDrop: (what) => drops.push(what) },
    );
    expect((body.messages as unknown[])[1]).toEqual({
      role: "assistant",
      content: [
        { type: "thinking", thinking: "mine", signature: "sig-a" },
        { type: "redacted_thinking", data: "opaque" },
        { type: "text", text: "yo" },
      ],
    });
    expect(drops).toEqual(["reasoning", "reasoning"]);
  });

  it("writes the Bedrock InvokeModel form: version, betas in the body, no model, no stream", () => {
    const g = request({
      messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
      stream: true,
      maxOutputTokens: 50,
    });
    expect(toMessagesRequest(g, { bedrock: { betas: ["interleaved-thinking-2025-05-14"] } })).toEqual({
      anthropic_version: "bedrock-2023-05-31",
      anthropic_beta: ["interleaved-thinking-2025-05-14"],
      max_tokens: 50,
      messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
    });
    expect(toMessagesRequest(g, { bedrock: {} })).toEqual({
      anthropic_version: "bedrock-2023-05-31",
      max_tokens: 50,
      messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
    });
  });

  it("turns a Messages caller's own body into the InvokeModel form, every other field kept", () => {
    const body = {
      model: "claude",
      stream: true,
      max_tokens: 5,
      messages: [],
      context_management: { edits: [] },
    };
    expect(toBedrockInvokeBody(body, ["context-management-2025-06-27"])).toEqual({
      anthropic_version: "bedrock-2023-05-31",
      max_tokens: 5,
      messages: [],
      context_management: { edits: [] },
      anthropic_beta: ["context-management-2025-06-27"],
    });
    expect(body.model).toBe("claude");
  });

  it("writes reasoning, effort, structured output, images, cache marks; drops what it cannot say", () => {
    const drops: string[] = [];
    const body = toMessagesRequest(
      request({
        system: [
          { type: "text", text: "A", cache: {} },
          { type: "text", text: "" },
        ],
        messages: [
          {
            role: "user",
            content: [
              { type: "image", mediaType: "image/png", data: "AAA", detail: "low" },
              { type: "image", mediaType: "image/*", url: "https://x/y.png", cache: { ttl: "1h" } },
              { type: "text", text: "" },
            ],
          },
          { role: "assistant", content: [{ type: "text", text: "Sure:  " }] },
        ],
        tools: [{ name: "patch", custom: {} }],
        reasoning: { effort: "minimal", budgetTokens: 1024 },
        responseFormat: { type: "json", schema: { type: "object" } },
        choices: 2,
        topK: 5,
      }),
      { onDrop: (what) => drops.push(what), defaultMaxTokens: 99 },
    );
    expect(body).toEqual({
      model: "claude-x",
      max_tokens: 99,
      system: [{ type: "text", text: "A", cache_control: { type: "ephemeral" } }],
      messages: [
        {
          role: "user",
          content: [
            { type: "image", source: { type: "base64", media_type: "image/png", data: "AAA" } },
            {
              type: "image",
              source: { type: "url", url: "https://x/y.png" },
              cache_control: { type: "ephemeral", ttl: "1h" },
            },
          ],
        },
        // A final assistant turn (a prefill) may not end in white space.
        { role: "assistant", content: [{ type: "text", text: "Sure:" }] },
      ],
      top_k: 5,
      thinking: { type: "enabled", budget_tokens: 1024 },
      output_config: { effort: "low", format: { type: "json_schema", schema: { type: "object" } } },
    });
    expect(drops).toEqual(["image.detail", "tools.custom", "choices"]);
    expect(toMessagesRequest(request({ reasoning: { mode: "adaptive" } })).thinking).toEqual({
      type: "adaptive",
    });
    expect(toMessagesRequest(request({ reasoning: { mode: "disabled" } })).thinking).toEqual({
      type: "disabled",
    });
  });
});

describe("round trips: Messages → canonical → Messages", () => {
  it.each([
    [
      "text",
      {
        model: "m",
        max_tokens: 100,
        system: "Be brief.",
        messages: [
          { role: "user", content: [{ type: "text", text: "Hi" }] },
          { role: "assistant", content: [{ type: "text", text: "Hello." }] },
          { role: "user", content: [{ type: "text", text: "Again", cache_control: { type: "ephemeral" } }] },
        ],
        temperature: 1,
        stream: true,
      },
    ],
    [
      "tools, tool results and thinking with its signature",
      {
        model: "m",
        max_tokens: 100,
        system: [{ type: "text", text: "S", cache_control: { type: "ephemeral", ttl: "1h" } }],
        messages: [
          { role: "user", content: [{ type: "text", text: "Weather?" }] },
          {
            role: "assistant",
            content: [
              { type: "thinking", thinking: "Look it up.", signature: "EqQBsig" },
              { type: "redacted_thinking", data: "opaque" },
              { type: "text", text: "Checking." },
              {
                type: "tool_use",
                id: "toolu_1",
                name: "get_weather",
                input: { city: "Paris", days: [1, 2] },
              },
            ],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "toolu_1", content: "sunny", is_error: true },
              {
                type: "tool_result",
                tool_use_id: "toolu_2",
                content: [
                  { type: "text", text: "a" },
                  { type: "image", source: { type: "base64", media_type: "image/png", data: "AA" } },
                ],
              },
              { type: "text", text: "And tomorrow?" },
            ],
          },
        ],
        tools: [
          {
            name: "get_weather",
            description: "Weather",
            input_schema: { type: "object", properties: { city: { type: "string" } } },
            cache_control: { type: "ephemeral" },
          },
        ],
        tool_choice: { type: "tool", name: "get_weather", disable_parallel_tool_use: true },
        thinking: { type: "enabled", budget_tokens: 2000 },
        metadata: { user_id: "u" },
        stop_sequences: ["X"],
        top_k: 3,
      },
    ],
  ])("%s", (_name, body) => {
    const drops: string[] = [];
    expect(toMessagesRequest(toGeneration(body), { onDrop: (what) => drops.push(what) })).toEqual(body);
    expect(drops).toEqual([]);
  });
});
