/**
 * Issue 11: what the Bedrock provider costs the chat function's cold start. Builds the chat bundle
 * as deployed (infra/stack.ts's options) from a baseline checkout without the Bedrock provider and
 * from this one, and a bundle of the Bedrock client's first load, then imports each in fresh
 * processes. `node scripts/run-ts.mjs bench/bedrock-cold.ts [baseline checkout, default ../main]`.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { build } from "esbuild";
import { deployedBuildOptions } from "../infra/stack.ts";
import { importTimeMs, medianOfFreshProcesses } from "./bundle.ts";

const RUNS = 9;
const baseline = resolve(process.argv[2] ?? "../main");
const outdir = resolve("dist/bench-bedrock");
mkdirSync(outdir, { recursive: true });

const median = (script: string) => medianOfFreshProcesses(script, RUNS);
const importMs = (file: string) => importTimeMs(file, RUNS);

const defaultConfig = readFileSync("config/default.json", "utf8");
const bedrockConfig = readFileSync("config/bedrock.example.json", "utf8");
await build({
  ...deployedBuildOptions(defaultConfig),
  entryPoints: [`${baseline}/functions/chat.ts`],
  outfile: `${outdir}/baseline.mjs`,
});
await build({
  ...deployedBuildOptions(defaultConfig),
  entryPoints: ["functions/chat.ts"],
  outfile: `${outdir}/chat.mjs`,
});
await build({
  ...deployedBuildOptions(bedrockConfig),
  entryPoints: ["functions/chat.ts"],
  outfile: `${outdir}/chat-bedrock-config.mjs`,
});
// The first Bedrock call's extra work: evaluating the SDK and building its client.
writeFileSync(
  `${outdir}/first-load.ts`,
  `import { sdkBedrockRuntime } from ${JSON.stringify(resolve("lib/providers/bedrock.ts"))};
   export const load = () => sdkBedrockRuntime("us-east-1");`,
);
await build({
  ...deployedBuildOptions(defaultConfig),
  entryPoints: [`${outdir}/first-load.ts`],
  outfile: `${outdir}/first-load.mjs`,
});

const size = (f: string) => statSync(`${outdir}/${f}`).size;
const firstLoadMs = median(`const m = await import(${JSON.stringify(`file://${outdir}/first-load.mjs`)});
  const t = performance.now(); await m.load(); process.stdout.write(String(performance.now() - t));`);
const result = {
  baselineBytes: size("baseline.mjs"),
  chatBytes: size("chat.mjs"),
  baselineImportMs: importMs(`${outdir}/baseline.mjs`),
  chatImportMs: importMs(`${outdir}/chat.mjs`),
  chatWithBedrockConfigImportMs: importMs(`${outdir}/chat-bedrock-config.mjs`),
  firstBedrockLoadMs: firstLoadMs,
  runs: RUNS,
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
