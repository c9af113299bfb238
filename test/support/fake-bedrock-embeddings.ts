import { createHash } from "node:crypto";
import type http2 from "node:http2";
import { bedrockError, noRoute, startH2cServer } from "./bedrock-h2c.ts";

/**
 * A fake Amazon Bedrock runtime endpoint for embeddings: HTTP/2 over cleartext (h2c, prior
 * knowledge), as the SDK's Bedrock client speaks HTTP/2 even to an `http://` endpoint
 * (PLATFORM-NOTES; `fake-bedrock.ts` does the same for Converse). It answers the SDK's signed
 * `InvokeModel` (`POST /model/{modelId}/invoke`) for Titan Text Embeddings v2 and Cohere Embed
 * v3/v4 bodies with deterministic vectors ({@link fakeEmbedding}), and refuses what each family
 * refuses with Bedrock's ValidationException (400, `x-amzn-errortype`, `{"message": ...}`): keys it
 * does not take ("extraneous key [texts] is not permitted"), required keys missing, values outside
 * its enums, more than 96 Cohere texts. Usage comes as Bedrock sends it: Titan's
 * `inputTextTokenCount` and, for every family, the `x-amzn-bedrock-input-token-count` header.
 *
 * The region a request was signed for is read from its SigV4 credential scope, so one fake serves
 * every region (the SDK sends every region to `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`) and each region
 * can be scripted apart (`byRegion`): a throttled region beside a healthy one.
 */

/** What the fake does with one request. */
export type BedrockEmbeddingsBehaviour =
  /** Validate the body as the model's family does, and answer it. */
  | { kind: "answer" }
  /** `ThrottlingException`, HTTP 429, as Bedrock throttles on-demand throughput. */
  | { kind: "throttle"; message?: string }
  /** Any Bedrock error: HTTP status, the `x-amzn-errortype` name, a message. */
  | { kind: "error"; status: number; type: string; message: string }
  /** Exactly this response (a 200 that is no answer, a body cut short). */
  | { kind: "raw"; status?: number; body: string; headers?: Record<string, string> }
  /** Accept the request and never answer. */
  | { kind: "hang" };

export interface RecordedEmbeddingsRequest {
  modelId: string;
  /** The region of the request's SigV4 credential scope (`us-east-1`), `""` when unsigned. */
  region: string;
  headers: http2.IncomingHttpHeaders;
  /** The body as sent (`{}` when it was not JSON). */
  body: Record<string, unknown>;
}

export interface FakeBedrockEmbeddings {
  /** `http://127.0.0.1:{port}`, for `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`. */
  url: string;
  requests: RecordedEmbeddingsRequest[];
  /** Behaviours for the next requests signed for a region, in order; checked before `queue`. */
  byRegion: Record<string, BedrockEmbeddingsBehaviour[]>;
  /** Behaviours for the next requests, in order; afterwards `fallback`. */
  queue: BedrockEmbeddingsBehaviour[];
  fallback: BedrockEmbeddingsBehaviour;
  /** Leave out the `x-amzn-bedrock-input-token-count` header (usage must then be estimated). */
  omitTokenHeader: boolean;
  close(): Promise<void>;
}

/**
 * The fake's vector for a text: `dimensions` values k/1024 (k an integer in -1024..1024) drawn from a
 * SHA-256 of the text, so every value is exact in float32 and survives base64 unchanged, and a test
 * can assert vectors exactly. `fakeEmbedding("hello", 4)` is `[-0.2724609375, 0.353515625,
 * 0.419921875, 0.2607421875]`.
 */
export function fakeEmbedding(text: string, dimensions: number): number[] {
  const out: number[] = new Array(dimensions);
  let block = Buffer.alloc(0);
  for (let i = 0; i < dimensions; i++) {
    if (i % 8 === 0)
      block = createHash("sha256")
        .update(`${text}\u0000${i / 8}`)
        .digest();
    out[i] = ((block.readUInt32BE((i % 8) * 4) % 2049) - 1024) / 1024;
  }
  return out;
}

/** The fake's token count for a text: its whitespace-separated words (at least 1). */
export function fakeTokenCount(text: string): number {
  return Math.max(1, text.split(/\s+/).filter((w) => w !== "").length);
}

type Family = "titan" | "cohere-v3" | "cohere-v4";

/** Each family's keys, values and default output size, after the model parameter pages. */
const FAMILIES: Record<
  Family,
  { keys: ReadonlySet<string>; required: string[]; dimensions: number; truncate?: string[] }
> = {
  titan: {
    keys: new Set(["inputText", "dimensions", "normalize", "embeddingTypes"]),
    required: ["inputText"],
    dimensions: 1024,
  },
  "cohere-v3": {
    keys: new Set(["texts", "images", "input_type", "truncate", "embedding_types"]),
    required: ["input_type"],
    dimensions: 1024,
    truncate: ["NONE", "START", "END"],
  },
  "cohere-v4": {
    keys: new Set([
      "texts",
      "images",
      "inputs",
      "input_type",
      "truncate",
      "embedding_types",
      "output_dimension",
      "max_tokens",
    ]),
    required: ["input_type"],
    dimensions: 1536,
    truncate: ["NONE", "LEFT", "RIGHT"],
  },
};

const INPUT_TYPES = ["search_document", "search_query", "classification", "clustering"];

/** The family of a model id the fake serves (profile prefixes and ARNs allowed); else none. */
function familyOf(modelId: string): Family | undefined {
  const id = modelId.slice(modelId.lastIndexOf("/") + 1);
  if (/(?:^|\.)amazon\.titan-embed-text-v2:0$/.test(id)) return "titan";
  if (/(?:^|\.)cohere\.embed-(?:english|multilingual)-v3$/.test(id)) return "cohere-v3";
  if (/(?:^|\.)cohere\.embed-v4:0$/.test(id)) return "cohere-v4";
  return undefined;
}

class Refusal extends Error {}

const malformed = (detail: string) =>
  new Refusal(`Malformed input request: ${detail}, please reformat your input and try again.`);

/** The answer for a valid body, or a {@link Refusal} with Bedrock's message for an invalid one. */
function answer(family: Family, body: Record<string, unknown>): { json: unknown; tokens: number } {
  const spec = FAMILIES[family];
  for (const key of Object.keys(body)) {
    if (!spec.keys.has(key)) throw malformed(`#: extraneous key [${key}] is not permitted`);
  }
  for (const key of spec.required) {
    if (body[key] === undefined) throw malformed(`#: required key [${key}] not found`);
  }
  if (family === "titan") {
    const text = body.inputText;
    if (typeof text !== "string") throw malformed("#/inputText: expected type: String");
    if (text === "") throw malformed("#/inputText: expected minLength: 1, actual: 0");
    const dimensions = body.dimensions ?? spec.dimensions;
    if (dimensions !== 256 && dimensions !== 512 && dimensions !== 1024)
      throw malformed(`#/dimensions: ${JSON.stringify(dimensions)} is not a valid enum value`);
    if (body.normalize !== undefined && typeof body.normalize !== "boolean")
      throw malformed("#/normalize: expected type: Boolean");
    const embedding = fakeEmbedding(text, dimensions);
    const tokens = fakeTokenCount(text);
    return {
      json: { embedding, inputTextTokenCount: tokens, embeddingsByType: { float: embedding } },
      tokens,
    };
  }
  const texts = body.texts;
  if (!Array.isArray(texts) || texts.some((t) => typeof t !== "string"))
    throw malformed("#/texts: expected type: JSONArray of String");
  if (texts.length > 96) throw malformed(`#/texts: expected maximum item count: 96, found: ${texts.length}`);
  if (typeof body.input_type !== "string" || !INPUT_TYPES.includes(body.input_type))
    throw malformed(`#/input_type: ${JSON.stringify(body.input_type)} is not a valid enum value`);
  if (body.truncate !== undefined && !spec.truncate?.includes(String(body.truncate)))
    throw malformed(`#/truncate: ${JSON.stringify(body.truncate)} is not a valid enum value`);
  let dimensions = spec.dimensions;
  if (family === "cohere-v4" && body.output_dimension !== undefined) {
    const d = body.output_dimension;
    if (d !== 256 && d !== 512 && d !== 1024 && d !== 1536)
      throw malformed(`#/output_dimension: ${JSON.stringify(d)} is not a valid enum value`);
    dimensions = d;
  }
  if (body.max_tokens !== undefined && !Number.isInteger(body.max_tokens))
    throw malformed("#/max_tokens: expected type: Integer");
  const vectors = (texts as string[]).map((t) => fakeEmbedding(t, dimensions));
  const tokens = (texts as string[]).reduce((sum, t) => sum + fakeTokenCount(t), 0);
  const types = body.embedding_types;
  const byType = Array.isArray(types);
  if (byType && !types.includes("float")) throw new Refusal("The fake answers float embeddings only.");
  return {
    json: {
      id: "fake-embed-id",
      texts,
      embeddings: byType ? { float: vectors } : vectors,
      response_type: byType ? "embeddings_by_type" : "embeddings_floats",
    },
    tokens,
  };
}

export async function startFakeBedrockEmbeddings(): Promise<FakeBedrockEmbeddings> {
  const fake: FakeBedrockEmbeddings = {
    url: "",
    requests: [],
    byRegion: {},
    queue: [],
    fallback: { kind: "answer" },
    omitTokenHeader: false,
    close: () => server.close(),
  };
  const server = await startH2cServer((stream, headers, text) => {
    const path = String(headers[":path"] ?? "");
    const match = /^\/model\/([^/]+)\/invoke$/.exec(path);
    if (!match || headers[":method"] !== "POST") {
      noRoute(stream, path);
      return;
    }
    const modelId = decodeURIComponent(match[1] ?? "");
    const region = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(String(headers.authorization ?? ""))?.[1] ?? "";
    let body: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed))
        body = parsed as Record<string, unknown>;
    } catch {}
    fake.requests.push({ modelId, region, headers, body: body ?? {} });
    const behaviour = fake.byRegion[region]?.shift() ?? fake.queue.shift() ?? fake.fallback;
    respond(stream, behaviour, modelId, body, fake.omitTokenHeader);
  });
  fake.url = server.url;
  return fake;
}

function respond(
  stream: http2.ServerHttp2Stream,
  behaviour: BedrockEmbeddingsBehaviour,
  modelId: string,
  body: Record<string, unknown> | undefined,
  omitTokenHeader: boolean,
): void {
  const error = (status: number, type: string, message: string) =>
    bedrockError(stream, status, type, message);
  switch (behaviour.kind) {
    case "hang":
      return;
    case "throttle":
      error(
        429,
        "ThrottlingException",
        behaviour.message ?? "Too many requests, please wait before trying again.",
      );
      return;
    case "error":
      error(behaviour.status, behaviour.type, behaviour.message);
      return;
    case "raw":
      stream.respond({
        ":status": behaviour.status ?? 200,
        "content-type": "application/json",
        ...behaviour.headers,
      });
      stream.end(behaviour.body);
      return;
    case "answer": {
      const family = familyOf(modelId);
      if (family === undefined) {
        error(400, "ValidationException", "The provided model identifier is invalid.");
        return;
      }
      if (body === undefined) {
        error(
          400,
          "ValidationException",
          "Malformed input request: expected a JSON object, please reformat your input and try again.",
        );
        return;
      }
      let result: { json: unknown; tokens: number };
      try {
        result = answer(family, body);
      } catch (refusal) {
        if (!(refusal instanceof Refusal)) throw refusal;
        error(400, "ValidationException", refusal.message);
        return;
      }
      stream.respond({
        ":status": 200,
        "content-type": "application/json",
        "x-amzn-requestid": "fake-request-id",
        "x-amzn-bedrock-invocation-latency": "5",
        ...(omitTokenHeader ? {} : { "x-amzn-bedrock-input-token-count": String(result.tokens) }),
      });
      stream.end(JSON.stringify(result.json));
      return;
    }
  }
}
