import type { ProviderConfig } from "../config/types.ts";
import type { ChatCapability, EmbeddingsCapability } from "./generation.ts";

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
 * A model provider: one member per capability (chat; embeddings where the upstream serves them),
 * each talking to the upstream once. Retries, cooldowns and failover are the engine's, under
 * `config.retry` (issue 17: no retry seam on the provider).
 */
export interface Provider {
  readonly id: string;
  readonly config: ProviderConfig;
  readonly chat: ChatCapability;
  /** Present when the provider serves embeddings (`/v1/embeddings` plans only such providers). */
  readonly embeddings?: EmbeddingsCapability | undefined;
  /** Probes the provider as its config says (`GET /models`, a one-token chat, one embedding). Never throws. */
  healthCheck(options: { signal?: AbortSignal; timeoutMs: number }): Promise<HealthResult>;
}
