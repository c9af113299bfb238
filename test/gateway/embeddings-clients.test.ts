import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOpenAI } from "@ai-sdk/openai";
import { OpenAIEmbeddings } from "@langchain/openai";
import { embedMany } from "ai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { hashClientKey } from "../../lib/gateway/auth.ts";
import { bundleAsDeployed, importHandler, useFunctionEnvironment } from "../support/bundle.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import {
  type FakeEmbeddingsUpstream,
  fakeEmbeddingOf,
  startFakeEmbeddingsUpstream,
} from "../support/fake-embeddings-upstream.ts";
import { type FakeSecrets, startFakeSecrets } from "../support/fake-secrets.ts";
import { fakeProvider, startGateway, type TestGateway } from "../support/gateway.ts";
import { startFunctionUrl } from "../support/lambda-runtime.ts";

/**
 * Issue 20: the embeddings clients people use, each as it ships, against `POST /v1/embeddings` served
 * two ways: the local node:http server (what `npm start` runs) and the chat handler bundled as it
 * is deployed (the stack's esbuild options), run through the Lambda streaming shim with its caller
 * key and provider key from the Secrets Manager fake. Both route `embed-small` to a fake
 * OpenAI-compatible server whose vectors are deterministic, so every vector is asserted exactly and
 * in input order. The clients: the official `openai` SDK (it asks for base64 by default, float32
 * little-endian, and decodes it), the Vercel AI SDK's `embedMany` (asks for floats) and LangChain's
 * `OpenAIEmbeddings` (its own nested `openai` 6.49, so base64 too, batches sent concurrently).
 */
const CLIENT_KEY = "sk-gw-embed-client-key-123456";
const UPSTREAM_KEY = "sk-upstream-embed-key-123456";
const MODEL = "text-embedding-3-small";

interface Served {
  url: string;
  apiKey: string;
  upstream: FakeEmbeddingsUpstream;
}

let local: Served;
let lambda: Served;
let gateway: TestGateway;
let table: TestTable;
let secrets: FakeSecrets;
let functionUrl: { url: string; close(): Promise<void> };
let outdir: string;
const saved = { ...process.env };

beforeAll(async () => {
  const [localUpstream, lambdaUpstream] = await Promise.all([
    startFakeEmbeddingsUpstream(),
    startFakeEmbeddingsUpstream(),
  ]);
  gateway = await startGateway({
    providers: [fakeProvider("up", localUpstream.url)],
    models: { "embed-small": { targets: [{ provider: "up", model: MODEL }] } },
  });
  local = { url: gateway.url, apiKey: "unused-locally", upstream: localUpstream };

  table = await startTestTable();
  secrets = await startFakeSecrets({
    "embed-e2e/provider-keys": JSON.stringify({ up: UPSTREAM_KEY }),
    "embed-e2e/client-keys": JSON.stringify({ sha256: [hashClientKey(CLIENT_KEY)] }),
  });
  const configText = JSON.stringify({
    health: { cacheTtlMs: 0 },
    providers: [
      {
        id: "up",
        type: "openai",
        baseUrl: lambdaUpstream.url,
        apiKey: { secretId: "embed-e2e/provider-keys", jsonKey: "up" },
      },
    ],
    models: { "embed-small": { targets: [{ provider: "up", model: MODEL }] } },
  });
  outdir = mkdtempSync(join(tmpdir(), "embed-clients-"));
  const chat = await bundleAsDeployed("functions/chat.ts", configText, join(outdir, "chat.mjs"));
  useFunctionEnvironment(table, secrets.endpoint, { CLIENT_KEYS_SECRET: "embed-e2e/client-keys" });
  delete process.env.GATEWAY_CONFIG_JSON;
  functionUrl = await startFunctionUrl(await importHandler(chat));
  lambda = { url: functionUrl.url, apiKey: CLIENT_KEY, upstream: lambdaUpstream };
}, 60_000);

afterAll(async () => {
  process.env = saved;
  await gateway?.close();
  await functionUrl?.close();
  await Promise.all([local?.upstream.close(), lambda?.upstream.close()]);
  await secrets?.close();
  await table?.close();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

beforeEach(() => {
  for (const served of [local, lambda]) {
    served.upstream.requests.length = 0;
    served.upstream.responses.length = 0;
  }
});

const texts = ["the first text", "a second one", "and a third, longer than the others"];

describe.each([
  { name: "the local server (`npm start`)", served: () => local, upstreamKey: "sk-test-secret-key-123456" },
  { name: "the bundled Lambda handler", served: () => lambda, upstreamKey: UPSTREAM_KEY },
])("embeddings clients against $name", ({ served, upstreamKey }) => {
  it("the official openai SDK: its default base64, decoded to the exact vectors in input order", async () => {
    const { url, apiKey, upstream } = served();
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });

    const answer = await client.embeddings.create({ model: "embed-small", input: texts });

    expect(answer.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(answer.data.map((d) => d.embedding)).toEqual(texts.map((t) => fakeEmbeddingOf(t, 8)));
    // 3 + 3 + 7 words: the fake counts words.
    expect(answer.usage).toEqual({ prompt_tokens: 13, total_tokens: 13 });
    expect(upstream.requests.map((r) => r.body)).toEqual([
      { model: MODEL, input: texts, encoding_format: "base64" },
    ]);
    expect(upstream.requests[0]?.headers.authorization).toBe(`Bearer ${upstreamKey}`);
  });

  it("the official openai SDK asking for floats, with dimensions", async () => {
    const { url, apiKey, upstream } = served();
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });

    const answer = await client.embeddings.create({
      model: "embed-small",
      input: texts,
      encoding_format: "float",
      dimensions: 4,
    });

    expect(answer.data.map((d) => d.embedding)).toEqual(texts.map((t) => fakeEmbeddingOf(t, 4)));
    expect(answer.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(upstream.requests.map((r) => r.body)).toEqual([
      { model: MODEL, input: texts, encoding_format: "float", dimensions: 4 },
    ]);
  });

  it("the Vercel AI SDK's embedMany: the exact vectors in the values' order, the usage counted", async () => {
    const { url, apiKey, upstream } = served();
    const openai = createOpenAI({ baseURL: `${url}/v1`, apiKey });

    const result = await embedMany({
      model: openai.embedding("embed-small"),
      values: texts,
      maxRetries: 0,
      providerOptions: { openai: { dimensions: 4 } },
    });

    expect(result.embeddings).toEqual(texts.map((t) => fakeEmbeddingOf(t, 4)));
    expect(result.usage).toEqual({ tokens: 13 });
    expect(upstream.requests.map((r) => r.body)).toEqual([
      { model: MODEL, input: texts, encoding_format: "float", dimensions: 4 },
    ]);
  });

  it("LangChain's OpenAIEmbeddings: documents in concurrent batches come back in order, and a query", async () => {
    const { url, apiKey, upstream } = served();
    const documents = ["doc one", "doc two", "doc three", "doc four", "doc five"];
    const embeddings = new OpenAIEmbeddings({
      model: "embed-small",
      apiKey,
      configuration: { baseURL: `${url}/v1` },
      batchSize: 2,
      maxRetries: 0,
    });

    const vectors = await embeddings.embedDocuments(documents);
    const batches = upstream.requests.map((r) => r.body);
    const query = await embeddings.embedQuery("what is\nthe first doc");

    expect(vectors).toEqual(documents.map((d) => fakeEmbeddingOf(d, 8)));
    // Three batches of at most two, sent at once (LangChain's maxConcurrency is 2): in any order. The
    // gateway sends a batch of one as a plain string (lib/providers/openai-embeddings.ts).
    expect(batches).toHaveLength(3);
    expect(batches.map((b) => b.input)).toEqual(
      expect.arrayContaining([["doc one", "doc two"], ["doc three", "doc four"], "doc five"]),
    );
    expect(batches.every((b) => b.encoding_format === "base64" && b.model === MODEL)).toBe(true);
    // LangChain strips newlines from what it embeds by default.
    expect(query).toEqual(fakeEmbeddingOf("what is the first doc", 8));
    expect(upstream.requests[3]?.body).toEqual({
      model: MODEL,
      input: "what is the first doc",
      encoding_format: "base64",
    });
  });
});

describe("the bundled Lambda handler's caller keys", () => {
  it("refuses each client a wrong key before any upstream call, as an OpenAI authentication error", async () => {
    const wrong = "sk-gw-wrong-key-000000";
    const sdk = await new OpenAI({ baseURL: `${lambda.url}/v1`, apiKey: wrong, maxRetries: 0 }).embeddings
      .create({ model: "embed-small", input: "x" })
      .catch((e: unknown) => e);
    const vercel = await embedMany({
      model: createOpenAI({ baseURL: `${lambda.url}/v1`, apiKey: wrong }).embedding("embed-small"),
      values: ["x"],
      maxRetries: 0,
    }).catch((e: unknown) => e);

    expect(sdk).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((vercel as { statusCode?: number }).statusCode).toBe(401);
    expect(lambda.upstream.requests).toEqual([]);
  });
});
