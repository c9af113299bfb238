import { ConfigError } from "../config/validate.ts";
import { jsonLogger, systemDeps } from "../deps.ts";
import { createRuntime, loadConfigFromEnv } from "../runtime.ts";
import { createNodeServer, listen } from "./node-server.ts";

/** `npm start`: the local gateway on 127.0.0.1:$PORT (8787), configured by $GATEWAY_CONFIG. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfigFromEnv>;
  try {
    config = loadConfigFromEnv();
  } catch (error) {
    const prefix = error instanceof ConfigError ? "invalid configuration: " : "";
    process.stderr.write(`gateway: ${prefix}${(error as Error).message}\n`);
    process.exit(1);
  }
  const logger = jsonLogger();
  const runtime = createRuntime(config, { deps: systemDeps(logger) });
  const server = createNodeServer(runtime.gateway, { maxBodyBytes: config.maxBodyBytes, logger });
  const port = Number(process.env.PORT ?? 8787);
  const host = process.env.HOST ?? "127.0.0.1";
  const url = await listen(server, port, host);
  const model = config.models[0]?.name ?? "MODEL";
  process.stdout.write(
    `LLM gateway listening on ${url} (OpenAI base URL: ${url}/v1)\n` +
      `models: ${config.models.map((m) => m.name).join(", ")}\n` +
      `try: curl -s ${url}/v1/chat/completions -H 'content-type: application/json' ` +
      `-d '{"model":"${model}","messages":[{"role":"user","content":"Hello"}]}'\n`,
  );
  const stop = () => {
    server.close();
    server.closeAllConnections();
    runtime.http.close();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

await main();
