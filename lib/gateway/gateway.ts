import { openAIErrorBody } from "../dialects/openai-chat/errors.ts";
import {
  ClientAbortError,
  clientClosed,
  GatewayError,
  InternalError,
  methodNotAllowed,
  requestTooLarge,
  unknownPath,
} from "../errors.ts";
import type { Endpoint, GatewayContext } from "./endpoint.ts";
import { chatCompletions } from "./endpoints/chat-completions.ts";
import { embeddings } from "./endpoints/embeddings.ts";
import { health } from "./endpoints/health.ts";
import { messages } from "./endpoints/messages.ts";
import { models } from "./endpoints/models.ts";
import { responses } from "./endpoints/responses.ts";
import { errorResponse, type GatewayRequest, type GatewayResponse, jsonResponse } from "./response.ts";
import { createRouter } from "./router.ts";

export interface Gateway {
  handle(request: GatewayRequest): Promise<GatewayResponse>;
  /** The response for a body over the size limit, for adapters that stop reading early. */
  tooLarge(requestId?: string): GatewayResponse;
  /**
   * The response for a request an adapter refuses before it reaches {@link Gateway.handle} (HTTP the
   * parser rejects, a body that stops arriving): the OpenAI error shape with a fresh request id.
   */
  refuse(error: GatewayError, requestId?: string): GatewayResponse;
}

/**
 * The route table: every endpoint of the HTTP API, one line each. 404, 405 with `Allow`, and OPTIONS
 * come from it (lib/gateway/router.ts); each endpoint's file holds its handler.
 */
function endpoints(context: GatewayContext): Endpoint[] {
  return [
    chatCompletions(context),
    ...messages(context),
    ...responses(context),
    embeddings(context),
    ...models(context),
    health(),
  ];
}

/** The whole HTTP API as `request → response`; runtimes are thin adapters around it. */
export function createGateway(context: GatewayContext): Gateway {
  const { config, deps } = context;
  const router = createRouter(endpoints(context).map((endpoint) => ({ ...endpoint, handler: endpoint })));

  async function route(request: GatewayRequest, path: string, requestId: string): Promise<GatewayResponse> {
    const found = router.match(request.method === "OPTIONS" ? "GET" : request.method, path);
    // Before auth: a CORS preflight or a client probing the API carries no key.
    if (request.method === "OPTIONS") {
      const allow = router.allowed(path);
      if (allow !== undefined)
        return { status: 204, headers: { allow: allow.join(", "), "x-request-id": requestId }, body: "" };
    }
    if (found.kind === "not-found") throw unknownPath(request.method, path);
    if (found.kind === "method-not-allowed" || request.method === "OPTIONS")
      throw methodNotAllowed(request.method, { path, allow: router.allowed(path) ?? [] });
    const endpoint = found.match.handler;
    try {
      // Before anything else, and above all before any upstream call. Inside the `try`: a refused
      // key is answered in the endpoint's dialect (Anthropic's `authentication_error` on Messages).
      const caller =
        context.auth && endpoint.open !== true ? await context.auth.verify(request.headers) : undefined;
      return await endpoint.handle({ request, requestId, params: found.match.params, caller });
    } catch (error) {
      if (endpoint.errors === undefined) throw error;
      return failure(error, requestId, endpoint.errors);
    }
  }

  return {
    async handle(request) {
      const requestId = request.requestId ?? deps.newId();
      const query = request.path.indexOf("?");
      const path = query === -1 ? request.path : request.path.slice(0, query);
      let response: GatewayResponse;
      try {
        response = await route(request, path, requestId);
      } catch (error) {
        response = failure(error, requestId, errorResponse);
      }
      // A HEAD response carries the GET response's status and headers but never a body.
      return request.method === "HEAD" && typeof response.body === "string"
        ? { ...response, body: "" }
        : response;
    },
    tooLarge: (requestId) => errorResponse(requestTooLarge(config.maxBodyBytes), requestId ?? deps.newId()),
    refuse: (error, requestId) => errorResponse(error, requestId ?? deps.newId()),
  };

  /** Any failure, in the shape `serialize` writes (the endpoint's dialect; OpenAI's by default). */
  function failure(
    error: unknown,
    requestId: string,
    serialize: (error: unknown, requestId: string) => GatewayResponse,
  ): GatewayResponse {
    if (error instanceof ClientAbortError) {
      // Nobody is listening; the adapter drops this (499 is nginx's "client closed request").
      return jsonResponse(499, openAIErrorBody(clientClosed()));
    }
    if (error instanceof GatewayError && !(error instanceof InternalError))
      return serialize(error, requestId);
    // A bug of ours, not the caller's nor a provider's: logged once, here, and answered with the
    // request id so the caller's report can be matched to this line.
    const cause = error instanceof InternalError ? error.cause : error;
    deps.logger.error({ msg: "unhandled error", requestId, error: (cause as Error)?.message });
    return serialize(new InternalError(error, `Internal server error (request id ${requestId}).`), requestId);
  }
}
