import { mayUseModel } from "../../callers/bearer.ts";
import { invalidPath, modelNotFound } from "../../errors.ts";
import type { Endpoint, GatewayContext } from "../endpoint.ts";
import { jsonResponse } from "../response.ts";

/**
 * `GET /v1/models` and `GET /v1/models/{id}`: the public route names. A key limited to some models
 * sees only those; the others do not exist for it (issue 16).
 */
export function models(context: GatewayContext): Endpoint[] {
  const list = {
    object: "list",
    data: context.config.models.map((m) => ({
      id: m.name,
      object: "model",
      created: 0,
      owned_by: "gateway",
    })),
  };
  const listBody = JSON.stringify(list);
  return [
    {
      method: "GET",
      path: "/v1/models",
      async handle({ requestId, caller }) {
        return {
          status: 200,
          headers: { "content-type": "application/json", "x-request-id": requestId },
          body:
            caller?.models === undefined
              ? listBody
              : JSON.stringify({ ...list, data: list.data.filter((m) => mayUseModel(caller, m.id)) }),
        };
      },
    },
    {
      method: "GET",
      path: "/v1/models/*id",
      async handle({ requestId, caller, params }) {
        const id = decodePathSegment(params.id ?? "");
        const model = list.data.find((m) => m.id === id);
        if (model && (caller === undefined || mayUseModel(caller, id)))
          return jsonResponse(200, model, { "x-request-id": requestId });
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
