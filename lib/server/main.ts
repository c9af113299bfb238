import { createDynamoClient, ensureTable, LOCAL_TABLE_NAME, tableNameFromEnv } from "../aws/dynamodb.ts";
import { type Callers, createCallers } from "../callers/callers.ts";
import { ConfigError } from "../config/fields.ts";
import type { GatewayConfig } from "../config/types.ts";
import type { Deps } from "../deps.ts";
import { jsonLogger, logLevelFromEnv, sleep, systemDeps } from "../deps.ts";
import { hashClientKey } from "../gateway/auth.ts";
import { createDynamoHealthStore } from "../health/dynamo-store.ts";
import { createDynamoResponseStore } from "../responses/dynamo-store.ts";
import { createRuntime, loadConfigFromEnv } from "../runtime.ts";
import { startLocalDynamo } from "./local-dynamo.ts";
import { createNodeServer, listen } from "./node-server.ts";

// The SDK warns that its 2027 releases will need Node 22; the lock file pins one that runs on 20,
// and Lambda runs 22/24, so locally the warning is noise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/**
 * `npm start`: the local gateway on 127.0.0.1:$PORT (8787), configured by $GATEWAY_CONFIG, with
 * an embedded DynamoDB (dynalite, in memory) holding the health table and the health checker
 * running on its interval, so the same code writes and reads health as on AWS.
 * Set DYNAMODB_ENDPOINT to use another DynamoDB instead.
 *
 * The gateway listens whether or not the table answers: while it does not, the request path serves
 * the configured defaults (lib/health/view.ts) and the table is created or checked again in the
 * background (issue 9: against an endpoint that accepted connections and never answered, `npm start`
 * never listened).
 */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfigFromEnv>;
  try {
    config = loadConfigFromEnv();
  } catch (error) {
    const prefix = error instanceof ConfigError ? "invalid configuration: " : "";
    process.stderr.write(`gateway: ${prefix}${(error as Error).message}\n`);
    process.exit(1);
  }
  const logger = jsonLogger(undefined, logLevelFromEnv());
  const local = process.env.DYNAMODB_ENDPOINT
    ? undefined
    : await startLocalDynamo(Number(process.env.DYNAMODB_PORT ?? 8788));
  const endpoint = process.env.DYNAMODB_ENDPOINT ?? (local?.endpoint as string);
  const tableName = tableNameFromEnv(process.env) ?? LOCAL_TABLE_NAME;
  const client = createDynamoClient({ endpoint });
  const healthStore = createDynamoHealthStore({
    client,
    tableName,
    health: config.health,
  });

  // Optional locally: GATEWAY_CLIENT_KEYS=key1,key2 makes the local gateway demand one of them.
  const localKeys = (process.env.GATEWAY_CLIENT_KEYS ?? "")
    .split(",")
    .map((k) => k.trim())
    .filter(Boolean);
  const deps = systemDeps(logger);
  const callers = localCallers(config, client, tableName, deps, localKeys.map(hashClientKey));
  const auth = callers?.auth;
  const responses = createDynamoResponseStore({ client, tableName, now: deps.now });
  const runtime = createRuntime(config, { deps, healthStore, responses, ...(auth ? { auth } : {}) });
  const server = createNodeServer(runtime.gateway, { maxBodyBytes: config.maxBodyBytes, logger });
  const port = Number(process.env.PORT ?? 8787);
  const host = process.env.HOST ?? "127.0.0.1";
  const url = await listen(server, port, host);
  const model = config.models[0]?.name ?? "MODEL";
  process.stdout.write(
    `LLM gateway listening on ${url} (OpenAI base URL: ${url}/v1)\n` +
      `models: ${config.models.map((m) => m.name).join(", ")}\n` +
      `health table: ${tableName} at ${endpoint} (inspect: npm run health)\n` +
      `try: curl -s ${url}/v1/chat/completions -H 'content-type: application/json' ` +
      `-d '{"model":"${model}","messages":[{"role":"user","content":"Hello"}]}'\n`,
  );
  const stopping = new AbortController();
  void keepEnsuringTable(() => ensureTable(client, tableName), stopping.signal, {
    // The checker starts once the first attempt is over, so a normal start's first results land.
    settled: () => runtime.healthChecker.start(),
    failing: (error) =>
      process.stderr.write(
        `gateway: health table ${tableName} at ${endpoint} is unreachable (${error.name}: ${error.message}); ` +
          "serving with the configured health defaults, retrying in the background\n",
      ),
    recovered: () => process.stdout.write(`health table ${tableName} at ${endpoint} is ready\n`),
  });
  const stop = () => {
    stopping.abort();
    runtime.healthChecker.stop();
    server.close();
    server.closeAllConnections();
    runtime.http.close();
    callers?.ledger.stop();
    void flushAtShutdown(callers, deps).finally(() => {
      client.destroy();
      void local?.close();
    });
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

/** How long a shutdown may spend writing the usage still in memory (retries included). */
const SHUTDOWN_FLUSH_MS = 5_000;

/**
 * The usage counted since the last flush goes to the table before it closes, retried for up to
 * {@link SHUTDOWN_FLUSH_MS}: a SIGTERM just after a failed write used to lose it (issue 16). What
 * the table still refuses is logged, since the process is about to drop it.
 */
async function flushAtShutdown(callers: Callers | undefined, deps: Deps): Promise<void> {
  if (!callers) return;
  await callers.ledger.flush({ deadline: deps.now() + SHUTDOWN_FLUSH_MS });
  const left = callers.ledger.pendingItems;
  if (left > 0) deps.logger.error({ msg: "usage not written at shutdown: lost", items: left });
}

/**
 * Caller keys (issue 12) when the local gateway demands them: GATEWAY_AUTH=keys, or keys listed in
 * GATEWAY_CLIENT_KEYS (those act as the legacy secret's: unnamed, unlimited). Keys made with
 * `npm run client-key -- create` live in this table; usage is flushed on the ledger's timer.
 */
function localCallers(
  config: GatewayConfig,
  client: ReturnType<typeof createDynamoClient>,
  tableName: string,
  deps: Deps,
  legacy: string[],
): Callers | undefined {
  if (process.env.GATEWAY_AUTH !== "keys" && legacy.length === 0) return undefined;
  return createCallers({
    client,
    tableName,
    policy: config.callers,
    now: deps.now,
    logger: deps.logger,
    timers: deps,
    legacyHashes: async () => legacy,
  });
}

/** Backoff between attempts at the table: 1 s, doubling, at most 30 s. */
const TABLE_RETRY_MS = { first: 1_000, max: 30_000 };

/**
 * Creates (or finds) the table until it works or `signal` aborts. Each attempt is bounded by the
 * DynamoDB client's timeouts (lib/aws/dynamodb.ts). Says so once when the table is
 * unreachable, and once when it is ready after that.
 */
async function keepEnsuringTable(
  ensure: () => Promise<void>,
  signal: AbortSignal,
  on: { settled: () => void; failing: (error: Error) => void; recovered: () => void },
): Promise<void> {
  let wait = TABLE_RETRY_MS.first;
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await ensure();
      if (signal.aborted) return;
      if (attempt > 0) on.recovered();
      if (attempt === 0) on.settled();
      return;
    } catch (error) {
      if (attempt === 0) {
        on.failing(error as Error);
        on.settled();
      }
    }
    try {
      await sleep(wait, signal);
    } catch {
      return; // stopping
    }
    wait = Math.min(wait * 2, TABLE_RETRY_MS.max);
  }
}

try {
  await main();
} catch (error) {
  // A busy port, or the embedded DynamoDB that cannot start: say what, without a stack trace. (A
  // table that does not answer is no reason to stop: see keepEnsuringTable.)
  const e = error as Error & { code?: string; port?: number };
  const what =
    e.code === "EADDRINUSE" ? `port ${e.port} is already in use (set PORT or DYNAMODB_PORT)` : e.message;
  process.stderr.write(`gateway: cannot start: ${what}\n`);
  process.exit(1);
}
