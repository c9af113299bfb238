import { defineOpenAICompatible } from "./openai-compatible.ts";

/**
 * OpenAI's chat completions API (https://platform.openai.com/docs/api-reference/chat). It defines the
 * wire format every OpenAI-compatible type speaks, so it is data only: its base URL.
 */
export const openai = defineOpenAICompatible({
  type: "openai",
  baseUrl: "https://api.openai.com/v1",
});
