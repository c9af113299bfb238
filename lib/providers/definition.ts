import type { ConfigObject } from "../config/fields.ts";
import type { HealthProbe, ProviderConfig } from "../config/types.ts";
import type { Deps } from "../deps.ts";
import type { HttpClient } from "../http/client.ts";
import type { ApiKeys } from "./keys.ts";
import type { Provider } from "./types.ts";

/** What a provider's constructor is given: built once at the edge, shared by every provider. */
export interface ProviderContext {
  http: HttpClient;
  keys: ApiKeys;
  deps: Deps;
  /** The gateway's `maxNestingDepth`, for a type that parses or translates caller JSON (Bedrock). */
  maxNestingDepth?: number;
}

/**
 * Everything the gateway knows about one provider type, in the type's own file: the registry
 * (`registry.ts`) hands these to config validation and to the factory, so adding a type is one file,
 * one registry line and its tests. `Options` is the type's own configuration fields, validated by
 * {@link ProviderDefinition.options}, found again in `config.options` by its constructor.
 */
export interface ProviderDefinition<Options> {
  /** The `type` a provider's configuration names. */
  readonly type: string;
  /**
   * Whether a provider's configuration must name an `apiKey` (`required`), may (`optional`: the mock),
   * or must not (`none`: a provider that signs its requests another way, such as AWS IAM). A
   * provider whose key is not required counts as configured without one.
   */
  readonly apiKey: "required" | "optional" | "none";
  /**
   * The base URL when the configuration names none; `configurable: false` ignores a configured one
   * (the mock has no URL; its placeholder only has to be a URL).
   */
  readonly baseUrl: { readonly default: string; readonly configurable: boolean };
  /** The prefix-completion base URL when the configuration names none (DeepSeek's /beta). */
  readonly prefillBaseUrl: string | undefined;
  /** Defaults of what the type can do, each overridable per provider in configuration. */
  readonly capabilities: { readonly assistantPrefill: boolean };
  /**
   * Its health probe: the one run when the configuration's `healthCheck` names none, and the kinds
   * the configuration may choose. The probe itself is the provider's `healthCheck`.
   */
  readonly healthProbe: { readonly default: HealthProbe; readonly kinds: readonly HealthProbe["kind"][] };
  /**
   * Validates the type's own fields of one provider's configuration object (`field` is its path,
   * e.g. `providers[2]`) and returns them, defaults filled in. Throws a `ConfigError` (from
   * `lib/config/fields.ts`) naming the field. A type with no fields of its own returns `undefined`.
   */
  options(provider: ConfigObject, field: string): Options;
  /**
   * Builds a provider from a configuration this definition validated. Called when the provider is
   * first used, never at import. It returns at once: a type over a heavy SDK imports it on first
   * call (as `bedrock.ts` does with `await import(...)`), so the cold start of a gateway that does
   * not use it stays small.
   */
  create(config: ProviderConfig<Options>, context: ProviderContext): Provider;
}

/**
 * A definition with its options type erased, so definitions of different types can share a list.
 * `create` takes only a configuration of its own type, whose options its own `options` produced.
 */
export interface RegisteredProvider extends Omit<ProviderDefinition<unknown>, "create"> {
  create(config: ProviderConfig, context: ProviderContext): Provider;
}

/**
 * Declares a provider type. The definition is checked against its options type here; the registry
 * then holds it erased ({@link RegisteredProvider}).
 */
export function defineProvider<Options>(definition: ProviderDefinition<Options>): RegisteredProvider {
  return {
    ...definition,
    create(config, context) {
      if (config.type !== definition.type) {
        throw new Error(
          `a provider of type ${JSON.stringify(definition.type)} cannot be built from the configuration of ` +
            `${JSON.stringify(config.id)}, of type ${JSON.stringify(config.type)}`,
        );
      }
      // Sound: validation produced `config.options` with this same definition's `options`, and the
      // check above keeps a configuration of another type (other options) out.
      return definition.create(config as ProviderConfig<Options>, context);
    },
  };
}
