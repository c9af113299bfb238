import middy from "@middy/core";
import {
  type FunctionUrlEvent,
  type LambdaContextLike,
  toGatewayRequest,
  toHandlerResponse,
} from "../lib/lambda/function-url.ts";
import { createLambdaRuntime } from "../lib/lambda/runtime.ts";
import { getSharedRuntime } from "../lib/runtime.ts";

/** Kept back from the function's remaining time so the gateway's own deadline fires first. */
const MARGIN_MS = 1_500;

/**
 * The chat function behind the Function URL (RESPONSE_STREAM): the same gateway as `npm start`,
 * adapted from the Function URL event and streamed through middy's streaming mode. middy's own
 * early timeout is off: the gateway's deadline (inside the remaining time) answers in the OpenAI
 * error shape instead.
 */
export const handler = middy<FunctionUrlEvent, unknown>({
  streamifyResponse: true,
  timeoutEarlyInMillis: 0,
}).handler(async (event: FunctionUrlEvent, context: LambdaContextLike) => {
  const runtime = getSharedRuntime(createLambdaRuntime);
  const abort = new AbortController();
  const response = await runtime.gateway.handle(toGatewayRequest(event, context, abort.signal, MARGIN_MS));
  return toHandlerResponse(response, () => abort.abort());
});
