import { describe, expect, it } from "vitest";
import { estimatePromptTokens, IMAGE_TOKENS } from "../../lib/core/prompt-size.ts";
import type { GenerationRequest } from "../../lib/core/request.ts";

const base: GenerationRequest = {
  model: "m",
  system: [],
  messages: [],
  stream: false,
  extensions: {},
  unmapped: {},
};

describe("estimatePromptTokens", () => {
  it("counts system, message, tool call, tool result and tool definition text, and a flat figure per image", () => {
    // Prepare: 8 + 12 + (4 + 8) + 4 + (4 + 4 + 17) characters, and two images.
    const request: GenerationRequest = {
      ...base,
      system: [{ type: "text", text: "be brief" }],
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is 2+2?" },
            { type: "image", mediaType: "image/png", data: "AAAA".repeat(1000) },
          ],
        },
        { role: "assistant", content: [{ type: "tool-call", id: "c1", name: "calc", input: '{"x":22}' }] },
        {
          role: "user",
          content: [
            {
              type: "tool-result",
              callId: "c1",
              content: [
                { type: "text", text: "four" },
                { type: "image", mediaType: "image/png", url: "https://example.com/a.png" },
              ],
            },
          ],
        },
      ],
      tools: [{ name: "calc", description: "math", parameters: { type: "object" } }],
    };
    // Act
    const tokens = estimatePromptTokens(request);
    // Assess: 61 characters are 16 tokens; the base64 bytes count as an image, not as text.
    expect(tokens).toBe(16 + 2 * IMAGE_TOKENS);
  });

  it("is 0 for an empty request", () => {
    expect(estimatePromptTokens(base)).toBe(0);
  });
});
