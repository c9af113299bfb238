import type { ProviderConfig } from "../config/types.ts";
import type { Deps } from "../deps.ts";
import { retry } from "../retry/policy.ts";
import type { Provider } from "./types.ts";

/** What every provider shares: its identity and the retry seam with its own policy. */
export function providerBase(
  config: ProviderConfig,
  deps: Deps,
): Pick<Provider, "id" | "config" | "withRetry"> {
  return {
    id: config.id,
    config,
    withRetry: (call, options) => retry(call, config.retry, deps, options),
  };
}
