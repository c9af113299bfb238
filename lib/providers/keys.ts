import type { ProviderConfig } from "../config/types.ts";
import { registerSecret } from "../secrets/redact.ts";

/** Where providers get their API keys. Locally from the environment; on AWS from Secrets Manager. */
export interface ApiKeys {
  /** The key, or undefined when its source holds none. */
  get(provider: ProviderConfig): Promise<string | undefined>;
  /**
   * Whether the provider can have a key without asking anyone (env set), or may have one (a secret).
   * Whether it needs one at all is its type's (`needsApiKey` in `registry.ts`), not asked here.
   */
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
    has: (provider) => read(provider) !== undefined,
    invalidate() {},
  };
}

/**
 * `keys`, with every key it hands out, and the values of the provider's configured upstream headers
 * (`x-api-key` and the like), registered for redaction by value: whatever shape a provider echoes
 * them in, they never reach a caller or a log (issue 9). Every source of keys (environment, Secrets
 * Manager, a test's) is wrapped once where the runtime is built, so a rotated key is registered the
 * moment it is fetched; registering a value already known only refreshes it.
 */
/**
 * Configured headers that carry credentials (`x-api-key`, `api-key`, `authorization`, `x-auth-token`,
 * ...): their values are secrets. Others (`anthropic-version: 2023-06-01`, a referer URL) are not, and
 * registering them would redact ordinary text everywhere.
 */
const CREDENTIAL_HEADER = /auth|key|token|secret|password|credential|cookie/i;

export function registeringKeys(keys: ApiKeys, register: (value: string) => void = registerSecret): ApiKeys {
  return {
    async get(provider) {
      const key = await keys.get(provider);
      if (key !== undefined) register(key);
      for (const [name, value] of Object.entries(provider.headers ?? {})) {
        if (CREDENTIAL_HEADER.test(name)) register(value);
      }
      return key;
    },
    has: (provider) => keys.has(provider),
    invalidate: (provider, rejected) => keys.invalidate(provider, rejected),
  };
}
