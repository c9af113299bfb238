import { fileURLToPath } from "node:url";
import {
  Annotations,
  CfnOutput,
  Duration,
  RemovalPolicy,
  SecretValue,
  Stack,
  type StackProps,
  Validations,
} from "aws-cdk-lib";
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { AttributeType, BillingMode, Table, TableEncryption } from "aws-cdk-lib/aws-dynamodb";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { Architecture, FunctionUrlAuthType, InvokeMode, Runtime } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";
import type { BuildOptions } from "esbuild";
import type { GatewayConfig } from "../lib/config/types.ts";
import { METRICS_NAMESPACE } from "../lib/metrics/emf.ts";
import type { BedrockOptions } from "../lib/providers/bedrock.ts";
import { parseConfig } from "../lib/setup/validate.ts";
import { bedrockGrants, bedrockTargets } from "./bedrock-grants.ts";
import { checkDeployable, UndeployableConfigError } from "./deployable.ts";
import { chatTableStatements, healthTableStatements } from "./table-access.ts";

export interface GatewayStackProps extends StackProps {
  /** The gateway configuration document (JSON text); validated at synth, baked into the bundle. */
  configText: string;
  /** `NONE` (public URL, the gateway checks bearer keys) or `AWS_IAM` (SigV4-signed callers only). */
  authType?: "NONE" | "AWS_IAM";
  /** Minutes between health-function invocations; checks loop inside when `health.intervalMs` is shorter. */
  healthScheduleMinutes?: number;
  chatMemoryMb?: number;
  chatTimeoutSeconds?: number;
  /** Keep the table when the stack is deleted (default), or destroy it. */
  retainTable?: boolean;
  /** Accept `{ "env": ... }` provider keys: the user sets those variables on the functions. */
  allowEnvKeys?: boolean;
  /**
   * Executions reserved for the chat function, which is also its cap (default
   * {@link DEFAULT_RESERVED_CONCURRENCY}); `"none"` (or 0) reserves none and caps it only by the
   * account's limit.
   */
  reservedConcurrency?: number | "none";
}

/**
 * The chat function's concurrency cap by default. Its URL is public: unbounded, a flood of requests
 * (each stream holds an execution for as long as it lasts, up to the 5 min timeout) could take every
 * execution the account has, starving its other functions, this stack's health function included,
 * and bill for all of them. 100 streams at once is plenty for a team; reserving them also means no
 * other function can starve the gateway. Lambda keeps at least 100 executions of an account
 * unreserved, so reserving 100 needs an account limit of 200 or more (the default limit is 1,000;
 * some new accounts start lower: deploy with `-c reservedConcurrency=none` there).
 */
export const DEFAULT_RESERVED_CONCURRENCY = 100;

/** A stack option (a `-c key=value`) that cannot be used; the message names it and says what can. */
export class StackOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StackOptionError";
  }
}

/**
 * `-c reservedConcurrency=N` as the CDK gives it (a string from the command line, maybe a number
 * from cdk.json): undefined for the default, `"none"` for `none` or `0`, else a whole number >= 1.
 * Lambda's own 0 would throttle every invocation: here 0 means "not reserved", never "stopped".
 */
export function parseReservedConcurrency(value: unknown): number | "none" | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  if (text === "none" || text === "0") return "none";
  if (/^[1-9][0-9]*$/.test(text)) return Number(text);
  throw new StackOptionError(
    `-c reservedConcurrency must be a whole number of executions (1 or more), or none (or 0) to reserve none; got ${JSON.stringify(text.slice(0, 40))}`,
  );
}

function reservedExecutions(value: number | "none" | undefined): number | undefined {
  const reserved = value ?? DEFAULT_RESERVED_CONCURRENCY;
  if (reserved === "none" || reserved === 0) return undefined;
  if (!Number.isInteger(reserved) || reserved < 0) {
    throw new StackOptionError(`reservedConcurrency must be a whole number or "none", got ${reserved}`);
  }
  return reserved;
}

const root = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url));

/**
 * How the functions are bundled: one definition for the stack and the benchmark, so the bundle
 * measured is the bundle deployed.
 */
export function bundleOptions(configText: string) {
  return {
    format: "esm" as const,
    target: "node22",
    minify: true,
    // The AWS SDK is bundled too, though the runtime ships one: one minified file imports in less
    // than half the time of the SDK's hundreds of modules (`npm run bench`, see BENCHMARKS.md), and
    // the version deployed is the version tested.
    external: [] as string[],
    // Some dependencies are CommonJS and call require(); ESM output needs it defined.
    banner: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    define: { __GATEWAY_CONFIG__: JSON.stringify(configText) },
  };
}

/**
 * The same options as an esbuild `build()` call takes them, for building a function bundle exactly
 * as deployed without a synth (the cold-start benchmarks, the bundled-handler tests); add
 * `entryPoints` and `outfile`.
 */
export function deployedBuildOptions(configText: string) {
  const options = bundleOptions(configText);
  return {
    bundle: true,
    platform: "node",
    logLevel: "silent",
    format: options.format,
    target: options.target,
    minify: options.minify,
    external: options.external,
    banner: { js: options.banner },
    define: options.define,
  } satisfies BuildOptions;
}

/**
 * What `npx cdk deploy` creates: the secrets, the health table, the chat function behind a
 * streaming Function URL, the scheduled health function, and their alarms.
 */
export class GatewayStack extends Stack {
  constructor(scope: Construct, id: string, props: GatewayStackProps) {
    super(scope, id, props);
    const config: GatewayConfig = parseConfig(props.configText, "the gateway configuration");
    const deployable = checkDeployable(config, { allowEnvKeys: props.allowEnvKeys === true });
    if (deployable.errors.length > 0) throw new UndeployableConfigError(deployable.errors);
    for (const warning of deployable.warnings) {
      Annotations.of(this).addWarningV2("@llm-gateway/config", warning);
    }
    const authType = props.authType ?? "NONE";
    const scheduleMinutes = props.healthScheduleMinutes ?? 1;

    const table = new Table(this, "HealthTable", {
      partitionKey: { name: "pk", type: AttributeType.STRING },
      sortKey: { name: "sk", type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: "ttl",
      encryption: TableEncryption.AWS_MANAGED,
      // Health state is cheap to rebuild, but operator weights and switches are not: keep by default.
      removalPolicy: props.retainTable === false ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });

    // Secrets hold placeholders only; keys are put in after deploy (see the outputs), never in the template.
    const clientKeys = new Secret(this, "ClientKeys", {
      secretName: `${this.stackName}/client-keys`,
      description:
        'Legacy caller keys, unnamed and unlimited: { "sha256": ["<hex>", ...] } (named keys live in the table)',
      secretStringValue: SecretValue.unsafePlainText('{"sha256":[]}'),
    });
    const providerSecretIds = [
      ...new Set(
        config.providers.flatMap((p) =>
          p.apiKey && "secretId" in p.apiKey && p.enabled ? [p.apiKey.secretId] : [],
        ),
      ),
    ];
    const providerSecrets = providerSecretIds.map(
      (name, i) =>
        new Secret(this, `ProviderKeys${i}`, {
          secretName: name,
          description: "Provider API keys for the LLM gateway (a JSON object, or the key itself)",
          secretStringValue: SecretValue.unsafePlainText("{}"),
        }),
    );

    const options = bundleOptions(props.configText);
    const bundling = {
      format: OutputFormat.ESM,
      target: options.target,
      minify: options.minify,
      sourceMap: false,
      externalModules: options.external,
      banner: options.banner,
      define: options.define,
      forceDockerBundling: false,
    };
    const reserved = reservedExecutions(props.reservedConcurrency);
    // The health function is not given the caller keys: it never authenticates a caller, so it
    // builds no caller machinery and its role needs no caller item and no client-keys secret.
    const healthEnvironment = {
      GATEWAY_TABLE: table.tableName,
      HEALTH_SCHEDULE_MS: String(scheduleMinutes * 60_000),
    };
    const chatEnvironment = {
      ...healthEnvironment,
      CLIENT_KEYS_SECRET: clientKeys.secretArn,
      AUTH_MODE: authType,
    };

    const chat = new NodejsFunction(this, "ChatFunction", {
      entry: root("functions/chat.ts"),
      handler: "handler",
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.chatMemoryMb ?? 1024,
      timeout: Duration.seconds(props.chatTimeoutSeconds ?? 300),
      ...(reserved === undefined ? {} : { reservedConcurrentExecutions: reserved }),
      bundling,
      environment: chatEnvironment,
      depsLockFilePath: root("package-lock.json"),
      projectRoot: root(""),
      logGroup: new LogGroup(this, "ChatLogs", {
        retention: RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
      description: "OpenAI-compatible LLM gateway (streaming Function URL)",
    });
    const url = chat.addFunctionUrl({
      authType: authType === "AWS_IAM" ? FunctionUrlAuthType.AWS_IAM : FunctionUrlAuthType.NONE,
      invokeMode: InvokeMode.RESPONSE_STREAM,
    });

    const health = new NodejsFunction(this, "HealthFunction", {
      entry: root("functions/health.ts"),
      handler: "handler",
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: 256,
      timeout: Duration.seconds(Math.min(900, scheduleMinutes * 60 + 30)),
      bundling,
      environment: healthEnvironment,
      depsLockFilePath: root("package-lock.json"),
      projectRoot: root(""),
      logGroup: new LogGroup(this, "HealthLogs", {
        retention: RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
      description: "LLM gateway health checks: writes provider health to the table",
    });
    new Rule(this, "HealthSchedule", {
      schedule: Schedule.rate(Duration.minutes(scheduleMinutes)),
      targets: [new LambdaFunction(health, { retryAttempts: 0 })],
    });

    // Least privilege: exactly the calls each function makes, on this table only, and only on the
    // items it reads and writes (infra/table-access.ts): the chat function, which callers reach,
    // writes counters, ledger items and benches, never a key's hash, revocation or limits.
    for (const statement of chatTableStatements(table.tableArn)) chat.addToRolePolicy(statement);
    for (const statement of healthTableStatements(table.tableArn)) health.addToRolePolicy(statement);
    for (const secret of providerSecrets) {
      secret.grantRead(chat);
      secret.grantRead(health);
    }
    clientKeys.grantRead(chat);

    // Bedrock: invoke only the models and inference profiles the configuration names (issue 11).
    const bedrock = bedrockGrants(
      bedrockTargets(config, (p) =>
        p.type === "bedrock" ? (p.options as BedrockOptions).region : undefined,
      ),
      { partition: this.partition, account: this.account },
    );
    if (bedrock.resources.length > 0) {
      for (const fn of [chat, health]) {
        fn.addToRolePolicy(
          new PolicyStatement({
            effect: Effect.ALLOW,
            actions: ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
            resources: bedrock.resources,
          }),
        );
      }
    }
    // Messages' count_tokens (issue 18): Bedrock's CountTokens on the Claude models routes name, for
    // the chat function only (the health checks never count).
    if (bedrock.countTokens.length > 0) {
      chat.addToRolePolicy(
        new PolicyStatement({
          effect: Effect.ALLOW,
          actions: ["bedrock:CountTokens"],
          resources: bedrock.countTokens,
        }),
      );
    }
    for (const warning of bedrock.warnings)
      Annotations.of(this).addWarningV2("@llm-gateway/bedrock", warning);

    new Alarm(this, "ChatErrorsAlarm", {
      alarmDescription: "The chat function itself failed (invocation errors)",
      metric: chat.metricErrors({ period: Duration.minutes(5) }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    new Alarm(this, "GatewayErrorsAlarm", {
      alarmDescription: "Callers received 5xx or 429 answers (every target failed)",
      metric: new Metric({
        namespace: METRICS_NAMESPACE,
        metricName: "Errors",
        statistic: "Sum",
        period: Duration.minutes(5),
      }),
      threshold: 5,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    new Alarm(this, "NoProviderAvailableAlarm", {
      alarmDescription: "Every provider failed its health checks",
      metric: new Metric({
        namespace: METRICS_NAMESPACE,
        metricName: "AvailableProviders",
        statistic: "Maximum",
        period: Duration.minutes(Math.max(1, scheduleMinutes)),
      }),
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.BREACHING,
    });

    new CfnOutput(this, "FunctionUrl", { value: url.url, description: "OpenAI base URL: append v1" });
    new CfnOutput(this, "HealthTableName", { value: table.tableName });
    new CfnOutput(this, "ClientKeysSecretName", { value: clientKeys.secretName });
    new CfnOutput(this, "CreateCallerKeyCommand", {
      value: `npm run client-key -- create --name NAME --table ${table.tableName} --region ${this.region}`,
      description:
        "Creates a named caller key in the table (limits: --rpm, --tokens-per-day, ...); prints it once",
    });
    new CfnOutput(this, "PutClientKeyCommand", {
      value: `npm run client-key -- new --secret ${clientKeys.secretName} --region ${this.region}`,
      description: "Creates a caller key and prints the aws command that stores its hash",
    });
    providerSecretIds.forEach((name, i) => {
      const fields = config.providers.flatMap((p) =>
        p.apiKey && "secretId" in p.apiKey && p.apiKey.secretId === name && p.apiKey.jsonKey
          ? [p.apiKey.jsonKey]
          : [],
      );
      const example = fields.length > 0 ? `'{${fields.map((f) => `"${f}":"<key>"`).join(",")}}'` : "'<key>'";
      new CfnOutput(this, `PutProviderKeyCommand${i}`, {
        value: `aws secretsmanager put-secret-value --secret-id ${name} --secret-string ${example} --region ${this.region}`,
      });
    });

    // cdk-nag findings we accept, each for a stated reason.
    for (const fn of [chat, health]) {
      Validations.of(fn).acknowledge({
        id: "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        reason: "AWSLambdaBasicExecutionRole only lets the function write its own logs.",
      });
    }
    for (const secret of [clientKeys, ...providerSecrets]) {
      Validations.of(secret).acknowledge({
        id: "AwsSolutions-SMG4",
        reason:
          "Provider API keys and caller keys are issued outside AWS; they are rotated by putting a new value.",
      });
    }
  }
}
