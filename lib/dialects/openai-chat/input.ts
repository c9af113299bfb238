import type { GenerationRequest } from "../../core/request.ts";
import type { GenerationInput } from "../../providers/generation.ts";
import { toGeneration } from "./parse.ts";
import type { ChatRequest } from "./wire.ts";

/**
 * An OpenAI chat body as a generation input: passed through as it is by a provider that speaks
 * OpenAI chat, parsed into the canonical request (once, on first use) by one that translates.
 */
export function chatInput(body: ChatRequest, prefill?: string): GenerationInput {
  let canonical: GenerationRequest | undefined;
  return {
    dialect: "openai-chat",
    body,
    ...(prefill === undefined ? {} : { prefill }),
    canonical() {
      canonical ??= toGeneration(body);
      return canonical;
    },
  };
}
