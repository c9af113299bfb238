/**
 * OpenAI's Responses API upstream (issue 19): `POST {baseUrl}/responses`
 * (https://platform.openai.com/docs/api-reference/responses/create), for an OpenAI-compatible
 * provider configured with `responsesApi: true` serving a Responses caller. It goes through the
 * provider's own `post` (its HTTP client, key handling, 401 refresh and error classification, shared
 * with chat), as embeddings do.
 *
 * The caller's body goes up as it came, with the target's `model`, `stream` as the call is made and
 * `store: false`: the gateway keeps its stored responses on its own table (`previous_response_id` is
 * expanded there, whichever target answered before), so nothing is kept at the upstream and state
 * lives in one place. The answer's bytes are handed on beside their canonical events (the engine
 * reads those for the first-token gate, continuation and metering).
 */
import { isObject } from "../config/fields.ts";
import type { Deps } from "../deps.ts";
import {
  createResponseEventDecoder,
  fromResponse,
  streamFailure,
  usageFromResponses,
} from "../dialects/openai-responses/decode.ts";
import { OPENAI_FAMILY, openReasoning } from "../dialects/openai-responses/reasoning.ts";
import { invalidResponse, quoteCallerText, redactSecrets, type UpstreamError } from "../errors.ts";
import type { HttpResponse } from "../http/client.ts";
import { parseSse } from "../http/sse.ts";
import { errorFromStreamEvent, toUpstreamError } from "../retry/classify.ts";
import type {
  GenerationInput,
  GenerationOptions,
  GenerationStream,
  UpstreamEvent,
  WholeGeneration,
} from "./generation.ts";
import { resultOutputChars } from "./messages-upstream.ts";

type Obj = Record<string, unknown>;

/** Sends one JSON body to the provider's `/responses`; resolves with a 200, throws a classified error else. */
export type ResponsesPost = (
  body: Readonly<Obj>,
  options: GenerationOptions,
  streaming: boolean,
) => Promise<HttpResponse>;

/** Generation of a Responses caller on a provider that speaks Responses itself. */
export interface ResponsesUpstream {
  complete(input: GenerationInput, options: GenerationOptions): Promise<WholeGeneration>;
  stream(input: GenerationInput, options: GenerationOptions): Promise<GenerationStream>;
}

export function createOpenAIResponses(
  providerId: string,
  post: ResponsesPost,
  deps: Deps,
): ResponsesUpstream {
  return {
    async complete(input, options) {
      try {
        const response = await post(responsesBody(input.body, options.model, false), options, false);
        const text = await response.text();
        const json = readResponse(providerId, text);
        const result = fromResponse(json);
        return {
          raw: text,
          dialect: "openai-responses",
          result: () => result,
          usage: isObject(json.usage) ? usageFromResponses(json.usage) : undefined,
          outputChars: resultOutputChars(result),
        };
      } catch (error) {
        throw toUpstreamError(providerId, error);
      }
    },

    async stream(input, options) {
      const response = await post(responsesBody(input.body, options.model, true), options, true);
      let released = false;
      return {
        events: responseEvents(providerId, response.body, deps, (clean) => {
          released = clean;
          if (clean) response.release();
          else response.destroy();
        }),
        // After a clean end the socket is back in the pool, possibly serving another request.
        cancel: () => {
          if (!released) response.destroy();
        },
      };
    },
  };
}

/**
 * The body sent upstream: the caller's (its `input` already expanded by the gateway when it named a
 * `previous_response_id`), with the target's `model`, `stream` as the call is made, `store: false`,
 * and without `previous_response_id`, an id of the gateway's table the upstream never saw. A caller
 * that relies on stored state (it did not say `store: false`) also gets
 * `include: ["reasoning.encrypted_content"]`: without upstream state, a reasoning item of this answer
 * can be sent back on the next turn only with its encrypted content. Input reasoning items the
 * upstream cannot read are left out: one without `encrypted_content` (under `store: false` it cannot
 * be looked up) or sealed by the gateway for another family (a Claude turn after a failover).
 * Copied only where a field changes; the caller's body is never mutated.
 */
export function responsesBody(body: Readonly<Obj>, model: string, streaming: boolean): Obj {
  const { previous_response_id: _expanded, ...rest } = body;
  const out: Obj = { ...rest, model, store: false };
  const streamRight = streaming ? body.stream === true : body.stream !== true;
  if (!streamRight) out.stream = streaming;
  if (body.store !== false) {
    const include = Array.isArray(body.include) ? (body.include as unknown[]) : [];
    if (!include.includes("reasoning.encrypted_content"))
      out.include = [...include, "reasoning.encrypted_content"];
  }
  if (Array.isArray(body.input) && body.input.some(unreadableReasoning))
    out.input = body.input.filter((item) => !unreadableReasoning(item));
  return out;
}

function unreadableReasoning(item: unknown): boolean {
  if (!isObject(item) || item.type !== "reasoning") return false;
  const encrypted = item.encrypted_content;
  return typeof encrypted !== "string" || openReasoning(encrypted).family !== OPENAI_FAMILY;
}

/**
 * Checks a 200's body is one whole response object (a JSON object with an `output` list). A
 * response whose `status` is `failed` is the provider's error, classified as a stream's would be;
 * anything else (HTML from a proxy, a truncated body, `{"error": ...}` sent with 200) is not a
 * readable answer: the provider's fault (issue 16), a 502 that fails over.
 */
function readResponse(providerId: string, text: string): Obj {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalidResponse(providerId, "a body that is not JSON (truncated or malformed)");
  }
  if (!isObject(json)) throw invalidResponse(providerId, "JSON that is not an object");
  if (json.status === "failed") throw failureError(providerId, { type: "response.failed", response: json });
  if (Array.isArray(json.output)) return json;
  const error = json.error;
  if (isObject(error) && typeof error.message === "string")
    throw invalidResponse(providerId, `an error (${quoteCallerText(redactSecrets(error.message))})`);
  throw invalidResponse(providerId, "JSON that is not a response (no output)");
}

/** The provider's error for a failure event (`response.failed`, `error`), classified as chat's are. */
function failureError(providerId: string, event: unknown): UpstreamError {
  const failure = streamFailure(event) ?? { code: null, message: "The upstream response failed." };
  return errorFromStreamEvent(providerId, { type: "api_error", ...failure });
}

/**
 * The events of one upstream Responses stream. Each `data:` payload becomes an {@link UpstreamEvent}
 * with its bytes and canonical events; a `response.failed` or `error` event is thrown as the
 * provider's error; the iterator ends after `response.completed` or `response.incomplete` (a stream
 * that ends before either is a cut answer). `finish` says whether the body ended cleanly.
 */
async function* responseEvents(
  providerId: string,
  body: AsyncIterable<Uint8Array>,
  deps: Deps,
  finish: (clean: boolean) => void,
): AsyncGenerator<UpstreamEvent> {
  const decoder = createResponseEventDecoder();
  let malformed = 0;
  let done = false;
  try {
    for await (const event of parseSse(body)) {
      if (event.kind !== "data") continue;
      // Not the Responses API's, but some compatible servers end their streams so.
      if (event.data === "[DONE]") {
        done = true;
        return;
      }
      let json: unknown;
      try {
        json = JSON.parse(event.data);
      } catch {
        json = undefined;
      }
      if (!isObject(json)) {
        malformed++;
        deps.logger.warn({ msg: "skipped malformed upstream SSE event", provider: providerId, malformed });
        continue;
      }
      if (streamFailure(json) !== undefined) throw failureError(providerId, json);
      yield { raw: event.data, dialect: "openai-responses", events: decoder.push(json) };
      if (json.type === "response.completed" || json.type === "response.incomplete") {
        done = true;
        return;
      }
    }
    done = true; // the body ended cleanly (without a terminal event: the relay calls it a cut)
  } catch (error) {
    throw toUpstreamError(providerId, error);
  } finally {
    finish(done);
  }
}
