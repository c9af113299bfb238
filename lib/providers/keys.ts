import type { ProviderConfig } from "../config/types.ts";

/** Where providers get their API keys. Locally from the environment; on AWS from Secrets Manager. */
export interface ApiKeys {
  /** The key, or undefined when its source holds none. */
  get(provider: ProviderConfig): Promise<string | undefined>;
  /** Whether the provider can have a key without asking anyone (env set), or may have one (a secret). */
  has(provider: ProviderConfig): boolean;
  /** The upstream refused `rejected` (401): the next `get` must not serve that key from a cache. */
  invalidate(provider: ProviderConfig, rejected: string): void;
}

/** Keys from environment variables (`apiKey: { "env": "OPENAI_API_KEY" }`). Secrets are not reachable. */
export function envKeys(env: NodeJS.ProcessEnv = process.env): ApiKeys {
  const read = (provider: ProviderConfig) => {
    const source = provider.apiKey;
    if (source === undefined || !("env" in source)) return undefined;
    const value = env[source.env];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  };
  return {
    get: async (provider) => read(provider),
    has: (provider) => provider.type === "mock" || read(provider) !== undefined,
    invalidate() {},
  };
}
