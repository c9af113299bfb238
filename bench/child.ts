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
