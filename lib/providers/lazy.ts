import type { ProviderConfig } from "../config/types.ts";
import type { Deps } from "../deps.ts";
import { UpstreamError } from "../errors.ts";
import { providerBase } from "./base.ts";
import type { Provider } from "./types.ts";

/** The calls of a provider, without what {@link providerBase} gives every provider. */
export type ProviderCalls = Pick<Provider, "chatCompletion" | "streamChat" | "healthCheck">;

/**
 * A provider whose calls are loaded on first use: `load` typically imports an SDK
 * (`await import("@aws-sdk/client-...")`) and builds its client. A definition's `create` must return
 * at once and never does I/O; this lets a type over a heavy SDK keep it out of the start-up of a
 * gateway that never calls it. `load` runs once; if it fails, the call fails over as a provider that
 * cannot be called would, and the next call tries again.
 */
export function lazyProvider(
  config: ProviderConfig,
  deps: Deps,
  load: () => Promise<ProviderCalls>,
): Provider {
  let loading: Promise<ProviderCalls> | undefined;
  const calls = async (): Promise<ProviderCalls> => {
    loading ??= load().catch((error: unknown) => {
      loading = undefined;
      throw new UpstreamError(`${config.id}: its client could not be loaded`, {
        status: 502,
        code: "provider_not_configured",
        action: "failover",
        providerId: config.id,
        cause: error,
      });
    });
    return loading;
  };
  return {
    ...providerBase(config, deps),
    chatCompletion: async (request, options) => (await calls()).chatCompletion(request, options),
    streamChat: async (request, options) => (await calls()).streamChat(request, options),
    async healthCheck(options) {
      // A health check never throws: a client that cannot be loaded is an unhealthy provider.
      let loaded: ProviderCalls;
      try {
        loaded = await calls();
      } catch (error) {
        return {
          ok: false,
          status: undefined,
          latencyMs: 0,
          ttftMs: undefined,
          error: error instanceof Error ? error.message : String(error),
        };
      }
      return loaded.healthCheck(options);
    },
  };
}
