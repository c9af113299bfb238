import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { toChatRequest } from "../../../lib/dialects/openai-chat/request.ts";
import { customToolsAsFunctions } from "../../../lib/dialects/openai-responses/custom-tools.ts";
import { parseResponsesRequest } from "../../../lib/dialects/openai-responses/parse.ts";
import { SEALED_PREFIX, sealReasoning } from "../../../lib/dialects/openai-responses/reasoning.ts";
import { InvalidRequestError, MAX_ECHO_CHARS } from "../../../lib/errors.ts";

/** The 400 `parseResponsesRequest` throws for `body`; fails the test when it returns or throws another error. */
function refused(body: unknown): InvalidRequestError {
  try {
    parseResponsesRequest(body);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  throw new Error("expected a 400");
}

type Recorded = { body: Record<string, unknown> };
const CLIENTS = "/work/shared/clients";
function recorded(name: string): Record<string, unknown> {
  return (JSON.parse(readFileSync(`${CLIENTS}/${name}`, "utf8")) as Recorded).body;
}

describe("parseResponsesRequest: the two recorded Codex 0.171.0 requests", () => {
  const first = recorded("codex-0.171.0.responses-request.json");

  it("parses the first request: developer messages as system, ten tools of four kinds, Codex's own fields beside", () => {
    // Act
    const parsed = parseResponsesRequest(first);
    // Assess: the canonical request.
    const g = parsed.generation;
    expect(g.model).toBe("gpt-5.5");
    expect(g.stream).toBe(true);
    expect(g.system.map((part) => part.text)).toEqual([
      "<text: 21299 chars>",
      "<text: 4677 chars>",
      "<text: 341 chars>",
      "<text: 104 chars>",
    ]);
    expect(g.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "<text: 397 chars>" }] },
      { role: "user", content: [{ type: "text", text: "say ping" }] },
    ]);
    expect(g.tools?.map((tool) => tool.name)).toEqual([
      "exec_command",
      "write_stdin",
      "request_user_input",
      "apply_patch",
      "view_image",
      "get_goal",
      "create_goal",
      "update_goal",
    ]);
    expect(g.tools?.[3]).toEqual({
      name: "apply_patch",
      description: "<description>",
      custom: { grammar: { syntax: "lark", definition: "<text: 578 chars>" } },
    });
    expect(g.tools?.[0]?.strict).toBe(false);
    expect(g.toolChoice).toEqual({ type: "auto" });
    expect(g.parallelToolCalls).toBe(true);
    expect(g.reasoning).toEqual({ effort: "medium" });
    // Exactly what has no canonical place: Codex's metadata and the verbosity.
    expect(g.unmapped).toEqual({ client_metadata: first.client_metadata, "text.verbosity": "low" });
    // The dialect's own fields, and the hosted tools left out, once per kind.
    expect(parsed.store).toBe(false);
    expect(parsed.include).toEqual(["<text: 27 chars>"]);
    expect(parsed.promptCacheKey).toBe("<text: 36 chars>");
    expect(parsed.previousResponseId).toBeUndefined();
    expect(parsed.droppedTools).toEqual(["tool_search", "web_search"]);
    expect(parsed.customTools).toEqual(["apply_patch"]);
    expect(parsed.echo).toMatchObject({
      instructions: null,
      tool_choice: "auto",
      parallel_tool_calls: true,
      text: { format: { type: "text" }, verbosity: "low" },
      reasoning: { effort: "medium", summary: null },
      store: false,
      temperature: 1,
      top_p: 1,
      metadata: {},
      previous_response_id: null,
      prompt_cache_key: "<text: 36 chars>",
    });
    expect(parsed.echo.tools).toHaveLength(10);
  });

  it("parses the tool loop's second request: the call and its output as an assistant turn and a user turn", () => {
    // Prepare: the recording stands for the tools with a note; they are the first request's.
    const body = { ...recorded("codex-0.171.0.responses-tool-result.json"), tools: first.tools };
    // Act
    const parsed = parseResponsesRequest(body);
    // Assess
    const g = parsed.generation;
    expect(g.messages.slice(2)).toEqual([
      {
        role: "assistant",
        content: [
          { type: "tool-call", id: "call_agent1", name: "exec_command", input: '{"cmd":"echo agent-ok-s2"}' },
        ],
      },
      {
        role: "user",
        content: [
          {
            type: "tool-result",
            callId: "call_agent1",
            content: [{ type: "text", text: "<text: 114 chars>" }],
          },
        ],
      },
    ]);
    expect(Object.keys(g.unmapped)).toEqual(["client_metadata", "text.verbosity"]);
    expect(parsed.include).toEqual(["reasoning.encrypted_content"]);
    expect(parsed.promptCacheKey).toBe("01a23b4d-fc9b-7861-90c6-a9717e854861");
    expect(parsed.droppedTools).toEqual(["tool_search", "web_search"]);
  });
});

describe("parseResponsesRequest: input and options", () => {
  it("takes a string input as one user turn and instructions as the first system part", () => {
    // Act
    const parsed = parseResponsesRequest({ model: "m", input: "Hi", instructions: "Be brief." });
    // Assess
    expect(parsed.generation).toEqual({
      model: "m",
      system: [{ type: "text", text: "Be brief." }],
      messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }],
      stream: false,
      extensions: {},
      unmapped: {},
    });
    expect(parsed.input).toEqual([{ type: "message", role: "user", content: "Hi" }]);
    expect(parsed.store).toBe(true);
    expect(parsed.echo.instructions).toBe("Be brief.");
  });

  it("groups assistant-side items into one turn and tool outputs into one, reasoning with its family", () => {
    // Prepare: an OpenAI reasoning item, one the gateway sealed for Claude, text, two calls, two outputs.
    const claude = sealReasoning({ family: "anthropic", signature: "sig-claude" });
    const body = {
      model: "m",
      input: [
        {
          role: "user",
          content: [
            { type: "input_text", text: "Look" },
            { type: "input_image", image_url: "data:image/png;base64,AAA=", detail: "low" },
          ],
        },
        {
          type: "reasoning",
          id: "rs_1",
          summary: [{ type: "summary_text", text: "Plan." }],
          encrypted_content: "gAAAAopaque",
        },
        {
          type: "reasoning",
          id: "rs_2",
          summary: [],
          content: [{ type: "reasoning_text", text: "Think." }],
          encrypted_content: claude,
        },
        {
          type: "message",
          role: "assistant",
          id: "msg_1",
          status: "completed",
          content: [{ type: "output_text", text: "Calling.", annotations: [] }],
        },
        { type: "function_call", call_id: "c1", name: "f", arguments: "{}" },
        { type: "custom_tool_call", call_id: "c2", name: "apply_patch", input: "*** Begin Patch" },
        { type: "function_call_output", call_id: "c1", output: "ok" },
        { type: "custom_tool_call_output", call_id: "c2", output: [{ type: "input_text", text: "Done" }] },
        { type: "web_search_call", id: "ws_1", status: "completed" },
        { role: "developer", content: "Answer in French." },
      ],
      metadata: { team: "a" },
      previous_response_id: "resp_prev",
      reasoning: { effort: "high", summary: "auto" },
      text: { format: { type: "json_schema", name: "out", schema: { type: "object" }, strict: true } },
      max_output_tokens: 500,
      temperature: 0.2,
      top_p: 0.9,
      safety_identifier: "user-1",
      user: "old-user",
      truncation: "auto",
    };
    // Act
    const parsed = parseResponsesRequest(body);
    // Assess
    const g = parsed.generation;
    expect(g.system).toEqual([{ type: "text", text: "Answer in French." }]);
    expect(g.messages).toEqual([
      {
        role: "user",
        content: [
          { type: "text", text: "Look" },
          { type: "image", mediaType: "image/png", data: "AAA=", detail: "low" },
        ],
      },
      {
        role: "assistant",
        content: [
          { type: "reasoning", text: "Plan.", family: "openai", signature: "gAAAAopaque" },
          { type: "reasoning", text: "Think.", family: "anthropic", signature: "sig-claude" },
          { type: "text", text: "Calling." },
          { type: "tool-call", id: "c1", name: "f", input: "{}" },
          { type: "tool-call", id: "c2", name: "apply_patch", input: "*** Begin Patch", custom: true },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool-result", callId: "c1", content: [{ type: "text", text: "ok" }] },
          { type: "tool-result", callId: "c2", content: [{ type: "text", text: "Done" }] },
        ],
      },
    ]);
    expect(g.unmapped).toEqual({ "input[8]": body.input[8], truncation: "auto" });
    expect(g.responseFormat).toEqual({ type: "json", name: "out", schema: { type: "object" }, strict: true });
    expect(g.reasoning).toEqual({ effort: "high" });
    expect(g.maxOutputTokens).toBe(500);
    expect(g.temperature).toBe(0.2);
    expect(g.topP).toBe(0.9);
    expect(g.user).toBe("user-1");
    expect(parsed.reasoningSummary).toBe("auto");
    expect(parsed.metadata).toEqual({ team: "a" });
    expect(parsed.previousResponseId).toBe("resp_prev");
    expect(parsed.echo).toMatchObject({
      reasoning: { effort: "high", summary: "auto" },
      max_output_tokens: 500,
    });
  });

  it("reads json_object output and a named custom tool choice", () => {
    // Act
    const parsed = parseResponsesRequest({
      model: "m",
      input: "x",
      text: { format: { type: "json_object" } },
      tools: [{ type: "custom", name: "raw", format: { type: "text" } }],
      tool_choice: { type: "custom", name: "raw" },
    });
    // Assess
    expect(parsed.generation.responseFormat).toEqual({ type: "json" });
    expect(parsed.generation.tools).toEqual([{ name: "raw", custom: {} }]);
    expect(parsed.generation.toolChoice).toEqual({ type: "tool", name: "raw" });
  });
});

describe("parseResponsesRequest: refusals", () => {
  it("names the field of a part of the wrong type", () => {
    // Act
    const error = refused({
      model: "m",
      input: [
        { role: "user", content: "a" },
        { role: "user", content: [{ type: 7 }] },
      ],
    });
    // Assess
    expect(error.param).toBe("input[1].content[0].type");
    expect(error.status).toBe(400);
  });

  it("refuses a tool_choice that requires a hosted tool, and `required` with only hosted tools", () => {
    // Act
    const named = refused({
      model: "m",
      input: "x",
      tools: [{ type: "web_search" }],
      tool_choice: { type: "web_search" },
    });
    const required = refused({
      model: "m",
      input: "x",
      tools: [{ type: "file_search" }],
      tool_choice: "required",
    });
    // Assess
    expect(named.message).toBe(
      "'tool_choice' requires the hosted tool 'web_search', which this gateway's targets cannot run.",
    );
    expect(named.param).toBe("tool_choice");
    expect(required.message).toContain("'file_search'");
  });

  it("quotes a huge invalid role bounded", () => {
    // Act
    const error = refused({
      model: "m",
      input: [{ type: "message", role: "x".repeat(100_000), content: "a" }],
    });
    // Assess
    expect(error.param).toBe("input[0].role");
    expect(error.message.length).toBeLessThan(MAX_ECHO_CHARS + 120);
  });

  it("refuses a bad grammar syntax, a missing call_id and more than 16 metadata pairs", () => {
    // Act / Assess
    expect(
      refused({
        model: "m",
        input: "x",
        tools: [{ type: "custom", name: "t", format: { type: "grammar", syntax: "peg", definition: "x" } }],
      }).param,
    ).toBe("tools[0].format.syntax");
    expect(refused({ model: "m", input: [{ type: "function_call_output", output: "x" }] }).param).toBe(
      "input[0].call_id",
    );
    const metadata = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
    expect(refused({ model: "m", input: "x", metadata }).param).toBe("metadata");
  });

  it("walks 200,000 items and a schema nested 10,000 deep without recursion", () => {
    // Prepare
    let schema: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 10_000; i++) schema = { type: "object", properties: { a: schema } };
    const input = Array.from({ length: 200_000 }, () => ({ role: "user", content: "a" }));
    // Act
    const parsed = parseResponsesRequest({
      model: "m",
      input,
      tools: [{ type: "function", name: "deep", parameters: schema }],
    });
    // Assess
    expect(parsed.generation.messages).toHaveLength(200_000);
    expect(parsed.generation.tools?.[0]?.parameters).toBe(schema);
  });

  it("keeps a sealed blob that does not open as OpenAI's opaque content", () => {
    // Act
    const parsed = parseResponsesRequest({
      model: "m",
      input: [{ type: "reasoning", id: "rs", summary: [], encrypted_content: `${SEALED_PREFIX}!!notbase64` }],
    });
    // Assess
    expect(parsed.generation.messages[0]?.content[0]).toEqual({
      type: "reasoning",
      text: "",
      family: "openai",
      signature: `${SEALED_PREFIX}!!notbase64`,
    });
  });
});

describe("customToolsAsFunctions: custom tools for targets that only know functions", () => {
  it("writes each custom tool as a function of one string parameter and each custom call as its JSON", () => {
    // Prepare
    const { generation } = parseResponsesRequest({
      model: "m",
      input: [
        { type: "custom_tool_call", call_id: "c1", name: "apply_patch", input: "*** Begin Patch" },
        { type: "custom_tool_call_output", call_id: "c1", output: "ok" },
      ],
      tools: [
        {
          type: "custom",
          name: "apply_patch",
          description: "Edit files.",
          format: { type: "grammar", syntax: "lark", definition: "start: x" },
        },
      ],
    });
    // Act
    const lowered = customToolsAsFunctions(generation);
    // Assess
    expect(lowered.tools).toEqual([
      {
        name: "apply_patch",
        description: "Edit files.\n\nThe `input` argument must follow this lark grammar:\nstart: x",
        parameters: {
          type: "object",
          properties: { input: { type: "string", description: "The tool's raw input text." } },
          required: ["input"],
          additionalProperties: false,
        },
      },
    ]);
    expect(lowered.messages[0]).toEqual({
      role: "assistant",
      content: [{ type: "tool-call", id: "c1", name: "apply_patch", input: '{"input":"*** Begin Patch"}' }],
    });
    // The original is untouched; a request without custom tools is returned as is.
    expect(generation.tools?.[0]?.custom).toBeDefined();
    const plain = parseResponsesRequest({ model: "m", input: "x" }).generation;
    expect(customToolsAsFunctions(plain)).toBe(plain);
  });
});

describe("a custom tool's grammar, for an OpenAI chat target", () => {
  it("reaches the chat body as chat's custom format", () => {
    // Prepare
    const { generation } = parseResponsesRequest({
      model: "m",
      input: "x",
      tools: [
        {
          type: "custom",
          name: "apply_patch",
          format: { type: "grammar", syntax: "lark", definition: "start: x" },
        },
      ],
    });
    // Act
    const body = toChatRequest(generation);
    // Assess
    expect(body.tools).toEqual([
      {
        type: "custom",
        custom: {
          name: "apply_patch",
          format: { type: "grammar", grammar: { syntax: "lark", definition: "start: x" } },
        },
      },
    ]);
  });
});
