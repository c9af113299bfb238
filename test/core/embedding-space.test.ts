import { describe, expect, it } from "vitest";
import { baseModelId, inEmbeddingSpaceOf, sameEmbeddingSpace } from "../../lib/core/embedding-space.ts";

describe("the foundation model behind a model id", () => {
  it("drops ARNs' resource paths and geographic inference-profile prefixes", () => {
    expect(baseModelId("us.amazon.titan-embed-text-v2:0")).toBe("amazon.titan-embed-text-v2:0");
    expect(baseModelId("eu.cohere.embed-v4:0")).toBe("cohere.embed-v4:0");
    expect(baseModelId("us-gov.cohere.embed-english-v3")).toBe("cohere.embed-english-v3");
    expect(baseModelId("global.cohere.embed-v4:0")).toBe("cohere.embed-v4:0");
    expect(baseModelId("arn:aws:bedrock:eu-west-1::foundation-model/cohere.embed-v4:0")).toBe(
      "cohere.embed-v4:0",
    );
    expect(
      baseModelId("arn:aws:bedrock:us-east-1:123456789012:inference-profile/apac.cohere.embed-v4:0"),
    ).toBe("cohere.embed-v4:0");
  });

  it("leaves other ids as they are", () => {
    expect(baseModelId("text-embedding-3-small")).toBe("text-embedding-3-small");
    expect(baseModelId("amazon.titan-embed-text-v2:0")).toBe("amazon.titan-embed-text-v2:0");
    // A two-part id whose vendor is also a prefix's name is not stripped: `us` needs a third part.
    expect(baseModelId("us.model")).toBe("us.model");
    expect(baseModelId("xx.amazon.titan-embed-text-v2:0")).toBe("xx.amazon.titan-embed-text-v2:0");
  });
});

describe("whether two targets produce the same vectors", () => {
  const east = { provider: "bedrock-east", model: "us.amazon.titan-embed-text-v2:0" };
  const west = { provider: "bedrock-west", model: "amazon.titan-embed-text-v2:0" };

  it("is so for one model in two regions or on two providers", () => {
    expect(sameEmbeddingSpace(east, west)).toBe(true);
    expect(
      sameEmbeddingSpace(
        { provider: "openai", model: "text-embedding-3-small" },
        { provider: "azure", model: "text-embedding-3-small" },
      ),
    ).toBe(true);
  });

  it("is not so for two models, however alike", () => {
    expect(sameEmbeddingSpace(east, { provider: "bedrock-east", model: "cohere.embed-v4:0" })).toBe(false);
    expect(
      sameEmbeddingSpace(
        { provider: "openai", model: "text-embedding-3-small" },
        { provider: "openai", model: "text-embedding-3-large" },
      ),
    ).toBe(false);
    expect(sameEmbeddingSpace(west, { provider: "b", model: "amazon.titan-embed-text-v2" })).toBe(false);
  });

  it("follows declared spaces: one space joins two models, two spaces part one model", () => {
    const a = { provider: "self-hosted", model: "bge-m3", space: "bge-m3" };
    const b = { provider: "other-host", model: "BAAI/bge-m3", space: "bge-m3" };
    expect(sameEmbeddingSpace(a, b)).toBe(true);
    expect(sameEmbeddingSpace({ ...east, space: "index-1" }, { ...west, space: "index-2" })).toBe(false);
    // One declaration alone decides nothing: the models do.
    expect(sameEmbeddingSpace({ ...east, space: "index-1" }, west)).toBe(true);
    expect(sameEmbeddingSpace(a, { provider: "other-host", model: "BAAI/bge-m3" })).toBe(false);
  });

  it("needs the configured dimensions to agree", () => {
    expect(sameEmbeddingSpace({ ...east, dimensions: 256 }, { ...west, dimensions: 256 })).toBe(true);
    expect(sameEmbeddingSpace({ ...east, dimensions: 256 }, { ...west, dimensions: 512 })).toBe(false);
    expect(sameEmbeddingSpace({ ...east, dimensions: 256 }, west)).toBe(false);
    expect(
      sameEmbeddingSpace(
        { provider: "a", model: "x", space: "s", dimensions: 8 },
        { provider: "b", model: "y", space: "s" },
      ),
    ).toBe(false);
  });

  it("filters a failover order to the first target's space, keeping its order", () => {
    const cohere = { provider: "bedrock-east", model: "cohere.embed-v4:0" };
    const eu = { provider: "bedrock-eu", model: "eu.amazon.titan-embed-text-v2:0" };
    expect(inEmbeddingSpaceOf(east, [east, cohere, west, eu])).toEqual([east, west, eu]);
    expect(inEmbeddingSpaceOf(cohere, [east, cohere, west])).toEqual([cohere]);
  });
});
