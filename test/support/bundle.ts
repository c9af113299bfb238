import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { build } from "esbuild";
import { deployedBuildOptions, GatewayStack } from "../../infra/stack.ts";
import type { TestTable } from "./dynamo.ts";
import { useLoopbackAws } from "./fake-secrets.ts";
import { installLambdaShim } from "./lambda-runtime.ts";

/**
 * Bundles one function entry with the stack's own esbuild options (infra/stack.ts `bundleOptions`,
 * what NodejsFunction is given), `configText` baked in as on deploy. Quicker than `cdk synth`
 * ({@link synthesizeFunctions}), which runs the same options through the CDK. Resolves to `outfile`.
 */
export async function bundleAsDeployed(entry: string, configText: string, outfile: string): Promise<string> {
  await build({ ...deployedBuildOptions(configText), entryPoints: [entry], outfile });
  return outfile;
}

/**
 * Synthesizes the stack with bundling (local esbuild) into `outdir` and returns the `index.mjs` of
 * the chat and health functions' assets: the handlers exactly as they would be deployed.
 */
export function synthesizeFunctions(
  outdir: string,
  stackId: string,
  configText: string,
): { chat: string; health: string } {
  const app = new App({ outdir });
  const stack = new GatewayStack(app, stackId, { configText });
  app.synth();
  const functions = Template.fromStack(stack).findResources("AWS::Lambda::Function");
  const assetOf = (description: RegExp) => {
    const fn = Object.values(functions).find((f) =>
      description.test(String((f as { Properties: { Description?: string } }).Properties.Description)),
    );
    const key = (fn as { Properties: { Code: { S3Key: string } } }).Properties.Code.S3Key;
    return resolve(outdir, `asset.${key.replace(/\.zip$/, "")}`, "index.mjs");
  };
  return { chat: assetOf(/streaming Function URL/), health: assetOf(/health checks/) };
}

/**
 * Installs the shim of the Lambda streaming runtime, then imports a bundled function and returns
 * its `handler`. Set the function's environment first, as Lambda does before it loads the code.
 */
export async function importHandler(file: string): Promise<unknown> {
  installLambdaShim();
  return ((await import(pathToFileURL(file).href)) as { handler: unknown }).handler;
}

/**
 * The environment the stack gives a function (its table, AUTH_MODE NONE, logs off), with its AWS
 * SDK pointed at dynalite and the Secrets Manager fake on loopback; `env` adds or overrides.
 */
export function useFunctionEnvironment(
  table: TestTable,
  secretsEndpoint: string,
  env: Record<string, string> = {},
): void {
  useLoopbackAws(table.dynamo.endpoint, secretsEndpoint);
  Object.assign(process.env, { GATEWAY_TABLE: table.tableName, AUTH_MODE: "NONE", LOG_LEVEL: "off", ...env });
}
