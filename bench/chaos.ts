import http from "node:http";
import { parseArgs } from "node:util";
import { parseSse } from "../lib/http/sse.ts";
import {
  ANSWER,
  ANSWER_TOKENS,
  type ChaosUpstream,
  type ChaosUpstreamStats,
  FAULT_KINDS,
  type FaultKind,
  startChaosUpstream,
} from "./chaos-upstream.ts";
import { startBenchChild } from "./child.ts";

/**
 * `npm run bench:chaos`: a chaos soak (issue 9, point 10). Two seeded upstreams that fail a share of
 * requests (bench/chaos-upstream.ts) sit behind one route of the gateway, run as `npm start` runs it
 * (bench/gateway.ts: node:http adapter, DynamoDB health store, health checker); this process fires
 * streamed requests at it, N in flight, and sorts every answer:
 *
 * - whole: 200, content exactly the known answer, a finish_reason, then `[DONE]`;
 * - honest failure: a non-200 with an OpenAI error body, or an SSE error event and no `[DONE]`;
 * - broken: the caller cannot be misled but was not told either (a reset, a cut without an error
 *   event, an error body that is not OpenAI's);
 * - lie: `[DONE]` although the content differs from the answer, no finish_reason came, or garbage
 *   events were passed on;
 * - hang: no end within the request deadline plus a margin (the baseline's caller gives up on a
 *   stream silent for as long as the gateway would, see `--idle-ms`).
 *
 * The baseline, measured in the same run, is the same load sent straight to an upstream like the
 * primary (same fault rate, same draws for each request's first call): what a caller without the
 * gateway gets. It is a benchmark: it prints figures and always exits 0.
 *
 * The fault draws are seeded, so the baseline repeats exactly; the gateway's figures also depend on
 * timing (when a breaker trips, which requests are then in flight), so one seed gives different
 * figures from run to run: judge a change on several runs and seeds, e.g. with `--json`.
 */

const HELP = `usage: npm run bench:chaos -- [options]
  --requests N          streamed requests per run (default 2000, 300 with --quick)
  --concurrency C       requests in flight (default 64)
  --primary R           share of the primary's calls that fail (default 0.3)
  --backup R            share of the backup's calls that fail (default 0.1)
  --seed N              seed of the fault draws (default 1)
  --duration S          run for S seconds instead of N requests (the baseline runs as long)
  --faults a,b,...      fault kinds drawn from (default all: ${FAULT_KINDS.join(", ")})
  --token-ms MS         gap between streamed tokens (default 5)
  --request-timeout MS  the gateway's requestTimeoutMs (default 30000); hang = no end by this + 5 s
  --idle-ms MS          the gateway's firstTokenMs, idleMs and headersMs; the baseline's caller gives
                        up on a stream silent this long (default 2000)
  --gateway-defaults J  JSON merged over the gateway config's "defaults", e.g.
                        '{"cooldown":{"failureThreshold":1000}}'
  --no-baseline         skip the direct-to-upstream baseline
  --quick               a short run (300 requests)
  --json                print the result as JSON
`;

type Category = "whole" | "honest" | "broken" | "lie" | "hang";
const CATEGORIES: readonly Category[] = ["whole", "honest", "broken", "lie", "hang"];
const HANG_MARGIN_MS = 5_000;

interface Outcome {
  category: Category;
  /** Status/code for failures, the reasons for a lie, what was seen for a broken answer or a hang. */
  detail: string;
  /** From request sent to end (or to giving up). */
  ms: number;
  /** When it ended, from the start of the run. */
  endedAtMs: number;
  /** The gateway's `x-gateway-attempts`: upstream calls it made (0: refused without trying one). */
  attempts: number | undefined;
  /** The gateway's `x-gateway-provider` on a 200. */
  servedBy: string | undefined;
}

interface LoadOptions {
  url: string;
  model: string;
  concurrency: number;
  count: number;
  durationMs: number | undefined;
  deadlineMs: number;
  /** Give up on a response silent this long (the baseline's caller); undefined: only the deadline. */
  idleAbortMs: number | undefined;
  label: string;
  quiet: boolean;
}

interface LoadResult {
  outcomes: Outcome[];
  seconds: number;
}

function fail(message: string): never {
  process.stderr.write(`bench:chaos: ${message}\n${HELP}`);
  process.exit(2);
}

function numberOption(
  values: Record<string, unknown>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(value) || value < min || value > max)
    fail(`--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return value;
}

function parseCommandLine() {
  try {
    return parseArgs({
      strict: true,
      options: {
        requests: { type: "string" },
        concurrency: { type: "string" },
        primary: { type: "string" },
        backup: { type: "string" },
        seed: { type: "string" },
        duration: { type: "string" },
        faults: { type: "string" },
        "token-ms": { type: "string" },
        "request-timeout": { type: "string" },
        "idle-ms": { type: "string" },
        "gateway-defaults": { type: "string" },
        "no-baseline": { type: "boolean" },
        quick: { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    fail((error as Error).message);
  }
}

function readOptions() {
  const v = parseCommandLine().values;
  if (v.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const faults = (v.faults ?? FAULT_KINDS.join(",")).split(",").map((f) => f.trim());
  for (const f of faults)
    if (!FAULT_KINDS.includes(f as FaultKind))
      fail(`--faults: unknown fault ${JSON.stringify(f)} (known: ${FAULT_KINDS.join(", ")})`);
  let gatewayDefaults: Record<string, unknown> = {};
  if (v["gateway-defaults"] !== undefined) {
    try {
      gatewayDefaults = JSON.parse(v["gateway-defaults"]) as Record<string, unknown>;
    } catch (error) {
      fail(`--gateway-defaults is not JSON: ${(error as Error).message}`);
    }
    if (typeof gatewayDefaults !== "object" || gatewayDefaults === null || Array.isArray(gatewayDefaults))
      fail("--gateway-defaults must be a JSON object");
  }
  const duration = v.duration === undefined ? undefined : numberOption(v, "duration", 0, 1, 86_400);
  return {
    requests: numberOption(v, "requests", v.quick ? 300 : 2000, 1, 10_000_000),
    concurrency: numberOption(v, "concurrency", 64, 1, 10_000),
    primary: numberOption(v, "primary", 0.3, 0, 1),
    backup: numberOption(v, "backup", 0.1, 0, 1),
    seed: numberOption(v, "seed", 1, 0, 2 ** 32 - 1),
    durationMs: duration === undefined ? undefined : duration * 1000,
    faults: faults as FaultKind[],
    tokenMs: numberOption(v, "token-ms", 5, 0, 10_000),
    requestTimeoutMs: numberOption(v, "request-timeout", 30_000, 100, 900_000),
    idleMs: numberOption(v, "idle-ms", 2_000, 1, 900_000),
    gatewayDefaults,
    baseline: v["no-baseline"] !== true,
    json: v.json === true,
  };
}
type Options = ReturnType<typeof readOptions>;

/** Merges plain objects key by key (the override wins); anything else is replaced. */
function merge(base: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    const plain = (x: unknown): x is Record<string, unknown> =>
      typeof x === "object" && x !== null && !Array.isArray(x);
    out[key] = plain(current) && plain(value) ? merge(current, value) : value;
  }
  return out;
}

function gatewayConfig(options: Options, primary: ChaosUpstream, backup: ChaosUpstream): object {
  const defaults = merge(
    {
      requestTimeoutMs: options.requestTimeoutMs,
      // Short timeouts so that a stalled upstream costs seconds, not the defaults' 15-30 s.
      timeouts: {
        connectMs: 1_000,
        headersMs: options.idleMs,
        firstTokenMs: options.idleMs,
        idleMs: options.idleMs,
      },
    },
    options.gatewayDefaults,
  );
  const provider = (id: string, upstream: ChaosUpstream) => ({
    id,
    type: "openai",
    baseUrl: upstream.url,
    apiKey: { env: "BENCH_KEY" },
    // Our upstream continues a cut answer from a prefix, as DeepSeek's prefix completion does.
    assistantPrefill: true,
  });
  return {
    defaults,
    providers: [provider("primary", primary), provider("backup", backup)],
    models: {
      chaos: {
        targets: [
          { provider: "primary", model: "chaos-primary" },
          { provider: "backup", model: "chaos-backup" },
        ],
      },
    },
  };
}

interface StreamSeen {
  content: string;
  finish: boolean;
  done: boolean;
  malformed: number;
  /** The code (or type) of an SSE error event. */
  errorCode: string | undefined;
  /** Chunks for a choice other than 0 (the request asked for one). */
  otherChoices: boolean;
  eventsAfterDone: boolean;
}

function observeEvent(seen: StreamSeen, data: string): void {
  if (seen.done) {
    seen.eventsAfterDone = true;
    return;
  }
  if (data === "[DONE]") {
    seen.done = true;
    return;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    seen.malformed++;
    return;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    seen.malformed++;
    return;
  }
  const event = parsed as {
    error?: { code?: unknown; type?: unknown };
    choices?: unknown;
  };
  if (event.error !== undefined) {
    const { code, type } = event.error ?? {};
    seen.errorCode = String(code ?? type ?? "unknown");
    return;
  }
  if (!Array.isArray(event.choices)) return; // e.g. a usage-only chunk
  for (const choice of event.choices as Array<{
    index?: unknown;
    delta?: { content?: unknown };
    finish_reason?: unknown;
  }>) {
    if ((choice.index ?? 0) !== 0) {
      seen.otherChoices = true;
      continue;
    }
    if (typeof choice.delta?.content === "string") seen.content += choice.delta.content;
    if (choice.finish_reason) seen.finish = true;
  }
}

/** What the caller got from a stream that ended with `[DONE]`: whole, or the reasons it is a lie. */
function judgeFinished(seen: StreamSeen): Pick<Outcome, "category" | "detail"> {
  const reasons: string[] = [];
  if (seen.content !== ANSWER) {
    if (ANSWER.startsWith(seen.content)) reasons.push("truncated content");
    else if (seen.content.startsWith(ANSWER)) reasons.push("content too long");
    else reasons.push("content differs");
  }
  if (!seen.finish) reasons.push("no finish_reason");
  if (seen.malformed > 0) reasons.push("malformed event passed on");
  if (seen.errorCode !== undefined) reasons.push("error event then [DONE]");
  if (seen.otherChoices) reasons.push("extra choice");
  if (seen.eventsAfterDone) reasons.push("events after [DONE]");
  return reasons.length === 0
    ? { category: "whole", detail: "" }
    : { category: "lie", detail: reasons.join(", ") };
}

function judgeErrorBody(status: number, body: string): Pick<Outcome, "category" | "detail"> {
  try {
    const { error } = JSON.parse(body) as { error?: { message?: unknown; type?: unknown; code?: unknown } };
    if (error && typeof error.message === "string" && typeof error.type === "string")
      return { category: "honest", detail: `${status} ${String(error.code ?? error.type)}` };
  } catch {
    // judged below
  }
  return { category: "broken", detail: `${status} without an OpenAI error body` };
}

/** One streamed request, read to the end and judged. */
function fire(agent: http.Agent, options: LoadOptions, index: number, runStart: number): Promise<Outcome> {
  const payload = JSON.stringify({
    model: options.model,
    stream: true,
    messages: [{ role: "user", content: `chaos request ${index}` }],
  });
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let idleTimer: NodeJS.Timeout | undefined;
    let attempts: number | undefined;
    let servedBy: string | undefined;
    const settle = (judged: Pick<Outcome, "category" | "detail">) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(idleTimer);
      const now = performance.now();
      resolve({ ...judged, ms: now - started, endedAtMs: now - runStart, attempts, servedBy });
    };
    const req = http.request(options.url, {
      method: "POST",
      agent,
      headers: {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(payload),
        authorization: "Bearer sk-chaos-caller",
      },
    });
    const giveUp = (detail: string) => {
      settle({ category: "hang", detail });
      req.destroy();
    };
    const deadline = setTimeout(() => giveUp(`no end after ${options.deadlineMs} ms`), options.deadlineMs);
    const touch = () => {
      if (options.idleAbortMs === undefined || settled) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(
        () => giveUp(`silent for ${options.idleAbortMs} ms, abandoned`),
        options.idleAbortMs,
      );
    };
    touch();
    req.on("error", (error: NodeJS.ErrnoException) =>
      settle({
        category: "broken",
        detail: `connection error before headers (${error.code ?? error.message})`,
      }),
    );
    req.on("response", async (res) => {
      touch();
      const attemptsHeader = res.headers["x-gateway-attempts"];
      if (typeof attemptsHeader === "string") attempts = Number(attemptsHeader);
      const provider = res.headers["x-gateway-provider"];
      if (typeof provider === "string") servedBy = provider;
      if (res.statusCode !== 200) {
        let body = "";
        res.setEncoding("utf8");
        try {
          for await (const text of res) {
            touch();
            body += text;
          }
        } catch {
          settle({ category: "broken", detail: `${res.statusCode} body cut` });
          return;
        }
        settle(judgeErrorBody(res.statusCode ?? 0, body));
        return;
      }
      const seen: StreamSeen = {
        content: "",
        finish: false,
        done: false,
        malformed: 0,
        errorCode: undefined,
        otherChoices: false,
        eventsAfterDone: false,
      };
      let transportError: string | undefined;
      const bytes = (async function* () {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          touch();
          yield chunk;
        }
      })();
      try {
        for await (const event of parseSse(bytes)) if (event.kind === "data") observeEvent(seen, event.data);
      } catch (error) {
        transportError = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      }
      if (seen.done) settle(judgeFinished(seen));
      else if (seen.errorCode !== undefined)
        settle({ category: "honest", detail: `200 + error event ${seen.errorCode}` });
      else if (transportError !== undefined)
        settle({ category: "broken", detail: `stream cut, no error event (${transportError})` });
      else settle({ category: "broken", detail: "stream ended without [DONE] or error event" });
    });
    req.end(payload);
  });
}

async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const outcomes: Outcome[] = [];
  const runStart = performance.now();
  const until = options.durationMs === undefined ? undefined : Date.now() + options.durationMs;
  let next = 0;
  const more = () => (until === undefined ? next < options.count : Date.now() < until);
  const progress = setInterval(() => {
    if (options.quiet) return;
    const whole = outcomes.filter((o) => o.category === "whole").length;
    const total = until === undefined ? `/${options.count}` : "";
    process.stderr.write(`  ${options.label}: ${outcomes.length}${total} done, ${whole} whole\n`);
  }, 5_000);
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (more()) outcomes.push(await fire(agent, options, next++, runStart));
    }),
  );
  clearInterval(progress);
  agent.destroy();
  return { outcomes, seconds: (performance.now() - runStart) / 1000 };
}

function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? null;
}

function summarize(result: LoadResult) {
  const { outcomes } = result;
  const total = outcomes.length;
  const counts = Object.fromEntries(
    CATEGORIES.map((c) => [c, outcomes.filter((o) => o.category === c).length]),
  ) as Record<Category, number>;
  const details = (category: Category) => {
    const map = new Map<string, number>();
    for (const o of outcomes) if (o.category === category) map.set(o.detail, (map.get(o.detail) ?? 0) + 1);
    return Object.fromEntries([...map.entries()].sort((a, b) => b[1] - a[1]));
  };
  const servedBy: Record<string, number> = {};
  for (const o of outcomes) if (o.servedBy) servedBy[o.servedBy] = (servedBy[o.servedBy] ?? 0) + 1;
  const wholeMs = outcomes.filter((o) => o.category === "whole").map((o) => o.ms);
  // The whole share over time: a breaker that locks the route shut shows as a run of zeros.
  const bucketMs = Math.max(1_000, Math.ceil((result.seconds * 1000) / 20 / 1_000) * 1_000);
  const buckets: Array<{ fromS: number; ended: number; whole: number }> = [];
  for (const o of outcomes) {
    const i = Math.floor(o.endedAtMs / bucketMs);
    while (buckets.length <= i)
      buckets.push({ fromS: (buckets.length * bucketMs) / 1000, ended: 0, whole: 0 });
    const bucket = buckets[i] as { ended: number; whole: number };
    bucket.ended++;
    if (o.category === "whole") bucket.whole++;
  }
  const pct = (n: number) => (total === 0 ? 0 : Number(((100 * n) / total).toFixed(1)));
  return {
    requests: total,
    seconds: Number(result.seconds.toFixed(1)),
    counts,
    percent: Object.fromEntries(CATEGORIES.map((c) => [c, pct(counts[c])])) as Record<Category, number>,
    honestFailures: details("honest"),
    broken: details("broken"),
    lies: details("lie"),
    hangs: details("hang"),
    /** Failures the gateway answered without calling any upstream (`x-gateway-attempts: 0`). */
    refusedUntried: outcomes.filter((o) => o.category !== "whole" && o.attempts === 0).length,
    /** 200 streams by the provider the gateway opened them on (`x-gateway-provider`). */
    servedBy,
    wholeMs: {
      p50: Math.round(percentile(wholeMs, 50) ?? 0),
      p99: Math.round(percentile(wholeMs, 99) ?? 0),
      max: Math.round(wholeMs.length ? Math.max(...wholeMs) : 0),
    },
    timeline: {
      bucketSeconds: bucketMs / 1000,
      /** Per bucket: requests that ended in it, and how many of those were whole. */
      buckets: buckets.map(({ ended, whole }) => ({ ended, whole })),
    },
  };
}
type Summary = ReturnType<typeof summarize>;

function render(
  options: Options,
  gateway: Summary,
  baseline: Summary | undefined,
  upstreams: ChaosUpstreamStats[],
  gatewayProcess: { requests: number; rssMiB: number; tableReads: number },
): string {
  const lines: string[] = [];
  const mode =
    options.durationMs === undefined
      ? `${options.requests} streamed requests`
      : `${options.durationMs / 1000} s of streamed requests`;
  lines.push(
    `chaos soak: ${mode}, ${options.concurrency} in flight, seed ${options.seed}; ` +
      `primary fails ${Math.round(options.primary * 100)}% of calls, backup ${Math.round(options.backup * 100)}%`,
    `faults drawn from: ${options.faults.join(", ")}`,
    `answer: ${ANSWER_TOKENS.length} tokens, ${options.tokenMs} ms apart; gateway: requestTimeoutMs ${options.requestTimeoutMs}, ` +
      `headers/firstToken/idle ${options.idleMs} ms, assistantPrefill on both targets` +
      (Object.keys(options.gatewayDefaults).length
        ? `, defaults ${JSON.stringify(options.gatewayDefaults)}`
        : ""),
    "",
  );
  const col = (s: Summary | undefined, c: Category) =>
    s ? `${String(s.counts[c]).padStart(7)} ${`${s.percent[c].toFixed(1)}%`.padStart(7)}` : "".padStart(15);
  lines.push(`${"".padEnd(22)}${"gateway".padStart(15)}   ${baseline ? "direct to primary (baseline)" : ""}`);
  const names: Record<Category, string> = {
    whole: "whole",
    honest: "honest failure",
    broken: "broken",
    lie: "lie",
    hang: "hang",
  };
  for (const c of CATEGORIES) lines.push(`${names[c].padEnd(22)}${col(gateway, c)}   ${col(baseline, c)}`);
  const ms = (s: Summary | undefined) =>
    s ? `${s.wholeMs.p50}/${s.wholeMs.p99}/${s.wholeMs.max}`.padStart(15) : "".padStart(15);
  lines.push(`${"whole ms p50/p99/max".padEnd(22)}${ms(gateway)}   ${ms(baseline)}`);
  lines.push(
    `${"requests / wall s".padEnd(22)}${`${gateway.requests} / ${gateway.seconds}`.padStart(15)}   ${baseline ? `${baseline.requests} / ${baseline.seconds}`.padStart(15) : ""}`,
  );
  if (gateway.refusedUntried > 0)
    lines.push(`gateway refused ${gateway.refusedUntried} requests without calling any upstream`);
  const served = Object.entries(gateway.servedBy);
  if (served.length > 0)
    lines.push(`gateway streams (200) opened on: ${served.map(([p, n]) => `${p} ${n}`).join(", ")}`);
  const list = (title: string, entries: Record<string, number>) => {
    const rows = Object.entries(entries);
    if (rows.length === 0) return;
    lines.push("", title);
    for (const [detail, n] of rows) lines.push(`${String(n).padStart(7)}  ${detail}`);
  };
  for (const [label, s] of [
    ["gateway", gateway],
    ["baseline", baseline],
  ] as const) {
    if (!s) continue;
    list(`${label}: honest failures by status/code`, s.honestFailures);
    list(`${label}: broken`, s.broken);
    list(`${label}: lies`, s.lies);
    list(`${label}: hangs`, s.hangs);
  }
  lines.push(
    "",
    `${"upstream".padEnd(20)}${"received".padStart(9)}${"contin.".padStart(9)}${"answered".padStart(9)}  faults`,
  );
  for (const u of upstreams) {
    const faults = Object.entries(u.faults)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ");
    const extra = u.prefixMismatches ? `; prefix mismatches ${u.prefixMismatches}` : "";
    lines.push(
      `${u.name.padEnd(20)}${String(u.received).padStart(9)}${String(u.continuations).padStart(9)}${String(u.answered).padStart(9)}  ${faults || "none"}${extra}`,
    );
  }
  lines.push(
    "",
    `gateway process: ${gatewayProcess.requests} requests served, RSS ${gatewayProcess.rssMiB} MiB at the end, ` +
      `${gatewayProcess.tableReads} health-table reads`,
  );
  const timeline = (label: string, s: Summary | undefined) => {
    if (!s) return;
    const cells = s.timeline.buckets
      .map(({ ended, whole }) => (ended === 0 ? "-" : `${Math.round((100 * whole) / ended)}%/${ended}`))
      .join(" ");
    lines.push(`${label}: ${cells}`);
  };
  lines.push("", "timeline: per interval, the whole share of the requests that ended in it / how many ended");
  timeline(`gateway  (${gateway.timeline.bucketSeconds} s)`, gateway);
  if (baseline) timeline(`baseline (${baseline.timeline.bucketSeconds} s)`, baseline);
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<void> {
  const options = readOptions();
  const log = (message: string) => process.stderr.write(`${message}\n`);
  const upstreamOptions = { faults: options.faults, seed: options.seed, tokenMs: options.tokenMs };
  const primary = await startChaosUpstream({
    ...upstreamOptions,
    name: "primary",
    faultRate: options.primary,
  });
  const backup = await startChaosUpstream({ ...upstreamOptions, name: "backup", faultRate: options.backup });
  const gateway = await startBenchChild("bench/gateway.ts", {
    BENCH_GATEWAY_CONFIG: JSON.stringify(gatewayConfig(options, primary, backup)),
    BENCH_HEALTH_CHECKER: "1",
  });
  const load = {
    concurrency: options.concurrency,
    count: options.requests,
    durationMs: options.durationMs,
    deadlineMs: options.requestTimeoutMs + HANG_MARGIN_MS,
    quiet: false,
  };
  log("through the gateway...");
  const viaGateway = summarize(
    await runLoad({
      ...load,
      url: `${gateway.url}/v1/chat/completions`,
      model: "chaos",
      idleAbortMs: undefined,
      label: "gateway",
    }),
  );
  const stats = await gateway.stats();
  gateway.process.disconnect();
  const upstreams = [primary.stats(), backup.stats()];

  let baseline: Summary | undefined;
  if (options.baseline) {
    // Named like the primary, so each request's first call meets the fault it met through the gateway.
    const direct = await startChaosUpstream({
      ...upstreamOptions,
      name: "primary",
      faultRate: options.primary,
    });
    log("straight to an upstream like the primary (baseline)...");
    baseline = summarize(
      await runLoad({
        ...load,
        url: `${direct.url}/chat/completions`,
        model: "chaos-primary",
        idleAbortMs: options.idleMs,
        label: "baseline",
      }),
    );
    upstreams.push({ ...direct.stats(), name: "primary (baseline)" });
    await direct.close();
  }
  await Promise.all([primary.close(), backup.close()]);

  const gatewayProcess = {
    requests: stats.requests ?? 0,
    rssMiB: Number((stats.rss / 2 ** 20).toFixed(1)),
    tableReads: stats.tableReads,
  };
  if (options.json) {
    const { json: _json, ...settings } = options;
    const result = { settings, answer: ANSWER, gateway: viaGateway, baseline, upstreams, gatewayProcess };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    process.stdout.write(render(options, viaGateway, baseline, upstreams, gatewayProcess));
  }
}

await main();
