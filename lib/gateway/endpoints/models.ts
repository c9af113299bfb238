import { mayUseModel } from "../../callers/bearer.ts";
import { invalidPath, modelNotFound } from "../../errors.ts";
import type { Endpoint, GatewayContext, RequestContext } from "../endpoint.ts";
import { jsonResponse } from "../response.ts";

/**
 * `GET /v1/models` and `GET /v1/models/{id}`: the public route names. A key limited to some models
 * sees only those; the others do not exist for it (issue 16). A request that carries
 * `anthropic-version` (the Anthropic SDKs, Claude Code) gets Anthropic's shapes
 * (https://docs.anthropic.com/en/api/models-list): one page holding every route, `has_more` false.
 */
export function models(context: GatewayContext): Endpoint[] {
  const names = context.config.models.map((m) => m.name);
  const openai = (id: string) => ({ id, object: "model", created: 0, owned_by: "gateway" });
  const anthropic = (id: string) => ({
    type: "model",
    id,
    display_name: id,
    created_at: "1970-01-01T00:00:00Z",
  });
  const listBody = JSON.stringify({ object: "list", data: names.map(openai) });
  const listOf = (headers: RequestContext["request"]["headers"], visible: string[]): string => {
    if (headers["anthropic-version"] === undefined)
      return JSON.stringify({ object: "list", data: visible.map(openai) });
    return JSON.stringify({
      data: visible.map(anthropic),
      has_more: false,
      first_id: visible[0] ?? null,
      last_id: visible[visible.length - 1] ?? null,
    });
  };
  return [
    {
      method: "GET",
      path: "/v1/models",
      async handle({ request, requestId, caller }) {
        const plain = caller?.models === undefined && request.headers["anthropic-version"] === undefined;
        return {
          status: 200,
          headers: { "content-type": "application/json", "x-request-id": requestId },
          body: plain
            ? listBody
            : listOf(
                request.headers,
                names.filter((id) => caller === undefined || mayUseModel(caller, id)),
              ),
        };
      },
    },
    {
      method: "GET",
      path: "/v1/models/*id",
      async handle({ request, requestId, caller, params }) {
        const id = decodePathSegment(params.id ?? "");
        if (names.includes(id) && (caller === undefined || mayUseModel(caller, id))) {
          const model = request.headers["anthropic-version"] === undefined ? openai(id) : anthropic(id);
          return jsonResponse(200, model, { "x-request-id": requestId });
        }
        throw modelNotFound(id);
      },
    },
  ];
}

/** A percent-encoded path segment, or a 400 for malformed encoding (`%E0%A4%A`), never a URIError. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalidPath(segment);
  }
}
