import type { Caller, ClientAuth } from "../callers/types.ts";
import type { EngineContext } from "../engine/run.ts";
import type { ResponseStore } from "../responses/store.ts";
import type { GatewayRequest, GatewayResponse } from "./response.ts";

/**
 * What the HTTP API runs on: the engine's context, caller authentication (none: open), and where
 * stored responses live (none: `POST /v1/responses` answers `store: false`, and every stored id is
 * a 404).
 */
export interface GatewayContext extends EngineContext {
  auth?: ClientAuth | undefined;
  responses?: ResponseStore | undefined;
}

/** One request as an endpoint's handler sees it, after routing and authentication. */
export interface RequestContext {
  request: GatewayRequest;
  requestId: string;
  /** The path's `:name` and `*name` segments, as sent (percent-encoded). */
  params: Record<string, string>;
  /** The verified caller; undefined on an open gateway (no caller keys) and on open endpoints. */
  caller: Caller | undefined;
}

/**
 * One endpoint of the HTTP API: a line in the route table (`lib/gateway/routes.ts`) and a handler.
 * `errors` writes a failure in the shape of the API the endpoint speaks (default: OpenAI's).
 */
export interface Endpoint {
  method: string;
  path: string;
  handle(context: RequestContext): Promise<GatewayResponse>;
  /** Served without a caller key (a health probe). */
  open?: boolean;
  errors?: (error: unknown, requestId: string) => GatewayResponse;
}
