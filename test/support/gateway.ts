import type { Server } from "node:http";
import { type Deps, type Logger, setTimer, sleep } from "../../lib/deps.ts";
import type { ClientAuth } from "../../lib/gateway/auth.ts";
import type { HealthStore } from "../../lib/health/types.ts";
import type { HttpClient } from "../../lib/http/client.ts";
import { type ApiKeys, envKeys } from "../../lib/providers/keys.ts";
import type { ResponseStore } from "../../lib/responses/store.ts";
import { createRuntime, type GatewayRuntime } from "../../lib/runtime.ts";
import { createNodeServer, listen } from "../../lib/server/node-server.ts";
import { validateConfig } from "../../lib/setup/validate.ts";

export interface LogLine {
  level: string;
  [field: string]: unknown;
}

export interface TestGateway {
  url: string;
  runtime: GatewayRuntime;
  logs: LogLine[];
  close(): Promise<void>;
}

export function recordingLogger(logs: LogLine[]): Logger {
  return {
    info: (f) => logs.push({ level: "info", ...f }),
    warn: (f) => logs.push({ level: "warn", ...f }),
    error: (f) => logs.push({ level: "error", ...f }),
  };
}

/** The gateway on 127.0.0.1 (port 0), configured by `document`, with keys from `env`. */
export async function startGateway(
  document: unknown,
  options: {
    env?: NodeJS.ProcessEnv;
    random?: () => number;
    healthStore?: HealthStore;
    auth?: ClientAuth;
    keys?: ApiKeys;
    /** The upstream HTTP client (default: a real one). */
    http?: HttpClient;
    /** A fake clock (test/support/fake-clock.ts) instead of the real one. */
    clock?: Pick<Deps, "now" | "sleep" | "setTimer">;
    /** Where stored responses live (default: none). */
    responses?: ResponseStore;
    /** Ids (default `req-1`, `req-2`, ...): two gateways on one table need different ones. */
    newId?: () => string;
  } = {},
): Promise<TestGateway> {
  const logs: LogLine[] = [];
  const deps: Deps = {
    now: options.clock?.now ?? Date.now,
    sleep: options.clock?.sleep ?? sleep,
    setTimer: options.clock?.setTimer ?? setTimer,
    random: options.random ?? (() => 0.5),
    newId:
      options.newId ??
      (() => {
        let n = 0;
        return () => `req-${++n}`;
      })(),
    logger: recordingLogger(logs),
  };
  const config = validateConfig(document);
  const runtime = createRuntime(config, {
    deps,
    keys: options.keys ?? envKeys(options.env ?? { TEST_KEY: "sk-test-secret-key-123456" }),
    ...(options.healthStore ? { healthStore: options.healthStore } : {}),
    ...(options.http ? { http: options.http } : {}),
    ...(options.auth ? { auth: options.auth } : {}),
    ...(options.responses ? { responses: options.responses } : {}),
  });
  const server: Server = createNodeServer(runtime.gateway, {
    maxBodyBytes: config.maxBodyBytes,
    logger: deps.logger,
  });
  const url = await listen(server, 0, "127.0.0.1");
  return {
    url,
    runtime,
    logs,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      runtime.http.close();
    },
  };
}

/** A provider entry pointing at a fake upstream, keyed by TEST_KEY. */
export function fakeProvider(id: string, url: string, extra: Record<string, unknown> = {}) {
  return { id, type: "openai", baseUrl: url, apiKey: { env: "TEST_KEY" }, ...extra };
}

export function chatBody(model: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({ model, messages: [{ role: "user", content: "Say hello" }], ...extra });
}

export async function postChat(url: string, body: string, headers: Record<string, string> = {}) {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

/** A response body as loosely typed JSON, for assertions. */
// biome-ignore lint/suspicious/noExplicitAny: tests assert on arbitrary JSON shapes
export async function jsonOf(res: Response): Promise<any> {
  return res.json();
}
