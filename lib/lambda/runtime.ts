import { createDynamoClient, TABLE_ENV, tableNameFromEnv } from "../aws/dynamodb.ts";
import { createSecretCache, createSecretsClient, secretKeys, secretsManagerReader } from "../aws/secrets.ts";
import { type Callers, createCallers } from "../callers/callers.ts";
import type { GatewayConfig } from "../config/types.ts";
import { jsonLogger, logLevelFromEnv, systemDeps } from "../deps.ts";
import { parseClientKeySecret } from "../gateway/auth.ts";
import { createDynamoHealthStore } from "../health/dynamo-store.ts";
import { emfSink, emfTokenSink } from "../metrics/emf.ts";
import { createDynamoResponseStore } from "../responses/dynamo-store.ts";
import { createRuntime, type GatewayRuntime } from "../runtime.ts";
import { parseConfig } from "../setup/validate.ts";

/**
 * The configuration baked into the bundle at deploy time (esbuild `define`), so it needs no I/O and
 * no environment-variable space (Lambda allows 4 KB of those). GATEWAY_CONFIG_JSON overrides it.
 */
declare const __GATEWAY_CONFIG__: string | undefined;

function lambdaConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  if (env.GATEWAY_CONFIG_JSON) return parseConfig(env.GATEWAY_CONFIG_JSON, "GATEWAY_CONFIG_JSON");
  if (typeof __GATEWAY_CONFIG__ === "string") return parseConfig(__GATEWAY_CONFIG__, "bundled configuration");
  throw new Error("no gateway configuration: the bundle has none and GATEWAY_CONFIG_JSON is not set");
}

/**
 * Everything a function needs, built on first use and kept for the life of the execution
 * environment: the config, the DynamoDB and Secrets Manager clients, the HTTP pool. Endpoints and
 * credentials come from the SDK's usual environment (AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, ...).
 */
export function createLambdaRuntime(
  env: NodeJS.ProcessEnv = process.env,
  onShutdown: (flush: () => Promise<void>) => void = flushOnSigterm,
): GatewayRuntime {
  const config = lambdaConfig(env);
  const tableName = tableNameFromEnv(env);
  if (!tableName) throw new Error(`${TABLE_ENV} is not set`);
  const deps = systemDeps(jsonLogger(undefined, logLevelFromEnv(env)));
  deps.metrics = emfSink((line) => process.stdout.write(line), Date.now);
  const secrets = createSecretCache(secretsManagerReader(createSecretsClient()), {
    ttlMs: Number(env.SECRETS_TTL_MS ?? 300_000),
    now: deps.now,
  });
  const clientKeysSecret = env.CLIENT_KEYS_SECRET;
  const dynamo = createDynamoClient(env.AWS_REGION ? { region: env.AWS_REGION } : {});
  const callers =
    env.AUTH_MODE === "AWS_IAM" || !clientKeysSecret
      ? undefined
      : lambdaCallers(config, dynamo, tableName, deps, async () =>
          parseClientKeySecret(await secrets.get(clientKeysSecret)),
        );
  const auth = callers?.auth;
  if (callers) {
    onShutdown(async () => {
      await callers.ledger.flush({ deadline: deps.now() + SHUTDOWN_FLUSH_MS });
      const left = callers.ledger.pendingItems;
      if (left > 0) deps.logger.error({ msg: "usage not written at shutdown: lost", items: left });
    });
  }
  const healthStore = createDynamoHealthStore({
    client: dynamo,
    tableName,
    health: config.health,
  });
  const keys = secretKeys(secrets, env);
  const responses = createDynamoResponseStore({ client: dynamo, tableName, now: deps.now });
  const runtime = createRuntime(config, { deps, keys, healthStore, responses, ...(auth ? { auth } : {}) });

  // A new execution environment's first request needs the caller keys, the health table and the
  // provider keys, in that order. Start all three now, side by side: the request then joins these
  // fetches (the caches share in-flight work) instead of making three round trips one after another.
  const warm = [
    auth && clientKeysSecret ? secrets.get(clientKeysSecret) : undefined,
    runtime.healthView.refresh(),
    ...config.providers
      .filter((p) => p.enabled && p.apiKey && "secretId" in p.apiKey)
      .map((p) => keys.get(p)),
  ];
  void Promise.allSettled(warm).then((results) => {
    for (const r of results) {
      if (r.status === "rejected")
        deps.logger.warn({ msg: "warm-up fetch failed", error: (r.reason as Error)?.message });
    }
  });
  return runtime;
}

/**
 * What the runtime may spend writing usage at a SIGTERM. Lambda sends SIGTERM to the runtime only
 * when an extension is registered, and then waits 300 ms for it (500 ms with an internal extension)
 * before SIGKILL ("graceful shutdown", Lambda extensions API); without an extension the environment
 * is stopped with no signal, and the usage it still holds is lost.
 */
const SHUTDOWN_FLUSH_MS = 250;

/**
 * At a SIGTERM: write what the ledger holds, then let the signal do what it would have done had
 * no listener been there (end the process), so installing this never keeps a process alive.
 */
function flushOnSigterm(flush: () => Promise<void>): void {
  process.once("SIGTERM", () => {
    void flush().finally(() => process.kill(process.pid, "SIGTERM"));
  });
}

/**
 * Caller keys from the table beside the legacy secret's (issue 12). The ledger is flushed after
 * each response, before the invocation returns, retrying until the request's deadline (inside the
 * invocation's remaining time): a frozen execution environment runs no timer.
 */
function lambdaCallers(
  config: GatewayConfig,
  client: ReturnType<typeof createDynamoClient>,
  tableName: string,
  deps: ReturnType<typeof systemDeps>,
  legacyHashes: () => Promise<readonly string[]>,
): Callers {
  return createCallers({
    client,
    tableName,
    policy: config.callers,
    now: deps.now,
    logger: deps.logger,
    timers: deps,
    legacyHashes,
    flushAfterResponse: true,
    metrics: emfTokenSink((line) => process.stdout.write(line), Date.now, {
      perKey: config.callers.metricsPerKey,
    }),
  });
}
