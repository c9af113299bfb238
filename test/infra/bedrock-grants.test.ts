import { describe, expect, it } from "vitest";
import { bedrockGrants, bedrockTargets, PROFILE_REGIONS } from "../../infra/bedrock-grants.ts";
import type { BedrockOptions } from "../../lib/providers/bedrock.ts";
import { validateConfig } from "../../lib/setup/validate.ts";

const scope = { partition: "aws", account: "111122223333" };

describe("bedrockGrants", () => {
  it("grants a plain model id on that foundation model in the provider's region only", () => {
    const { resources } = bedrockGrants(
      [{ providerId: "b", region: "eu-west-1", model: "amazon.nova-micro-v1:0" }],
      scope,
    );
    expect(resources).toEqual(["arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-micro-v1:0"]);
  });

  it("grants a geographic inference profile and its model in every region the profile routes to", () => {
    const model = "us.anthropic.claude-sonnet-4-20250514-v1:0";
    const { resources } = bedrockGrants([{ providerId: "b", region: "us-east-1", model }], scope);
    expect(resources).toContain(`arn:aws:bedrock:us-east-1:111122223333:inference-profile/${model}`);
    for (const region of PROFILE_REGIONS.us ?? [])
      expect(resources).toContain(
        `arn:aws:bedrock:${region}::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0`,
      );
    // Nothing outside the geography, and no wildcard.
    expect(resources.some((r) => r.includes("eu-") || r.includes("*"))).toBe(false);
    expect(resources).toHaveLength(1 + (PROFILE_REGIONS.us?.length ?? 0));
  });

  it("grants a global profile on the region-less foundation model ARN", () => {
    const { resources } = bedrockGrants(
      [{ providerId: "b", region: "eu-central-1", model: "global.anthropic.claude-x-v1:0" }],
      scope,
    );
    expect(resources).toEqual([
      "arn:aws:bedrock:::foundation-model/anthropic.claude-x-v1:0",
      "arn:aws:bedrock:eu-central-1:111122223333:inference-profile/global.anthropic.claude-x-v1:0",
      "arn:aws:bedrock:eu-central-1::foundation-model/anthropic.claude-x-v1:0",
    ]);
  });

  it("grants an ARN as it is, warning that an application profile's models are not known", () => {
    const arn = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc123";
    const { resources, warnings } = bedrockGrants(
      [{ providerId: "b", region: "us-east-1", model: arn }],
      scope,
    );
    expect(resources).toEqual([arn]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("application inference profile");
  });

  it("grants CountTokens on the Claude models route targets name, as the call names them, and on nothing else", () => {
    const arn = "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-v2";
    const { countTokens } = bedrockGrants(
      [
        { providerId: "b", region: "us-east-1", model: "us.anthropic.claude-x-v1:0" },
        { providerId: "b", region: "eu-central-1", model: "global.anthropic.claude-y-v1:0" },
        { providerId: "b", region: "us-east-1", model: "anthropic.claude-x-v1:0" },
        { providerId: "b", region: "us-west-2", model: arn },
        // Not Claude: Bedrock has no count for it here, and none is asked.
        { providerId: "b", region: "us-east-1", model: "amazon.nova-pro-v1:0" },
        // A health probe never counts.
        { providerId: "b", region: "eu-west-1", model: "eu.anthropic.claude-z-v1:0", probe: true },
      ],
      scope,
    );
    expect(countTokens).toEqual([
      "arn:aws:bedrock:eu-central-1::foundation-model/anthropic.claude-y-v1:0",
      "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-x-v1:0",
      arn,
    ]);
  });

  it("lists each resource once", () => {
    const target = { providerId: "b", region: "us-east-1", model: "anthropic.claude-v2" };
    expect(bedrockGrants([target, target], scope).resources).toHaveLength(1);
  });
});

describe("bedrockTargets for embeddings (issue 20)", () => {
  it("grants the embedding models the routes name and the embeddings probe's model, and nothing more", () => {
    const config = validateConfig({
      providers: [
        {
          id: "east",
          type: "bedrock",
          region: "us-east-1",
          healthCheck: { kind: "embeddings", model: "amazon.titan-embed-text-v2:0" },
        },
        {
          id: "west",
          type: "bedrock",
          region: "us-west-2",
          healthCheck: { kind: "embeddings", model: "cohere.embed-english-v3" },
        },
      ],
      models: {
        vectors: {
          targets: [
            { provider: "east", model: "amazon.titan-embed-text-v2:0", dimensions: 512 },
            { provider: "west", model: "amazon.titan-embed-text-v2:0", dimensions: 512 },
          ],
        },
        "cohere-v4": { targets: [{ provider: "east", model: "us.cohere.embed-v4:0" }] },
      },
    });
    const regionOf = (p: (typeof config.providers)[number]) =>
      p.type === "bedrock" ? (p.options as BedrockOptions).region : undefined;
    const { resources, warnings } = bedrockGrants(bedrockTargets(config, regionOf), scope);
    expect(warnings).toEqual([]);
    expect(resources).toEqual([
      "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.cohere.embed-v4:0",
      "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
      "arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-v4:0",
      "arn:aws:bedrock:us-east-2::foundation-model/cohere.embed-v4:0",
      "arn:aws:bedrock:us-west-1::foundation-model/cohere.embed-v4:0",
      "arn:aws:bedrock:us-west-2::foundation-model/amazon.titan-embed-text-v2:0",
      // Only the west provider's embeddings probe names Cohere v3 there.
      "arn:aws:bedrock:us-west-2::foundation-model/cohere.embed-english-v3",
      "arn:aws:bedrock:us-west-2::foundation-model/cohere.embed-v4:0",
    ]);
  });
});
