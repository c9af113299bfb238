import type { ProviderConfig } from "../config/types.ts";
import type { ChatCapability } from "./generation.ts";

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
 * A model provider: one member per capability (chat today; embeddings and native dialects later),
 * each talking to the upstream once. Retries, cooldowns and failover are the engine's, under
 * `config.retry` (issue 17: no retry seam on the provider).
 */
export interface Provider {
  readonly id: string;
  readonly config: ProviderConfig;
  readonly chat: ChatCapability;
  /** Probes the provider as its config says (`GET /models` or a one-token chat). Never throws. */
  healthCheck(options: { signal?: AbortSignal; timeoutMs: number }): Promise<HealthResult>;
}
