import { fork } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * `npm run bench:profile`: profiles the gateway process (node --cpu-prof) under N requests in
 * flight against the benchmark upstream, then prints where its CPU went: the top functions by self
 * time, and the gateway's own functions by inclusive time. This is how BENCHMARKS.md's hot-path
 * figures were found.
 */
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 64);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const dir = mkdtempSync(join(tmpdir(), "gateway-profile-"));

function start(script: string, env: Record<string, string>, execArgv: string[] = []) {
  const child = fork("scripts/run-ts.mjs", [script], {
    env: { ...process.env, ...env },
    execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return new Promise<{ child: typeof child; url: string }>((resolve) =>
    child.on("message", (m: { url?: string }) => m.url && resolve({ child, url: m.url })),
  );
}

const upstream = await start("bench/upstream.ts", {});
const gateway = await start("bench/gateway.ts", { BENCH_UPSTREAM_URL: upstream.url }, [
  "--cpu-prof",
  `--cpu-prof-dir=${dir}`,
]);
const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
const body = JSON.stringify({ model: "bench-model", messages: [{ role: "user", content: "Hello" }] });
const once = () =>
  new Promise<void>((resolve, reject) => {
    const req = http.request(
      `${gateway.url}/v1/chat/completions`,
      { method: "POST", agent, headers: { "content-type": "application/json" } },
      (res) => {
        res.resume();
        res.on("end", resolve);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
const until = Date.now() + SECONDS * 1000;
let served = 0;
await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () => {
    while (Date.now() < until) {
      await once();
      served++;
    }
  }),
);
agent.destroy();
process.stdout.write(
  `${served} requests in ${SECONDS} s at ${IN_FLIGHT} in flight (${Math.round(served / SECONDS)} req/s while profiled)\n`,
);
await new Promise<void>((resolve) => {
  gateway.child.once("exit", () => resolve());
  gateway.child.disconnect(); // the gateway exits and writes its profile
});
upstream.child.disconnect();

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
if (!file) throw new Error(`no profile written in ${dir}`);
const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n: Node) =>
  `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").slice(-2).join("/")}:${n.callFrame.lineNumber}`;
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const node = byId.get(id) as Node;
  self.set(name(node), (self.get(name(node)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const key = name(byId.get(cur) as Node);
    if (!seen.has(key)) inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    seen.add(key);
  }
});
const pct = (t: number) => `${((t / total) * 100).toFixed(1).padStart(5)}%`;
process.stdout.write("top functions by self time:\n");
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20))
  process.stdout.write(`${pct(t)}  ${k}\n`);
// Inclusive time undercounts code reached through async continuations (their stacks start afresh).
process.stdout.write("the gateway's own functions by inclusive time (synchronous stacks only):\n");
for (const [k, t] of [...inclusive]
  .filter(([k]) => k.includes("dist/gateway.mjs"))
  .sort((a, b) => b[1] - a[1])
  .slice(0, 20)) {
  process.stdout.write(`${pct(t)}  ${k}\n`);
}
const own = [...self].filter(([k]) => k.includes("dist/gateway.mjs")).reduce((sum, [, t]) => sum + t, 0);
const idle = self.get("(idle) :-1") ?? 0;
process.stdout.write(
  `self time in the gateway's own code (not Node's, not the SDK's): ${pct(own).trim()} of samples, ` +
    `${((own / (total - idle)) * 100).toFixed(1)}% of busy samples\n`,
);
process.stdout.write(`profile: ${join(dir, file)}\n`);
