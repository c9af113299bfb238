import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type HealthLookup, LoadBalancer } from "./balancer/load-balancer.ts";
import type { GatewayConfig } from "./config/types.ts";
import { createMemoryCooldownStore } from "./cooldown/memory-store.ts";
import { createSharedCooldownStore } from "./cooldown/shared-store.ts";
import { targetKey } from "./cooldown/target.ts";
import type { CooldownStore } from "./cooldown/types.ts";
import { type Deps, systemDeps } from "./deps.ts";
import type { ClientAuth } from "./gateway/auth.ts";
import { createGateway, type Gateway } from "./gateway/gateway.ts";
import { createHealthChecker, type HealthChecker } from "./health/checker.ts";
import { createMemoryHealthStore } from "./health/memory-store.ts";
import type { HealthStore } from "./health/types.ts";
import { createHealthView, type HealthView } from "./health/view.ts";
import { createHttpClient, type HttpClient } from "./http/client.ts";
import { createProviderFactory, type ProviderFactory } from "./providers/factory.ts";
import { type ApiKeys, envKeys, registeringKeys } from "./providers/keys.ts";
import type { Provider } from "./providers/types.ts";
import type { ResponseStore } from "./responses/store.ts";
import { parseConfig } from "./setup/validate.ts";

/** Everything one process needs to serve requests, built once and shared by every request. */
export interface GatewayRuntime {
  config: GatewayConfig;
  deps: Deps;
  http: HttpClient;
  keys: ApiKeys;
  factory: ProviderFactory;
  cooldowns: CooldownStore;
  healthStore: HealthStore;
  healthView: HealthView;
  healthChecker: HealthChecker;
  /** One balancer per model route, by route name. */
  balancers: ReadonlyMap<string, LoadBalancer>;
  gateway: Gateway;
}

export interface RuntimeOptions {
  deps?: Deps;
  http?: HttpClient;
  keys?: ApiKeys;
  /** Where health lives (DynamoDB for a fleet); by default, this process's memory. */
  healthStore?: HealthStore;
  /** Client authentication; none means open. */
  auth?: ClientAuth;
  /** Where stored responses live (the table on Lambda and `npm start`); none: `store` is answered false. */
  responses?: ResponseStore;
}

export function createRuntime(config: GatewayConfig, options: RuntimeOptions = {}): GatewayRuntime {
  const deps = options.deps ?? systemDeps();
  const http =
    options.http ??
    createHttpClient({
      maxSockets: config.upstreamMaxSockets,
      maxResponseBytes: config.maxResponseBytes,
    });
  const keys = registeringKeys(options.keys ?? envKeys());
  const factory = createProviderFactory(config, { http, keys, deps });
  const healthStore = options.healthStore ?? createMemoryHealthStore(config.health);
  const targets = [
    ...new Set(config.models.flatMap((m) => m.targets.map((t) => targetKey(t.provider, t.model)))),
  ];
  const healthView = createHealthView({
    store: healthStore,
    providerIds: config.providers.map((p) => p.id),
    targets,
    ttlMs: config.health.cacheTtlMs,
    firstReadTimeoutMs: 250,
    now: deps.now,
    setTimer: deps.setTimer,
    logger: deps.logger,
  });
  const cooldowns = createSharedCooldownStore(
    createMemoryCooldownStore(config.cooldown),
    healthView,
    healthStore,
    deps.logger,
    { minSharedMs: config.health.cacheTtlMs, now: deps.now },
  );
  const balancers = createBalancers(config, healthView, deps.random);
  const healthChecker = createHealthChecker({
    config,
    providers: () =>
      config.providers
        .filter((p) => factory.isProviderConfigured(p.id))
        .map((p) => factory.getProvider(p.id) as Provider),
    store: healthStore,
    deps,
  });
  const gateway = createGateway({
    config,
    factory,
    cooldowns,
    health: healthView,
    balancers,
    auth: options.auth,
    responses: options.responses,
    deps,
  });
  return {
    config,
    deps,
    http,
    keys,
    factory,
    cooldowns,
    healthStore,
    healthView,
    healthChecker,
    balancers,
    gateway,
  };
}

/** A balancer per route; a target's weight is the table's (operator) weight, else the route's, else the provider's. */
function createBalancers(
  config: GatewayConfig,
  view: HealthView,
  random: () => number,
): Map<string, LoadBalancer> {
  const lookup: HealthLookup = {
    status: (id) => view.provider(id)?.status ?? "unknown",
    weight: (id) => view.provider(id)?.weight,
    enabled: (id) => view.provider(id)?.enabled,
  };
  const providerWeight = new Map(config.providers.map((p) => [p.id, p.weight]));
  return new Map(
    config.models.map((route) => {
      const balancer = new LoadBalancer(route.strategy, random, lookup);
      for (const t of route.targets) {
        balancer.registerProvider(targetKey(t.provider, t.model), {
          providerId: t.provider,
          weight: t.weight ?? providerWeight.get(t.provider) ?? 1,
        });
      }
      return [route.name, balancer];
    }),
  );
}

/** The configuration shipped with the project: mock providers only, no keys needed. */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL("../config/default.json", import.meta.url));

/**
 * Reads the configuration named by the environment: `GATEWAY_CONFIG_JSON` (the document itself, as
 * the Lambda receives it) or `GATEWAY_CONFIG` (a file path), else the shipped default.
 */
export function loadConfigFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  fallbackPath = DEFAULT_CONFIG_PATH,
): GatewayConfig {
  if (env.GATEWAY_CONFIG_JSON) return parseConfig(env.GATEWAY_CONFIG_JSON, "GATEWAY_CONFIG_JSON");
  const path = env.GATEWAY_CONFIG || fallbackPath;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read configuration file ${path}: ${(error as Error).message}`);
  }
  return parseConfig(text, path);
}

let shared: GatewayRuntime | undefined;

/** The runtime `npm start` and the tests get: the configuration the environment names, in memory. */
const fromEnv = (): GatewayRuntime => createRuntime(loadConfigFromEnv());

/**
 * The process's one runtime (factory, cooldowns, HTTP pool), created on first use, never at import:
 * on Lambda it then lives as long as the execution environment and is reused by every invocation.
 * `create` builds it on that first use (the Lambda handlers pass `createLambdaRuntime`); later calls
 * get the one already built.
 */
export function getSharedRuntime(create: () => GatewayRuntime = fromEnv): GatewayRuntime {
  shared ??= create();
  return shared;
}

/**
 * The shared health checker (one per process), what the scheduled health function runs; `create` as
 * in {@link getSharedRuntime}. The chat path has no such accessor for its factory and balancers: the
 * runtime hands them to the gateway as parameters, so tests can build several gateways side by side.
 */
export function getHealthChecker(create: () => GatewayRuntime = fromEnv): HealthChecker {
  return getSharedRuntime(create).healthChecker;
}

/** Drops the shared runtime and its connections (tests, shutdown). */
export function resetSharedRuntime(): void {
  shared?.http.close();
  shared = undefined;
}
