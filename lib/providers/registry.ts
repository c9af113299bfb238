import type { ProviderConfig } from "../config/types.ts";
import { anthropic } from "./anthropic.ts";
import { bedrock } from "./bedrock.ts";
import { deepseek } from "./deepseek.ts";
import type { RegisteredProvider } from "./definition.ts";
import { mock } from "./mock.ts";
import { openai } from "./openai.ts";

/** The provider types the gateway knows, by name: what config validation and the factory read. */
export interface ProviderRegistry {
  /** The type names, in registration order (error messages list them). */
  readonly types: readonly string[];
  find(type: string): RegisteredProvider | undefined;
  /** The definition of `type`; throws, naming the known types, if there is none. */
  get(type: string): RegisteredProvider;
}

export function createProviderRegistry(definitions: readonly RegisteredProvider[]): ProviderRegistry {
  const byType = new Map<string, RegisteredProvider>();
  for (const definition of definitions) {
    if (byType.has(definition.type))
      throw new Error(`provider type ${JSON.stringify(definition.type)} is registered twice`);
    byType.set(definition.type, definition);
  }
  const types = [...byType.keys()];
  return {
    types,
    find: (type) => byType.get(type),
    get(type) {
      const definition = byType.get(type);
      if (definition === undefined)
        throw new Error(`unknown provider type ${JSON.stringify(type)}: the types are ${types.join(", ")}`);
      return definition;
    },
  };
}

/** Every provider type of the gateway. A new type is its file in this folder and one line here. */
export const providerRegistry: ProviderRegistry = createProviderRegistry([
  openai,
  deepseek,
  mock,
  bedrock,
  anthropic,
]);

/**
 * Whether `provider` can be called only with an API key: its type requires one. A provider whose
 * type takes none (or only optionally) counts as configured without one. A type the registry does
 * not know is assumed to need one.
 */
export function needsApiKey(
  provider: ProviderConfig,
  registry: ProviderRegistry = providerRegistry,
): boolean {
  return (registry.find(provider.type)?.apiKey ?? "required") === "required";
}
