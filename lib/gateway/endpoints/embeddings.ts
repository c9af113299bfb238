import { mayUseModel } from "../../callers/bearer.ts";
import type { ModelRoute } from "../../config/types.ts";
import { estimateEmbeddingTokens } from "../../core/embeddings.ts";
import { CHARS_PER_TOKEN } from "../../core/usage.ts";
import { toOpenAIEmbeddings } from "../../dialects/openai-embeddings/encode.ts";
import { toEmbeddingRequest } from "../../dialects/openai-embeddings/parse.ts";
import { type EmbeddingCall, embedding, servesEmbeddings } from "../../engine/embed.ts";
import { answeredBy, attemptCount } from "../../engine/run.ts";
import { serve } from "../../engine/serve.ts";
import { modelNotFound, modelNotSupported, requestTooLarge } from "../../errors.ts";
import type { Endpoint, GatewayContext } from "../endpoint.ts";
import { errorResponse, type GatewayResponse, jsonHeaders } from "../response.ts";
import { admit, afterResponse, deadlineOf } from "../steps.ts";
import { parseJsonObject } from "../validate.ts";

/**
 * `POST /v1/embeddings` (issue 20): OpenAI's embeddings API over the engine, on the route's targets
 * of one vector space. An OpenAI-compatible target's answer comes back byte for byte when it is
 * already the caller's; every other answer is written from the vectors in the encoding asked for.
 */
export function embeddings(context: GatewayContext): Endpoint {
  const { config, factory } = context;
  const routes = new Map<string, ModelRoute>(config.models.map((m) => [m.name, m]));
  return {
    method: "POST",
    path: "/v1/embeddings",
    async handle({ request, requestId, caller }) {
      if (Buffer.byteLength(request.body) > config.maxBodyBytes) throw requestTooLarge(config.maxBodyBytes);
      const body = toEmbeddingRequest(
        parseJsonObject(request.body, { maxNestingDepth: config.maxNestingDepth }),
      );
      const route = routes.get(body.model);
      // A route the key may not use answers as no route does (issue 16): same status, code and text.
      if (route === undefined || (caller !== undefined && !mayUseModel(caller, body.model)))
        throw modelNotFound(body.model);
      if (!servesEmbeddings(factory, route)) throw modelNotSupported(body.model, "embeddings");
      const promptTokens = estimateEmbeddingTokens(body.inputs);
      const deadline = deadlineOf(context, request);
      const admitting = admit(context, caller, () => ({
        model: body.model,
        promptTokens,
        maxOutputTokens: 0,
        choices: 1,
      }));
      const meter = admitting === undefined ? undefined : await admitting;
      const call: EmbeddingCall = {
        request: body,
        streaming: false,
        choices: 1,
        // What an estimate of the inputs' tokens is made from (about `promptTokens` again).
        promptChars: promptTokens * CHARS_PER_TOKEN,
        operation: "embeddings",
        route,
        requestId,
        signal: request.signal,
        deadline,
        meter,
      };
      const served = await serve(context, call, embedding);
      const response: GatewayResponse = served.ok
        ? {
            status: 200,
            headers: { ...jsonHeaders, ...answeredBy(served.run, served.candidate) },
            body: served.value.raw ?? JSON.stringify(toOpenAIEmbeddings(served.value, body.encoding)),
          }
        : errorResponse(served.error, requestId, {
            "x-gateway-attempts": String(attemptCount(served.run.attempts)),
          });
      return afterResponse(context, response, deadline);
    },
  };
}
