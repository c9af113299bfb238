import { createSecretRedactor } from "../secrets/redact.ts";
import type { HealthTableTarget, ReadHealth } from "./health-table.ts";
import { type SmokeHttp, SmokeNetworkError, type SmokeRequest, type SmokeResponse } from "./http.ts";
import { analyzeStream, type StreamAnalysis } from "./stream.ts";

export interface SmokeOptions {
  /** The gateway's base URL (the Function URL), with or without a trailing `/v1`. */
  url: string;
  /** A caller key; never in the report, even when an answer echoes it. */
  key: string | undefined;
  /** The model to ask; by default the first one the gateway lists. */
  model: string | undefined;
  /** Also check that the health function wrote to this table lately. */
  healthTable: HealthTableTarget | undefined;
  /** How old the newest health check may be. */
  maxCheckAgeMs: number;
  /** The whole run stays under this. */
  budgetMs: number;
}

export interface SmokeDeps {
  http: SmokeHttp;
  /** Monotonic milliseconds, for timings. */
  now: () => number;
  /** Epoch milliseconds, to date health checks. */
  clock: () => number;
  readHealth: ReadHealth;
}

export type CheckStatus = "pass" | "fail" | "skip";

export interface CheckResult {
  id: CheckId;
  status: CheckStatus;
  detail: string;
  /** What to do about a failure. */
  hint?: string;
}

export type CheckId =
  | "models"
  | "completion"
  | "stream"
  | "streaming"
  | "provider-header"
  | "no-key-401"
  | "unknown-model-404"
  | "health-table";

/** What each line proves, in the order they run: the table's first column and the README's list. */
export const CHECK_TITLES: Record<CheckId, string> = {
  models: "models listed",
  completion: "completion",
  stream: "streamed completion",
  streaming: "stream timing",
  "provider-header": "provider header",
  "no-key-401": "401 without a key",
  "unknown-model-404": "404 unknown model",
  "health-table": "health table",
};

export interface SmokeReport {
  ok: boolean;
  url: string;
  model: string | undefined;
  durationMs: number;
  checks: CheckResult[];
  /** The streamed answer's timing (all ms after the request was sent) and verdict. */
  stream: (Omit<StreamAnalysis, "text"> & { headersMs: number }) | undefined;
  /** Providers named by `x-gateway-provider` on the answers. */
  providers: string[];
}

/** Asks for an answer long enough to judge streaming (a dozen or more chunks), short enough to be cheap. */
export const PROMPT = "Count from 1 to 20, separated by spaces. Reply with the numbers only.";
const REQUEST_TIMEOUT_MS = 25_000;
const UNKNOWN_MODEL = "smoke-test-no-such-model";

/** Normalises what a user pastes: the Function URL output ends with `/`, clients append `/v1`. */
export function baseUrl(url: string): URL {
  const parsed = new URL(url);
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new TypeError("must be http(s)");
  parsed.pathname = parsed.pathname.replace(/\/+$/, "").replace(/\/v1$/, "");
  parsed.search = "";
  return parsed;
}

interface OpenAIError {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

function json(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The body's error when it has exactly the OpenAI shape `{ error: { message, type, param, code } }`. */
export function openAIError(text: string): OpenAIError | undefined {
  const error = (json(text) as { error?: Record<string, unknown> } | undefined)?.error;
  if (typeof error !== "object" || error === null) return undefined;
  const { message, type, param, code } = error;
  const nullableString = (v: unknown) => v === null || typeof v === "string";
  if (typeof message !== "string" || typeof type !== "string") return undefined;
  if (!("param" in error) || !("code" in error) || !nullableString(param) || !nullableString(code)) {
    return undefined;
  }
  return { message, type, param: param as string | null, code: code as string | null };
}

/** One line for a response that is not what was hoped for: status, code, message. */
function describe(res: SmokeResponse): string {
  const error = openAIError(res.text);
  const what = error ? `${error.code ?? error.type}: ${error.message}` : res.text.slice(0, 160).trim();
  return `HTTP ${res.status}${what ? ` ${what}` : ""}`.slice(0, 300);
}

/** What to do about a failed request, from what the gateway (or AWS in front of it) said. */
export function hintFor(res: SmokeResponse): string | undefined {
  const error = openAIError(res.text);
  const message = error?.message ?? res.text;
  if (res.status === 401 && error?.code === "invalid_api_key") {
    return "the gateway refused the caller key: set GATEWAY_KEY to a key made by `npm run client-key -- create`";
  }
  if (res.status === 403 && !error) {
    return "AWS refused the call before the gateway: a Function URL with auth AWS_IAM needs SigV4 (deploy with -c auth=NONE to use keys)";
  }
  if (/no API key configured/.test(message)) {
    return "a provider's secret holds no key: run the PutProviderKeyCommand from the stack outputs";
  }
  if (/rejected the gateway's credentials/.test(message)) {
    return "a provider refused its key: put a valid key in the provider secret (PutProviderKeyCommand)";
  }
  if (/HTTP 404|does not exist|not have access|model_not_found/.test(message) && res.status >= 500) {
    return "a provider does not serve that model to this key: check the route's model names and your account's access to them";
  }
  if (error?.code === "model_not_found") return "ask for a model the gateway lists (--model)";
  if (error?.code === "no_available_provider") {
    return "every provider of this model is disabled or has no key in the configuration";
  }
  if (res.status === 404 && error?.code === "unknown_url")
    return "give the base URL (the FunctionUrl output), not an API path";
  if (res.status >= 500) return "see the chat function's logs for the attempts (one JSON line per request)";
  return undefined;
}

const networkHint =
  "check the URL (the stack's FunctionUrl output, in the region you deployed to) and that it answers from here";

/** Runs every check in order; never throws for what the gateway does, only reports it. */
export async function runSmoke(options: SmokeOptions, deps: SmokeDeps): Promise<SmokeReport> {
  const started = deps.now();
  const base = baseUrl(options.url);
  const checks: CheckResult[] = [];
  const providers = new Set<string>();
  const add = (id: CheckId, status: CheckStatus, detail: string, hint?: string) => {
    checks.push(hint === undefined ? { id, status, detail } : { id, status, detail, hint });
  };
  const auth = options.key ? { authorization: `Bearer ${options.key}` } : {};
  // An answer may echo the request's Authorization header (a misconfigured proxy, a debug endpoint
  // at the URL: the probe of issue 16 had the key printed so). Every answer is redacted as it
  // arrives, before any of it is cut short for a line, so no part of the key reaches the report.
  const redactor = createSecretRedactor();
  redactor.register(options.key);
  const redact = (text: string) => redactor.redact(text);
  let unreachable: string | undefined;

  /** A request under the run's budget; a network failure is returned, not thrown. */
  async function call(
    method: SmokeRequest["method"],
    path: string,
    headers: Record<string, string>,
    body?: object,
  ): Promise<SmokeResponse | SmokeNetworkError> {
    const left = options.budgetMs - (deps.now() - started);
    if (left <= 0) return new SmokeNetworkError(`out of time (the run is capped at ${options.budgetMs} ms)`);
    const url = new URL(`${base.origin}${base.pathname.replace(/\/+$/, "")}${path}`);
    try {
      const res = await deps.http.send({
        method,
        url,
        headers,
        timeoutMs: Math.min(REQUEST_TIMEOUT_MS, left),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const redacted = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, redact(v)]));
      return { ...res, headers: redacted, text: redact(res.text) };
    } catch (error) {
      if (error instanceof SmokeNetworkError) return error;
      throw error;
    }
  }
  const noteProvider = (res: SmokeResponse) => {
    const provider = res.headers["x-gateway-provider"];
    if (provider) providers.add(provider);
  };

  // 1. The model list: the URL reaches the gateway and the caller key is accepted.
  let model = options.model;
  const models = await call("GET", "/v1/models", auth);
  if (models instanceof SmokeNetworkError) {
    unreachable = models.message;
    add("models", "fail", `cannot reach ${base.origin}: ${models.message}`, networkHint);
  } else if (models.status !== 200) {
    add("models", "fail", describe(models), hintFor(models));
  } else {
    const data = (json(models.text) as { data?: Array<{ id?: unknown }> } | undefined)?.data;
    const ids = Array.isArray(data) ? data.flatMap((m) => (typeof m.id === "string" ? [m.id] : [])) : [];
    if (ids.length === 0) {
      add("models", "fail", "HTTP 200 but no model list: is this URL the gateway?", networkHint);
    } else if (model !== undefined && !ids.includes(model)) {
      add(
        "models",
        "fail",
        `${model} is not among the ${ids.length} listed: ${ids.join(", ")}`,
        "ask for a model in the configuration deployed (--model)",
      );
    } else {
      model ??= ids[0];
      add(
        "models",
        "pass",
        `${ids.length} listed: ${ids.slice(0, 6).join(", ")}${ids.length > 6 ? ", ..." : ""}`,
      );
    }
  }
  const modelsFailed = checks.at(-1)?.status === "fail";
  const skipReason = unreachable
    ? "not run: the URL did not answer"
    : modelsFailed
      ? "not run: the model list failed (first line)"
      : "not run: no model to ask (pass --model)";
  const messages = [{ role: "user", content: PROMPT }];

  // 2. A whole answer: a provider key works and the model answers.
  let answered: SmokeResponse | undefined;
  if (unreachable || model === undefined) add("completion", "skip", skipReason);
  else {
    const res = await call("POST", "/v1/chat/completions", auth, { model, messages });
    if (res instanceof SmokeNetworkError) add("completion", "fail", res.message, networkHint);
    else {
      const content = (json(res.text) as { choices?: Array<{ message?: { content?: unknown } }> } | undefined)
        ?.choices?.[0]?.message?.content;
      if (res.status === 200 && typeof content === "string" && content.trim() !== "") {
        answered = res;
        noteProvider(res);
        add("completion", "pass", `HTTP 200 in ${Math.round(res.totalMs)} ms: ${quote(content)}`);
      } else if (res.status === 200) {
        add("completion", "fail", "HTTP 200 but no message content", hintFor(res));
      } else add("completion", "fail", describe(res), hintFor(res));
    }
  }

  // 3 and 4. A streamed answer, and whether it arrived as it was made.
  let streamed: SmokeResponse | undefined;
  let analysis: StreamAnalysis | undefined;
  let streamHeadersMs = 0;
  if (unreachable || model === undefined) {
    add("stream", "skip", skipReason);
    add("streaming", "skip", skipReason);
  } else {
    const res = await call("POST", "/v1/chat/completions", auth, { model, messages, stream: true });
    if (res instanceof SmokeNetworkError) {
      add("stream", "fail", res.message, networkHint);
      add("streaming", "skip", "no stream to time");
    } else if (res.status !== 200) {
      add("stream", "fail", describe(res), hintFor(res));
      add("streaming", "skip", "no stream to time");
    } else {
      analysis = await analyzeStream(res.arrivals, { redact });
      streamHeadersMs = res.headersMs;
      noteProvider(res);
      const a = analysis;
      const timing = `headers ${ms(res.headersMs)}, first byte ${ms(a.firstByteMs)}, first token ${ms(a.firstContentMs)}`;
      if (!(res.headers["content-type"] ?? "").startsWith("text/event-stream")) {
        add(
          "stream",
          "fail",
          `HTTP 200 as ${res.headers["content-type"] ?? "no content type"}, not an event stream`,
        );
      } else if (a.error) {
        add(
          "stream",
          "fail",
          `cut after ${a.contentChunks} chunks by an error event: ${a.error.code ?? ""} ${a.error.message}`.slice(
            0,
            300,
          ),
          "see the chat function's logs for the attempt that broke",
        );
      } else if (!a.done) {
        add("stream", "fail", `${a.contentChunks} chunks but no [DONE]: the answer was cut`);
      } else if (a.contentChunks === 0) {
        add("stream", "fail", "ended with [DONE] but carried no content");
      } else {
        streamed = res;
        add("stream", "pass", `${timing}, ${a.contentChunks} chunks, ended with [DONE]: ${quote(a.text)}`);
      }
      const gaps =
        a.gapsMs.length > 0 ? `gaps median ${ms(median(a.gapsMs))}, max ${ms(Math.max(...a.gapsMs))}` : "";
      const spread = `${a.contentChunks} chunks in ${a.bursts} arrival${a.bursts === 1 ? "" : "s"}`;
      switch (a.verdict) {
        case "incremental":
          add("streaming", "pass", `incremental: ${spread} (${gaps})`);
          break;
        case "too-short":
          add(
            "streaming",
            "skip",
            `only ${a.contentChunks} content chunk(s): too short to tell incremental from bursts`,
          );
          break;
        case "one-burst":
          add(
            "streaming",
            "fail",
            `in one burst: all ${a.contentChunks} chunks arrived together at ${ms(a.firstContentMs)}`,
            "the answer was held back and sent whole: see README, After your first deploy",
          );
          break;
        case "bursts":
          add(
            "streaming",
            "fail",
            `in bursts: ${spread}, up to ${a.largestBurst} at once (${gaps})`,
            "writes are being coalesced on the way: see README, After your first deploy",
          );
          break;
      }
    }
  }

  // 5. Which provider answered: the response headers name it.
  const ok200 = [answered, streamed].filter((r): r is SmokeResponse => r !== undefined);
  if (ok200.length === 0) add("provider-header", "skip", "no answer to read headers from");
  else {
    const missing = ok200.filter((r) => !r.headers["x-gateway-provider"]);
    if (missing.length > 0) {
      add(
        "provider-header",
        "fail",
        "an answer has no x-gateway-provider header",
        "is this URL the gateway, or a proxy that drops headers?",
      );
    } else {
      const named = ok200.map(
        (r) => `${r.headers["x-gateway-provider"]} (${r.headers["x-gateway-model"] ?? "?"})`,
      );
      add("provider-header", "pass", `x-gateway-provider: ${[...new Set(named)].join(", ")}`);
    }
  }

  // 6. A caller without a key is refused, in the OpenAI error shape.
  let keyRequired = false;
  if (unreachable) add("no-key-401", "skip", skipReason);
  else {
    const res = await call("GET", "/v1/models", {});
    if (res instanceof SmokeNetworkError) add("no-key-401", "fail", res.message, networkHint);
    else if (res.status === 401 && openAIError(res.text)?.code === "invalid_api_key") {
      keyRequired = true;
      add("no-key-401", "pass", "HTTP 401 invalid_api_key in the OpenAI error shape");
    } else if (res.status === 401) {
      add("no-key-401", "fail", `HTTP 401 but not in the OpenAI error shape: ${res.text.slice(0, 120)}`);
    } else if (res.status === 200 && !options.key) {
      add("no-key-401", "skip", "this gateway serves callers without a key (no caller keys configured)");
    } else if (res.status === 200) {
      add(
        "no-key-401",
        "fail",
        "a caller without a key was served",
        "the gateway checks no caller keys: locally set GATEWAY_CLIENT_KEYS; on AWS the chat function needs CLIENT_KEYS_SECRET (the stack sets it)",
      );
    } else add("no-key-401", "fail", describe(res), hintFor(res));
  }

  // 7. An unknown model is a 404 in the OpenAI error shape, not a 5xx or a hang.
  if (unreachable) add("unknown-model-404", "skip", skipReason);
  else if (keyRequired && !options.key)
    add("unknown-model-404", "skip", "not run: the gateway wants a key (set GATEWAY_KEY)");
  else {
    const res = await call("POST", "/v1/chat/completions", auth, { model: UNKNOWN_MODEL, messages });
    if (res instanceof SmokeNetworkError) add("unknown-model-404", "fail", res.message, networkHint);
    else if (res.status === 404 && openAIError(res.text)?.code === "model_not_found") {
      add("unknown-model-404", "pass", "HTTP 404 model_not_found in the OpenAI error shape");
    } else
      add(
        "unknown-model-404",
        "fail",
        `expected HTTP 404 model_not_found, got ${describe(res)}`,
        hintFor(res),
      );
  }

  // 8. The scheduled health function has written lately: EventBridge invokes it and IAM lets it write.
  if (options.healthTable === undefined) add("health-table", "skip", "not asked (--table and --region)");
  else if (providers.size === 0) {
    add(
      "health-table",
      "fail",
      "no answer named a provider (x-gateway-provider), so there is no provider to look up",
      `see every provider with: npm run health -- --table ${options.healthTable.table}${options.healthTable.region ? ` --region ${options.healthTable.region}` : ""}`,
    );
  } else {
    const target = options.healthTable;
    const where = `${target.table}${target.region ? ` in ${target.region}` : ""}`;
    try {
      const now = deps.clock();
      const found = await deps.readHealth(target, [...providers], now);
      const lines = found.map((p) => {
        const at = Math.max(p.state?.lastCheckAt ?? 0, p.latest?.at ?? 0);
        return { p, at, fresh: at > 0 && now - at <= options.maxCheckAgeMs };
      });
      const stale = lines.filter((l) => !l.fresh);
      const detail = lines
        .map(({ p, at }) =>
          at === 0
            ? `${p.providerId}: never checked`
            : `${p.providerId}: ${p.state?.status ?? "?"}, checked ${Math.round((now - at) / 1000)} s ago${p.latest && !p.latest.ok ? ` (failed: ${p.latest.error ?? p.latest.status})` : ""}`,
        )
        .join("; ");
      if (stale.length === 0) add("health-table", "pass", `${where}: ${detail}`);
      else {
        add(
          "health-table",
          "fail",
          `${where}: no check in the last ${Math.round(options.maxCheckAgeMs / 60_000)} min: ${detail}`,
          "the health function is not writing: check its EventBridge rule (HealthSchedule) and its logs; right after a deploy, wait a minute",
        );
      }
    } catch (error) {
      const e = error as Error;
      const hint =
        e.name === "ResourceNotFoundException"
          ? "no such table here: use the HealthTableName output and the region you deployed to"
          : /credential|AccessDenied|security token|UnrecognizedClient/i.test(`${e.name} ${e.message}`)
            ? "your AWS credentials cannot read the table (aws configure, or the profile you deployed with)"
            : "check --table, --region and your AWS credentials";
      add("health-table", "fail", `${where}: ${e.name}: ${e.message}`.slice(0, 300), hint);
    }
  }

  const stream =
    analysis === undefined
      ? undefined
      : (({ text: _text, ...rest }) => ({ headersMs: streamHeadersMs, ...rest }))(analysis);
  return {
    ok: checks.every((c) => c.status !== "fail"),
    url: base.href.replace(/\/$/, ""),
    model,
    durationMs: Math.round(deps.now() - started),
    checks,
    stream,
    providers: [...providers],
  };
}

function ms(value: number | undefined): string {
  return value === undefined ? "-" : `${Math.round(value)} ms`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

function quote(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return JSON.stringify(flat.length > 48 ? `${flat.slice(0, 45)}...` : flat);
}
