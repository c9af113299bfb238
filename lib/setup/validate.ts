import {
  DEFAULT_CALLERS,
  DEFAULT_COOLDOWN,
  DEFAULT_HEALTH,
  DEFAULT_RETRY,
  DEFAULT_TIMEOUTS,
} from "../config/defaults.ts";
import { boolean, ConfigError, number, object, optional, string, url } from "../config/fields.ts";
import {
  type CallersPolicy,
  type CooldownPolicy,
  type GatewayConfig,
  type HealthPolicy,
  type HealthProbe,
  type KeySource,
  LoadBalanceStrategy,
  type ModelRoute,
  type ProviderConfig,
  type RetryPolicy,
  type Timeouts,
} from "../config/types.ts";
import type { RegisteredProvider } from "../providers/definition.ts";
import { type ProviderRegistry, providerRegistry } from "../providers/registry.ts";

/*
 * The configuration document, validated against the provider registry: a floor above both
 * lib/config (the document's types, field readers and defaults, which the providers import) and
 * lib/providers (whose definitions validate their own fields), so neither folder imports the other's
 * (issue 17).
 */

function keySource(value: unknown, field: string): KeySource {
  const obj = object(value, field);
  if (obj.env !== undefined) return { env: string(obj.env, `${field}.env`) };
  if (obj.secretId !== undefined) {
    const secretId = string(obj.secretId, `${field}.secretId`);
    return obj.jsonKey === undefined
      ? { secretId }
      : { secretId, jsonKey: string(obj.jsonKey, `${field}.jsonKey`) };
  }
  throw new ConfigError(field, 'must be { "env": "VAR" } or { "secretId": "name", "jsonKey"?: "key" }');
}

function timeouts(value: unknown, field: string, base: Timeouts): Timeouts {
  const obj = object(value, field);
  const ms = number(1, 900_000);
  return {
    connectMs: optional(obj, "connectMs", field, ms, base.connectMs),
    headersMs: optional(obj, "headersMs", field, ms, base.headersMs),
    firstTokenMs: optional(obj, "firstTokenMs", field, ms, base.firstTokenMs),
    idleMs: optional(obj, "idleMs", field, ms, base.idleMs),
    responseMs: optional(obj, "responseMs", field, ms, base.responseMs),
  };
}

function retry(value: unknown, field: string, base: RetryPolicy): RetryPolicy {
  const obj = object(value, field);
  const policy = {
    maxAttempts: optional(obj, "maxAttempts", field, number(1, 10), base.maxAttempts),
    baseDelayMs: optional(obj, "baseDelayMs", field, number(0, 60_000), base.baseDelayMs),
    maxDelayMs: optional(obj, "maxDelayMs", field, number(0, 300_000), base.maxDelayMs),
    maxRetryAfterMs: optional(obj, "maxRetryAfterMs", field, number(0, 900_000), base.maxRetryAfterMs),
  };
  if (policy.maxDelayMs < policy.baseDelayMs)
    throw new ConfigError(`${field}.maxDelayMs`, "must be >= baseDelayMs");
  return policy;
}

function cooldown(value: unknown, field: string): CooldownPolicy {
  const obj = object(value, field);
  if (obj.failureThreshold !== undefined) {
    throw new ConfigError(
      `${field}.failureThreshold`,
      "was replaced by failureRateThreshold (0 to 1), minRequests and windowMs: a target is now benched on its failure rate",
    );
  }
  return {
    failureRateThreshold: optional(
      obj,
      "failureRateThreshold",
      field,
      number(0.01, 1),
      DEFAULT_COOLDOWN.failureRateThreshold,
    ),
    minRequests: optional(obj, "minRequests", field, number(1, 100_000), DEFAULT_COOLDOWN.minRequests),
    windowMs: optional(obj, "windowMs", field, number(1000, 3_600_000), DEFAULT_COOLDOWN.windowMs),
    cooldownMs: optional(obj, "cooldownMs", field, number(0, 3_600_000), DEFAULT_COOLDOWN.cooldownMs),
    maxCooldownMs: optional(
      obj,
      "maxCooldownMs",
      field,
      number(0, 86_400_000),
      DEFAULT_COOLDOWN.maxCooldownMs,
    ),
  };
}

function health(value: unknown, field: string): HealthPolicy {
  const obj = object(value, field);
  const ms = number(1, 3_600_000);
  return {
    intervalMs: optional(obj, "intervalMs", field, number(1_000, 3_600_000), DEFAULT_HEALTH.intervalMs),
    timeoutMs: optional(obj, "timeoutMs", field, ms, DEFAULT_HEALTH.timeoutMs),
    failureThreshold: optional(
      obj,
      "failureThreshold",
      field,
      number(1, 100),
      DEFAULT_HEALTH.failureThreshold,
    ),
    recoveryThreshold: optional(
      obj,
      "recoveryThreshold",
      field,
      number(1, 100),
      DEFAULT_HEALTH.recoveryThreshold,
    ),
    degradedLatencyMs: optional(obj, "degradedLatencyMs", field, ms, DEFAULT_HEALTH.degradedLatencyMs),
    degradedTtftMs: optional(obj, "degradedTtftMs", field, ms, DEFAULT_HEALTH.degradedTtftMs),
    historyTtlHours: optional(
      obj,
      "historyTtlHours",
      field,
      number(1, 24 * 365),
      DEFAULT_HEALTH.historyTtlHours,
    ),
    cacheTtlMs: optional(obj, "cacheTtlMs", field, number(0, 600_000), DEFAULT_HEALTH.cacheTtlMs),
  };
}

/** A `healthCheck` section, of one of the kinds the provider's type accepts. */
function probe(kinds: readonly HealthProbe["kind"][]) {
  return (value: unknown, field: string): HealthProbe => {
    const obj = object(value, field);
    const kind = obj.kind;
    if (kind === "models" && kinds.includes(kind)) return { kind };
    if ((kind === "chat" || kind === "embeddings") && kinds.includes(kind))
      return { kind, model: string(obj.model, `${field}.model`) };
    throw new ConfigError(`${field}.kind`, `must be ${kinds.map((k) => JSON.stringify(k)).join(" or ")}`);
  };
}

const STRATEGY_NAMES: readonly string[] = Object.values(LoadBalanceStrategy);
const isStrategy = (value: string): value is LoadBalanceStrategy => STRATEGY_NAMES.includes(value);

function strategy(value: unknown, field: string): LoadBalanceStrategy {
  if (typeof value !== "string" || !isStrategy(value)) {
    throw new ConfigError(field, `must be one of ${STRATEGY_NAMES.join(", ")}`);
  }
  return value;
}

function headers(value: unknown, field: string): Record<string, string> {
  const obj = object(value, field);
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(obj)) out[name.toLowerCase()] = string(v, `${field}.${name}`);
  return out;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The key source, as the type's definition allows: required, optional, or not used. */
function apiKey(
  obj: Record<string, unknown>,
  field: string,
  definition: RegisteredProvider,
): KeySource | undefined {
  const type = definition.type;
  if (obj.apiKey === undefined) {
    if (definition.apiKey === "required")
      throw new ConfigError(`${field}.apiKey`, `is required for a provider of type ${type}`);
    return undefined;
  }
  if (definition.apiKey === "none") {
    throw new ConfigError(`${field}.apiKey`, `is not used by a provider of type ${type}; remove it`);
  }
  return keySource(obj.apiKey, `${field}.apiKey`);
}

/**
 * One provider: the fields every provider has, with the defaults of its type, then its type's own
 * fields, validated by its definition (lib/providers/<type>.ts).
 */
function provider(
  value: unknown,
  field: string,
  defaults: { timeouts: Timeouts; retry: RetryPolicy },
  registry: ProviderRegistry,
): ProviderConfig {
  const obj = object(value, field);
  const id = string(obj.id, `${field}.id`);
  if (!ID_PATTERN.test(id))
    throw new ConfigError(`${field}.id`, "must be letters, digits, '.', '_' or '-' (max 64)");
  const type = string(obj.type, `${field}.type`);
  const definition = registry.find(type);
  if (definition === undefined) {
    throw new ConfigError(
      `${field}.type`,
      `must be one of ${registry.types.join(", ")}, got ${JSON.stringify(type)}`,
    );
  }
  return {
    id,
    type,
    baseUrl: definition.baseUrl.configurable
      ? optional(obj, "baseUrl", field, url, definition.baseUrl.default)
      : definition.baseUrl.default,
    apiKey: apiKey(obj, field, definition),
    weight: optional(obj, "weight", field, number(0, 1000), 1),
    enabled: optional(obj, "enabled", field, boolean, true),
    assistantPrefill: optional(
      obj,
      "assistantPrefill",
      field,
      boolean,
      definition.capabilities.assistantPrefill,
    ),
    prefillBaseUrl: optional(obj, "prefillBaseUrl", field, url, definition.prefillBaseUrl),
    headers: optional(obj, "headers", field, headers, {}),
    timeouts: optional(
      obj,
      "timeouts",
      field,
      (v, f) => timeouts(v, f, defaults.timeouts),
      defaults.timeouts,
    ),
    retry: optional(obj, "retry", field, (v, f) => retry(v, f, defaults.retry), defaults.retry),
    healthProbe: optional(
      obj,
      "healthCheck",
      field,
      probe(definition.healthProbe.kinds),
      definition.healthProbe.default,
    ),
    options: definition.options(obj, field),
  };
}

function routes(
  value: unknown,
  field: string,
  providerIds: Set<string>,
  defaultStrategy: LoadBalanceStrategy,
): ModelRoute[] {
  const obj = object(value, field);
  const names = Object.keys(obj);
  if (names.length === 0) throw new ConfigError(field, "must name at least one model");
  return names.map((name) => {
    const routeField = `${field}.${name}`;
    const route = object(obj[name], routeField);
    const targets = route.targets;
    if (!Array.isArray(targets) || targets.length === 0) {
      throw new ConfigError(`${routeField}.targets`, "must be a non-empty array");
    }
    return {
      name,
      strategy: optional(route, "strategy", routeField, strategy, defaultStrategy),
      targets: targets.map((t, i) => {
        const targetField = `${routeField}.targets[${i}]`;
        const target = object(t, targetField);
        const providerId = string(target.provider, `${targetField}.provider`);
        if (!providerIds.has(providerId)) {
          throw new ConfigError(
            `${targetField}.provider`,
            `names no provider: ${JSON.stringify(providerId)}`,
          );
        }
        const model = string(target.model, `${targetField}.model`);
        return {
          provider: providerId,
          model,
          ...(target.weight === undefined
            ? {}
            : { weight: number(0, 1000)(target.weight, `${targetField}.weight`) }),
          ...(target.contextWindow === undefined
            ? {}
            : {
                contextWindow: number(1, 100_000_000)(target.contextWindow, `${targetField}.contextWindow`),
              }),
          ...(target.space === undefined ? {} : { space: spaceName(target.space, `${targetField}.space`) }),
          ...(target.dimensions === undefined
            ? {}
            : { dimensions: wholeNumber(1, 100_000)(target.dimensions, `${targetField}.dimensions`) }),
        };
      }),
    };
  });
}

/** A target's declared vector space: a name, as provider ids are spelled. */
function spaceName(value: unknown, field: string): string {
  const name = string(value, field);
  if (!ID_PATTERN.test(name))
    throw new ConfigError(field, "must be letters, digits, '.', '_' or '-' (max 64), naming a vector space");
  return name;
}

/** A whole number within bounds (a count of dimensions is no fraction). */
function wholeNumber(min: number, max: number) {
  return (value: unknown, field: string): number => {
    const n = number(min, max)(value, field);
    if (!Number.isInteger(n)) throw new ConfigError(field, `must be a whole number, got ${n}`);
    return n;
  };
}

/**
 * Validates a parsed configuration document and fills in defaults. Throws {@link ConfigError}.
 * Provider types, their defaults and their own fields come from `registry` (the gateway's unless a
 * test brings its own).
 */
export function validateConfig(
  document: unknown,
  registry: ProviderRegistry = providerRegistry,
): GatewayConfig {
  const root = object(document, "config");
  const defaults = optional(root, "defaults", "config", object, {});
  const baseTimeouts = optional(
    defaults,
    "timeouts",
    "defaults",
    (v, f) => timeouts(v, f, DEFAULT_TIMEOUTS),
    DEFAULT_TIMEOUTS,
  );
  const baseRetry = optional(
    defaults,
    "retry",
    "defaults",
    (v, f) => retry(v, f, DEFAULT_RETRY),
    DEFAULT_RETRY,
  );

  if (!Array.isArray(root.providers) || root.providers.length === 0) {
    throw new ConfigError("providers", "must be a non-empty array");
  }
  const providers = root.providers.map((p, i) =>
    provider(p, `providers[${i}]`, { timeouts: baseTimeouts, retry: baseRetry }, registry),
  );
  const ids = new Set<string>();
  providers.forEach((p, i) => {
    if (ids.has(p.id)) throw new ConfigError(`providers[${i}].id`, `duplicates ${JSON.stringify(p.id)}`);
    ids.add(p.id);
  });

  return {
    requestTimeoutMs: optional(defaults, "requestTimeoutMs", "defaults", number(100, 900_000), 300_000),
    maxBodyBytes: optional(
      defaults,
      "maxBodyBytes",
      "defaults",
      number(1024, 6 * 1024 * 1024),
      4 * 1024 * 1024,
    ),
    maxNestingDepth: optional(defaults, "maxNestingDepth", "defaults", number(4, 1000), 64),
    maxResponseBytes: optional(
      defaults,
      "maxResponseBytes",
      "defaults",
      number(64 * 1024, 190 * 1024 * 1024),
      16 * 1024 * 1024,
    ),
    maxResumeChars: optional(defaults, "maxResumeChars", "defaults", number(0, 16 * 1024 * 1024), 256 * 1024),
    upstreamMaxSockets: optional(defaults, "upstreamMaxSockets", "defaults", number(1, 100_000), 512),
    resumeByRestart: optional(defaults, "resumeByRestart", "defaults", boolean, true),
    cooldown: optional(defaults, "cooldown", "defaults", cooldown, DEFAULT_COOLDOWN),
    health: optional(root, "health", "config", health, DEFAULT_HEALTH),
    providers,
    models: routes(
      root.models,
      "models",
      ids,
      optional(defaults, "strategy", "defaults", strategy, LoadBalanceStrategy.HEALTH_FIRST),
    ),
    callers: optional(root, "callers", "config", callers, DEFAULT_CALLERS),
  };
}

/** Parses and validates configuration text; a JSON syntax error is reported as a ConfigError too. */
export function parseConfig(
  text: string,
  source = "config",
  registry: ProviderRegistry = providerRegistry,
): GatewayConfig {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(source, `is not valid JSON (${(error as Error).message})`);
  }
  return validateConfig(document, registry);
}

/** The `callers` section (issue 12): key cache, ledger flush, fail-open switch, prices per model. */
function callers(value: unknown, field: string): CallersPolicy {
  const obj = object(value, field);
  const d = DEFAULT_CALLERS;
  const prices = optional(obj, "prices", field, object, {});
  const price = (p: unknown, f: string) => {
    const o = object(p, f);
    const input = number(0, 1_000_000)(o.input, `${f}.input`);
    return {
      input,
      output: number(0, 1_000_000)(o.output, `${f}.output`),
      cachedInput: optional(o, "cachedInput", f, number(0, 1_000_000), input),
      cacheWrite: optional(o, "cacheWrite", f, number(0, 1_000_000), input),
    };
  };
  return {
    // At most 60 s: the bound on how long a revoked key may still be served.
    cacheTtlMs: optional(obj, "cacheTtlMs", field, number(0, 60_000), d.cacheTtlMs),
    flushIntervalMs: optional(obj, "flushIntervalMs", field, number(100, 60_000), d.flushIntervalMs),
    failOpen: optional(obj, "failOpen", field, boolean, d.failOpen),
    limitTimeoutMs: optional(obj, "limitTimeoutMs", field, number(10, 10_000), d.limitTimeoutMs),
    prices: Object.fromEntries(
      Object.entries(prices).map(([model, p]) => [model, price(p, `${field}.prices.${model}`)]),
    ),
    metricsPerKey: optional(obj, "metricsPerKey", field, boolean, d.metricsPerKey),
    defaultOutputReservation: optional(
      obj,
      "defaultOutputReservation",
      field,
      number(0, 10_000_000),
      d.defaultOutputReservation,
    ),
    // At least a minute: a slot that lapses while its request still runs lets one more in.
    concurrencyLeaseMs: optional(
      obj,
      "concurrencyLeaseMs",
      field,
      number(60_000, 86_400_000),
      d.concurrencyLeaseMs,
    ),
  };
}
