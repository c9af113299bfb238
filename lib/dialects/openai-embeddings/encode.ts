/**
 * OpenAI embeddings, outbound and upstream (issue 20): an {@link EmbeddingResult} as the answer
 * https://platform.openai.com/docs/api-reference/embeddings/object describes, and an
 * OpenAI-compatible server's answer read back into one.
 *
 * `base64` is little-endian float32, as the official SDK reads it: it asks for base64 when the caller
 * names no `encoding_format` and decodes with `new Float32Array(Buffer.from(text, "base64").buffer)`
 * (openai-node, `toFloat32Array`), so the caller gets exactly the float32 values encoded here.
 */
import type { EmbeddingRequest, EmbeddingResult, EmbeddingVector } from "../../core/embeddings.ts";
import { estimateEmbeddingTokens } from "../../core/embeddings.ts";
import { invalidAnswer, type UpstreamError } from "../../errors.ts";
import { errorFromStreamEvent } from "../../retry/classify.ts";
import { isObject } from "../fields.ts";

/** The OpenAI embeddings answer. */
export interface OpenAIEmbeddingsResponse {
  object: "list";
  data: Array<{ object: "embedding"; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

/** Whether this machine stores numbers little-endian (every platform Node and Lambda run on do). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The OpenAI answer for `result`, vectors in input order (`index` = position) written as JSON numbers
 * (`float`) or as base64 of their float32 bytes. A vector decoded from base64 (a `Float32Array`) is
 * written as the float32 values it holds.
 */
export function toOpenAIEmbeddings(
  result: EmbeddingResult,
  encoding: EmbeddingRequest["encoding"],
): OpenAIEmbeddingsResponse {
  const data: OpenAIEmbeddingsResponse["data"] = new Array(result.vectors.length);
  for (let i = 0; i < result.vectors.length; i++) {
    const vector = result.vectors[i] ?? [];
    const embedding =
      encoding === "base64" ? float32ToBase64(vector) : Array.isArray(vector) ? vector : Array.from(vector);
    data[i] = { object: "embedding", index: i, embedding };
  }
  const tokens = result.usage.inputTokens;
  return {
    object: "list",
    data,
    model: result.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

/** A vector's values as little-endian float32 bytes in base64 (numbers rounded to float32). */
export function float32ToBase64(vector: EmbeddingVector): string {
  const floats = vector instanceof Float32Array ? vector : Float32Array.from(vector);
  if (LITTLE_ENDIAN)
    return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
  const bytes = Buffer.alloc(floats.length * 4);
  for (let i = 0; i < floats.length; i++) bytes.writeFloatLE(floats[i] ?? 0, i * 4);
  return bytes.toString("base64");
}

/**
 * Little-endian float32 bytes in base64 as a vector; `undefined` when the text is not base64 of a
 * whole number of float32 values (Node's decoder skips what is not base64, so the length is checked
 * against the text's).
 */
export function base64ToFloat32(text: string): Float32Array | undefined {
  const bytes = Buffer.from(text, "base64");
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  if (bytes.length % 4 !== 0 || bytes.length !== (text.length / 4) * 3 - padding) return undefined;
  const out = new Float32Array(bytes.length / 4);
  // Copied, not viewed: a decoded Buffer may sit at an offset of the pool that is not 4-aligned.
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
  else for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** What the reader knows of the call: who answered, and what it was asked. */
export interface EmbeddingsAnswerContext {
  providerId: string;
  request: EmbeddingRequest;
}

/**
 * An OpenAI-compatible server's embeddings answer (a 200's JSON) as a result, checked to be one:
 * `data` holds one embedding per input, indexes 0..n-1 each once (put back in input order whatever
 * order they came in), every embedding a non-empty array of finite numbers or base64 float32, all of
 * one length, that of `dimensions` when the request gave it. A 200 that says otherwise is not an
 * answer: an {@link UpstreamError} 502 that fails over (a 200 carrying `error` is read as that error).
 * Usage missing is estimated from the inputs and marked so.
 */
export function fromOpenAIEmbeddings(json: unknown, context: EmbeddingsAnswerContext): EmbeddingResult {
  const { providerId, request } = context;
  const bad = (why: string) =>
    invalidAnswer(providerId, `${providerId} returned an embeddings answer that is not readable: ${why}`);
  if (!isObject(json)) throw bad("not a JSON object");
  if (json.error !== undefined && json.data === undefined) throw errorFromStreamEvent(providerId, json.error);
  const data = json.data;
  if (!Array.isArray(data)) throw bad("no data array");
  const count = request.inputs.length;
  if (data.length !== count) throw bad(`${data.length} embeddings for ${count} inputs`);
  const vectors: Array<EmbeddingVector | undefined> = new Array(count).fill(undefined);
  let length = request.dimensions;
  for (let i = 0; i < data.length; i++) {
    const item: unknown = data[i];
    if (!isObject(item)) throw bad(`data[${i}] is not an object`);
    const index = item.index ?? i;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= count)
      throw bad(`data[${i}].index is not an input's index`);
    if (vectors[index] !== undefined) throw bad(`index ${index} comes twice`);
    const vector = readVector(item.embedding);
    if (vector === undefined) throw bad(`data[${i}].embedding is not a vector`);
    if (length === undefined) length = vector.length;
    else if (vector.length !== length)
      throw bad(`data[${i}].embedding has ${vector.length} dimensions, not ${length}`);
    vectors[index] = vector;
  }
  const usage = isObject(json.usage) ? json.usage : undefined;
  const prompt = usage?.prompt_tokens;
  const reported = typeof prompt === "number" && Number.isFinite(prompt) && prompt >= 0;
  return {
    vectors: vectors as EmbeddingVector[],
    usage: reported
      ? { inputTokens: prompt, estimated: false }
      : { inputTokens: estimateEmbeddingTokens(request.inputs), estimated: true },
    model: typeof json.model === "string" ? json.model : request.model,
  };
}

/** An embedding as the upstream wrote it: JSON numbers (kept as they are) or base64 float32. */
function readVector(value: unknown): EmbeddingVector | undefined {
  if (typeof value === "string") {
    const vector = base64ToFloat32(value);
    if (vector === undefined || vector.length === 0) return undefined;
    for (const n of vector) if (!Number.isFinite(n)) return undefined;
    return vector;
  }
  if (!Array.isArray(value) || value.length === 0) return undefined;
  for (const n of value) if (typeof n !== "number" || !Number.isFinite(n)) return undefined;
  return value as number[];
}
