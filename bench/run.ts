import { type ChildProcess, execFileSync, fork } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { cpus, totalmem } from "node:os";
import { resolve } from "node:path";
import { build } from "esbuild";
import { bundleOptions } from "../infra/stack.ts";

/**
 * `npm run bench`: the gateway's cost, measured against a baseline in the same run. A lean fake
 * upstream runs in one child process, the gateway (as `npm start` runs it, DynamoDB health store
 * included) in another; this process is the load generator, a small keep-alive HTTP client of our
 * own (one code path for both targets, timed with hrtime per request). Every figure is printed next
 * to the same figure for the upstream called directly. Ratios are the headline: absolute times
 * depend on the machine.
 */
const QUICK = process.argv.includes("--quick");
const SEQUENTIAL = QUICK ? 300 : 3000;
const LEVELS = [1, 16, 64, 256];
const LEVEL_MS = QUICK ? 800 : 3000;
const STREAMS = QUICK ? 20 : 100;
const OPEN_STREAMS = QUICK ? 200 : 1000;
const COLD_RUNS = QUICK ? 3 : 7;
const TOKEN_GAP_MS = 20;

const body = JSON.stringify({ model: "bench-model", messages: [{ role: "user", content: "Hello" }] });
const streamBody = JSON.stringify({
  model: "bench-model",
  stream: true,
  messages: [{ role: "user", content: "Hello" }],
});

interface Stats {
  rss: number;
  heapUsed: number;
  tableReads: number;
  cpuMicros: number;
}

interface Child {
  process: ChildProcess;
  url: string;
  stats(): Promise<Stats>;
}

function start(script: string, env: Record<string, string>): Promise<Child> {
  const child = fork("scripts/run-ts.mjs", [script], {
    env: { ...process.env, ...env },
    execArgv: ["--expose-gc"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return new Promise((resolveChild, reject) => {
    child.once("error", reject);
    child.on("message", function onUrl(message: { url?: string }) {
      if (!message.url) return;
      child.off("message", onUrl);
      resolveChild({
        process: child,
        url: message.url,
        stats: () =>
          new Promise((r) => {
            child.on("message", function onStats(m: { stats?: Stats }) {
              if (!m.stats) return;
              child.off("message", onStats);
              r(m.stats);
            });
            child.send("stats");
          }),
      });
    });
  });
}

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

async function sequential(url: string, count: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < Math.min(200, count); i++) await request(agent, url, body); // warm-up
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) latencies.push(await request(agent, url, body));
  agent.destroy();
  return latencies;
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

/** Streams `count` answers one after another: time to first byte, first token, and the gaps between tokens. */
async function streaming(url: string, count: number) {
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
            const tokens = text.split('"content":" tok"').length - 1;
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
      req.end(streamBody);
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

/** Import time of a module in a fresh Node process, in ms (median of `runs`). */
function importTime(modulePath: string, runs: number): number {
  const script = `
    globalThis.awslambda = Object.assign(globalThis.awslambda ?? {}, {
      streamifyResponse: (h) => h,
      HttpResponseStream: { from: (s) => s },
    });
    const t = performance.now();
    await import(${JSON.stringify(`file://${modulePath}`)});
    process.stdout.write(String(performance.now() - t));`;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      env: {
        ...process.env,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        AWS_REGION: "us-east-1",
      },
      cwd: process.cwd(),
      encoding: "utf8",
    });
    times.push(Number(out));
  }
  return percentile(times, 50);
}

async function coldStart() {
  const outdir = resolve("dist/bench-bundle");
  mkdirSync(outdir, { recursive: true });
  const options = bundleOptions(readFileSync("config/default.json", "utf8"));
  const common = {
    entryPoints: ["functions/chat.ts"],
    bundle: true,
    platform: "node" as const,
    logLevel: "silent" as const,
    format: options.format,
    target: options.target,
    minify: options.minify,
    external: options.external,
    banner: { js: options.banner },
    define: options.define,
  };
  await build({ ...common, outfile: `${outdir}/chat.mjs` });
  await build({ ...common, external: [], outfile: `${outdir}/chat-with-sdk.mjs` });
  writeFileSync(`${outdir}/empty.mjs`, "export const handler = () => {};\n");
  return {
    bundleBytes: statSync(`${outdir}/chat.mjs`).size,
    bundleWithSdkBytes: statSync(`${outdir}/chat-with-sdk.mjs`).size,
    importMs: importTime(`${outdir}/chat.mjs`, COLD_RUNS),
    importWithSdkMs: importTime(`${outdir}/chat-with-sdk.mjs`, COLD_RUNS),
    importEmptyMs: importTime(`${outdir}/empty.mjs`, COLD_RUNS),
  };
}

async function main() {
  const upstream = await start("bench/upstream.ts", {
    BENCH_TOKEN_GAP_MS: String(TOKEN_GAP_MS),
    BENCH_TOKENS: "20",
  });
  const slowUpstream = await start("bench/upstream.ts", { BENCH_TOKEN_GAP_MS: "1000", BENCH_TOKENS: "30" });
  const gateway = await start("bench/gateway.ts", { BENCH_UPSTREAM_URL: upstream.url });
  const direct = `${upstream.url}/chat/completions`;
  const through = `${gateway.url}/v1/chat/completions`;
  const results: Record<string, unknown> = {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      node: process.version,
    },
    loadGenerator: "own keep-alive node:http client (bench/run.ts), hrtime per request",
    quick: QUICK,
  };
  const rows: Array<[string, number, number, string]> = [];
  const row = (name: string, d: number, g: number, unit = "ms") => {
    rows.push([name, d, g, unit]);
  };

  process.stderr.write("sequential non-streaming...\n");
  const upstreamCpu0 = (await upstream.stats()).cpuMicros;
  const seqDirect = await sequential(direct, SEQUENTIAL);
  const upstreamCpu1 = (await upstream.stats()).cpuMicros;
  const gatewayCpu0 = (await gateway.stats()).cpuMicros;
  const seqGateway = await sequential(through, SEQUENTIAL);
  const gatewayCpu1 = (await gateway.stats()).cpuMicros;
  const warmed = SEQUENTIAL + Math.min(200, SEQUENTIAL);
  const cpuPerRequest = {
    upstreamMicros: round((upstreamCpu1 - upstreamCpu0) / warmed, 1),
    gatewayMicros: round((gatewayCpu1 - gatewayCpu0) / warmed, 1),
  };
  results.cpuPerRequest = {
    ...cpuPerRequest,
    note: "process CPU (user+system) per non-streaming request, sequential run incl. warm-up",
  };
  row("CPU per request (process)", cpuPerRequest.upstreamMicros / 1000, cpuPerRequest.gatewayMicros / 1000);
  results.sequential = {
    requests: SEQUENTIAL,
    direct: { p50: round(percentile(seqDirect, 50)), p99: round(percentile(seqDirect, 99)) },
    gateway: { p50: round(percentile(seqGateway, 50)), p99: round(percentile(seqGateway, 99)) },
    addedP50: round(percentile(seqGateway, 50) - percentile(seqDirect, 50)),
    addedP99: round(percentile(seqGateway, 99) - percentile(seqDirect, 99)),
  };
  row("sequential p50", percentile(seqDirect, 50), percentile(seqGateway, 50));
  row("sequential p99", percentile(seqDirect, 99), percentile(seqGateway, 99));

  const levels: Record<string, unknown> = {};
  for (const inFlight of LEVELS) {
    process.stderr.write(`${inFlight} in flight...\n`);
    const d = await concurrent(direct, inFlight, LEVEL_MS);
    const g = await concurrent(through, inFlight, LEVEL_MS);
    levels[inFlight] = {
      direct: {
        p50: round(percentile(d.latencies, 50)),
        p99: round(percentile(d.latencies, 99)),
        max: round(Math.max(...d.latencies)),
        rps: Math.round(d.rps),
      },
      gateway: {
        p50: round(percentile(g.latencies, 50)),
        p99: round(percentile(g.latencies, 99)),
        max: round(Math.max(...g.latencies)),
        rps: Math.round(g.rps),
      },
      throughputRatio: round(g.rps / d.rps),
    };
    row(`${inFlight} in flight p50`, percentile(d.latencies, 50), percentile(g.latencies, 50));
    row(`${inFlight} in flight p99`, percentile(d.latencies, 99), percentile(g.latencies, 99));
    row(`${inFlight} in flight max`, Math.max(...d.latencies), Math.max(...g.latencies));
    row(`${inFlight} in flight throughput`, d.rps, g.rps, "req/s");
  }
  results.concurrency = levels;

  const { tableReads } = await gateway.stats();
  const served = SEQUENTIAL + Object.values(levels).length; // lower bound; the exact count is below
  results.dynamoReadsPerRequest = {
    tableReads,
    note: "reads of the health table by the gateway during the whole non-streaming run",
  };
  void served;

  process.stderr.write("streaming...\n");
  const sd = await streaming(`${upstream.url}/chat/completions`, STREAMS);
  const sg = await streaming(through, STREAMS);
  results.streaming = {
    streams: STREAMS,
    upstreamTokenGapMs: TOKEN_GAP_MS,
    direct: {
      ttfbP50: round(percentile(sd.ttfb, 50)),
      ttftP50: round(percentile(sd.ttft, 50)),
      gapMean: round(mean(sd.gaps)),
      gapP99: round(percentile(sd.gaps, 99)),
    },
    gateway: {
      ttfbP50: round(percentile(sg.ttfb, 50)),
      ttftP50: round(percentile(sg.ttft, 50)),
      gapMean: round(mean(sg.gaps)),
      gapP99: round(percentile(sg.gaps, 99)),
    },
  };
  row("stream first byte p50", percentile(sd.ttfb, 50), percentile(sg.ttfb, 50));
  row("stream first token p50", percentile(sd.ttft, 50), percentile(sg.ttft, 50));
  row("inter-token gap mean", mean(sd.gaps), mean(sg.gaps));
  row("inter-token gap p99", percentile(sd.gaps, 99), percentile(sg.gaps, 99));

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
  results.memory = {
    idleRssMiB: round(idle.rss / 2 ** 20, 1),
    [`rssWith${quarter}StreamsMiB`]: round(withQuarter.rss / 2 ** 20, 1),
    [`rssWith${OPEN_STREAMS}StreamsMiB`]: round(withAll.rss / 2 ** 20, 1),
    [`perStreamKiBAt${quarter}`]: round((withQuarter.rss - idle.rss) / quarter / 1024, 1),
    [`perStreamKiBAt${OPEN_STREAMS}`]: round((withAll.rss - idle.rss) / OPEN_STREAMS / 1024, 1),
    heapPerStreamKiB: round((withAll.heapUsed - idle.heapUsed) / OPEN_STREAMS / 1024, 1),
  };

  process.stderr.write("cold start...\n");
  const cold = await coldStart();
  results.coldStart = {
    ...cold,
    importMs: round(cold.importMs, 1),
    importWithSdkMs: round(cold.importWithSdkMs, 1),
    importEmptyMs: round(cold.importEmptyMs, 1),
  };

  for (const child of [upstream, slowUpstream, gateway, memGateway]) child.process.disconnect();

  const pad = (text: string, width: number) => text.padStart(width);
  const lines = [
    `${"metric".padEnd(28)}${pad("direct", 12)}${pad("gateway", 12)}${pad("added", 12)}${pad("ratio", 8)}`,
    ...rows.map(([name, d, g, unit]) => {
      const fmt = (v: number) => (unit === "ms" ? `${v.toFixed(3)} ms` : `${Math.round(v)}`);
      const added = unit === "ms" ? `${(g - d >= 0 ? "+" : "") + (g - d).toFixed(3)} ms` : "";
      return `${name.padEnd(28)}${pad(fmt(d), 12)}${pad(fmt(g), 12)}${pad(added, 12)}${pad(`${(g / d).toFixed(2)}x`, 8)}`;
    }),
    "",
    `health table reads during the non-streaming run: ${tableReads} (cache TTL 5 s)`,
    `memory (gateway RSS): idle ${results.memory && (results.memory as Record<string, number>).idleRssMiB} MiB; ` +
      Object.entries(results.memory as Record<string, number>)
        .filter(([k]) => k !== "idleRssMiB")
        .map(([k, v]) => `${k} ${v}`)
        .join(", "),
    `cold start: chat bundle ${cold.bundleBytes} B (${cold.bundleWithSdkBytes} B with the AWS SDK bundled); ` +
      `import ${cold.importMs.toFixed(1)} ms (${cold.importWithSdkMs.toFixed(1)} ms with SDK) vs empty module ${cold.importEmptyMs.toFixed(1)} ms, median of ${COLD_RUNS}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  mkdirSync("bench", { recursive: true });
  writeFileSync("bench/results.json", `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write("written: bench/results.json\n");
}

await main();
