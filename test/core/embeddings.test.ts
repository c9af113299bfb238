import { describe, expect, it } from "vitest";
import { embeddingUsage, estimateEmbeddingTokens } from "../../lib/core/embeddings.ts";

describe("embedding usage", () => {
  it("estimates text at 4 characters a token and counts token arrays", () => {
    expect(estimateEmbeddingTokens([{ text: "abcde" }, { tokens: [1, 2, 3] }, { text: "a" }])).toBe(6);
    expect(estimateEmbeddingTokens([])).toBe(0);
  });

  it("meters input tokens only, estimated or not as the result says", () => {
    expect(embeddingUsage({ vectors: [], usage: { inputTokens: 12, estimated: true }, model: "m" })).toEqual({
      inputTokens: 12,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      estimated: true,
    });
  });
});
