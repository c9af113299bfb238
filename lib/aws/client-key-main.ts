import { runClientKeyCli } from "./client-key-cli.ts";

process.exitCode = await runClientKeyCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
});
