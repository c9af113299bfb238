import { readFileSync } from "node:fs";
import { App, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_RESERVED_CONCURRENCY,
  GatewayStack,
  type GatewayStackProps,
  parseReservedConcurrency,
} from "../../infra/stack.ts";

const awsConfig = readFileSync("config/aws.example.json", "utf8");

/** Synthesizes without bundling (one test elsewhere bundles for real), with cdk-nag on. */
function synth(props: Partial<GatewayStackProps> = {}): Template {
  const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
  const stack = new GatewayStack(app, "Test", { configText: awsConfig, ...props });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth(); // throws on any unacknowledged cdk-nag finding
  return Template.fromStack(stack);
}

const template = synth();

describe("GatewayStack", () => {
  it("has an on-demand health table with PITR, TTL and a deliberate removal policy", () => {
    template.hasResource("AWS::DynamoDB::Table", {
      DeletionPolicy: "Retain",
      Properties: {
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: "ttl", Enabled: true },
      },
    });
    synth({ retainTable: false }).hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Delete" });
  });

  it("runs both functions on Node.js 24, arm64, with sized memory and timeout", () => {
    template.resourceCountIs("AWS::Lambda::Function", 2);
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("streaming Function URL"),
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      MemorySize: 1024,
      Timeout: 300,
      Environment: { Variables: Match.objectLike({ AUTH_MODE: "NONE", GATEWAY_TABLE: Match.anyValue() }) },
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("health checks"),
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
    });
  });

  it("serves chat through a Function URL in RESPONSE_STREAM mode, public by default", () => {
    template.hasResourceProperties("AWS::Lambda::Url", { AuthType: "NONE", InvokeMode: "RESPONSE_STREAM" });
    template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunctionUrl",
      Principal: "*",
    });
  });

  it("can require SigV4 callers instead", () => {
    const iam = synth({ authType: "AWS_IAM" });
    iam.hasResourceProperties("AWS::Lambda::Url", { AuthType: "AWS_IAM", InvokeMode: "RESPONSE_STREAM" });
    iam.resourcePropertiesCountIs("AWS::Lambda::Permission", { Principal: "*" }, 0);
  });

  it("invokes the health function on a configurable schedule", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 minute)",
      State: "ENABLED",
    });
    synth({ healthScheduleMinutes: 5 }).hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(5 minutes)",
    });
  });

  it("creates secrets holding placeholders only, never a key", () => {
    template.resourceCountIs("AWS::SecretsManager::Secret", 2);
    template.hasResourceProperties("AWS::SecretsManager::Secret", {
      Name: "llm-gateway/provider-keys",
      SecretString: "{}",
    });
    template.hasResourceProperties("AWS::SecretsManager::Secret", {
      Name: "Test/client-keys",
      SecretString: '{"sha256":[]}',
    });
    expect(JSON.stringify(template.toJSON())).not.toMatch(/sk-[A-Za-z0-9]{6,}/);
  });

  it("grants each function exactly the table calls it makes, and secret reads", () => {
    const policies = template.findResources("AWS::IAM::Policy");
    const statements = Object.values(policies).flatMap(
      (p) =>
        (p as { Properties: { PolicyDocument: { Statement: Array<{ Action: unknown }> } } }).Properties
          .PolicyDocument.Statement,
    );
    const actions = statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])) as string[];
    expect([...new Set(actions.filter((a) => a.startsWith("dynamodb:")))].sort()).toEqual([
      "dynamodb:BatchGetItem",
      // Stored responses only (issue 19): DeleteItem and Query on RESPONSE#* (table-access.test.ts).
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]);
    expect(actions).toEqual(expect.arrayContaining(["secretsmanager:GetSecretValue"]));
    expect(actions.some((a) => a === "dynamodb:*" || a === "*")).toBe(false);
    // Which items and attributes each role may touch: test/infra/table-access.test.ts.
  });

  it("caps the chat function at 100 reserved executions by default, and only the chat function", () => {
    expect(DEFAULT_RESERVED_CONCURRENCY).toBe(100);
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("streaming Function URL"),
      ReservedConcurrentExecutions: 100,
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("health checks"),
      ReservedConcurrentExecutions: Match.absent(),
    });
  });

  it("takes another cap, or none (never Lambda's 0, which would stop the function)", () => {
    synth({ reservedConcurrency: 25 }).hasResourceProperties("AWS::Lambda::Function", {
      Description: Match.stringLikeRegexp("streaming Function URL"),
      ReservedConcurrentExecutions: 25,
    });
    for (const unreserved of ["none", 0] as const) {
      synth({ reservedConcurrency: unreserved }).resourcePropertiesCountIs(
        "AWS::Lambda::Function",
        { ReservedConcurrentExecutions: Match.anyValue() },
        0,
      );
    }
    expect(
      () => new GatewayStack(new App(), "Half", { configText: awsConfig, reservedConcurrency: 2.5 }),
    ).toThrow(/reservedConcurrency must be a whole number/);
  });

  it("reads -c reservedConcurrency as the command line gives it", () => {
    expect(parseReservedConcurrency(undefined)).toBeUndefined();
    expect(parseReservedConcurrency("40")).toBe(40);
    expect(parseReservedConcurrency(40)).toBe(40);
    expect(parseReservedConcurrency("none")).toBe("none");
    expect(parseReservedConcurrency("0")).toBe("none");
    for (const bad of ["-1", "1.5", "ten", ""]) {
      expect(() => parseReservedConcurrency(bad)).toThrow(
        /-c reservedConcurrency must be a whole number of executions \(1 or more\), or none/,
      );
    }
  });

  it("keeps logs a month and alarms on errors and on no provider available", () => {
    template.resourcePropertiesCountIs("AWS::Logs::LogGroup", { RetentionInDays: 30 }, 2);
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "Errors",
      Namespace: "AWS/Lambda",
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "Errors",
      Namespace: "LlmGateway",
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "AvailableProviders",
      Namespace: "LlmGateway",
      ComparisonOperator: "LessThanThreshold",
      Threshold: 1,
    });
  });

  it("outputs the URL, the table, the secrets and the commands to put keys in them", () => {
    const outputs = template.findOutputs("*");
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining([
        "FunctionUrl",
        "HealthTableName",
        "ClientKeysSecretName",
        "PutClientKeyCommand",
        "PutProviderKeyCommand0",
      ]),
    );
    const put = JSON.stringify(outputs.PutProviderKeyCommand0?.Value);
    expect(put).toContain("aws secretsmanager put-secret-value --secret-id llm-gateway/provider-keys");
    expect(put).toContain('\\"openai\\":\\"<key>\\"');
  });

  it("refuses at synth a configuration whose keys the functions will not have, unless told otherwise", () => {
    const envKeyed = readFileSync("config/openai-deepseek.example.json", "utf8");
    expect(() => new GatewayStack(new App(), "Env", { configText: envKeyed })).toThrow(
      /cannot work on Lambda:\n {2}- providers\[0\] "openai" takes its key from the environment variable OPENAI_API_KEY.*"secretId"/,
    );
    const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
    const stack = new GatewayStack(app, "EnvAllowed", { configText: envKeyed, allowEnvKeys: true });
    app.synth();
    Template.fromStack(stack).resourceCountIs("AWS::Lambda::Function", 2);
  });

  it("refuses an invalid configuration at synth, naming the field", () => {
    expect(() => new GatewayStack(new App(), "Bad", { configText: '{"providers":[],"models":{}}' })).toThrow(
      /providers: must be a non-empty array/,
    );
  });
});
