import { childAbort } from "../abort.ts";
import { capTimeouts } from "../config/timeouts.ts";
import type { ProviderConfig } from "../config/types.ts";
import { isContent } from "../core/events.ts";
import type { Deps } from "../deps.ts";
import { chatInput } from "../dialects/openai-chat/input.ts";
import { GatewayError } from "../errors.ts";
import type { HealthResult, Provider } from "./types.ts";

/** What one health probe runs with, from {@link boundedHealthCheck}. */
export interface HealthProbe {
  /** Aborts at the check's deadline, or when the caller's signal does. */
  signal: AbortSignal;
  /** `deps.now()` when the check began: latencies count from here. */
  started: number;
  timeoutMs: number;
}

/**
 * Runs `probe` under the check's `timeoutMs` and never throws, as {@link Provider.healthCheck}
 * promises. A failure becomes a failed result carrying the status of the error `toError` maps it
 * to; when the deadline aborted the probe (not the caller), the message says there was no answer
 * in time rather than echoing whatever the aborted call threw.
 */
export async function boundedHealthCheck(
  config: ProviderConfig,
  deps: Deps,
  options: { signal?: AbortSignal; timeoutMs: number },
  toError: (error: unknown) => Error,
  probe: (context: HealthProbe) => Promise<HealthResult>,
): Promise<HealthResult> {
  const { signal, timeoutMs } = options;
  const started = deps.now();
  const limit = childAbort(signal ?? new AbortController().signal);
  const timeout = deps.setTimer(() => limit.controller.abort(), timeoutMs);
  try {
    return await probe({ signal: limit.signal, started, timeoutMs });
  } catch (error) {
    const e = toError(error);
    return {
      ok: false,
      status: e instanceof GatewayError ? e.status : undefined,
      latencyMs: deps.now() - started,
      ttftMs: undefined,
      error:
        limit.signal.aborted && !signal?.aborted
          ? `${config.id}: no answer within ${timeoutMs} ms`
          : e.message,
    };
  } finally {
    timeout.clear();
    limit.dispose();
  }
}

/**
 * One token, streamed: proves the model answers and measures its time to first token (about ten
 * input tokens and one output token per probe), the first canonical event a caller would see (any
 * but usage). Throws what `chat.stream` throws.
 */
export async function chatProbe(
  provider: Pick<Provider, "config" | "chat">,
  model: string,
  { signal, started, timeoutMs }: HealthProbe,
  now: () => number,
): Promise<HealthResult> {
  const stream = await provider.chat.stream(
    chatInput({ model, messages: [{ role: "user", content: "ping" }], max_tokens: 1 }),
    { model, signal, timeouts: capTimeouts(provider.config.timeouts, timeoutMs) },
  );
  let ttftMs: number | undefined;
  for await (const event of stream.events) {
    if (ttftMs === undefined && event.events.some(isContent)) ttftMs = now() - started;
  }
  return { ok: true, status: 200, latencyMs: now() - started, ttftMs, error: undefined };
}

/**
 * One short input embedded (a word, about one input token per probe): proves a provider that serves
 * only embeddings answers with `model`, the key and the role's permissions included. Throws what
 * `embed` throws.
 */
export async function embeddingsProbe(
  provider: Pick<Provider, "config" | "embeddings">,
  model: string,
  { signal, started, timeoutMs }: HealthProbe,
  now: () => number,
): Promise<HealthResult> {
  const embeddings = provider.embeddings;
  if (embeddings === undefined || !embeddings.serves(model))
    return {
      ok: false,
      status: undefined,
      latencyMs: 0,
      ttftMs: undefined,
      error: `${provider.config.id}: cannot embed with ${model}`,
    };
  await embeddings.embed(
    { model, inputs: [{ text: "ping" }], encoding: "float", extensions: {}, unmapped: {} },
    { model, signal, timeouts: capTimeouts(provider.config.timeouts, timeoutMs) },
  );
  return { ok: true, status: 200, latencyMs: now() - started, ttftMs: undefined, error: undefined };
}
