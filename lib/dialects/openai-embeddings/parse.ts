/**
 * OpenAI embeddings, inbound: the caller's body as an {@link EmbeddingRequest} (issue 20). Field by
 * field after the API reference, https://platform.openai.com/docs/api-reference/embeddings/create:
 * `input` a string, an array of strings, an array of token ids or an array of such arrays;
 * `encoding_format` `float` (the default) or `base64`; `dimensions`; `user`. The gateway's own
 * `bedrock` extension field is kept for Bedrock targets; any other field goes to `unmapped` under its
 * name, for the target to pass on or refuse.
 *
 * A body of the wrong shape is a 400 naming the field (`input[3]`, `input[1][7]`). The walk is two
 * nested loops over arrays of at most {@link MAX_EMBEDDING_INPUTS} inputs (a token array's length is
 * bounded by the body size limit): no recursion, no spread of caller arrays.
 */
import type { EmbeddingInput, EmbeddingRequest } from "../../core/embeddings.ts";
import {
  type InvalidRequestError,
  invalidJson,
  invalidType,
  invalidValue,
  missingParameter,
  quoteCallerText,
} from "../../errors.ts";
import { badField, isObject, notOneOf, optional, present, put } from "../fields.ts";

/** Most inputs in one request, as OpenAI allows: "any array must be 2048 dimensions or less". */
export const MAX_EMBEDDING_INPUTS = 2048;

const READ = new Set(["model", "input", "encoding_format", "dimensions", "user", "bedrock"]);

/**
 * The canonical request for an OpenAI embeddings body. Throws {@link InvalidRequestError} (400)
 * naming the field for anything OpenAI would refuse too: no `input`, an empty one, more than
 * {@link MAX_EMBEDDING_INPUTS} inputs, an empty string, a token that is not a non-negative integer,
 * strings and token arrays mixed, an unknown `encoding_format`, a `dimensions` that is not a positive
 * integer.
 */
export function toEmbeddingRequest(body: unknown): EmbeddingRequest {
  if (!isObject(body)) throw invalidJson("The request body must be a JSON object.");
  if (typeof body.model !== "string") throw badField(body.model, "model", "a string");
  const out: EmbeddingRequest = {
    model: body.model,
    inputs: readInput(body.input),
    encoding: readEncoding(body.encoding_format),
    extensions: {},
    unmapped: {},
  };
  for (const field of Object.keys(body)) {
    if (!READ.has(field) && present(body[field])) put(out.unmapped, field, body[field]);
  }
  if (present(body.dimensions)) {
    const dimensions = body.dimensions;
    if (typeof dimensions !== "number" || !Number.isInteger(dimensions))
      throw invalidType("dimensions", "an integer");
    if (dimensions < 1)
      throw badValue("dimensions", `${quoteCallerText(String(dimensions))}; it must be at least 1`);
    out.dimensions = dimensions;
  }
  const user = optional(body, "user", "string");
  if (user !== undefined) out.user = user;
  if (present(body.bedrock)) {
    if (!isObject(body.bedrock)) throw invalidType("bedrock", "an object");
    out.extensions.bedrock = body.bedrock;
  }
  return out;
}

/**
 * `input` as canonical inputs. Its kind is decided by its first element (a string, a token id, a
 * token array) and every element must be of that kind, as OpenAI's schema has it: one of four
 * shapes, never a mix.
 */
function readInput(input: unknown): EmbeddingInput[] {
  if (!present(input)) throw missingParameter("input");
  if (typeof input === "string") {
    if (input === "") throw emptyString("input");
    return [{ text: input }];
  }
  if (!Array.isArray(input)) throw invalidType("input", "a string or an array");
  if (input.length === 0) throw badValue("input", "an empty array; give at least one input");
  const first: unknown = input[0];
  // A flat array of token ids is one input.
  if (typeof first === "number") return [{ tokens: readTokens(input, "input") }];
  if (input.length > MAX_EMBEDDING_INPUTS)
    throw badValue(
      "input",
      `an array of ${input.length} inputs; at most ${MAX_EMBEDDING_INPUTS} are allowed`,
    );
  const inputs: EmbeddingInput[] = new Array(input.length);
  if (typeof first === "string") {
    for (let i = 0; i < input.length; i++) {
      const item: unknown = input[i];
      const param = `input[${i}]`;
      if (typeof item !== "string") throw invalidType(param, "a string, as every input before it");
      if (item === "") throw emptyString(param);
      inputs[i] = { text: item };
    }
    return inputs;
  }
  if (Array.isArray(first)) {
    for (let i = 0; i < input.length; i++) {
      const item: unknown = input[i];
      const param = `input[${i}]`;
      if (!Array.isArray(item)) throw invalidType(param, "an array of token ids, as every input before it");
      if (item.length === 0) throw badValue(param, "an empty token array");
      inputs[i] = { tokens: readTokens(item, param) };
    }
    return inputs;
  }
  throw invalidType("input[0]", "a string, a token id or an array of token ids");
}

/** A token array, checked: every element a non-negative integer. Kept by reference, not copied. */
function readTokens(tokens: unknown[], param: string): number[] {
  for (let j = 0; j < tokens.length; j++) {
    const token = tokens[j];
    if (typeof token !== "number" || !Number.isInteger(token) || token < 0)
      throw invalidValue(
        `${param}[${j}]`,
        `Invalid value for '${param}[${j}]': ${quoteCallerText(typeof token === "number" ? String(token) : token)}; a token id is a non-negative integer.`,
      );
  }
  return tokens as number[];
}

function readEncoding(value: unknown): EmbeddingRequest["encoding"] {
  if (!present(value)) return "float";
  if (value === "float" || value === "base64") return value;
  if (typeof value !== "string") throw invalidType("encoding_format", "a string");
  throw notOneOf("encoding_format", value, "'float', 'base64'");
}

// ---- Small helpers ---------------------------------------------------------------------------

function badValue(param: string, what: string): InvalidRequestError {
  return invalidValue(param, `Invalid value for '${param}': ${what}.`);
}

function emptyString(param: string): InvalidRequestError {
  return badValue(param, "an empty string; every input must hold some text");
}
