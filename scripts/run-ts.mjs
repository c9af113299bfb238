// Runs a TypeScript entry point: bundles it with esbuild (dependencies stay external) into dist/
// and imports the result. Used by `npm start` and the other npm scripts; Node 20 cannot run .ts.
import { mkdirSync } from "node:fs";
import { basename, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write("usage: node scripts/run-ts.mjs <entry.ts> [args...]\n");
  process.exit(2);
}
const outdir = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../dist");
mkdirSync(outdir, { recursive: true });
const outfile = resolve(outdir, `${basename(entry, ".ts")}.mjs`);
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: "inline",
  logLevel: "warning",
});
process.argv = [process.argv[0], outfile, ...args];
await import(pathToFileURL(outfile).href);
