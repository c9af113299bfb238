import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { fakeProvider, startGateway, type TestGateway } from "../support/gateway.ts";

let upstream: FakeUpstream;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gateway = await startGateway({
    defaults: { timeouts: { idleMs: 300, firstTokenMs: 300 } },
    providers: [fakeProvider("primary", upstream.url)],
    models: { "gpt-4o-mini": { targets: [{ provider: "primary", model: "upstream-model" }] } },
  });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "unused-locally", maxRetries: 0 });
});

afterAll(async () => {
  await gateway.close();
  await upstream.close();
});

describe("the official openai client against the gateway", () => {
  it("gets a whole answer", async () => {
    const completion = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say hello" }],
    });
    expect(completion.choices[0]?.message.content).toBe("Hello from the fake upstream.");
    expect(completion.model).toBe("upstream-model");
  });

  it("streams an answer with usage", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say hello" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("Hello from the fake upstream.");
    expect(usage).toMatchObject({ total_tokens: 16 });
  });

  it("lists models", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["gpt-4o-mini"]);
  });

  it("raises a typed error for an unknown model", async () => {
    const call = client.chat.completions.create({
      model: "nope",
      messages: [{ role: "user", content: "x" }],
    });
    await expect(call).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(call).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("throws mid-stream on a cut answer instead of ending quietly", async () => {
    // Cut every time, restarts included: the answer cannot be completed.
    const cut = { kind: "answer" as const, cutAfter: 3, tokenDelayMs: 20 };
    upstream.queue.push(cut, cut, cut, cut);
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say hello" }],
      stream: true,
    });
    let text = "";
    const read = async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    };
    await expect(read()).rejects.toBeInstanceOf(OpenAI.APIError);
    expect(text).toBe("Hello from the");
  });
});
