import http from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EmbeddingRequest, EmbeddingResult } from "../../../lib/core/embeddings.ts";
import {
  base64ToFloat32,
  float32ToBase64,
  fromOpenAIEmbeddings,
  toOpenAIEmbeddings,
} from "../../../lib/dialects/openai-embeddings/encode.ts";
import { toEmbeddingRequest } from "../../../lib/dialects/openai-embeddings/parse.ts";
import { UpstreamError } from "../../../lib/errors.ts";
import {
  type FakeEmbeddingsUpstream,
  fakeEmbeddingOf,
  float32Base64,
  startFakeEmbeddingsUpstream,
} from "../../support/fake-embeddings-upstream.ts";

const result = (vectors: EmbeddingResult["vectors"], inputTokens = 5): EmbeddingResult => ({
  vectors,
  usage: { inputTokens, estimated: false },
  model: "text-embedding-3-small",
});

describe("an embedding result as the OpenAI answer", () => {
  it("writes float vectors as JSON numbers, indexed in input order, with usage", () => {
    expect(
      toOpenAIEmbeddings(
        result(
          [
            [0.5, -0.25],
            [1, 0],
          ],
          7,
        ),
        "float",
      ),
    ).toEqual({
      object: "list",
      data: [
        { object: "embedding", index: 0, embedding: [0.5, -0.25] },
        { object: "embedding", index: 1, embedding: [1, 0] },
      ],
      model: "text-embedding-3-small",
      usage: { prompt_tokens: 7, total_tokens: 7 },
    });
  });

  it("writes base64 as little-endian float32 bytes", () => {
    // 1.0 = 3f800000, -2.0 = c0000000, 0.5 = 3f000000, each written low byte first.
    const answer = toOpenAIEmbeddings(result([[1, -2, 0.5], new Float32Array([1, -2, 0.5])]), "base64");
    expect(answer.data.map((d) => d.embedding)).toEqual(["AACAPwAAAMAAAAA/", "AACAPwAAAMAAAAA/"]);
    expect(float32ToBase64([0.1, 1 / 3])).toBe("zczMPauqqj4=");
  });

  it("writes a vector decoded from base64 as the float32 values it holds", () => {
    const answer = toOpenAIEmbeddings(result([new Float32Array([0.1, 0.5])]), "float");
    expect(answer.data[0]?.embedding).toEqual([0.10000000149011612, 0.5]);
  });

  it("decodes base64 float32, refusing what is not whole float32 values", () => {
    expect(Array.from(base64ToFloat32("AACAPwAAAMAAAAA/") ?? [])).toEqual([1, -2, 0.5]);
    expect(Array.from(base64ToFloat32("zczMPauqqj4=") ?? [])).toEqual([
      0.10000000149011612, 0.3333333432674408,
    ]);
    expect(base64ToFloat32("AACAPwA=")).toBeUndefined(); // 5 bytes
    expect(base64ToFloat32("AACA*wAAAMAAAAA/")).toBeUndefined(); // a character that is not base64
    expect(base64ToFloat32("AACAPwAAAMAAAAA")).toBeUndefined(); // cut short
  });
});

describe("an OpenAI-compatible server's embeddings answer", () => {
  const request = (extra: Record<string, unknown> = {}): EmbeddingRequest =>
    toEmbeddingRequest({ model: "text-embedding-3-small", input: ["a b", "c"], ...extra });
  const read = (json: unknown, req = request()) =>
    fromOpenAIEmbeddings(json, { providerId: "oai", request: req });
  const item = (index: number, embedding: unknown) => ({ object: "embedding", index, embedding });

  it("is read back in input order, from floats or base64", () => {
    const answer = read({
      object: "list",
      data: [item(1, "AAAAPwAAgD8="), item(0, [0.25, -1])],
      model: "text-embedding-3-small-v2",
      usage: { prompt_tokens: 3, total_tokens: 3 },
    });
    expect(answer.model).toBe("text-embedding-3-small-v2");
    expect(answer.usage).toEqual({ inputTokens: 3, estimated: false });
    expect(answer.vectors[0]).toEqual([0.25, -1]);
    expect(Array.from(answer.vectors[1] ?? [])).toEqual([0.5, 1]);
  });

  it("estimates usage the server left out, and says so", () => {
    const answer = read({ data: [item(0, [1]), item(1, [2])] });
    // "a b" is 3 characters, "c" one: 1 token each at 4 characters a token.
    expect(answer.usage).toEqual({ inputTokens: 2, estimated: true });
    expect(answer.model).toBe("text-embedding-3-small");
  });

  it("reads a 200 carrying an error as that error", () => {
    const error = catchError(() =>
      read({
        error: { message: "Rate limit reached", type: "rate_limit_error", code: "rate_limit_exceeded" },
      }),
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ status: 429, providerId: "oai" });
  });

  it("is a 502 that fails over when it is not one embedding per input", () => {
    const cases: Array<[unknown, string]> = [
      ["[]", "not a JSON object"],
      [{ object: "list" }, "no data array"],
      [{ data: [item(0, [1])] }, "1 embeddings for 2 inputs"],
      [{ data: [item(0, [1]), item(0, [2])] }, "index 0 comes twice"],
      [{ data: [item(0, [1]), item(2, [2])] }, "data[1].index is not an input's index"],
      [{ data: [item(0, [1, 2]), item(1, [2])] }, "data[1].embedding has 1 dimensions, not 2"],
      [{ data: [item(0, [1]), item(1, ["2"])] }, "data[1].embedding is not a vector"],
      [{ data: [item(0, [1]), item(1, [])] }, "data[1].embedding is not a vector"],
      [{ data: [item(0, "AADAfw=="), item(1, [1])] }, "data[0].embedding is not a vector"], // NaN
      [{ data: [item(0, "AAAA"), item(1, [1])] }, "data[0].embedding is not a vector"], // 3 bytes
      [{ data: [item(0, null), item(1, [1])] }, "data[0].embedding is not a vector"],
      [{ data: [7, item(1, [1])] }, "data[0] is not an object"],
    ];
    for (const [json, why] of cases) {
      const error = catchError(() => read(typeof json === "string" ? JSON.parse(json) : json));
      expect(error, why).toBeInstanceOf(UpstreamError);
      expect(error, why).toMatchObject({
        status: 502,
        code: "upstream_invalid_response",
        action: "failover",
        providerId: "oai",
        message: `oai returned an embeddings answer that is not readable: ${why}`,
      });
    }
  });

  it("is refused when its vectors are not of the dimensions asked for", () => {
    const error = catchError(() =>
      read({ data: [item(0, [1, 2]), item(1, [3, 4])] }, request({ dimensions: 3 })),
    );
    expect(error).toMatchObject({ status: 502, action: "failover" });
    expect((error as Error).message).toContain("data[0].embedding has 2 dimensions, not 3");
  });
});

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error("no error thrown");
}

describe("the official OpenAI SDK reading the encoder's answers", () => {
  // Values float32 cannot hold exactly, so a wrong byte order or width shows.
  const VECTORS = [
    [0.1, -1 / 3, 12345.678],
    [2 ** -20, -0, 1e-7],
  ];
  let server: http.Server;
  let client: OpenAI;
  const asked: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    server = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      asked.push(body);
      const request = toEmbeddingRequest(body);
      const answer = toOpenAIEmbeddings(
        { vectors: VECTORS, usage: { inputTokens: 4, estimated: false }, model: request.model },
        request.encoding,
      );
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(answer));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    client = new OpenAI({
      apiKey: "sk-test",
      baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
      maxRetries: 0,
    });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("decodes its default (base64) to exactly the float32 values", async () => {
    const answer = await client.embeddings.create({ model: "e", input: ["one", "two"] });
    expect(asked.at(-1)?.encoding_format).toBe("base64");
    expect(answer.data.map((d) => d.embedding)).toEqual([
      [0.10000000149011612, -0.3333333432674408, 12345.677734375],
      [9.5367431640625e-7, -0, 1.0000000116860974e-7],
    ]);
    expect(answer.data.map((d) => d.index)).toEqual([0, 1]);
    expect(answer.usage).toEqual({ prompt_tokens: 4, total_tokens: 4 });
  });

  it("gets the numbers as they are when it asks for float", async () => {
    const answer = await client.embeddings.create({
      model: "e",
      input: ["one", "two"],
      encoding_format: "float",
    });
    expect(asked.at(-1)?.encoding_format).toBe("float");
    expect(answer.data.map((d) => d.embedding)).toEqual([
      [0.1, -0.3333333333333333, 12345.678],
      [9.5367431640625e-7, 0, 1e-7],
    ]);
  });
});

describe("answers of the fake OpenAI-compatible embeddings server", () => {
  let upstream: FakeEmbeddingsUpstream;
  beforeAll(async () => {
    upstream = await startFakeEmbeddingsUpstream();
  });
  afterAll(async () => {
    await upstream.close();
  });
  const post = async (body: Record<string, unknown>) => {
    const res = await fetch(`${upstream.url}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as unknown };
  };

  it("read back to its exact vectors, from float and from base64", async () => {
    for (const encoding_format of ["float", "base64"]) {
      const body = { model: "e", input: ["hello", "two words"], dimensions: 4, encoding_format };
      const { status, json } = await post(body);
      expect(status).toBe(200);
      const answer = fromOpenAIEmbeddings(json, { providerId: "fake", request: toEmbeddingRequest(body) });
      expect(answer.vectors.map((v) => Array.from(v))).toEqual([
        [-0.2724609375, 0.353515625, 0.419921875, 0.2607421875],
        fakeEmbeddingOf("two words", 4),
      ]);
      expect(answer.usage).toEqual({ inputTokens: 3, estimated: false });
    }
  });

  it("embed token arrays, or refuse them when told to", async () => {
    const body = { model: "e", input: [[1, 2]], dimensions: 2 };
    const answer = fromOpenAIEmbeddings((await post(body)).json, {
      providerId: "fake",
      request: toEmbeddingRequest(body),
    });
    expect(answer.vectors).toEqual([fakeEmbeddingOf([1, 2], 2)]);
    upstream.refuseTokens = true;
    try {
      expect((await post(body)).status).toBe(400);
    } finally {
      upstream.refuseTokens = false;
    }
  });

  it("are what it recorded sending", async () => {
    upstream.queue.push({ kind: "answer", extra: { system_fingerprint: "fp_1" } });
    const { json } = await post({ model: "e", input: "x" });
    expect(JSON.parse(upstream.responses.at(-1) ?? "")).toEqual(json);
    expect(json).toMatchObject({ system_fingerprint: "fp_1", usage: { prompt_tokens: 1, total_tokens: 1 } });
    expect(float32Base64([1, -2, 0.5])).toBe("AACAPwAAAMAAAAA/");
  });
});
