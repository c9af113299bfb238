import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { callersOn, createKey, testClock } from "../callers/support.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import {
  type FakeBedrockEmbeddings,
  fakeEmbedding,
  fakeTokenCount,
  startFakeBedrockEmbeddings,
} from "../support/fake-bedrock-embeddings.ts";
import {
  type FakeEmbeddingsUpstream,
  fakeEmbeddingOf,
  startFakeEmbeddingsUpstream,
} from "../support/fake-embeddings-upstream.ts";
import { fakeProvider, jsonOf, startGateway, type TestGateway } from "../support/gateway.ts";

/**
 * Issue 20: `POST /v1/embeddings` through the official `openai` SDK (its default asks for base64,
 * little-endian float32; `encoding_format: "float"` for JSON numbers), over fake OpenAI-compatible
 * servers and a fake Bedrock runtime (h2c, Titan v2 and Cohere bodies, refusing keys a family does
 * not take). The Vercel AI SDK's `embedMany` and LangChain's `OpenAIEmbeddings`, and the bundled
 * handler, are in embeddings-clients.test.ts.
 */

const TITAN = "amazon.titan-embed-text-v2:0";
const COHERE = "cohere.embed-english-v3";

let a: FakeEmbeddingsUpstream;
let b: FakeEmbeddingsUpstream;
let bedrock: FakeBedrockEmbeddings;
let gateway: TestGateway;
let client: OpenAI;
const saved = { ...process.env };

const retry = { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 1000 };

function document() {
  return {
    defaults: { retry },
    providers: [
      fakeProvider("a", a.url),
      fakeProvider("b", b.url),
      {
        id: "east",
        type: "bedrock",
        region: "us-east-1",
        // Two attempts: a throttled region is retried once before the request moves on.
        retry: { ...retry, maxAttempts: 2 },
        healthCheck: { kind: "embeddings", model: TITAN },
      },
      {
        id: "west",
        type: "bedrock",
        region: "us-west-2",
        healthCheck: { kind: "embeddings", model: COHERE },
      },
    ],
    models: {
      "embed-small": {
        targets: [
          { provider: "a", model: "text-embedding-3-small" },
          { provider: "b", model: "text-embedding-3-small" },
        ],
      },
      // Two models: a vector of the second is no answer for an index of the first.
      mixed: {
        targets: [
          { provider: "a", model: "text-embedding-3-small" },
          { provider: "b", model: "text-embedding-3-large" },
        ],
      },
      // Two names for one model, declared one space by the configuration.
      declared: {
        targets: [
          { provider: "a", model: "bge-m3", space: "bge-m3" },
          { provider: "b", model: "BAAI/bge-m3", space: "bge-m3" },
        ],
      },
      titan: {
        targets: [
          { provider: "east", model: TITAN },
          { provider: "west", model: `us.${TITAN}` },
        ],
      },
      cohere: { targets: [{ provider: "west", model: COHERE }] },
      claude: { targets: [{ provider: "east", model: "anthropic.claude-3-haiku-20240307-v1:0" }] },
    },
  };
}

beforeAll(async () => {
  [a, b, bedrock] = await Promise.all([
    startFakeEmbeddingsUpstream(),
    startFakeEmbeddingsUpstream(),
    startFakeBedrockEmbeddings(),
  ]);
  process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME = bedrock.url;
  process.env.AWS_ACCESS_KEY_ID = "AKIDFAKEFAKEFAKE";
  process.env.AWS_SECRET_ACCESS_KEY = "fake-secret";
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
  gateway = await startGateway(document());
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "unused-locally", maxRetries: 0 });
});

afterAll(async () => {
  process.env = saved;
  await gateway.close();
  await Promise.all([a.close(), b.close(), bedrock.close()]);
});

beforeEach(() => {
  for (const fake of [a, b]) {
    fake.requests.length = 0;
    fake.responses.length = 0;
    fake.queue.length = 0;
  }
  bedrock.requests.length = 0;
  bedrock.queue.length = 0;
  bedrock.byRegion = {};
});

const texts = ["the first text", "a second one", "and a third, longer than the others"];

describe("embeddings on OpenAI-compatible targets", () => {
  it("answers the SDK's default (base64) with the exact vectors in input order, the upstream's bytes unchanged", async () => {
    const { data, response } = await client.embeddings
      .create({ model: "embed-small", input: texts })
      .withResponse();
    expect(data.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(data.data.map((d) => d.embedding)).toEqual(texts.map((t) => fakeEmbeddingOf(t, 8)));
    expect(data.usage).toEqual({ prompt_tokens: 13, total_tokens: 13 });
    expect(response.headers.get("x-gateway-provider")).toBe("a");
    // The caller's request went up with the target's model and the encoding it asked for.
    expect(a.requests[0]?.path).toBe("/embeddings");
    expect(a.requests[0]?.body).toEqual({
      model: "text-embedding-3-small",
      input: texts,
      encoding_format: "base64",
    });
    expect(a.requests[0]?.headers.authorization).toBe("Bearer sk-test-secret-key-123456");
    // What the SDK read is the upstream's answer as it wrote it.
    const raw = await post({ model: "embed-small", input: texts, encoding_format: "base64" });
    expect(await raw.text()).toBe(a.responses[1]);
  });

  it("passes the float answer on byte for byte, and re-encodes when the upstream ignored the encoding", async () => {
    const body = JSON.stringify({
      model: "embed-small",
      input: "one text",
      encoding_format: "float",
      dimensions: 4,
      user: "u-1",
    });
    const res = await fetch(`${gateway.url}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toBe(a.responses[0]);
    expect(a.requests[0]?.body).toEqual({
      model: "text-embedding-3-small",
      input: "one text",
      encoding_format: "float",
      dimensions: 4,
      user: "u-1",
    });

    // A server that answers floats when base64 was asked: the SDK still gets float32 base64.
    a.queue.push({ kind: "raw", body: floatAnswer(["x", "y"]) });
    const answer = await client.embeddings.create({ model: "embed-small", input: ["x", "y"] });
    expect(answer.data.map((d) => d.embedding)).toEqual([fakeEmbeddingOf("x", 8), fakeEmbeddingOf("y", 8)]);
    expect(answer.usage.prompt_tokens).toBe(2);
  });

  it("fails a dead first target over to the same model on the next", async () => {
    a.queue.push({ kind: "reset" });
    const { data, response } = await client.embeddings
      .create({ model: "embed-small", input: texts, encoding_format: "float" })
      .withResponse();
    expect(data.data.map((d) => d.embedding)).toEqual(texts.map((t) => fakeEmbeddingOf(t, 8)));
    expect(response.headers.get("x-gateway-provider")).toBe("b");
    expect(response.headers.get("x-gateway-attempts")).toBe("2");
    expect(b.requests[0]?.body.model).toBe("text-embedding-3-small");
  });

  it("never crosses into another model's space: a route mixing models answers the failure", async () => {
    a.queue.push({ kind: "status", status: 503 });
    const call = client.embeddings.create({ model: "mixed", input: texts });
    await expect(call).rejects.toBeInstanceOf(OpenAI.APIError);
    await expect(call.catch((e: unknown) => e)).resolves.toMatchObject({
      status: 502,
      code: "upstream_unavailable",
    });
    expect(a.requests).toHaveLength(1);
    // The other model was never asked.
    expect(b.requests).toHaveLength(0);
  });

  it("fails over between two names of one model when the configuration declares them one space", async () => {
    a.queue.push({ kind: "status", status: 500 });
    const { response } = await client.embeddings.create({ model: "declared", input: "x" }).withResponse();
    expect(response.headers.get("x-gateway-provider")).toBe("b");
    expect(b.requests[0]?.body.model).toBe("BAAI/bge-m3");
  });

  it("hands an upstream's 400 back to the caller without failing over", async () => {
    a.queue.push({
      kind: "status",
      status: 400,
      error: { message: "token arrays are not supported", param: "input" },
    });
    const res = await post({ model: "embed-small", input: [[1, 2, 3]] });
    expect(res.status).toBe(400);
    expect((await jsonOf(res)).error.message).toContain("token arrays are not supported");
    expect(a.requests[0]?.body.input).toEqual([1, 2, 3]);
    expect(b.requests).toHaveLength(0);
  });
});

describe("embeddings on Amazon Bedrock", () => {
  it("embeds a Titan batch as concurrent calls, vectors exact and in input order", async () => {
    const input = Array.from({ length: 20 }, (_, i) => `text number ${i}`);
    const { data, response } = await client.embeddings
      .create({ model: "titan", input, dimensions: 256 })
      .withResponse();
    expect(data.data.map((d) => d.embedding)).toEqual(input.map((t) => fakeEmbedding(t, 256)));
    expect(data.usage.prompt_tokens).toBe(60);
    expect(data.model).toBe(TITAN);
    expect(response.headers.get("x-gateway-provider")).toBe("east");
    expect(bedrock.requests).toHaveLength(20);
    expect(bedrock.requests.every((r) => r.region === "us-east-1" && r.modelId === TITAN)).toBe(true);
    expect(bedrock.requests.map((r) => r.body.inputText).sort()).toEqual([...input].sort());
    expect(bedrock.requests[0]?.body.dimensions).toBe(256);
  });

  it("embeds with Cohere in its own body, usage from the token count header", async () => {
    const res = await post({ model: "cohere", input: texts, bedrock: { inputType: "search_query" } });
    expect(res.status).toBe(200);
    const data = await jsonOf(res);
    expect(bedrock.requests.map((r) => r.body)).toEqual([{ texts, input_type: "search_query" }]);
    expect(data.data.map((d: { embedding: number[] }) => d.embedding)).toEqual(
      texts.map((t) => fakeEmbedding(t, 1024)),
    );
    expect(data.usage.prompt_tokens).toBe(texts.reduce((n, t) => n + fakeTokenCount(t), 0));
  });

  it("refuses, naming the field, what the family does not take, before any call", async () => {
    const res = await post({ model: "cohere", input: "x", bedrock: { normalize: true } });
    expect(res.status).toBe(400);
    expect((await jsonOf(res)).error).toMatchObject({
      param: "bedrock.normalize",
      code: "unsupported_parameter",
    });
    const tokens = await post({ model: "titan", input: [[1, 2]] });
    expect(tokens.status).toBe(400);
    expect((await jsonOf(tokens)).error.param).toBe("input");
    expect(bedrock.requests).toHaveLength(0);
  });

  it("refuses a route whose first target cannot embed", async () => {
    const res = await post({ model: "claude", input: "x" });
    expect(res.status).toBe(400);
    expect((await jsonOf(res)).error).toMatchObject({ param: "model", code: "model_not_supported" });
    expect(bedrock.requests).toHaveLength(0);
  });

  it("probes an embeddings-only provider with one short input", async () => {
    const east = gateway.runtime.factory.getProvider("east");
    const result = await east?.healthCheck({ timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(bedrock.requests.map((r) => [r.region, r.modelId, r.body])).toEqual([
      ["us-east-1", TITAN, { inputText: "ping" }],
    ]);
  });

  // Last on the titan route: it leaves us-east-1 rate-limited.
  it("fails a throttled region over to the same model in another region", async () => {
    bedrock.byRegion["us-east-1"] = [{ kind: "throttle" }, { kind: "throttle" }];
    const { data, response } = await client.embeddings
      .create({ model: "titan", input: "hello" })
      .withResponse();
    expect(data.data.map((d) => d.embedding)).toEqual([fakeEmbedding("hello", 1024)]);
    expect(response.headers.get("x-gateway-provider")).toBe("west");
    // Retried once in the east, then the same model through the west's inference profile.
    expect(bedrock.requests.map((r) => [r.region, r.modelId])).toEqual([
      ["us-east-1", TITAN],
      ["us-east-1", TITAN],
      ["us-west-2", `us.${TITAN}`],
    ]);
    const log = gateway.logs.find(
      (l) => l.msg === "embeddings" && l.requestId === response.headers.get("x-request-id"),
    );
    expect(log?.attempts).toEqual([
      expect.objectContaining({ provider: "east", outcome: "error", status: 429 }),
      expect.objectContaining({ provider: "east", outcome: "error", status: 429 }),
      expect.objectContaining({ provider: "west", model: `us.${TITAN}`, outcome: "ok" }),
    ]);
  });
});

describe("embeddings and caller keys", () => {
  let table: TestTable;
  beforeAll(async () => {
    table = await startTestTable();
  });
  afterAll(async () => {
    await table.close();
  });

  it("meters embedding tokens in the ledger, with their cost, and stops a key at its budget", async () => {
    const clock = testClock();
    const callers = callersOn(table, {
      clock,
      flushAfterResponse: true,
      policy: { prices: { "embed-small": { input: 1_000_000, output: 0, cachedInput: 1_000_000 } } },
    });
    const metered = await startGateway(document(), { auth: callers.auth });
    try {
      const { id, auth } = await createKey(callers, "indexer", { limits: { tokensPerDay: 12 } });
      const keyed = new OpenAI({
        baseURL: `${metered.url}/v1`,
        apiKey: auth.authorization?.slice(7) ?? "",
        maxRetries: 0,
      });
      // Five words: the fake counts five tokens; admission reserves ceil(23 / 4) = 6.
      const input = "one two three four five";
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await keyed.embeddings
          .create({ model: "embed-small", input })
          .then(() => 200)
          .catch((e: { status: number }) => e.status);
        statuses.push(res);
      }
      // 5 + 5 spent: a third would need 6 more of the 12.
      expect(statuses).toEqual([200, 200, 429, 429]);
      const totals = await callers.store.totals(id, clock.now());
      expect(totals.dayTokens).toBe(10);
      expect(totals.dayCost).toBe(10);
      const rows = await callers.store.usage({ keyId: id });
      expect(rows).toEqual([
        expect.objectContaining({
          model: "embed-small",
          requests: 2,
          promptTokens: 10,
          completionTokens: 0,
          cost: 10,
        }),
      ]);
    } finally {
      await metered.close();
      callers.ledger.stop();
    }
  });
});

function post(body: Record<string, unknown>) {
  return fetch(`${gateway.url}/v1/embeddings`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** An answer in JSON numbers, as a server that ignores `encoding_format` writes it. */
function floatAnswer(inputs: string[]): string {
  return JSON.stringify({
    object: "list",
    data: inputs.map((t, index) => ({ object: "embedding", index, embedding: fakeEmbeddingOf(t, 8) })),
    model: "text-embedding-3-small",
    usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
  });
}

describe("embeddings on the mock provider (what `npm start` serves)", () => {
  it("answers deterministic vectors, 16 dimensions unless asked", async () => {
    const mock = await startGateway({
      providers: [{ id: "m", type: "mock", mock: { firstTokenDelayMs: 0 } }],
      models: { "mock-embed": { targets: [{ provider: "m", model: "mock-embedding" }] } },
    });
    try {
      const local = new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: "unused", maxRetries: 0 });
      const first = await local.embeddings.create({ model: "mock-embed", input: ["a", "b"] });
      const again = await local.embeddings.create({ model: "mock-embed", input: "a", dimensions: 4 });
      expect(first.data.map((d) => d.embedding)).toEqual([
        fakeEmbeddingOf("a", 16),
        fakeEmbeddingOf("b", 16),
      ]);
      expect(again.data[0]?.embedding).toEqual(fakeEmbeddingOf("a", 4));
      expect(first.model).toBe("mock-embedding");
    } finally {
      await mock.close();
    }
  });
});
