import { defineOpenAICompatible } from "./openai-compatible.ts";

const BASE_URL = "https://api.deepseek.com";

/**
 * DeepSeek speaks the OpenAI wire format (https://api-docs.deepseek.com/); its differences are data:
 * its base URL, and the /beta base where it serves prefix completion ("chat prefix completion", an
 * assistant message continued; https://api-docs.deepseek.com/guides/chat_prefix_completion). Under
 * load it sends blank lines and `: keep-alive` comments before content, which the SSE reader drops
 * and the first-token timer ignores.
 */
export const deepseek = defineOpenAICompatible({
  type: "deepseek",
  baseUrl: BASE_URL,
  prefillBaseUrl: `${BASE_URL}/beta`,
});
