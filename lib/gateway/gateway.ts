import type { ModelRoute } from "../config/types.ts";
import { ClientAbortError, GatewayError, InvalidRequestError } from "../errors.ts";
import { type ChatContext, completeChat } from "./chat.ts";
import { errorResponse, type GatewayResponse, jsonResponse, PayloadTooLargeError } from "./response.ts";
import { parseChatRequest } from "./validate.ts";

/** A request as any runtime adapter hands it over. */
export interface GatewayRequest {
  method: string;
  /** Path with or without a query string. */
  path: string;
  /** Lower-case names. */
  headers: Record<string, string | undefined>;
  body: string;
  /** Aborts when the caller goes away. */
  signal: AbortSignal;
  /** Time the runtime still allows (Lambda's remaining time minus a margin); caps the deadline. */
  remainingMs?: number;
  requestId?: string;
}

export interface Gateway {
  handle(request: GatewayRequest): Promise<GatewayResponse>;
  /** The response for a body over the size limit, for adapters that stop reading early. */
  tooLarge(requestId?: string): GatewayResponse;
}

export type GatewayContext = ChatContext;

const ROUTES: Record<string, readonly string[]> = {
  "/v1/chat/completions": ["POST"],
  "/v1/models": ["GET"],
  "/health": ["GET"],
};

/** The whole HTTP API as `request → response`; runtimes are thin adapters around it. */
export function createGateway(context: GatewayContext): Gateway {
  const { config, deps } = context;
  const routes = new Map<string, ModelRoute>(config.models.map((m) => [m.name, m]));
  const modelList = {
    object: "list",
    data: config.models.map((m) => ({ id: m.name, object: "model", created: 0, owned_by: "gateway" })),
  };
  const modelListBody = JSON.stringify(modelList);

  async function chat(request: GatewayRequest, requestId: string): Promise<GatewayResponse> {
    if (Buffer.byteLength(request.body) > config.maxBodyBytes)
      throw new PayloadTooLargeError(config.maxBodyBytes);
    const body = parseChatRequest(request.body);
    const route = routes.get(body.model);
    if (route === undefined) {
      throw new InvalidRequestError(
        `The model '${body.model}' does not exist or you do not have access to it.`,
        "model",
        "model_not_found",
        404,
      );
    }
    const budget = Math.min(config.requestTimeoutMs, request.remainingMs ?? Number.POSITIVE_INFINITY);
    return completeChat(context, {
      request: body,
      route,
      requestId,
      signal: request.signal,
      deadline: deps.now() + Math.max(0, budget),
    });
  }

  return {
    async handle(request) {
      const requestId = request.requestId ?? deps.newId();
      const query = request.path.indexOf("?");
      const path = query === -1 ? request.path : request.path.slice(0, query);
      try {
        // Before anything else, and above all before any upstream call. /health stays open for probes.
        if (context.auth && path !== "/health") await context.auth.verify(request.headers);
        if (path === "/v1/chat/completions" && request.method === "POST")
          return await chat(request, requestId);
        if (path === "/v1/models" && request.method === "GET") {
          return {
            status: 200,
            headers: { "content-type": "application/json", "x-request-id": requestId },
            body: modelListBody,
          };
        }
        if (path.startsWith("/v1/models/") && request.method === "GET") {
          const id = decodeURIComponent(path.slice("/v1/models/".length));
          const model = modelList.data.find((m) => m.id === id);
          if (model) return jsonResponse(200, model, { "x-request-id": requestId });
          throw new InvalidRequestError(`The model '${id}' does not exist.`, "model", "model_not_found", 404);
        }
        if (path === "/health" && request.method === "GET") {
          return jsonResponse(
            200,
            { status: "ok" },
            { "x-request-id": requestId, "cache-control": "no-store" },
          );
        }
        const allowed = ROUTES[path] ?? (path.startsWith("/v1/models/") ? ["GET"] : undefined);
        if (allowed) {
          return errorResponse(
            new GatewayError(
              `Method ${request.method} is not allowed on ${path}; use ${allowed.join(", ")}.`,
              {
                status: 405,
                type: "invalid_request_error",
                code: "method_not_allowed",
              },
            ),
            requestId,
            { allow: allowed.join(", ") },
          );
        }
        throw new InvalidRequestError(`Unknown path: ${request.method} ${path}`, null, "unknown_url", 404);
      } catch (error) {
        if (error instanceof ClientAbortError) {
          // Nobody is listening; the adapter drops this (499 is nginx's "client closed request").
          return jsonResponse(499, {
            error: { message: error.message, type: "api_error", param: null, code: "client_closed" },
          });
        }
        if (!(error instanceof GatewayError)) {
          deps.logger.error({ msg: "unhandled error", requestId, error: (error as Error)?.message });
        }
        return errorResponse(error, requestId);
      }
    },
    tooLarge: (requestId) =>
      errorResponse(new PayloadTooLargeError(config.maxBodyBytes), requestId ?? deps.newId()),
  };
}
