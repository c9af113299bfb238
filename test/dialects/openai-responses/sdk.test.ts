/**
 * The official `openai` SDK (v6) reads what the encoder writes: a loopback server answers
 * `POST /v1/responses` with the encoder's frames (or `toResponse`) for a scripted canonical answer.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { GenerationEvent, GenerationResult } from "../../../lib/core/events.ts";
import type { GenerationRequest } from "../../../lib/core/request.ts";
import { customToolsAsFunctions } from "../../../lib/dialects/openai-responses/custom-tools.ts";
import { createResponseStreamEncoder, toResponse } from "../../../lib/dialects/openai-responses/encode.ts";
import { parseResponsesRequest } from "../../../lib/dialects/openai-responses/parse.ts";
import { UpstreamError } from "../../../lib/errors.ts";

const usage = {
  inputTokens: 12,
  outputTokens: 5,
  cacheReadTokens: 2,
  cacheWriteTokens: 0,
  reasoningTokens: 1,
};

/** What the server answers next: the scripted events, or a failure after them. */
let script: { events: GenerationEvent[]; failWith?: Error };
/** The canonical request of the last call, as a function-only target would receive it. */
let lastLowered: GenerationRequest | undefined;

function resultOf(events: GenerationEvent[]): GenerationResult {
  let text = "";
  for (const event of events) if (event.type === "text") text += event.text;
  return { model: "m", choices: [{ content: [{ type: "text", text }], finish: "stop" }], usage };
}

let server: Server;
let client: OpenAI;

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk: Buffer) => {
      raw += chunk.toString();
    });
    req.on("end", () => {
      const parsed = parseResponsesRequest(JSON.parse(raw));
      lastLowered = customToolsAsFunctions(parsed.generation);
      const head = {
        id: "resp_sdk1",
        model: parsed.generation.model,
        createdAt: 1_760_000_000,
        echo: parsed.echo,
      };
      const options = {
        customTools: parsed.customTools,
        reasoningSummary: parsed.reasoningSummary !== undefined,
      };
      if (!parsed.generation.stream) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(toResponse(resultOf(script.events), head, options)));
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      const encoder = createResponseStreamEncoder(head, options);
      res.write(encoder.start());
      for (const event of script.events) res.write(encoder.encode(event));
      res.end(script.failWith === undefined ? encoder.end() : encoder.fail(script.failWith));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  client = new OpenAI({ apiKey: "sk-test", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  lastLowered = undefined;
});

const hello: GenerationEvent[] = [
  { type: "reasoning", choice: 0, text: "Greet." },
  { type: "text", choice: 0, text: "Hi" },
  { type: "text", choice: 0, text: " there" },
  { type: "finish", choice: 0, reason: "stop" },
  { type: "usage", usage },
];

describe("the openai SDK reads the encoder's Responses", () => {
  it("iterates a streamed create: every event typed, numbered, and completed once", async () => {
    // Prepare
    script = { events: hello };
    // Act
    const stream = await client.responses.create({ model: "route-a", input: "Hello", stream: true });
    const types: string[] = [];
    let text = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed") completed = event.response;
    }
    // Assess
    expect(text).toBe("Hi there");
    expect(types[0]).toBe("response.created");
    expect(types.filter((type) => type === "response.completed")).toHaveLength(1);
    expect(completed?.status).toBe("completed");
    expect(completed?.usage).toEqual({
      input_tokens: 12,
      input_tokens_details: { cached_tokens: 2 },
      output_tokens: 5,
      output_tokens_details: { reasoning_tokens: 1 },
      total_tokens: 17,
    });
  });

  it("accumulates a stream with responses.stream() into the final response and its output_text", async () => {
    // Prepare
    script = { events: hello };
    // Act
    const stream = client.responses.stream({ model: "route-a", input: "Hello" });
    const snapshots: string[] = [];
    stream.on("response.output_text.delta", (event) => snapshots.push(event.snapshot));
    const final = await stream.finalResponse();
    // Assess
    expect(snapshots).toEqual(["Hi", "Hi there"]);
    // The SDK adds `output_text` to a streamed final response only when it parses one (below).
    expect(final.output.map((item) => item.type)).toEqual(["reasoning", "message"]);
    expect(final.output[1]).toMatchObject({ content: [{ type: "output_text", text: "Hi there" }] });
    expect(final.output[0]).toMatchObject({ content: [{ type: "reasoning_text", text: "Greet." }] });
  });

  it("reads JSON-schema output: parsed by responses.parse(), echoed and streamed by responses.stream()", async () => {
    // Prepare
    script = {
      events: [
        { type: "text", choice: 0, text: '{"city":' },
        { type: "text", choice: 0, text: '"Paris"}' },
        { type: "finish", choice: 0, reason: "stop" },
      ],
    };
    const text = {
      format: {
        type: "json_schema" as const,
        name: "place",
        strict: true,
        schema: {
          type: "object",
          properties: { city: { type: "string" } },
          required: ["city"],
          additionalProperties: false,
        },
      },
    };
    // Act
    const parsed = await client.responses.parse({ model: "route-a", input: "Where?", text });
    const final = await client.responses.stream({ model: "route-a", input: "Where?", text }).finalResponse();
    // Assess
    expect(parsed.output_parsed).toEqual({ city: "Paris" });
    expect(parsed.output_text).toBe('{"city":"Paris"}');
    expect(final.text?.format).toMatchObject({ type: "json_schema", name: "place" });
    expect(final.output[0]).toMatchObject({ content: [{ type: "output_text", text: '{"city":"Paris"}' }] });
  });

  it("reads a non-streamed create, output_text computed by the SDK from output", async () => {
    // Prepare
    script = { events: hello };
    // Act
    const response = await client.responses.create({
      model: "route-a",
      input: "Hello",
      instructions: "Be kind.",
    });
    // Assess
    expect(response.output_text).toBe("Hi there");
    expect(response.status).toBe("completed");
    expect(response.instructions).toBe("Be kind.");
    expect(response.id).toBe("resp_sdk1");
  });

  it("sees a failed stream as response.failed with its error, not as completed", async () => {
    // Prepare
    script = {
      events: [{ type: "text", choice: 0, text: "Hal" }],
      failWith: new UpstreamError("deepseek: the stream was cut", {
        status: 502,
        code: "upstream_stream_cut",
        providerId: "deepseek",
      }),
    };
    // Act
    const stream = await client.responses.create({ model: "route-a", input: "Hello", stream: true });
    const types: string[] = [];
    let failed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.failed") failed = event.response;
    }
    // Assess
    expect(types).not.toContain("response.completed");
    expect(types[types.length - 1]).toBe("response.failed");
    expect(failed?.error).toEqual({ code: "upstream_stream_cut", message: "deepseek: the stream was cut" });
  });

  it("round-trips a custom tool: a function-only target's call comes back custom, and its output goes back", async () => {
    // Prepare: the target (which only knows functions) calls apply_patch with one string argument.
    const patch = "*** Begin Patch\n*** End Patch\n";
    script = {
      events: [
        { type: "tool-call-start", choice: 0, index: 0, id: "call_p", name: "apply_patch" },
        { type: "tool-call-delta", choice: 0, index: 0, input: JSON.stringify({ input: patch }) },
        { type: "tool-call-end", choice: 0, index: 0 },
        { type: "finish", choice: 0, reason: "tool-calls" },
      ],
    };
    const tools: OpenAI.Responses.Tool[] = [
      {
        type: "custom",
        name: "apply_patch",
        format: { type: "grammar", syntax: "lark", definition: 'start: "*** Begin Patch"' },
      },
    ];
    // Act: the first turn, streamed.
    const final = await client.responses.stream({ model: "route-a", input: "Fix it", tools }).finalResponse();
    // Assess: the caller sees a custom tool call with the raw patch.
    const call = final.output[0];
    expect(call).toEqual({
      id: "ctc_sdk1_0",
      type: "custom_tool_call",
      call_id: "call_p",
      name: "apply_patch",
      input: patch,
    });
    // Act: the second turn sends the call and its output back.
    script = { events: hello };
    await client.responses.create({
      model: "route-a",
      tools,
      input: [
        { role: "user", content: "Fix it" },
        { type: "custom_tool_call", call_id: "call_p", name: "apply_patch", input: patch },
        { type: "custom_tool_call_output", call_id: "call_p", output: "Done!" },
      ],
    });
    // Assess: the function-only target receives its own function call and the result.
    expect(lastLowered?.messages.slice(1)).toEqual([
      {
        role: "assistant",
        content: [
          { type: "tool-call", id: "call_p", name: "apply_patch", input: JSON.stringify({ input: patch }) },
        ],
      },
      {
        role: "user",
        content: [{ type: "tool-result", callId: "call_p", content: [{ type: "text", text: "Done!" }] }],
      },
    ]);
    expect(lastLowered?.tools?.[0]?.parameters).toMatchObject({ required: ["input"] });
  });
});
