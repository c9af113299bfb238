import type { GatewayConfig, ProviderConfig, ProviderType } from "../config/types.ts";
import { createMockProvider } from "./mock.ts";
import { createOpenAICompatibleProvider, type ProviderContext } from "./openai-compatible.ts";
import type { Provider } from "./types.ts";

/** Builds providers from configuration and keeps one instance per provider id. */
export interface ProviderFactory {
  createProvider(type: ProviderType, config: ProviderConfig): Provider;
  /** The provider with this id (created once), or undefined if the config names none. */
  getProvider(id: string): Provider | undefined;
  /** Enabled and has what it needs to be called (a key, for providers that need one). */
  isProviderConfigured(id: string): boolean;
}

/**
 * DeepSeek speaks the OpenAI wire format (https://api-docs.deepseek.com/); its differences are data:
 * the default base URL and the /beta base for prefix completion, both set in config validation. Under
 * load it sends blank lines and `: keep-alive` comments before content, which the SSE reader drops
 * and the first-token timer ignores.
 */
const CONSTRUCTORS: Record<ProviderType, (config: ProviderConfig, context: ProviderContext) => Provider> = {
  openai: (config, context) => createOpenAICompatibleProvider(config, context),
  deepseek: (config, context) => createOpenAICompatibleProvider(config, context),
  mock: (config, context) => createMockProvider(config, context.deps),
};

export function createProviderFactory(config: GatewayConfig, context: ProviderContext): ProviderFactory {
  const instances = new Map<string, Provider>();
  const byId = new Map(config.providers.map((p) => [p.id, p]));

  const factory: ProviderFactory = {
    createProvider: (type, providerConfig) => CONSTRUCTORS[type]({ ...providerConfig, type }, context),
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
      return providerConfig?.enabled === true && context.keys.has(providerConfig);
    },
  };
  return factory;
}
