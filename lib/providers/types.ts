import type { ProviderConfig } from "../config/types.ts";
import type { RetryOptions } from "../retry/policy.ts";

/** A chat message as the caller sent it; fields beyond these pass through untouched. */
export interface ChatMessage {
  role: string;
  content?: unknown;
  [field: string]: unknown;
}

/** The caller's chat completion request. Unknown fields (tools, response_format, ...) pass through. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean; [field: string]: unknown };
  n?: number;
  [field: string]: unknown;
}

/** The parts of a streamed chunk the gateway reads; the rest is forwarded as the provider sent it. */
export interface ChatChunk {
  id?: string;
  model?: string;
  choices?: Array<{
    index?: number;
    delta?: {
      role?: string;
      content?: string | null;
      reasoning_content?: string | null;
      refusal?: string | null;
      tool_calls?: unknown[];
      function_call?: unknown;
    };
    finish_reason?: string | null;
  }>;
  usage?: unknown;
  error?: unknown;
}

/** One event of an upstream stream, already parsed. `raw` is forwarded to the caller byte for byte. */
export type StreamEvent =
  | { kind: "chunk"; raw: string; chunk: ChatChunk }
  /** The upstream sent `data: [DONE]`. */
  | { kind: "done" };

/** A stream whose upstream status is known to be 200. Iterating may throw a {@link GatewayError}. */
export interface ChatStream {
  events: AsyncIterable<StreamEvent>;
  /** Stops the upstream request. */
  cancel(): void;
}

/** A non-streaming answer: the provider's body, checked to be whole JSON, passed on as text. */
export interface ChatResult {
  body: string;
  json: Record<string, unknown>;
}

/** Limits and context of one call to one provider. */
export interface CallOptions {
  signal: AbortSignal;
  /** Replaces the provider's configured timeouts for this call (e.g. capped by the request deadline). */
  timeouts: ProviderConfig["timeouts"];
  /** Send the request to the provider's prefix-completion endpoint (continuation). */
  prefill?: boolean;
}

export interface HealthResult {
  ok: boolean;
  /** HTTP status of the probe, when one came back. */
  status: number | undefined;
  latencyMs: number;
  /** Time to the first content token (chat probes only). */
  ttftMs: number | undefined;
  /** What went wrong, without secrets. */
  error: string | undefined;
}

/**
 * A model provider. Each method talks to the upstream once; retries and failover are the gateway's
 * (`withRetry` applies this provider's policy to any call).
 */
export interface Provider {
  readonly id: string;
  readonly config: ProviderConfig;
  chatCompletion(request: ChatRequest, options: CallOptions): Promise<ChatResult>;
  /** Resolves once the upstream status is known (a non-200 rejects); events follow. */
  streamChat(request: ChatRequest, options: CallOptions): Promise<ChatStream>;
  /** Probes the provider as its config says (`GET /models` or a one-token chat). Never throws. */
  healthCheck(options: { signal?: AbortSignal; timeoutMs: number }): Promise<HealthResult>;
  withRetry<T>(call: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T>;
}
