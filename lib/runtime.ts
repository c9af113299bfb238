import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { GatewayConfig } from "./config/types.ts";
import { parseConfig } from "./config/validate.ts";
import { type Deps, systemDeps } from "./deps.ts";
import { type CooldownStore, createMemoryCooldownStore } from "./gateway/cooldown.ts";
import { createGateway, type Gateway } from "./gateway/gateway.ts";
import { createHttpClient, type HttpClient } from "./http/client.ts";
import { createProviderFactory, type ProviderFactory } from "./providers/factory.ts";
import { type ApiKeys, envKeys } from "./providers/keys.ts";

/** Everything one process needs to serve requests, built once and shared by every request. */
export interface GatewayRuntime {
  config: GatewayConfig;
  deps: Deps;
  http: HttpClient;
  keys: ApiKeys;
  factory: ProviderFactory;
  cooldowns: CooldownStore;
  gateway: Gateway;
}

export interface RuntimeOptions {
  deps?: Deps;
  http?: HttpClient;
  keys?: ApiKeys;
  cooldowns?: CooldownStore;
}

export function createRuntime(config: GatewayConfig, options: RuntimeOptions = {}): GatewayRuntime {
  const deps = options.deps ?? systemDeps();
  const http = options.http ?? createHttpClient();
  const keys = options.keys ?? envKeys();
  const factory = createProviderFactory(config, { http, keys, deps });
  const cooldowns = options.cooldowns ?? createMemoryCooldownStore(config.cooldown);
  const gateway = createGateway({ config, factory, cooldowns, deps });
  return { config, deps, http, keys, factory, cooldowns, gateway };
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

/**
 * The process's one runtime (factory, cooldowns, HTTP pool), created on first use, never at import:
 * on Lambda it then lives as long as the execution environment and is reused by every invocation.
 */
export function getSharedRuntime(
  create: () => GatewayRuntime = () => createRuntime(loadConfigFromEnv()),
): GatewayRuntime {
  shared ??= create();
  return shared;
}

/** The shared provider factory (one per process). */
export function getProviderFactory(): ProviderFactory {
  return getSharedRuntime().factory;
}

/** Drops the shared runtime and its connections (tests, shutdown). */
export function resetSharedRuntime(): void {
  shared?.http.close();
  shared = undefined;
}
