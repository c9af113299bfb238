import type { Endpoint } from "../endpoint.ts";
import { jsonResponse } from "../response.ts";

/** `GET /health`: the gateway is up. Open: a load balancer's probe carries no key. */
export function health(): Endpoint {
  return {
    method: "GET",
    path: "/health",
    open: true,
    async handle({ requestId }) {
      return jsonResponse(200, { status: "ok" }, { "x-request-id": requestId, "cache-control": "no-store" });
    },
  };
}
