import type { GatewayConfig, ProviderConfig, ProviderType } from "../config/types.ts";
import type { ProviderContext } from "./definition.ts";
import { needsApiKey, type ProviderRegistry, providerRegistry } from "./registry.ts";
import type { Provider } from "./types.ts";

/** Builds providers from configuration and keeps one instance per provider id. */
export interface ProviderFactory {
  createProvider(type: ProviderType, config: ProviderConfig): Provider;
  /** The provider with this id (created once), or undefined if the config names none. */
  getProvider(id: string): Provider | undefined;
  /** Enabled and has what it needs to be called (a key, for providers that need one). */
  isProviderConfigured(id: string): boolean;
}

/** Providers are built by their type's definition in `registry` (every type of the gateway unless a test says). */
export function createProviderFactory(
  config: GatewayConfig,
  context: ProviderContext,
  registry: ProviderRegistry = providerRegistry,
): ProviderFactory {
  const instances = new Map<string, Provider>();
  const byId = new Map(config.providers.map((p) => [p.id, p]));
  const built: ProviderContext = { maxNestingDepth: config.maxNestingDepth, ...context };

  const factory: ProviderFactory = {
    // The definition checks the configuration is of its own type: its options are the type's own.
    createProvider: (type, providerConfig) => registry.get(type).create(providerConfig, built),
    getProvider(id) {
      let provider = instances.get(id);
      if (provider === undefined) {
        const providerConfig = byId.get(id);
        if (providerConfig === undefined) return undefined;
        provider = factory.createProvider(providerConfig.type, providerConfig);
        instances.set(id, provider);
      }
      return provider;
    },
    isProviderConfigured(id) {
      const providerConfig = byId.get(id);
      if (providerConfig?.enabled !== true) return false;
      return !needsApiKey(providerConfig, registry) || context.keys.has(providerConfig);
    },
  };
  return factory;
}
