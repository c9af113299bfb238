import {
  BedrockRuntimeClient,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from "@aws-sdk/client-bedrock-runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../../lib/core/events.ts";
import { createEventDecoder, fromMessage } from "../../../lib/dialects/anthropic-messages/decode.ts";
import { toGeneration } from "../../../lib/dialects/anthropic-messages/parse.ts";
import { toMessagesRequest } from "../../../lib/dialects/anthropic-messages/request.ts";
import { type FakeBedrockInvoke, startFakeBedrockInvoke } from "../../support/fake-bedrock-invoke.ts";

let fake: FakeBedrockInvoke;
let client: BedrockRuntimeClient;

beforeAll(async () => {
  fake = await startFakeBedrockInvoke();
  client = new BedrockRuntimeClient({
    region: "us-east-1",
    endpoint: fake.url,
    maxAttempts: 1,
    credentials: { accessKeyId: "AKIDFAKEFAKEFAKE", secretAccessKey: "fake-secret" },
  });
});
afterAll(async () => {
  client.destroy();
  await fake.close();
});

const MODEL = "anthropic.claude-sonnet-4-5-v1:0";
const caller = {
  model: "route-claude",
  max_tokens: 64,
  stream: true,
  messages: [{ role: "user", content: "Weather in Paris?" }],
};

describe("Claude on Bedrock through InvokeModel, against a fake runtime", () => {
  it("streams a tool call as chunk frames the decoder reads, for the body in Bedrock's form", async () => {
    // Prepare
    fake.queue.push({ kind: "tool", inputPieces: ['{"city":', '"Paris"}'] });
    const body = toMessagesRequest(toGeneration(caller), {
      bedrock: { betas: ["interleaved-thinking-2025-05-14"] },
    });
    // Act
    const response = await client.send(
      new InvokeModelWithResponseStreamCommand({
        modelId: MODEL,
        contentType: "application/json",
        body: JSON.stringify(body),
      }),
    );
    const decoder = createEventDecoder();
    const events: GenerationEvent[] = [];
    for await (const item of response.body ?? []) {
      const bytes = item.chunk?.bytes;
      if (bytes === undefined) continue;
      for (const event of decoder.push(JSON.parse(new TextDecoder().decode(bytes)))) events.push(event);
    }
    // Assess
    expect(events.filter((event) => event.type !== "usage")).toEqual([
      { type: "text", choice: 0, text: "Let me check." },
      { type: "tool-call-start", choice: 0, index: 0, id: "toolu_fake1", name: "get_weather" },
      { type: "tool-call-delta", choice: 0, index: 0, input: '{"city":' },
      { type: "tool-call-delta", choice: 0, index: 0, input: '"Paris"}' },
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "finish", choice: 0, reason: "tool-calls", raw: "tool_use" },
    ]);
    const recorded = fake.requests[fake.requests.length - 1];
    expect(recorded?.operation).toBe("invoke-with-response-stream");
    expect(recorded?.modelId).toBe(MODEL);
    expect(recorded?.body).toEqual({
      anthropic_version: "bedrock-2023-05-31",
      anthropic_beta: ["interleaved-thinking-2025-05-14"],
      max_tokens: 64,
      messages: [{ role: "user", content: [{ type: "text", text: "Weather in Paris?" }] }],
    });
  });

  it("answers a whole Message to invoke, and refuses a body with `model` or `stream` as Bedrock does", async () => {
    fake.queue.push({ kind: "thinking" });
    const body = toMessagesRequest(toGeneration({ ...caller, stream: false }), { bedrock: {} });
    const whole = await client.send(new InvokeModelCommand({ modelId: MODEL, body: JSON.stringify(body) }));
    const result = fromMessage(JSON.parse(new TextDecoder().decode(whole.body)));
    expect(result.choices[0]?.content.map((part) => part.type)).toEqual(["reasoning", "text"]);
    expect(result.choices[0]?.content[0]).toMatchObject({
      family: "anthropic",
      signature: expect.any(String),
    });

    const refused = await client
      .send(
        new InvokeModelCommand({
          modelId: MODEL,
          body: JSON.stringify(toMessagesRequest(toGeneration(caller))),
        }),
      )
      .then(
        () => undefined,
        (error: unknown) => error as Error & { $metadata?: { httpStatusCode?: number } },
      );
    expect(refused?.name).toBe("ValidationException");
    expect(refused?.message).toBe("Malformed input request: #: extraneous key [model] is not permitted");
  });
});
