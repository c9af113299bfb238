import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { cpus, totalmem } from "node:os";
import { resolve } from "node:path";
import { build } from "esbuild";
import { deployedBuildOptions } from "../infra/stack.ts";
import { importTimeMs } from "./bundle.ts";
import { type BenchChild, startBenchChild as start } from "./child.ts";
import { redactionSummary, redactionTimes } from "./redaction.ts";

/**
 * `npm run bench`: the gateway's cost, measured against a baseline in the same run. A lean fake
 * upstream runs in one child process, the gateway (as `npm start` runs it, DynamoDB health store
 * included) in another; this process is the load generator, a small keep-alive HTTP client of our
 * own (one code path for both targets, timed with hrtime per request). Every figure is printed next
 * to the same figure for the upstream called directly. Ratios are the headline: absolute times
 * depend on the machine.
 */
const QUICK = process.argv.includes("--quick");
/** Only the in-process redaction figures (a few seconds): `npm run bench -- --redaction`. */
const REDACTION_ONLY = process.argv.includes("--redaction");
const SEQUENTIAL = QUICK ? 300 : 3000;
const LEVELS = [1, 16, 64, 256];
const LEVEL_MS = QUICK ? 800 : 3000;
const STREAMS = QUICK ? 10 : 40;
const OPEN_STREAMS = QUICK ? 200 : 1000;
const COLD_RUNS = QUICK ? 3 : 7;
const TOKEN_GAP_MS = 20;

const body = JSON.stringify({ model: "bench-model", messages: [{ role: "user", content: "Hello" }] });
const streamBody = JSON.stringify({
  model: "bench-model",
  stream: true,
  messages: [{ role: "user", content: "Hello" }],
});
/** How one token shows in a chat stream (the streaming loop counts these). */
const CHAT_TOKEN = '"content":" tok"';
const messagesBody = (model: string, stream = false) =>
  JSON.stringify({
    model,
    max_tokens: 64,
    ...(stream ? { stream } : {}),
    messages: [{ role: "user", content: "Hello" }],
  });

/**
 * The lines beside chat (issues 17 to 20): one caller's request each, measured on the gateway and
 * on the upstream call it stands for, sequentially and non-streaming, one after another in one
 * block (chat pass-through first, measured again there so that every line is taken in the same
 * conditions). `direct` is the fake upstream's own path for that dialect; a translated line's is
 * `chat`: the gateway turns it into a chat completion, so the chat line's direct run is its baseline.
 */
const DIALECT_LINES: {
  name: string;
  gatewayPath: string;
  payload: string;
  direct: "chat" | { path: string; payload: string };
}[] = [
  {
    name: "chat pass-through",
    gatewayPath: "/v1/chat/completions",
    payload: body,
    direct: { path: "/chat/completions", payload: body },
  },
  {
    name: "messages pass-through",
    gatewayPath: "/v1/messages",
    payload: messagesBody("bench-claude"),
    direct: { path: "/v1/messages", payload: messagesBody("bench-claude") },
  },
  {
    name: "messages translated",
    gatewayPath: "/v1/messages",
    payload: messagesBody("bench-model"),
    direct: "chat",
  },
  {
    name: "responses translated",
    gatewayPath: "/v1/responses",
    // Codex's way: no stored response, so the line measures translation, not the table.
    payload: JSON.stringify({ model: "bench-model", input: "Hello", store: false }),
    direct: "chat",
  },
  {
    name: "embeddings",
    gatewayPath: "/v1/embeddings",
    payload: JSON.stringify({ model: "bench-embed", input: "Hello" }),
    direct: { path: "/embeddings", payload: JSON.stringify({ model: "bench-embed", input: "Hello" }) },
  },
];

/** One request, read to the end; resolves with its latency in ms. */
function request(agent: http.Agent, url: string, payload: string): Promise<number> {
  return new Promise((resolveLatency, reject) => {
    const started = process.hrtime.bigint();
    const req = http.request(
      url,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        res.on("data", () => {});
        res.on("end", () => {
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode} from ${url}`));
          else resolveLatency(Number(process.hrtime.bigint() - started) / 1e6);
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

const WARM_UP = Math.min(200, SEQUENTIAL);

/**
 * `SEQUENTIAL` requests one after another after a warm-up: their latencies, and the CPU (user +
 * system) the process serving `url` spent per request, warm-ups included.
 */
async function sequential(
  child: BenchChild,
  url: string,
  payload = body,
): Promise<{ latencies: number[]; cpuMicros: number }> {
  const before = (await child.stats()).cpuMicros;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < WARM_UP; i++) await request(agent, url, payload);
  const latencies: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) latencies.push(await request(agent, url, payload));
  agent.destroy();
  return { latencies, cpuMicros: ((await child.stats()).cpuMicros - before) / (SEQUENTIAL + WARM_UP) };
}

async function concurrent(
  url: string,
  inFlight: number,
  durationMs: number,
): Promise<{ latencies: number[]; rps: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
  const warmUntil = Date.now() + Math.min(500, durationMs / 4);
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < warmUntil) await request(agent, url, body);
    }),
  );
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  const until = Date.now() + durationMs;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < until) latencies.push(await request(agent, url, body));
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  return { latencies, rps: latencies.length / seconds };
}

/**
 * Streams `count` answers one after another: time to first byte, first token, and the gaps between
 * tokens (each a `token` in the stream's text).
 */
async function streaming(url: string, count: number, payload = streamBody, token = CHAT_TOKEN) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const ttfb: number[] = [];
  const ttft: number[] = [];
  const gaps: number[] = [];
  for (let i = 0; i < count; i++) {
    await new Promise<void>((done, reject) => {
      const started = process.hrtime.bigint();
      const ms = () => Number(process.hrtime.bigint() - started) / 1e6;
      let last: number | undefined;
      const req = http.request(
        url,
        { method: "POST", agent, headers: { "content-type": "application/json" } },
        (res) => {
          res.setEncoding("utf8");
          res.on("data", (text: string) => {
            const now = ms();
            if (ttfb.length === i) ttfb.push(now);
            const tokens = text.split(token).length - 1;
            for (let t = 0; t < tokens; t++) {
              if (last === undefined) ttft.push(now);
              else gaps.push(now - last);
              last = now;
            }
          });
          res.on("end", () => done());
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  }
  agent.destroy();
  return { ttfb, ttft, gaps };
}

/** Opens `count` streams at once and resolves when each has its first token; returns a closer. */
async function openStreams(url: string, count: number): Promise<() => void> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: count });
  const requests: http.ClientRequest[] = [];
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((ready, reject) => {
          const req = http.request(
            url,
            { method: "POST", agent, headers: { "content-type": "application/json" } },
            (res) => {
              res.setEncoding("utf8");
              res.on("data", (text: string) => {
                if (text.includes(" tok")) ready();
              });
              res.on("error", () => {});
            },
          );
          req.on("error", reject);
          req.end(streamBody);
          requests.push(req);
        }),
    ),
  );
  return () => {
    for (const r of requests) r.destroy();
    agent.destroy();
  };
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}
const mean = (values: number[]) => values.reduce((s, v) => s + v, 0) / values.length;
const round = (v: number, digits = 3) => Number(v.toFixed(digits));

async function coldStart() {
  const outdir = resolve("dist/bench-bundle");
  mkdirSync(outdir, { recursive: true });
  const common = {
    ...deployedBuildOptions(readFileSync("config/default.json", "utf8")),
    entryPoints: ["functions/chat.ts"],
  };
  // As deployed (everything bundled, see infra/stack.ts), and our code alone with the SDK left out.
  await build({ ...common, external: ["@aws-sdk/*"], outfile: `${outdir}/chat.mjs` });
  await build({ ...common, outfile: `${outdir}/chat-with-sdk.mjs` });
  writeFileSync(`${outdir}/empty.mjs`, "export const handler = () => {};\n");
  return {
    bundleBytes: statSync(`${outdir}/chat.mjs`).size,
    bundleWithSdkBytes: statSync(`${outdir}/chat-with-sdk.mjs`).size,
    importMs: importTimeMs(`${outdir}/chat.mjs`, COLD_RUNS),
    importWithSdkMs: importTimeMs(`${outdir}/chat-with-sdk.mjs`, COLD_RUNS),
    importEmptyMs: importTimeMs(`${outdir}/empty.mjs`, COLD_RUNS),
  };
}

type Target = "direct" | "proxy" | "gateway";
const TARGETS: Target[] = ["direct", "proxy", "gateway"];

/** One line beside chat: its sequential runs on the gateway and on the direct baseline. */
interface DialectResult {
  name: string;
  directPath: string;
  direct: Awaited<ReturnType<typeof sequential>>;
  gateway: Awaited<ReturnType<typeof sequential>>;
}

interface Row {
  name: string;
  values: Record<Target, number>;
  unit: "ms" | "req/s";
}

function latencySummary(latencies: number[]) {
  return {
    p50: round(percentile(latencies, 50)),
    p99: round(percentile(latencies, 99)),
    max: round(Math.max(...latencies)),
  };
}

async function main() {
  // In this process, before any child starts: nothing else competes for the CPU.
  process.stderr.write("redaction...\n");
  const redaction = redactionTimes(QUICK ? 3 : 5);
  if (REDACTION_ONLY) {
    process.stdout.write(`${redactionSummary(redaction)}\n`);
    return;
  }
  const upstream = await start("bench/upstream.ts", {
    BENCH_TOKEN_GAP_MS: String(TOKEN_GAP_MS),
    BENCH_TOKENS: "20",
  });
  const slowUpstream = await start("bench/upstream.ts", { BENCH_TOKEN_GAP_MS: "1000", BENCH_TOKENS: "30" });
  const proxy = await start("bench/proxy.ts", { BENCH_UPSTREAM_URL: upstream.url });
  const gateway = await start("bench/gateway.ts", { BENCH_UPSTREAM_URL: upstream.url });
  const urls: Record<Target, string> = {
    direct: `${upstream.url}/chat/completions`,
    proxy: `${proxy.url}/v1/chat/completions`,
    gateway: `${gateway.url}/v1/chat/completions`,
  };
  const processes: Record<Target, BenchChild> = { direct: upstream, proxy, gateway };
  const results: Record<string, unknown> = {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      node: process.version,
    },
    loadGenerator: "own keep-alive node:http client (bench/run.ts), hrtime per request",
    baselines: {
      direct: "the fake upstream called directly",
      proxy: "a minimal node:http pass-through proxy (bench/proxy.ts): the cost of any extra Node.js hop",
    },
    quick: QUICK,
    redaction: {
      hostileMs: round(redaction.hostileMs, 1),
      plainMs: round(redaction.plainMs, 1),
      logLineMicros: round(redaction.logLineMicros, 2),
      stringifyMicros: round(redaction.stringifyMicros, 2),
      textBytes: redaction.textBytes,
      note: "4 MiB of text hostile to a backtracking engine vs 4 MiB of prose; a request's log line vs its JSON.stringify",
    },
  };
  const rows: Row[] = [];

  process.stderr.write("sequential non-streaming...\n");
  const sequentialResults = {} as Record<Target, ReturnType<typeof latencySummary>>;
  const cpu = {} as Record<Target, number>;
  const seq = {} as Record<Target, number[]>;
  for (const target of TARGETS) {
    const run = await sequential(processes[target], urls[target]);
    seq[target] = run.latencies;
    cpu[target] = run.cpuMicros;
    sequentialResults[target] = latencySummary(seq[target]);
  }
  results.sequential = {
    requests: SEQUENTIAL,
    ...sequentialResults,
    addedP50: round(sequentialResults.gateway.p50 - sequentialResults.direct.p50),
    addedP99: round(sequentialResults.gateway.p99 - sequentialResults.direct.p99),
  };
  results.cpuPerRequestMicros = {
    upstream: round(cpu.direct, 1),
    proxyProcess: round(cpu.proxy, 1),
    gatewayProcess: round(cpu.gateway, 1),
    note: "CPU (user+system) of the process in front of the client, per non-streaming request, sequential run",
  };
  rows.push({
    name: "CPU per request (process)",
    values: { direct: cpu.direct / 1000, proxy: cpu.proxy / 1000, gateway: cpu.gateway / 1000 },
    unit: "ms",
  });
  for (const p of [50, 99]) {
    rows.push({
      name: `sequential p${p}`,
      values: {
        direct: percentile(seq.direct, p),
        proxy: percentile(seq.proxy, p),
        gateway: percentile(seq.gateway, p),
      },
      unit: "ms",
    });
  }

  process.stderr.write("sequential non-streaming, other dialects...\n");
  const dialects: DialectResult[] = [];
  for (const line of DIALECT_LINES) {
    const direct =
      line.direct === "chat"
        ? dialects[0]?.direct
        : await sequential(upstream, `${upstream.url}${line.direct.path}`, line.direct.payload);
    if (direct === undefined) throw new Error(`${line.name}: the chat line must come first`);
    const gatewayRun = await sequential(gateway, `${gateway.url}${line.gatewayPath}`, line.payload);
    dialects.push({
      name: line.name,
      directPath: line.direct === "chat" ? "/chat/completions" : line.direct.path,
      direct,
      gateway: gatewayRun,
    });
  }
  const chatLine = dialects[0] as DialectResult;
  results.dialects = {
    requests: SEQUENTIAL,
    note:
      "sequential, non-streaming, one block after the chat table's sequential run (chat measured " +
      "again in it); direct = the fake upstream's path the gateway calls for that line (a " +
      "translated line's is its chat completion: the chat line's direct run); CPU per request is " +
      "the gateway process's (the upstream's for direct)",
    ...Object.fromEntries(
      dialects.map((d) => [
        d.name,
        {
          directPath: d.directPath,
          direct: { ...latencySummary(d.direct.latencies), cpuMicros: round(d.direct.cpuMicros, 1) },
          gateway: { ...latencySummary(d.gateway.latencies), cpuMicros: round(d.gateway.cpuMicros, 1) },
          addedP50: round(percentile(d.gateway.latencies, 50) - percentile(d.direct.latencies, 50)),
          gatewayCpuVsChat: round(d.gateway.cpuMicros / chatLine.gateway.cpuMicros),
        },
      ]),
    ),
  };

  const levels: Record<string, unknown> = {};
  for (const inFlight of LEVELS) {
    process.stderr.write(`${inFlight} in flight...\n`);
    const runs = {} as Record<Target, { latencies: number[]; rps: number }>;
    for (const target of TARGETS) runs[target] = await concurrent(urls[target], inFlight, LEVEL_MS);
    levels[inFlight] = {
      ...Object.fromEntries(
        TARGETS.map((t) => [t, { ...latencySummary(runs[t].latencies), rps: Math.round(runs[t].rps) }]),
      ),
      throughputVsDirect: round(runs.gateway.rps / runs.direct.rps),
      throughputVsProxy: round(runs.gateway.rps / runs.proxy.rps),
    };
    const value = (f: (latencies: number[]) => number) =>
      Object.fromEntries(TARGETS.map((t) => [t, f(runs[t].latencies)])) as Record<Target, number>;
    rows.push({ name: `${inFlight} in flight p50`, values: value((l) => percentile(l, 50)), unit: "ms" });
    rows.push({ name: `${inFlight} in flight p99`, values: value((l) => percentile(l, 99)), unit: "ms" });
    rows.push({ name: `${inFlight} in flight max`, values: value((l) => Math.max(...l)), unit: "ms" });
    rows.push({
      name: `${inFlight} in flight throughput`,
      values: Object.fromEntries(TARGETS.map((t) => [t, runs[t].rps])) as Record<Target, number>,
      unit: "req/s",
    });
  }
  results.concurrency = levels;

  const { tableReads, requests = 0 } = await gateway.stats();
  results.dynamoReadsPerRequest = {
    tableReads,
    requests,
    perRequest: Number((tableReads / requests).toExponential(2)),
    note: "health-table reads by the gateway over the whole non-streaming run, warm-ups included",
  };

  process.stderr.write("streaming...\n");
  const streams = {} as Record<Target, Awaited<ReturnType<typeof streaming>>>;
  for (const target of TARGETS) streams[target] = await streaming(urls[target], STREAMS);
  // Messages translated, streamed: the gateway turns chat chunks into Messages events as they come.
  const messagesStream = await streaming(
    `${gateway.url}/v1/messages`,
    STREAMS,
    messagesBody("bench-model", true),
    '"text":" tok"',
  );
  const streamSummary = (s: Awaited<ReturnType<typeof streaming>>) => ({
    ttfbP50: round(percentile(s.ttfb, 50)),
    ttftP50: round(percentile(s.ttft, 50)),
    gapMean: round(mean(s.gaps)),
    gapP99: round(percentile(s.gaps, 99)),
  });
  const messagesStreamSummary = streamSummary(messagesStream);
  results.streaming = {
    streams: STREAMS,
    upstreamTokenGapMs: TOKEN_GAP_MS,
    ...Object.fromEntries(TARGETS.map((t) => [t, streamSummary(streams[t])])),
    gatewayMessagesTranslated: messagesStreamSummary,
  };
  const streamRow = (name: string, f: (s: (typeof streams)[Target]) => number) =>
    rows.push({
      name,
      values: Object.fromEntries(TARGETS.map((t) => [t, f(streams[t])])) as Record<Target, number>,
      unit: "ms",
    });
  streamRow("stream first byte p50", (s) => percentile(s.ttfb, 50));
  streamRow("stream first token p50", (s) => percentile(s.ttft, 50));
  streamRow("inter-token gap mean", (s) => mean(s.gaps));
  streamRow("inter-token gap p99", (s) => percentile(s.gaps, 99));

  process.stderr.write(`${OPEN_STREAMS} open streams...\n`);
  const memGateway = await start("bench/gateway.ts", { BENCH_UPSTREAM_URL: slowUpstream.url });
  const idle = await memGateway.stats();
  const quarter = Math.floor(OPEN_STREAMS / 4);
  const closeQuarter = await openStreams(`${memGateway.url}/v1/chat/completions`, quarter);
  const withQuarter = await memGateway.stats();
  closeQuarter();
  await new Promise((r) => setTimeout(r, 500));
  const closeAll = await openStreams(`${memGateway.url}/v1/chat/completions`, OPEN_STREAMS);
  const withAll = await memGateway.stats();
  closeAll();
  const memory = {
    idleRssMiB: round(idle.rss / 2 ** 20, 1),
    [`rssWith${quarter}StreamsMiB`]: round(withQuarter.rss / 2 ** 20, 1),
    [`rssWith${OPEN_STREAMS}StreamsMiB`]: round(withAll.rss / 2 ** 20, 1),
    [`perStreamKiBAt${quarter}`]: round((withQuarter.rss - idle.rss) / quarter / 1024, 1),
    [`perStreamKiBAt${OPEN_STREAMS}`]: round((withAll.rss - idle.rss) / OPEN_STREAMS / 1024, 1),
    heapPerStreamKiB: round((withAll.heapUsed - idle.heapUsed) / OPEN_STREAMS / 1024, 1),
  };
  results.memory = memory;

  process.stderr.write("cold start...\n");
  const cold = await coldStart();
  results.coldStart = {
    ...cold,
    importMs: round(cold.importMs, 1),
    importWithSdkMs: round(cold.importWithSdkMs, 1),
    importEmptyMs: round(cold.importEmptyMs, 1),
  };

  for (const child of [upstream, slowUpstream, proxy, gateway, memGateway]) child.process.disconnect();

  const fmt = (v: number, unit: Row["unit"]) => (unit === "ms" ? v.toFixed(3) : String(Math.round(v)));
  const header = `${"metric".padEnd(28)}${"direct".padStart(10)}${"proxy".padStart(10)}${"gateway".padStart(10)}${"gw-direct".padStart(11)}${"gw-proxy".padStart(10)}${"gw/direct".padStart(10)}`;
  const lines = [
    "times in ms, throughput in requests/s; proxy = minimal node:http pass-through (bench/proxy.ts)",
    header,
    ...rows.map(({ name, values: v, unit }) => {
      const diff = (a: number, b: number) =>
        unit === "ms" ? `${a - b >= 0 ? "+" : ""}${(a - b).toFixed(3)}` : "";
      return (
        name.padEnd(28) +
        fmt(v.direct, unit).padStart(10) +
        fmt(v.proxy, unit).padStart(10) +
        fmt(v.gateway, unit).padStart(10) +
        diff(v.gateway, v.direct).padStart(11) +
        diff(v.gateway, v.proxy).padStart(10) +
        `${(v.gateway / v.direct).toFixed(2)}x`.padStart(10)
      );
    }),
    "",
    `beside chat (sequential, non-streaming, ${SEQUENTIAL} requests each; direct = the fake upstream's path the gateway calls)`,
    `${"line".padEnd(24)}${"direct path".padEnd(19)}${"direct p50".padStart(11)}${"gw p50".padStart(9)}${"gw-direct".padStart(11)}${"gw CPU/req".padStart(12)}${"CPU vs chat".padStart(13)}`,
    ...dialects.map((d) => {
      const added = percentile(d.gateway.latencies, 50) - percentile(d.direct.latencies, 50);
      return (
        d.name.padEnd(24) +
        d.directPath.padEnd(19) +
        percentile(d.direct.latencies, 50).toFixed(3).padStart(11) +
        percentile(d.gateway.latencies, 50).toFixed(3).padStart(9) +
        `${added >= 0 ? "+" : ""}${added.toFixed(3)}`.padStart(11) +
        (d.gateway.cpuMicros / 1000).toFixed(3).padStart(12) +
        `${(d.gateway.cpuMicros / chatLine.gateway.cpuMicros).toFixed(2)}x`.padStart(13)
      );
    }),
    `messages translated, streamed (${STREAMS} streams): first token p50 ${messagesStreamSummary.ttftP50.toFixed(3)} ms ` +
      `(chat through the gateway ${percentile(streams.gateway.ttft, 50).toFixed(3)}, direct ${percentile(streams.direct.ttft, 50).toFixed(3)}), ` +
      `inter-token gap mean ${messagesStreamSummary.gapMean.toFixed(3)} ms`,
    "",
    `health table reads during the non-streaming run: ${tableReads} for ${requests} requests ` +
      `(${(tableReads / requests).toExponential(2)} per request; cache TTL 5 s)`,
    `gateway memory (RSS): ${Object.entries(memory)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
    `cold start: chat bundle ${cold.bundleBytes} B (${cold.bundleWithSdkBytes} B with the AWS SDK bundled); ` +
      `import ${cold.importMs.toFixed(1)} ms (${cold.importWithSdkMs.toFixed(1)} ms with the SDK bundled) ` +
      `vs an empty module ${cold.importEmptyMs.toFixed(1)} ms, median of ${COLD_RUNS} fresh processes`,
    redactionSummary(redaction),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  writeFileSync("bench/results.json", `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write("written: bench/results.json\n");
}

await main();
