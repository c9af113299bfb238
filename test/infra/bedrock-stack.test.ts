import { readFileSync } from "node:fs";
import { App, Validations } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { PROFILE_REGIONS } from "../../infra/bedrock-grants.ts";
import { GatewayStack } from "../../infra/stack.ts";

/** Synthesizes without bundling, cdk-nag on (an unacknowledged finding throws). */
function synth(configText: string): Template {
  const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
  const stack = new GatewayStack(app, "Test", { configText });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
  return Template.fromStack(stack);
}

interface Statement {
  Action: string | string[];
  Resource: unknown;
  /** The logical ids of the roles the statement's policy is attached to (added here). */
  roles: string[];
}

/** The Bedrock statements of every IAM policy in the template, each with its policy's roles. */
function bedrockStatements(template: Template): Statement[] {
  const policies = template.findResources("AWS::IAM::Policy");
  return Object.values(policies).flatMap((policy) => {
    const roles = (policy.Properties.Roles as { Ref: string }[]).map((r) => r.Ref);
    return (policy.Properties.PolicyDocument.Statement as Statement[])
      .filter((s) => [s.Action].flat().some((a) => a.startsWith("bedrock:")))
      .map((s) => ({ ...s, roles }));
  });
}

const isCount = (s: Statement) => [s.Action].flat().includes("bedrock:CountTokens");

/** A resource as CloudFormation writes it (`Fn::Join` of partition and account) in plain text. */
function plain(resource: unknown): string {
  if (typeof resource === "string") return resource;
  const join = (resource as { "Fn::Join"?: [string, unknown[]] })["Fn::Join"];
  if (!join) return JSON.stringify(resource);
  return join[1]
    .map((part) => {
      if (typeof part === "string") return part;
      const ref = (part as { Ref?: string }).Ref;
      return ref === "AWS::Partition" ? "aws" : ref === "AWS::AccountId" ? "ACCOUNT" : JSON.stringify(part);
    })
    .join("");
}

describe("the stack with config/bedrock.example.json", () => {
  const template = synth(readFileSync("config/bedrock.example.json", "utf8"));

  it("grants both functions Bedrock invoke on the configured profiles and their models only (cdk-nag passes)", () => {
    const statements = bedrockStatements(template).filter((s) => !isCount(s));
    expect(statements).toHaveLength(2); // the chat function and the health function
    for (const statement of statements) {
      expect([statement.Action].flat().sort()).toEqual([
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
      ]);
      const resources = [statement.Resource].flat().map(plain);
      const model = "anthropic.claude-sonnet-4-20250514-v1:0";
      const expected = [
        `arn:aws:bedrock:us-east-1:ACCOUNT:inference-profile/us.${model}`,
        `arn:aws:bedrock:eu-west-1:ACCOUNT:inference-profile/eu.${model}`,
        ...(PROFILE_REGIONS.us ?? []).map((r) => `arn:aws:bedrock:${r}::foundation-model/${model}`),
        ...(PROFILE_REGIONS.eu ?? []).map((r) => `arn:aws:bedrock:${r}::foundation-model/${model}`),
      ];
      expect(resources.sort()).toEqual(expected.sort());
      expect(resources.some((r) => r.includes("*"))).toBe(false);
    }
  });

  it("grants the chat function alone CountTokens on the routed Claude models, in each provider's region", () => {
    const counts = bedrockStatements(template).filter(isCount);
    expect(counts).toHaveLength(1);
    const [count] = counts;
    expect(count?.Action).toBe("bedrock:CountTokens");
    expect(count?.roles).toHaveLength(1);
    expect(count?.roles[0]).toMatch(/^Chat/);
    // CountTokens counts for the foundation model a profile names, where the provider calls it.
    const model = "anthropic.claude-sonnet-4-20250514-v1:0";
    expect([count?.Resource].flat().map(plain).sort()).toEqual([
      `arn:aws:bedrock:eu-west-1::foundation-model/${model}`,
      `arn:aws:bedrock:us-east-1::foundation-model/${model}`,
    ]);
  });

  it("grants nothing on Bedrock when no Bedrock provider is configured", () => {
    const none = synth(readFileSync("config/aws.example.json", "utf8"));
    expect(bedrockStatements(none)).toHaveLength(0);
  });
});
