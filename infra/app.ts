import { readFileSync } from "node:fs";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { ConfigError } from "../lib/config/fields.ts";
import { UndeployableConfigError } from "./deployable.ts";
import { GatewayStack, parseReservedConcurrency, StackOptionError } from "./stack.ts";

/**
 * `npx cdk deploy [-c config=path] [-c auth=NONE|AWS_IAM] [-c healthMinutes=1] [-c stackName=...]
 * [-c retainTable=false] [-c allowEnvKeys=true] [-c reservedConcurrency=100|none]`. The configuration
 * defaults to the shipped mock one.
 */
const app = new App();
const context = (key: string): string | undefined => app.node.tryGetContext(key);
const configPath = context("config") ?? "config/default.json";
const auth = context("auth") ?? "NONE";
if (auth !== "NONE" && auth !== "AWS_IAM") throw new Error(`-c auth must be NONE or AWS_IAM, got ${auth}`);

try {
  const reservedConcurrency = parseReservedConcurrency(context("reservedConcurrency"));
  new GatewayStack(app, context("stackName") ?? "LlmGateway", {
    configText: readFileSync(configPath, "utf8"),
    authType: auth,
    healthScheduleMinutes: Number(context("healthMinutes") ?? 1),
    retainTable: context("retainTable") !== "false",
    // Context from the command line is a string; from cdk.json it may be a boolean.
    allowEnvKeys: String(context("allowEnvKeys")) === "true",
    ...(reservedConcurrency === undefined ? {} : { reservedConcurrency }),
    ...(process.env.CDK_DEFAULT_ACCOUNT && process.env.CDK_DEFAULT_REGION
      ? { env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION } }
      : {}),
  });
} catch (error) {
  // A configuration mistake is the user's to fix: the message says what and how; a stack trace of
  // the CDK app would only bury it.
  if (error instanceof ConfigError || error instanceof UndeployableConfigError) {
    process.stderr.write(`${configPath}: ${error.message}\n`);
    process.exit(1);
  }
  if (error instanceof StackOptionError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
