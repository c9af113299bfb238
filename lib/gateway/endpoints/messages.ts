import { mayUseModel } from "../../callers/bearer.ts";
import type { AdmissionRequest } from "../../callers/types.ts";
import type { ModelRoute } from "../../config/types.ts";
import { estimatePromptTokens } from "../../core/prompt-size.ts";
import type { GenerationRequest } from "../../core/request.ts";
import { estimateTokens, NO_USAGE } from "../../core/usage.ts";
import { toAnthropicError } from "../../dialects/anthropic-messages/errors.ts";
import { messagesInput } from "../../dialects/anthropic-messages/input.ts";
import { toGeneration } from "../../dialects/anthropic-messages/parse.ts";
import { createMessagesStreamEncoder, messageBody } from "../../dialects/anthropic-messages/stream.ts";
import { mayCountTokens, tokenCount } from "../../engine/count-tokens.ts";
import { relayAnswer } from "../../engine/relay.ts";
import { answeredBy, attemptCount, type Call } from "../../engine/run.ts";
import { type Served, serve, streamedAnswer, wholeAnswer } from "../../engine/serve.ts";
import { GatewayError, modelNotFound, requestTooLarge } from "../../errors.ts";
import type { Endpoint, GatewayContext, RequestContext } from "../endpoint.ts";
import { type GatewayResponse, jsonHeaders, jsonResponse } from "../response.ts";
import { admit, afterResponse, deadlineOf } from "../steps.ts";
import { parseJsonObject } from "../validate.ts";

/** A request's body, its canonical form and the caller's route, as `read` checked them. */
interface ReadRequest {
  body: Record<string, unknown>;
  canonical: GenerationRequest;
  route: ModelRoute;
}

/**
 * `POST /v1/messages` and `POST /v1/messages/count_tokens`: the Anthropic Messages dialect over the
 * engine (issue 18), for Claude Code and the Anthropic SDKs (`?beta=true`, which Claude Code adds,
 * is a query string: the gateway routes on the path alone). Every failure, a refused key included,
 * is answered in Anthropic's error shape with a `request-id` header.
 */
export function messages(context: GatewayContext): Endpoint[] {
  const { config } = context;
  const routes = new Map<string, ModelRoute>(config.models.map((m) => [m.name, m]));

  /** The body, its canonical form (a 400 naming the field for a bad one) and the caller's route. */
  function read(
    { request, caller }: RequestContext,
    parse: (json: Record<string, unknown>) => GenerationRequest,
  ): ReadRequest {
    if (Buffer.byteLength(request.body) > config.maxBodyBytes) throw requestTooLarge(config.maxBodyBytes);
    const body = parseJsonObject(request.body, { maxNestingDepth: config.maxNestingDepth });
    const canonical = parse(body);
    const route = routes.get(canonical.model);
    // A route the key may not use answers as no route does (issue 16): same status, type and text.
    if (route === undefined || (caller !== undefined && !mayUseModel(caller, canonical.model)))
      throw modelNotFound(canonical.model);
    return { body, canonical, route };
  }

  return [
    {
      method: "POST",
      path: "/v1/messages",
      errors: anthropicErrorResponse,
      handle: (request) => createMessage(context, request, read(request, toGeneration)),
    },
    {
      method: "POST",
      path: "/v1/messages/count_tokens",
      errors: anthropicErrorResponse,
      // The API takes no `max_tokens` here; the canonical request needs one, and it counts nothing.
      handle: (request) =>
        countTokens(
          context,
          request,
          read(request, (json) => toGeneration({ ...json, max_tokens: 1 })),
        ),
    },
  ];
}

async function createMessage(
  context: GatewayContext,
  { request, requestId, caller }: RequestContext,
  { body, canonical, route }: ReadRequest,
): Promise<GatewayResponse> {
  const { deps } = context;
  const deadline = deadlineOf(context, request);
  const promptTokens = estimateTokens(request.body.length);
  const admitting = admit(context, caller, () => admissionOf(canonical, promptTokens));
  const meter = admitting === undefined ? undefined : await admitting;
  const call: Call = {
    input: messagesInput(body, request.headers, canonical),
    streaming: canonical.stream,
    choices: 1,
    promptChars: request.body.length,
    operation: "messages",
    route,
    requestId,
    signal: request.signal,
    deadline,
    meter,
  };
  const head = (model: string) => ({ id: `msg_${deps.newId()}`, model, inputTokens: promptTokens });
  let response: GatewayResponse;
  if (call.streaming) {
    // No `ping` while the engine waits for the first token: nothing, headers included, goes out
    // before it (so a failing target is passed over unseen), and the engine has no hook for a frame
    // sent meanwhile. The headers wait up to the first-token timeout.
    const served = await serve(context, call, streamedAnswer);
    response = served.ok
      ? {
          status: 200,
          headers: {
            ...eventStreamHeaders,
            ...answeredBy(served.run, served.candidate),
            "request-id": requestId,
          },
          body: relayAnswer(
            served.run,
            served.value,
            served.others,
            createMessagesStreamEncoder(head(served.candidate.target.model)),
          ),
        }
      : failed(served);
  } else {
    const served = await serve(context, call, wholeAnswer);
    response = served.ok
      ? {
          status: 200,
          headers: { ...jsonHeaders, ...answeredBy(served.run, served.candidate), "request-id": requestId },
          body: messageBody(served.value, head(served.candidate.target.model)),
        }
      : failed(served);
  }
  return afterResponse(context, response, deadline);
}

/**
 * `count_tokens`: the target's own count where it has one (the Anthropic API's `count_tokens`,
 * Bedrock's `CountTokens` for Claude), asked of the route's targets through the engine, so it fails
 * over like any call (see `tokenCount`); when no target counts, or every one failed, an estimate from
 * the canonical request's text (see `estimatePromptTokens`). `x-gateway-token-count` says which:
 * `provider` or `estimated`. Free upstream, and so never metered as tokens; but it is a request of
 * the key (Claude Code and IDE extensions send dozens at start-up), so it goes through admission like
 * any other: `rpm` and `maxConcurrent` count it, a key over a budget is refused, and the ledger counts
 * it as a request with no tokens.
 */
async function countTokens(
  context: GatewayContext,
  { request, requestId, caller }: RequestContext,
  { body, canonical, route }: ReadRequest,
): Promise<GatewayResponse> {
  const deadline = deadlineOf(context, request);
  const admitting = admit(context, caller, () => ({
    model: canonical.model,
    promptTokens: 0,
    maxOutputTokens: 0,
    choices: 1,
  }));
  const meter = admitting === undefined ? undefined : await admitting;
  const ids = { "request-id": requestId, "x-request-id": requestId };
  const estimate = (headers: Record<string, string>) =>
    jsonResponse(
      200,
      { input_tokens: estimatePromptTokens(canonical) },
      { ...headers, ...ids, [TOKEN_COUNT_HEADER]: "estimated" },
    );
  let response: GatewayResponse;
  if (!mayCountTokens(context.factory, route)) {
    meter?.record({ ...NO_USAGE, estimated: false });
    response = estimate({});
  } else {
    // The engine's run tells the meter its usage, none here: no attempt is counted as work.
    const served = await serve(
      context,
      {
        input: messagesInput(body, request.headers, canonical),
        streaming: false,
        choices: 1,
        promptChars: request.body.length,
        operation: "count_tokens",
        route,
        requestId,
        signal: request.signal,
        deadline,
        meter,
      },
      tokenCount,
    );
    response = served.ok
      ? jsonResponse(
          200,
          { input_tokens: served.value },
          { ...answeredBy(served.run, served.candidate), ...ids, [TOKEN_COUNT_HEADER]: "provider" },
        )
      : estimate({ "x-gateway-attempts": String(attemptCount(served.run.attempts)) });
  }
  return afterResponse(context, response, deadline);
}

/** Says whether a `count_tokens` answer is a target's own count (`provider`) or the gateway's (`estimated`). */
const TOKEN_COUNT_HEADER = "x-gateway-token-count";

/** Any failure in Anthropic's shape, with its headers (`Retry-After`) and the request id twice. */
export function anthropicErrorResponse(
  error: unknown,
  requestId: string,
  headers: Record<string, string> = {},
): GatewayResponse {
  const { status, body } = toAnthropicError(error, requestId);
  const extra = (error as Partial<GatewayError> | undefined)?.headers ?? {};
  return jsonResponse(status, body, {
    ...extra,
    ...headers,
    "request-id": requestId,
    "x-request-id": requestId,
  });
}

const eventStreamHeaders = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
};

/**
 * The engine's error in Anthropic's shape, with the attempts it made. When every target failed
 * (`upstream_unavailable`, a 502 to an OpenAI caller) a Messages caller is told 529
 * `overloaded_error`, what the Anthropic API says when it cannot serve: Claude Code retries it with
 * its own backoff and, after several, switches to its fallback model.
 */
function failed(served: Served<unknown> & { ok: false }): GatewayResponse {
  const error = served.error;
  const said =
    error.code === "upstream_unavailable"
      ? new GatewayError(error.message, {
          status: 529,
          code: error.code,
          headers: error.headers,
          cause: error,
        })
      : error;
  return anthropicErrorResponse(said, served.run.call.requestId, {
    "x-gateway-attempts": String(attemptCount(served.run.attempts)),
  });
}

/**
 * What admission reserves against (issue 16): the prompt's size, estimated from the body (JSON and
 * all, so rather more than the prompt), and `max_tokens` (required by Messages, checked by the parse).
 */
function admissionOf(canonical: GenerationRequest, promptTokens: number): AdmissionRequest {
  return {
    model: canonical.model,
    promptTokens,
    maxOutputTokens: canonical.maxOutputTokens,
    choices: 1,
  };
}
