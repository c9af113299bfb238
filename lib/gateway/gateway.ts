import { mayUseModel, modelNotFound } from "../callers/bearer.ts";
import type { AdmissionRequest, Caller } from "../callers/types.ts";
import type { ModelRoute } from "../config/types.ts";
import { estimateTokens } from "../core/usage.ts";
import {
  ClientAbortError,
  quoteCallerText as echo,
  GatewayError,
  InternalError,
  InvalidRequestError,
} from "../errors.ts";
import type { ChatRequest } from "../providers/types.ts";
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
  /**
   * The response for a request an adapter refuses before it reaches {@link Gateway.handle} (HTTP the
   * parser rejects, a body that stops arriving): the OpenAI error shape with a fresh request id.
   */
  refuse(error: GatewayError, requestId?: string): GatewayResponse;
}

/** The methods each known path answers; HEAD and OPTIONS wherever GET is, OPTIONS everywhere. */
function allowedMethods(path: string): readonly string[] | undefined {
  if (path === "/v1/chat/completions") return ["POST", "OPTIONS"];
  if (path === "/v1/models" || path === "/health" || path.startsWith("/v1/models/"))
    return ["GET", "HEAD", "OPTIONS"];
  return undefined;
}

/** The whole HTTP API as `request → response`; runtimes are thin adapters around it. */
export function createGateway(context: ChatContext): Gateway {
  const { config, deps } = context;
  const routes = new Map<string, ModelRoute>(config.models.map((m) => [m.name, m]));
  const modelList = {
    object: "list",
    data: config.models.map((m) => ({ id: m.name, object: "model", created: 0, owned_by: "gateway" })),
  };
  const modelListBody = JSON.stringify(modelList);

  async function chat(
    request: GatewayRequest,
    requestId: string,
    caller: Caller | undefined,
  ): Promise<GatewayResponse> {
    if (Buffer.byteLength(request.body) > config.maxBodyBytes)
      throw new PayloadTooLargeError(config.maxBodyBytes);
    const body = parseChatRequest(request.body, { maxNestingDepth: config.maxNestingDepth });
    const route = routes.get(body.model);
    // A route the key may not use answers as no route does (issue 16): same status, code and text.
    if (route === undefined || (caller !== undefined && !mayUseModel(caller, body.model)))
      throw modelNotFound(body.model);
    const budget = Math.min(config.requestTimeoutMs, request.remainingMs ?? Number.POSITIVE_INFINITY);
    const deadline = deps.now() + Math.max(0, budget);
    // Without a caller there is nothing to admit: no await, no extra turn of the event loop.
    const admitted = caller === undefined ? { request: body } : await admit(caller, body, request);
    const response = await completeChat(context, {
      route,
      requestId,
      signal: request.signal,
      deadline,
      ...admitted,
    });
    const after = context.auth?.afterResponse;
    return after === undefined ? response : afterResponse(response, () => after(deadline));
  }

  /**
   * The caller's limits (429, the request's worst case reserved against its budgets), and the meter
   * that records the request's usage and settles the reservation (issues 12, 16). A metered stream
   * always asks upstream for its usage chunk; when the caller did not ask for it, the relay strips it
   * from what the caller sees.
   */
  async function admit(caller: Caller, body: ChatRequest, request: GatewayRequest) {
    const meter = context.auth?.admit
      ? await context.auth.admit(caller, admissionOf(body, request.body.length))
      : undefined;
    if (meter === undefined) return { request: body };
    if (body.stream !== true || body.stream_options?.include_usage === true) return { request: body, meter };
    return {
      request: { ...body, stream_options: { ...body.stream_options, include_usage: true } },
      meter,
      stripUsage: true,
    };
  }

  /**
   * With `auth.afterResponse` (Lambda), it runs once the caller has every byte and before the
   * invocation returns: after a string body is ready, or after a stream's last event.
   */
  async function afterResponse(
    response: GatewayResponse,
    after: () => Promise<void>,
  ): Promise<GatewayResponse> {
    const body = response.body;
    if (typeof body === "string") {
      await after();
      return response;
    }
    async function* thenFlush(): AsyncGenerator<string> {
      try {
        yield* body;
      } finally {
        await after();
      }
    }
    return { ...response, body: thenFlush() };
  }

  async function route(request: GatewayRequest, path: string, requestId: string): Promise<GatewayResponse> {
    const allowed = allowedMethods(path);
    // Before auth: a CORS preflight or a client probing the API carries no key.
    if (request.method === "OPTIONS" && allowed) {
      return { status: 204, headers: { allow: allowed.join(", "), "x-request-id": requestId }, body: "" };
    }
    // HEAD is answered as GET is; handle() drops the body (RFC 9110, section 9.3.2).
    const method = request.method === "HEAD" ? "GET" : request.method;
    // Before anything else, and above all before any upstream call. /health stays open for probes.
    const caller =
      context.auth && path !== "/health" ? await context.auth.verify(request.headers) : undefined;
    if (path === "/v1/chat/completions" && method === "POST") return await chat(request, requestId, caller);
    // A key limited to some models sees only those; the others do not exist for it (issue 16).
    if (path === "/v1/models" && method === "GET") {
      return {
        status: 200,
        headers: { "content-type": "application/json", "x-request-id": requestId },
        body:
          caller?.models === undefined
            ? modelListBody
            : JSON.stringify({ ...modelList, data: modelList.data.filter((m) => mayUseModel(caller, m.id)) }),
      };
    }
    if (path.startsWith("/v1/models/") && method === "GET") {
      const id = decodePathSegment(path.slice("/v1/models/".length));
      const model = modelList.data.find((m) => m.id === id);
      if (model && (caller === undefined || mayUseModel(caller, id)))
        return jsonResponse(200, model, { "x-request-id": requestId });
      throw modelNotFound(id);
    }
    if (path === "/health" && method === "GET") {
      return jsonResponse(200, { status: "ok" }, { "x-request-id": requestId, "cache-control": "no-store" });
    }
    if (allowed) {
      throw new GatewayError(
        `Method ${echo(request.method)} is not allowed on ${path}; use ${allowed.join(", ")}.`,
        {
          status: 405,
          type: "invalid_request_error",
          code: "method_not_allowed",
          headers: { allow: allowed.join(", ") },
        },
      );
    }
    throw new InvalidRequestError(
      `Unknown path: ${echo(request.method)} ${echo(path)}`,
      null,
      "unknown_url",
      404,
    );
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
        response = failure(error, requestId);
      }
      // A HEAD response carries the GET response's status and headers but never a body.
      return request.method === "HEAD" && typeof response.body === "string"
        ? { ...response, body: "" }
        : response;
    },
    tooLarge: (requestId) =>
      errorResponse(new PayloadTooLargeError(config.maxBodyBytes), requestId ?? deps.newId()),
    refuse: (error, requestId) => errorResponse(error, requestId ?? deps.newId()),
  };

  function failure(error: unknown, requestId: string): GatewayResponse {
    if (error instanceof ClientAbortError) {
      // Nobody is listening; the adapter drops this (499 is nginx's "client closed request").
      return jsonResponse(499, {
        error: { message: error.message, type: "api_error", param: null, code: "client_closed" },
      });
    }
    if (error instanceof GatewayError && !(error instanceof InternalError))
      return errorResponse(error, requestId);
    // A bug of ours, not the caller's nor a provider's: logged once, here, and answered with the
    // request id so the caller's report can be matched to this line.
    const cause = error instanceof InternalError ? error.cause : error;
    deps.logger.error({ msg: "unhandled error", requestId, error: (cause as Error)?.message });
    return errorResponse(
      new GatewayError(`Internal server error (request id ${requestId}).`, {
        status: 500,
        type: "api_error",
        code: "internal_error",
        cause: error,
      }),
      requestId,
    );
  }
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

/** A percent-encoded path segment, or a 400 for malformed encoding (`%E0%A4%A`), never a URIError. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InvalidRequestError(
      `The path segment '${echo(segment)}' is not valid percent-encoded UTF-8.`,
      null,
      "invalid_path",
    );
  }
}
