import { appendFileSync } from "node:fs";
import { createDynamoClient, ensureTable } from "../lib/aws/dynamodb.ts";
import { jsonLogger, silentLogger, systemDeps } from "../lib/deps.ts";
import { createDynamoHealthStore } from "../lib/health/dynamo-store.ts";
import type { HealthStore } from "../lib/health/types.ts";
import { envKeys } from "../lib/providers/keys.ts";
import { createRuntime } from "../lib/runtime.ts";
import { startLocalDynamo } from "../lib/server/local-dynamo.ts";
import { createNodeServer } from "../lib/server/node-server.ts";
import { parseConfig, validateConfig } from "../lib/setup/validate.ts";
import { serveAsBenchChild } from "./child.ts";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/**
 * The gateway as `npm start` runs it (node:http adapter, DynamoDB health store on an embedded
 * dynalite), in its own process, pointed at the benchmark upstream: `bench-model` on its
 * OpenAI-compatible side (chat, and Messages and Responses translated), `bench-claude` on its
 * Messages side through an `anthropic` provider, `bench-embed` for embeddings. Logs are silenced, as a
 * production deployment's log shipping is not what is measured. Answers "stats" messages with its
 * memory, CPU time, the requests it served and the table reads it made.
 *
 * BENCH_GATEWAY_CONFIG (a configuration document, JSON) replaces the one-upstream configuration
 * below, with `{ "env": "BENCH_KEY" }` as the providers' key; BENCH_HEALTH_CHECKER=1 runs the health
 * checker on its interval, as `npm start` does (`npm run bench:chaos` uses both).
 */
const upstreamUrl = process.env.BENCH_UPSTREAM_URL ?? "";
const customConfig = process.env.BENCH_GATEWAY_CONFIG;
const config = customConfig
  ? parseConfig(customConfig, "BENCH_GATEWAY_CONFIG")
  : validateConfig({
      defaults: {
        requestTimeoutMs: 120_000,
        // The memory run holds 1,000 streams to this one upstream: past the default pool of 512
        // the gateway would answer 503 gateway_overloaded, as it should.
        upstreamMaxSockets: 2_048,
        timeouts: { firstTokenMs: 30_000, idleMs: 30_000, headersMs: 30_000 },
      },
      health: { cacheTtlMs: 5_000 },
      // One fake upstream behind two provider types: `upstream` (OpenAI-compatible) serves chat
      // callers as they came, Messages and Responses callers translated, and embeddings;
      // `claude` (anthropic, the same fake's /v1/messages) serves Messages callers as they came.
      providers: [
        { id: "upstream", type: "openai", baseUrl: upstreamUrl, apiKey: { env: "BENCH_KEY" } },
        { id: "claude", type: "anthropic", baseUrl: upstreamUrl, apiKey: { env: "BENCH_KEY" } },
      ],
      models: {
        "bench-model": { targets: [{ provider: "upstream", model: "bench-model" }] },
        "bench-claude": { targets: [{ provider: "claude", model: "bench-claude" }] },
        "bench-embed": { targets: [{ provider: "upstream", model: "bench-embed" }] },
      },
    });
const dynamo = await startLocalDynamo(0);
const client = createDynamoClient({ endpoint: dynamo.endpoint });
await ensureTable(client, "bench-health");
const store = createDynamoHealthStore({
  client,
  tableName: "bench-health",
  health: config.health,
});
let tableReads = 0;
const counted: HealthStore = {
  ...store,
  read: (ids, targets) => {
    tableReads++;
    return store.read(ids, targets);
  },
};
// BENCH_LOG_FILE keeps the gateway's JSON log lines (off by default: logging is not what is measured).
const logFile = process.env.BENCH_LOG_FILE;
const logger = logFile ? jsonLogger((line) => appendFileSync(logFile, line)) : silentLogger;
const runtime = createRuntime(config, {
  deps: systemDeps(logger),
  keys: envKeys({ BENCH_KEY: "sk-bench-123456" }),
  healthStore: counted,
});
if (process.env.BENCH_HEALTH_CHECKER === "1") runtime.healthChecker.start();
let requests = 0;
const handle = runtime.gateway.handle;
runtime.gateway.handle = (request) => {
  requests++;
  return handle(request);
};
const server = createNodeServer(runtime.gateway, { maxBodyBytes: config.maxBodyBytes, logger: silentLogger });
server.maxConnections = 100_000;
await serveAsBenchChild(server, () => ({ tableReads, requests }));
