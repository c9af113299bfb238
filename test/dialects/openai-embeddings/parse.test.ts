import { describe, expect, it } from "vitest";
import { MAX_EMBEDDING_INPUTS, toEmbeddingRequest } from "../../../lib/dialects/openai-embeddings/parse.ts";
import { InvalidRequestError } from "../../../lib/errors.ts";

/** The 400 a body gets, as `{param, code, message}`; fails the test if the body is accepted. */
function refusal(body: unknown): { param: string | null; code: string | null; message: string } {
  try {
    toEmbeddingRequest(body);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    const e = error as InvalidRequestError;
    expect(e.status).toBe(400);
    return { param: e.param, code: e.code, message: e.message };
  }
  throw new Error("the body was accepted");
}

describe("the OpenAI embeddings body as a canonical request", () => {
  it("reads a single string, with the defaults", () => {
    expect(toEmbeddingRequest({ model: "text-embedding-3-small", input: "hello" })).toEqual({
      model: "text-embedding-3-small",
      inputs: [{ text: "hello" }],
      encoding: "float",
      extensions: {},
      unmapped: {},
    });
  });

  it("reads an array of strings, base64, dimensions, user and the bedrock extension", () => {
    const request = toEmbeddingRequest({
      model: "m",
      input: ["a", "b c"],
      encoding_format: "base64",
      dimensions: 256,
      user: "user-7",
      bedrock: { inputType: "search_query" },
    });
    expect(request).toEqual({
      model: "m",
      inputs: [{ text: "a" }, { text: "b c" }],
      encoding: "base64",
      dimensions: 256,
      user: "user-7",
      extensions: { bedrock: { inputType: "search_query" } },
      unmapped: {},
    });
  });

  it("reads a flat token array as one input and an array of token arrays as several", () => {
    expect(toEmbeddingRequest({ model: "m", input: [1, 2, 3] }).inputs).toEqual([{ tokens: [1, 2, 3] }]);
    expect(toEmbeddingRequest({ model: "m", input: [[1, 2], [0]] }).inputs).toEqual([
      { tokens: [1, 2] },
      { tokens: [0] },
    ]);
  });

  it("treats null as not set, and keeps fields it has no place for in unmapped", () => {
    const request = toEmbeddingRequest(
      JSON.parse(
        '{"model":"m","input":"x","encoding_format":null,"dimensions":null,"user":null,"input_type":"query","__proto__":{"polluted":true}}',
      ),
    );
    expect(request.encoding).toBe("float");
    expect(request.dimensions).toBeUndefined();
    expect(request.user).toBeUndefined();
    expect(Object.keys(request.unmapped)).toEqual(["input_type", "__proto__"]);
    expect(request.unmapped.input_type).toBe("query");
    // Kept as an own field, never as the record's prototype.
    expect(Object.getPrototypeOf(request.unmapped)).toBe(Object.prototype);
    expect((request.unmapped as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it("accepts exactly the maximum number of inputs", () => {
    const input = Array.from({ length: 2048 }, (_, i) => `text ${i}`);
    expect(MAX_EMBEDDING_INPUTS).toBe(2048);
    expect(toEmbeddingRequest({ model: "m", input }).inputs).toHaveLength(2048);
  });
});

describe("an embeddings body of the wrong shape", () => {
  it("is a 400 naming the field", () => {
    expect(refusal("input")).toMatchObject({ param: null });
    expect(refusal({ input: "x" })).toEqual({
      param: "model",
      code: "missing_required_parameter",
      message: "Missing required parameter: 'model'.",
    });
    expect(refusal({ model: 7, input: "x" })).toMatchObject({ param: "model", code: "invalid_type" });
    expect(refusal({ model: "m" })).toMatchObject({ param: "input", code: "missing_required_parameter" });
    expect(refusal({ model: "m", input: {} })).toMatchObject({ param: "input", code: "invalid_type" });
    expect(refusal({ model: "m", input: [] })).toMatchObject({ param: "input", code: "invalid_value" });
    expect(refusal({ model: "m", input: [{}] })).toMatchObject({ param: "input[0]", code: "invalid_type" });
  });

  it("names the empty string among the inputs", () => {
    expect(refusal({ model: "m", input: "" })).toMatchObject({ param: "input", code: "invalid_value" });
    expect(refusal({ model: "m", input: ["a", "b", "c", ""] })).toEqual({
      param: "input[3]",
      code: "invalid_value",
      message: "Invalid value for 'input[3]': an empty string; every input must hold some text.",
    });
  });

  it("refuses more than 2048 inputs", () => {
    const input = Array.from({ length: 2049 }, () => "x");
    expect(refusal({ model: "m", input })).toEqual({
      param: "input",
      code: "invalid_value",
      message: "Invalid value for 'input': an array of 2049 inputs; at most 2048 are allowed.",
    });
  });

  it("refuses strings and token arrays mixed, in either order", () => {
    expect(refusal({ model: "m", input: ["a", [1]] })).toMatchObject({
      param: "input[1]",
      code: "invalid_type",
    });
    expect(refusal({ model: "m", input: [[1], "a"] })).toMatchObject({
      param: "input[1]",
      code: "invalid_type",
    });
    expect(refusal({ model: "m", input: [1, "a"] })).toMatchObject({
      param: "input[1]",
      code: "invalid_value",
    });
  });

  it("names the token that is not a non-negative integer, quoting it bounded", () => {
    expect(
      refusal({
        model: "m",
        input: [
          [1, 2],
          [3, 4.5],
        ],
      }),
    ).toEqual({
      param: "input[1][1]",
      code: "invalid_value",
      message: "Invalid value for 'input[1][1]': 4.5; a token id is a non-negative integer.",
    });
    expect(refusal({ model: "m", input: [5, -1] })).toMatchObject({ param: "input[1]" });
    expect(refusal({ model: "m", input: [[1], []] })).toMatchObject({
      param: "input[1]",
      code: "invalid_value",
    });
    const long = refusal({ model: "m", input: [[1, "y".repeat(100_000)]] });
    expect(long.param).toBe("input[0][1]");
    expect(long.message.length).toBeLessThan(300);
  });

  it("refuses an unknown encoding_format, quoting it bounded", () => {
    const r = refusal({ model: "m", input: "x", encoding_format: "z".repeat(10_000) });
    expect(r.param).toBe("encoding_format");
    expect(r.code).toBe("invalid_value");
    expect(r.message).toContain("Supported values are: 'float', 'base64'.");
    expect(r.message.length).toBeLessThan(300);
    expect(refusal({ model: "m", input: "x", encoding_format: 1 })).toMatchObject({ code: "invalid_type" });
  });

  it("refuses dimensions that are not a positive integer, a user that is not a string, a bedrock that is not an object", () => {
    expect(refusal({ model: "m", input: "x", dimensions: 0 })).toMatchObject({
      param: "dimensions",
      code: "invalid_value",
    });
    expect(refusal({ model: "m", input: "x", dimensions: 1.5 })).toMatchObject({
      param: "dimensions",
      code: "invalid_type",
    });
    expect(refusal({ model: "m", input: "x", dimensions: "256" })).toMatchObject({ param: "dimensions" });
    expect(refusal({ model: "m", input: "x", user: 1 })).toMatchObject({
      param: "user",
      code: "invalid_type",
    });
    expect(refusal({ model: "m", input: "x", bedrock: "x" })).toMatchObject({
      param: "bedrock",
      code: "invalid_type",
    });
  });
});
