import { performance } from "node:perf_hooks";
import { runSmokeCli } from "./cli.ts";
import { readHealthTable } from "./health-table.ts";
import { createSmokeHttp } from "./http.ts";

// See lib/server/main.ts: the SDK's Node 22 notice is noise for a local operator command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const now = () => performance.now();
const http = createSmokeHttp(now);
try {
  process.exitCode = await runSmokeCli(process.argv.slice(2), {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    env: process.env,
    http,
    now,
    clock: Date.now,
    readHealth: readHealthTable,
  });
} finally {
  http.close();
}
