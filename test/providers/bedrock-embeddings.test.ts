import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EmbeddingRequest } from "../../lib/core/embeddings.ts";
import { toEmbeddingRequest } from "../../lib/dialects/openai-embeddings/parse.ts";
import { InvalidRequestError, UpstreamError } from "../../lib/errors.ts";
import {
  BEDROCK_EMBEDDING_CONCURRENCY,
  type BedrockEmbeddingCall,
  type BedrockEmbeddingInvoke,
  type BedrockInvokeOutput,
  bedrockEmbeddingFamily,
  DEFAULT_COHERE_INPUT_TYPE,
  INPUT_TOKEN_COUNT_HEADER,
  inputTokenCountOf,
  planBedrockEmbeddings,
  readBedrockEmbeddings,
  runBedrockEmbeddings,
} from "../../lib/providers/bedrock-embeddings.ts";
import {
  type FakeBedrockEmbeddings,
  fakeEmbedding,
  fakeTokenCount,
  startFakeBedrockEmbeddings,
} from "../support/fake-bedrock-embeddings.ts";

const TITAN = "amazon.titan-embed-text-v2:0";
const COHERE_V3 = "cohere.embed-english-v3";
const COHERE_V4 = "cohere.embed-v4:0";

const embeddings = (body: Record<string, unknown>): EmbeddingRequest =>
  toEmbeddingRequest({ model: "route", ...body });

function refusal(run: () => unknown): { param: string | null; message: string } {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    const e = error as InvalidRequestError;
    expect(e.status).toBe(400);
    return { param: e.param, message: e.message };
  }
  throw new Error("accepted");
}

describe("the embedding family of a Bedrock model id", () => {
  it("is read from model ids, inference profiles and ARNs", () => {
    expect(bedrockEmbeddingFamily(TITAN)).toBe("titan-text-v2");
    expect(bedrockEmbeddingFamily("us.amazon.titan-embed-text-v2:0")).toBe("titan-text-v2");
    expect(bedrockEmbeddingFamily(COHERE_V3)).toBe("cohere-v3");
    expect(bedrockEmbeddingFamily("cohere.embed-multilingual-v3")).toBe("cohere-v3");
    expect(bedrockEmbeddingFamily("eu.cohere.embed-multilingual-v3")).toBe("cohere-v3");
    expect(bedrockEmbeddingFamily(COHERE_V4)).toBe("cohere-v4");
    expect(bedrockEmbeddingFamily("global.cohere.embed-v4:0")).toBe("cohere-v4");
    expect(bedrockEmbeddingFamily("apac.cohere.embed-v4:0")).toBe("cohere-v4");
    expect(
      bedrockEmbeddingFamily("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"),
    ).toBe("titan-text-v2");
    expect(
      bedrockEmbeddingFamily("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.cohere.embed-v4:0"),
    ).toBe("cohere-v4");
  });

  it("is none for other models (Titan v1, chat models, application inference profiles)", () => {
    expect(bedrockEmbeddingFamily("amazon.titan-embed-text-v1")).toBeUndefined();
    expect(bedrockEmbeddingFamily("anthropic.claude-3-haiku-20240307-v1:0")).toBeUndefined();
    expect(
      bedrockEmbeddingFamily("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"),
    ).toBeUndefined();
    expect(bedrockEmbeddingFamily("xx.amazon.titan-embed-text-v2:0")).toBeUndefined();
  });
});

describe("the InvokeModel bodies for an embeddings request", () => {
  it("sends Titan one text per call, with dimensions and normalize when asked", () => {
    const plan = planBedrockEmbeddings(
      embeddings({ input: ["a", "b", "c"], dimensions: 256, bedrock: { normalize: false }, user: "u1" }),
      TITAN,
    );
    expect(plan.family).toBe("titan-text-v2");
    expect(plan.calls).toEqual([
      { body: { inputText: "a", dimensions: 256, normalize: false }, inputs: [0] },
      { body: { inputText: "b", dimensions: 256, normalize: false }, inputs: [1] },
      { body: { inputText: "c", dimensions: 256, normalize: false }, inputs: [2] },
    ]);
    expect(planBedrockEmbeddings(embeddings({ input: "a" }), TITAN).calls).toEqual([
      { body: { inputText: "a" }, inputs: [0] },
    ]);
  });

  it("sends Cohere v3 chunks of 96 texts, search_document unless the extension says otherwise", () => {
    const input = Array.from({ length: 200 }, (_, i) => `t${i}`);
    const plan = planBedrockEmbeddings(embeddings({ input }), COHERE_V3);
    expect(plan.calls.map((c) => c.inputs.length)).toEqual([96, 96, 8]);
    expect(plan.calls[2]).toEqual({
      body: {
        texts: ["t192", "t193", "t194", "t195", "t196", "t197", "t198", "t199"],
        input_type: "search_document",
      },
      inputs: [192, 193, 194, 195, 196, 197, 198, 199],
    });
    expect(plan.calls[1]?.inputs[0]).toBe(96);
    expect(DEFAULT_COHERE_INPUT_TYPE).toBe("search_document");

    const query = planBedrockEmbeddings(
      embeddings({ input: ["q"], dimensions: 1024, bedrock: { inputType: "search_query", truncate: "END" } }),
      "us.cohere.embed-multilingual-v3",
    );
    expect(query.calls).toEqual([
      { body: { texts: ["q"], input_type: "search_query", truncate: "END" }, inputs: [0] },
    ]);
  });

  it("sends Cohere v4 its output dimension, max tokens and float embedding type", () => {
    const plan = planBedrockEmbeddings(
      embeddings({ input: ["x", "y"], dimensions: 512, bedrock: { maxTokens: 1000, truncate: "RIGHT" } }),
      COHERE_V4,
    );
    expect(plan.calls).toEqual([
      {
        body: {
          texts: ["x", "y"],
          input_type: "search_document",
          truncate: "RIGHT",
          embedding_types: ["float"],
          output_dimension: 512,
          max_tokens: 1000,
        },
        inputs: [0, 1],
      },
    ]);
  });

  it("refuses token arrays, naming input", () => {
    for (const model of [TITAN, COHERE_V3, COHERE_V4]) {
      expect(refusal(() => planBedrockEmbeddings(embeddings({ input: [[1, 2]] }), model))).toEqual({
        param: "input",
        message: "'input' as token arrays is not supported by Amazon Bedrock targets; send text.",
      });
    }
  });

  it("refuses dimensions the model cannot produce, naming them", () => {
    expect(refusal(() => planBedrockEmbeddings(embeddings({ input: "a", dimensions: 300 }), TITAN))).toEqual({
      param: "dimensions",
      message: `Invalid 'dimensions': 300 is not supported by ${TITAN}; supported: 1024, 512, 256.`,
    });
    expect(
      refusal(() => planBedrockEmbeddings(embeddings({ input: "a", dimensions: 512 }), COHERE_V3)).param,
    ).toBe("dimensions");
    expect(
      refusal(() => planBedrockEmbeddings(embeddings({ input: "a", dimensions: 768 }), COHERE_V4)).param,
    ).toBe("dimensions");
  });

  it("refuses extension keys and values the family does not take", () => {
    const plan = (bedrock: unknown, model: string) => () =>
      planBedrockEmbeddings(embeddings({ input: "a", bedrock }), model);
    expect(refusal(plan({ truncate: "END" }, TITAN))).toEqual({
      param: "bedrock.truncate",
      message: "'bedrock.truncate' is not supported by Titan Text Embeddings v2 models.",
    });
    expect(refusal(plan({ inputType: "search_query" }, TITAN)).param).toBe("bedrock.inputType");
    expect(refusal(plan({ normalize: true }, COHERE_V3)).param).toBe("bedrock.normalize");
    expect(refusal(plan({ maxTokens: 10 }, COHERE_V3)).param).toBe("bedrock.maxTokens");
    expect(refusal(plan({ guardrailConfig: {} }, COHERE_V4)).param).toBe("bedrock.guardrailConfig");
    expect(refusal(plan({ truncate: "LEFT" }, COHERE_V3))).toEqual({
      param: "bedrock.truncate",
      message: "Invalid 'bedrock.truncate': 'LEFT'; supported: NONE, START, END.",
    });
    expect(refusal(plan({ truncate: "END" }, COHERE_V4)).param).toBe("bedrock.truncate");
    expect(refusal(plan({ inputType: "image" }, COHERE_V4)).param).toBe("bedrock.inputType");
    expect(refusal(plan({ inputType: "x".repeat(10_000) }, COHERE_V4)).message.length).toBeLessThan(400);
    expect(refusal(plan({ normalize: "yes" }, TITAN)).param).toBe("bedrock.normalize");
    expect(refusal(plan({ maxTokens: 0 }, COHERE_V4)).param).toBe("bedrock.maxTokens");
  });

  it("refuses OpenAI fields Bedrock has no place for, naming them", () => {
    expect(
      refusal(() => planBedrockEmbeddings(embeddings({ input: "a", input_type: "query" }), TITAN)),
    ).toEqual({
      param: "input_type",
      message: "'input_type' is not supported by Amazon Bedrock targets.",
    });
  });
});

describe("a Bedrock embeddings answer", () => {
  const output = (json: unknown, inputTokenCount?: number): BedrockInvokeOutput => ({
    body: new TextEncoder().encode(JSON.stringify(json)),
    inputTokenCount,
  });

  it("gives Titan's vector and inputTextTokenCount", () => {
    const plan = planBedrockEmbeddings(embeddings({ input: "hello there" }), TITAN);
    const call = plan.calls[0] as BedrockEmbeddingCall;
    expect(
      readBedrockEmbeddings(plan, call, output({ embedding: [0.5, 0.25], inputTextTokenCount: 3 }, 9), "b"),
    ).toEqual({ vectors: [[0.5, 0.25]], inputTokens: 3, estimated: false });
  });

  it("gives Cohere's vectors, listed or by type, with the header's token count, or an estimate", () => {
    const plan = planBedrockEmbeddings(embeddings({ input: ["abcd", "efghi"] }), COHERE_V3);
    const call = plan.calls[0] as BedrockEmbeddingCall;
    const listed = {
      id: "x",
      texts: ["abcd", "efghi"],
      embeddings: [[1], [2]],
      response_type: "embeddings_floats",
    };
    expect(readBedrockEmbeddings(plan, call, output(listed, 4), "b")).toEqual({
      vectors: [[1], [2]],
      inputTokens: 4,
      estimated: false,
    });
    const byType = {
      id: "x",
      texts: [],
      embeddings: { float: [[1], [2]] },
      response_type: "embeddings_by_type",
    };
    // No header: 4 characters are 1 token, 5 are 2.
    expect(readBedrockEmbeddings(plan, call, output(byType), "b")).toEqual({
      vectors: [[1], [2]],
      inputTokens: 3,
      estimated: true,
    });
  });

  it("is a 502 that fails over when it is not one vector per text", () => {
    const plan = planBedrockEmbeddings(embeddings({ input: ["a", "b"], dimensions: 1024 }), COHERE_V3);
    const call = plan.calls[0] as BedrockEmbeddingCall;
    const vector = Array.from({ length: 1024 }, () => 0.5);
    const cases: Array<[BedrockInvokeOutput, string]> = [
      [{ body: "{cut" }, "not JSON"],
      [output([1]), "not a JSON object"],
      [output({ embeddings: { int8: [[1]] } }), "no float embeddings"],
      [output({ embeddings: [vector] }), "1 embeddings for 2 texts"],
      [output({ embeddings: [vector, [0.5]] }), "1 dimensions, not 1024"],
      [
        output({ embeddings: [vector, [...vector.slice(1), Number.NaN]] }),
        "embedding 1 is not a vector of numbers",
      ],
      [output({ message: "hello" }), "no float embeddings"],
    ];
    for (const [answer, why] of cases) {
      let error: unknown;
      try {
        readBedrockEmbeddings(plan, call, answer, "bedrock-east");
      } catch (e) {
        error = e;
      }
      expect(error, why).toBeInstanceOf(UpstreamError);
      expect(error, why).toMatchObject({
        status: 502,
        code: "upstream_invalid_response",
        action: "failover",
        providerId: "bedrock-east",
        message: `bedrock-east: Bedrock ${COHERE_V3} returned an answer that is not readable: ${why}`,
      });
    }
  });

  it("reads the token count header, and nothing that is not a count", () => {
    expect(INPUT_TOKEN_COUNT_HEADER).toBe("x-amzn-bedrock-input-token-count");
    expect(inputTokenCountOf({ "x-amzn-bedrock-input-token-count": "42" })).toBe(42);
    expect(inputTokenCountOf({ "x-amzn-bedrock-input-token-count": "-1" })).toBeUndefined();
    expect(inputTokenCountOf({ "x-amzn-bedrock-input-token-count": "4e3" })).toBeUndefined();
    expect(inputTokenCountOf({})).toBeUndefined();
    expect(inputTokenCountOf(undefined)).toBeUndefined();
  });
});

describe("running a plan", () => {
  interface Pending {
    call: BedrockEmbeddingCall;
    signal: AbortSignal;
    resolve(output: BedrockInvokeOutput): void;
    reject(error: unknown): void;
  }
  /** An invoke whose calls wait until the test settles them. */
  function scripted() {
    const pending: Pending[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const invoke: BedrockEmbeddingInvoke = (call, signal) =>
      new Promise<BedrockInvokeOutput>((resolve, reject) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const done = () => inFlight--;
        signal.addEventListener("abort", () => {
          done();
          reject(new Error("aborted"));
        });
        pending.push({
          call,
          signal,
          resolve: (o) => {
            done();
            resolve(o);
          },
          reject: (e) => {
            done();
            reject(e);
          },
        });
      });
    return { pending, invoke, maxInFlight: () => maxInFlight };
  }
  const titanAnswer = (text: string): BedrockInvokeOutput => ({
    body: JSON.stringify({ embedding: [text.length, 0], inputTextTokenCount: text.length }),
  });
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it("runs at most the bound at once and puts vectors back in input order", async () => {
    const input = Array.from({ length: 20 }, (_, i) => "x".repeat(i + 1));
    const plan = planBedrockEmbeddings(embeddings({ input }), TITAN);
    const s = scripted();
    const run = runBedrockEmbeddings(plan, s.invoke, {
      signal: new AbortController().signal,
      providerId: "b",
    });
    await settle();
    expect(BEDROCK_EMBEDDING_CONCURRENCY).toBe(8);
    expect(s.pending).toHaveLength(8);
    // Answer the latest first, so completion order is not input order.
    while (s.pending.some((p) => !p.signal.aborted)) {
      const open = s.pending.splice(0);
      for (const p of open.reverse()) p.resolve(titanAnswer(String(p.call.body.inputText)));
      await settle();
    }
    const result = await run;
    expect(s.maxInFlight()).toBe(8);
    expect(result.vectors.map((v) => v[0])).toEqual(input.map((t) => t.length));
    expect(result.usage).toEqual({ inputTokens: 210, estimated: false });
    expect(result.model).toBe(TITAN);
  });

  it("takes another bound when told", async () => {
    const plan = planBedrockEmbeddings(embeddings({ input: ["a", "b", "c", "d"] }), TITAN);
    const s = scripted();
    const run = runBedrockEmbeddings(plan, s.invoke, {
      signal: new AbortController().signal,
      providerId: "b",
      concurrency: 2,
    });
    for (let round = 0; round < 2; round++) {
      await settle();
      expect(s.pending).toHaveLength(2);
      for (const p of s.pending.splice(0)) p.resolve(titanAnswer(String(p.call.body.inputText)));
    }
    expect((await run).vectors).toHaveLength(4);
    expect(s.maxInFlight()).toBe(2);
  });

  it("stops at the first failure, aborts the calls in flight, starts no more, and throws it", async () => {
    const plan = planBedrockEmbeddings(
      embeddings({ input: Array.from({ length: 30 }, (_, i) => `t${i}`) }),
      TITAN,
    );
    const s = scripted();
    const run = runBedrockEmbeddings(plan, s.invoke, {
      signal: new AbortController().signal,
      providerId: "b",
    });
    await settle();
    const first = s.pending[3] as Pending;
    const throttled = new Error("ThrottlingException");
    first.reject(throttled);
    await expect(run).rejects.toBe(throttled);
    expect(s.pending).toHaveLength(8);
    expect(s.pending.filter((p) => p.signal.aborted)).toHaveLength(8);
  });

  it("fails over a target that answers vectors of two lengths", async () => {
    const plan = planBedrockEmbeddings(embeddings({ input: ["a", "b"] }), TITAN);
    const answers = [
      { embedding: [1, 2], inputTextTokenCount: 1 },
      { embedding: [1], inputTextTokenCount: 1 },
    ];
    const invoke: BedrockEmbeddingInvoke = async () => ({ body: JSON.stringify(answers.shift()) });
    await expect(
      runBedrockEmbeddings(plan, invoke, {
        signal: new AbortController().signal,
        providerId: "b",
        concurrency: 1,
      }),
    ).rejects.toMatchObject({ status: 502, action: "failover", code: "upstream_invalid_response" });
  });

  it("passes the caller's abort to every call", async () => {
    const plan = planBedrockEmbeddings(embeddings({ input: ["a", "b"] }), TITAN);
    const s = scripted();
    const caller = new AbortController();
    const run = runBedrockEmbeddings(plan, s.invoke, { signal: caller.signal, providerId: "b" });
    await settle();
    caller.abort();
    await expect(run).rejects.toThrow("aborted");
    expect(s.pending.map((p) => p.signal.aborted)).toEqual([true, true]);
  });
});

describe("embeddings through the AWS SDK's InvokeModelCommand against the fake", () => {
  let fake: FakeBedrockEmbeddings;
  const saved = { ...process.env };
  type Sdk = typeof import("@aws-sdk/client-bedrock-runtime");
  let sdk: Sdk;

  beforeAll(async () => {
    fake = await startFakeBedrockEmbeddings();
    process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME = fake.url;
    process.env.AWS_ACCESS_KEY_ID = "AKIDFAKEFAKEFAKE";
    process.env.AWS_SECRET_ACCESS_KEY = "fake-secret";
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;
    sdk = await import("@aws-sdk/client-bedrock-runtime");
  });
  afterAll(async () => {
    process.env = saved;
    await fake.close();
  });

  /**
   * The invoke a provider would build: one `InvokeModelCommand` per call, the token count header read
   * from the raw response by a deserialize-step middleware (the command's output does not carry it).
   */
  function sdkInvoke(region: string, modelId: string): BedrockEmbeddingInvoke {
    const client = new sdk.BedrockRuntimeClient({ region, maxAttempts: 1 });
    return async (call, signal) => {
      const command = new sdk.InvokeModelCommand({
        modelId,
        body: JSON.stringify(call.body),
        contentType: "application/json",
        accept: "application/json",
      });
      let headers: Record<string, string> | undefined;
      command.middlewareStack.add(
        (next) => async (args) => {
          const out = await next(args);
          headers = (out.response as { headers?: Record<string, string> }).headers;
          return out;
        },
        { step: "deserialize", name: "embeddingInputTokenCount" },
      );
      const output = await client.send(command, { abortSignal: signal });
      return { body: output.body, inputTokenCount: inputTokenCountOf(headers) };
    };
  }
  const run = (request: EmbeddingRequest, modelId: string, region = "us-east-1") =>
    runBedrockEmbeddings(planBedrockEmbeddings(request, modelId), sdkInvoke(region, modelId), {
      signal: new AbortController().signal,
      providerId: "bedrock-east",
    });

  it("embeds a Titan batch, one call per text, vectors exact and in order", async () => {
    fake.requests.length = 0;
    const input = ["hello", "two words", "three more words"];
    const result = await run(embeddings({ input, dimensions: 256 }), TITAN);
    expect(fake.requests.map((r) => r.body.inputText).sort()).toEqual([...input].sort());
    expect(fake.requests.every((r) => r.region === "us-east-1" && r.modelId === TITAN)).toBe(true);
    expect(result.vectors).toEqual(input.map((t) => fakeEmbedding(t, 256)));
    expect(result.vectors[0]?.slice(0, 4)).toEqual([-0.2724609375, 0.353515625, 0.419921875, 0.2607421875]);
    expect(result.usage).toEqual({ inputTokens: 6, estimated: false });
  });

  it("embeds a Cohere v3 batch of 100 texts in two calls, usage from the header", async () => {
    fake.requests.length = 0;
    const input = Array.from({ length: 100 }, (_, i) => `text number ${i}`);
    const result = await run(embeddings({ input }), "us.cohere.embed-english-v3");
    expect(fake.requests.map((r) => (r.body.texts as string[]).length).sort()).toEqual([4, 96]);
    expect(fake.requests.every((r) => r.body.input_type === "search_document")).toBe(true);
    expect(result.vectors).toHaveLength(100);
    expect(result.vectors[99]).toEqual(fakeEmbedding("text number 99", 1024));
    expect(result.vectors[0]).toEqual(fakeEmbedding("text number 0", 1024));
    expect(result.usage).toEqual({ inputTokens: 300, estimated: false });
  });

  it("estimates Cohere's usage when the header is missing, and says so", async () => {
    fake.omitTokenHeader = true;
    try {
      const result = await run(embeddings({ input: ["abcdefgh"] }), COHERE_V3);
      expect(result.usage).toEqual({ inputTokens: 2, estimated: true });
    } finally {
      fake.omitTokenHeader = false;
    }
  });

  it("embeds with Cohere v4 at the dimensions asked", async () => {
    fake.requests.length = 0;
    const result = await run(
      embeddings({ input: ["a query"], dimensions: 256, bedrock: { inputType: "search_query" } }),
      COHERE_V4,
    );
    expect(fake.requests[0]?.body).toEqual({
      texts: ["a query"],
      input_type: "search_query",
      embedding_types: ["float"],
      output_dimension: 256,
    });
    expect(result.vectors).toEqual([fakeEmbedding("a query", 256)]);
    expect(result.usage).toEqual({ inputTokens: fakeTokenCount("a query"), estimated: false });
  });

  it("is refused by the fake, as by Bedrock, when a family gets another's keys", async () => {
    const invoke = sdkInvoke("us-east-1", COHERE_V3);
    const titanBody: BedrockEmbeddingCall = { body: { inputText: "x" }, inputs: [0] };
    const error = await invoke(titanBody, new AbortController().signal).catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: "ValidationException",
      message:
        "Malformed input request: #: extraneous key [inputText] is not permitted, please reformat your input and try again.",
      $metadata: { httpStatusCode: 400 },
    });
    const cohereBody: BedrockEmbeddingCall = {
      body: { texts: ["x"], input_type: "search_query" },
      inputs: [0],
    };
    const titanError = await sdkInvoke("us-east-1", TITAN)(cohereBody, new AbortController().signal).catch(
      (e: unknown) => e,
    );
    expect((titanError as Error).message).toContain("extraneous key [texts] is not permitted");
    const v4Truncate = await sdkInvoke("us-east-1", COHERE_V4)(
      { body: { texts: ["x"], input_type: "search_query", truncate: "END" }, inputs: [0] },
      new AbortController().signal,
    ).catch((e: unknown) => e);
    expect((v4Truncate as Error).message).toContain('#/truncate: "END" is not a valid enum value');
  });

  it("throttles one region as scripted, with Bedrock's ThrottlingException, and serves the other", async () => {
    fake.byRegion["us-east-1"] = [{ kind: "throttle" }];
    const east = await run(embeddings({ input: "hello" }), TITAN, "us-east-1").catch((e: unknown) => e);
    expect(east).toMatchObject({ name: "ThrottlingException", $metadata: { httpStatusCode: 429 } });
    const west = await run(embeddings({ input: "hello" }), "us.amazon.titan-embed-text-v2:0", "us-west-2");
    expect(west.vectors).toEqual([fakeEmbedding("hello", 1024)]);
    expect(fake.requests.at(-1)?.region).toBe("us-west-2");
  });

  it("fails over a 200 that is not an answer", async () => {
    fake.queue.push({ kind: "raw", body: JSON.stringify({ embedding: "nope" }) });
    await expect(run(embeddings({ input: "hello" }), TITAN)).rejects.toMatchObject({
      status: 502,
      action: "failover",
      code: "upstream_invalid_response",
    });
  });
});
