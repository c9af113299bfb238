/**
 * Embeddings on an OpenAI-compatible provider (issue 20): `POST {baseUrl}/embeddings`
 * (https://platform.openai.com/docs/api-reference/embeddings/create) through the provider's own
 * `post` (its HTTP client, key handling, 401 refresh and error classification, shared with chat).
 *
 * The caller's request goes up as it came, with the target's model: its own fields, and any field
 * the gateway does not read (`unmapped`) passed on for the upstream to take or refuse. The gateway's
 * `bedrock` extension is for Bedrock targets and is not sent. The answer's bytes are handed on
 * unchanged when they already are what the caller asked for: the `encoding_format` it named and a
 * usage figure, checked by {@link fromOpenAIEmbeddings}; otherwise the answer is written anew.
 */
import type { EmbeddingRequest, EmbeddingResult } from "../core/embeddings.ts";
import { fromOpenAIEmbeddings } from "../dialects/openai-embeddings/encode.ts";
import { invalidResponse } from "../errors.ts";
import type { HttpResponse } from "../http/client.ts";
import { toUpstreamError } from "../retry/classify.ts";
import type { EmbeddingsCapability, GenerationOptions } from "./generation.ts";

/** Sends one JSON body to the provider's `/embeddings`; resolves with a 200, throws a classified error else. */
export type EmbeddingsPost = (
  body: Readonly<Record<string, unknown>>,
  options: GenerationOptions,
) => Promise<HttpResponse>;

export function createOpenAIEmbeddings(providerId: string, post: EmbeddingsPost): EmbeddingsCapability {
  return {
    // The upstream decides which of its models embed; a chat model's refusal is its 4xx.
    serves: () => true,
    async embed(request, options) {
      try {
        const response = await post(embeddingsBody(request, options.model), options);
        const text = await response.text();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw invalidResponse(providerId, "a body that is not JSON");
        }
        const result = fromOpenAIEmbeddings(json, { providerId, request });
        return keepsBytes(result, request.encoding) ? { ...result, raw: text } : result;
      } catch (error) {
        throw toUpstreamError(providerId, error);
      }
    },
  };
}

/**
 * The upstream body: the caller's fields with the target's `model`. A single input goes as OpenAI's
 * single forms (a string, a flat token array), several as an array of them.
 */
export function embeddingsBody(request: EmbeddingRequest, model: string): Record<string, unknown> {
  const inputs = request.inputs.map((input) => ("text" in input ? input.text : input.tokens));
  const body: Record<string, unknown> = {
    ...request.unmapped,
    model,
    input: inputs.length === 1 ? inputs[0] : inputs,
    encoding_format: request.encoding,
  };
  if (request.dimensions !== undefined) body.dimensions = request.dimensions;
  if (request.user !== undefined) body.user = request.user;
  return body;
}

/**
 * Whether the upstream's bytes are the caller's answer as they are: every vector in the encoding it
 * asked for (a server may ignore `encoding_format`) and the usage given (the caller is owed it).
 */
function keepsBytes(result: EmbeddingResult, encoding: EmbeddingRequest["encoding"]): boolean {
  if (result.usage.estimated) return false;
  const base64 = encoding === "base64";
  return result.vectors.every((v) => v instanceof Float32Array === base64);
}
