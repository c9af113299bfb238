import { runHealthCli } from "./cli.ts";

// See lib/server/main.ts: the SDK's Node 22 notice is noise for a local operator command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

process.exitCode = await runHealthCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  now: Date.now,
});
