import { mayUseModel } from "../../callers/bearer.ts";
import type { AdmissionRequest } from "../../callers/types.ts";
import type { ModelRoute } from "../../config/types.ts";
import { estimateTokens } from "../../core/usage.ts";
import { chatInput } from "../../dialects/openai-chat/input.ts";
import { completionBody, createChatStreamEncoder } from "../../dialects/openai-chat/stream.ts";
import type { ChatRequest } from "../../dialects/openai-chat/wire.ts";
import { relayAnswer } from "../../engine/relay.ts";
import { answeredBy, attemptCount, type Call, type RequestRun } from "../../engine/run.ts";
import { type Served, serve, streamedAnswer, wholeAnswer } from "../../engine/serve.ts";
import { modelNotFound, requestTooLarge } from "../../errors.ts";
import type { Endpoint, GatewayContext } from "../endpoint.ts";
import { errorResponse, type GatewayResponse, jsonHeaders } from "../response.ts";
import { admit, afterResponse, deadlineOf } from "../steps.ts";
import { parseChatRequest } from "../validate.ts";

/**
 * `POST /v1/chat/completions`: the OpenAI Chat Completions dialect over the engine. The caller's
 * body goes to OpenAI-compatible targets as it came (their answer comes back byte for byte) and to
 * every other target through the canonical request.
 */
export function chatCompletions(context: GatewayContext): Endpoint {
  const { config, deps } = context;
  const routes = new Map<string, ModelRoute>(config.models.map((m) => [m.name, m]));
  return {
    method: "POST",
    path: "/v1/chat/completions",
    async handle({ request, requestId, caller }) {
      if (Buffer.byteLength(request.body) > config.maxBodyBytes) throw requestTooLarge(config.maxBodyBytes);
      const body = parseChatRequest(request.body, { maxNestingDepth: config.maxNestingDepth });
      const route = routes.get(body.model);
      // A route the key may not use answers as no route does (issue 16): same status, code and text.
      if (route === undefined || (caller !== undefined && !mayUseModel(caller, body.model)))
        throw modelNotFound(body.model);
      const deadline = deadlineOf(context, request);
      const admitting = admit(context, caller, () => admissionOf(body, request.body.length));
      const meter = admitting === undefined ? undefined : await admitting;
      const call: Call = {
        input: chatInput(body),
        streaming: body.stream === true,
        choices: wholeNumber(body.n) ?? 1,
        promptChars: request.body.length,
        operation: "chat completion",
        route,
        requestId,
        signal: request.signal,
        deadline,
        meter,
      };
      const head = () => ({ id: `chatcmpl-${deps.newId()}`, created: Math.floor(deps.now() / 1000) });
      let response: GatewayResponse;
      if (call.streaming) {
        const served = await serve(context, call, streamedAnswer);
        response = served.ok
          ? {
              status: 200,
              headers: { ...eventStreamHeaders, ...answeredBy(served.run, served.candidate) },
              body: relayAnswer(
                served.run,
                served.value,
                served.others,
                createChatStreamEncoder({
                  includeUsage: body.stream_options?.include_usage === true,
                  head: { ...head(), model: served.candidate.target.model },
                }),
              ),
            }
          : failed(served);
      } else {
        const served = await serve(context, call, wholeAnswer);
        response = served.ok
          ? {
              status: 200,
              headers: { ...jsonHeaders, ...answeredBy(served.run, served.candidate) },
              body: completionBody(served.value, () => ({ ...head(), model: served.candidate.target.model })),
            }
          : failed(served);
      }
      return afterResponse(context, response, deadline);
    },
  };
}

export const eventStreamHeaders = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
};

/** The engine's error in the OpenAI shape, with the attempts it made. */
export function failed(served: Served<unknown> & { ok: false }): GatewayResponse {
  return errorResponse(served.error, served.run.call.requestId, attemptsHeader(served.run));
}

function attemptsHeader(run: RequestRun): Record<string, string> {
  return { "x-gateway-attempts": String(attemptCount(run.attempts)) };
}

/**
 * What admission reserves against (issue 16): the prompt's size, estimated from the body (JSON and
 * all, so rather more than the prompt), the caller's output cap (`max_completion_tokens`, else the
 * older `max_tokens`; `parseChatRequest` checked both are whole numbers when present), and `n`.
 */
function admissionOf(body: ChatRequest, bodyChars: number): AdmissionRequest {
  const cap = wholeNumber(body.max_completion_tokens) ?? wholeNumber(body.max_tokens);
  return {
    model: body.model,
    promptTokens: estimateTokens(bodyChars),
    maxOutputTokens: cap,
    choices: wholeNumber(body.n) ?? 1,
  };
}

function wholeNumber(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}
