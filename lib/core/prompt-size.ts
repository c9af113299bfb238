/**
 * The size of a canonical request's prompt in tokens, estimated from its text (issue 18: Messages'
 * `count_tokens` on a target with no count of its own). The estimate is {@link estimateTokens} over
 * every character the model reads: system text, message text, tool calls' input and results, reasoning
 * text, and each tool's name, description and schema as JSON; an image counts
 * {@link IMAGE_TOKENS}. It is not a tokenizer's count: about right for English prose, low for code
 * and for languages with more tokens per character.
 */
import type { GenerationRequest, ImagePart, TextPart } from "./request.ts";
import { estimateTokens } from "./usage.ts";

/**
 * Tokens counted per image: Anthropic's figure for an image of about 1.15 megapixels, the largest it
 * takes without scaling it down (https://docs.anthropic.com/en/docs/build-with-claude/vision).
 */
export const IMAGE_TOKENS = 1_600;

export function estimatePromptTokens(request: GenerationRequest): number {
  let chars = 0;
  let images = 0;
  const parts = (content: ReadonlyArray<TextPart | ImagePart>) => {
    for (const part of content) {
      if (part.type === "text") chars += part.text.length;
      else images++;
    }
  };
  parts(request.system);
  for (const message of request.messages) {
    for (const part of message.content) {
      switch (part.type) {
        case "text":
        case "refusal":
        case "reasoning":
          chars += part.text.length;
          break;
        case "image":
          images++;
          break;
        case "tool-call":
          chars += part.name.length + part.input.length;
          break;
        case "tool-result":
          parts(part.content);
          break;
      }
    }
  }
  for (const tool of request.tools ?? []) {
    chars += tool.name.length + (tool.description?.length ?? 0);
    // The depth of a schema is bounded by the body's nesting limit before it gets here.
    if (tool.parameters !== undefined) chars += JSON.stringify(tool.parameters).length;
  }
  return estimateTokens(chars) + images * IMAGE_TOKENS;
}
