import type { AdmissionRequest, Caller } from "../callers/types.ts";
import type { Meter } from "../engine/run.ts";
import type { GatewayContext } from "./endpoint.ts";
import type { GatewayRequest, GatewayResponse } from "./response.ts";

/**
 * The steps every generation endpoint takes around the engine, in middy's before/after shape: the
 * request's deadline, the caller's admission (before) and the Lambda flush (after). Each dialect's
 * endpoint calls them in that order, so a new endpoint meters and flushes as chat does.
 */

/** The request's deadline: its timeout, capped by what the runtime still allows (Lambda). */
export function deadlineOf(context: GatewayContext, request: GatewayRequest): number {
  const budget = Math.min(context.config.requestTimeoutMs, request.remainingMs ?? Number.POSITIVE_INFINITY);
  return context.deps.now() + Math.max(0, budget);
}

/**
 * Before: the caller's limits (429, the request's worst case reserved against its budgets) and the
 * meter that records its usage and settles the reservation (issues 12, 16). Without a caller there
 * is nothing to admit: no await, no extra turn of the event loop, no estimate built.
 */
export function admit(
  context: GatewayContext,
  caller: Caller | undefined,
  admission: () => AdmissionRequest,
): Promise<Meter | undefined> | undefined {
  if (caller === undefined || context.auth?.admit === undefined) return undefined;
  return context.auth.admit(caller, admission());
}

/**
 * After: with `auth.afterResponse` (Lambda), it runs once the caller has every byte and before the
 * invocation returns (after a string body is ready, or after a stream's last event), within the
 * request's deadline.
 */
export function afterResponse(
  context: GatewayContext,
  response: GatewayResponse,
  deadline: number,
): GatewayResponse | Promise<GatewayResponse> {
  const after = context.auth?.afterResponse;
  if (after === undefined) return response;
  const body = response.body;
  if (typeof body === "string") return after(deadline).then(() => response);
  async function* thenFlush(): AsyncGenerator<string> {
    try {
      yield* body;
    } finally {
      await after?.(deadline);
    }
  }
  return { ...response, body: thenFlush() };
}
