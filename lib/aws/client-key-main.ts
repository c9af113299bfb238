import { randomBytes } from "node:crypto";
import { runClientKeyCli } from "./client-key-cli.ts";

// As in `npm start`: the lock file pins an SDK that runs on Node 20; its Node 22 warning is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

process.exitCode = await runClientKeyCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  now: Date.now,
  randomBytes,
});
