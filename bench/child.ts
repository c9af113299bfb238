import { type ChildProcess, fork } from "node:child_process";
import type { Server } from "node:http";
import { listen } from "../lib/server/node-server.ts";

/** What a benchmark child process reports when the parent sends "stats". */
export interface ChildStats {
  rss: number;
  heapUsed: number;
  cpuMicros: number;
  tableReads: number;
  requests?: number;
}

/**
 * Serves `server` on 127.0.0.1 (port 0) as a child of `npm run bench`: sends the parent its URL,
 * answers "stats" with memory and CPU (plus `extra`), and exits when the parent disconnects.
 */
export async function serveAsBenchChild(
  server: Server,
  extra: () => Partial<ChildStats> = () => ({}),
): Promise<void> {
  server.keepAliveTimeout = 60_000;
  const url = await listen(server, 0, "127.0.0.1");
  process.on("message", (message) => {
    if (message !== "stats") return;
    global.gc?.();
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    const stats: ChildStats = {
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      cpuMicros: cpu.user + cpu.system,
      tableReads: 0,
      ...extra(),
    };
    process.send?.({ stats });
  });
  process.on("disconnect", () => process.exit(0));
  process.send?.({ url });
}

/** A benchmark child as the parent sees it: its process, its URL, and a way to ask for its stats. */
export interface BenchChild {
  process: ChildProcess;
  url: string;
  stats(): Promise<ChildStats>;
}

/**
 * Starts `script` (one of the bench/*.ts children, run through scripts/run-ts.mjs) with `env` added
 * to this process's environment, and resolves once it has sent its URL.
 */
export function startBenchChild(script: string, env: Record<string, string>): Promise<BenchChild> {
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
            child.on("message", function onStats(m: { stats?: ChildStats }) {
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
