/**
 * OpenAI Chat Completions wire shapes, and the few readings of them the gateway needs (issue 17:
 * wire shapes live in the adapter that speaks them, not in the provider contract). Request:
 * https://platform.openai.com/docs/api-reference/chat/create; chunk:
 * https://platform.openai.com/docs/api-reference/chat-streaming/streaming.
 */
import type { Usage } from "../../core/usage.ts";

/** A chat message as the caller sent it; fields beyond these pass through untouched. */
export interface ChatMessage {
  role: string;
  content?: unknown;
  [field: string]: unknown;
}

/** The caller's chat completion request. Unknown fields (tools, response_format, ...) pass through. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean; [field: string]: unknown };
  n?: number;
  [field: string]: unknown;
}

/** The parts of a streamed chunk the gateway reads; the rest is forwarded as the provider sent it. */
export interface ChatChunk {
  id?: string;
  model?: string;
  choices?: Array<{
    index?: number;
    delta?: {
      role?: string;
      content?: string | null;
      reasoning_content?: string | null;
      refusal?: string | null;
      tool_calls?: unknown[];
      function_call?: unknown;
    };
    finish_reason?: string | null;
  }>;
  usage?: unknown;
  error?: unknown;
}

/**
 * An OpenAI `usage` object in the gateway's terms; anything missing or malformed counts as 0.
 * Cache reads are OpenAI's `prompt_tokens_details.cached_tokens` (capped at the prompt), cache writes
 * the `cache_write_tokens` the Bedrock translation reports there.
 */
export function usageFromOpenAI(usage: unknown): Usage {
  const u = (typeof usage === "object" && usage !== null ? usage : {}) as Record<string, unknown>;
  const inputTokens = count(u.prompt_tokens);
  const prompt = (u.prompt_tokens_details ?? {}) as Record<string, unknown>;
  const completion = (u.completion_tokens_details ?? {}) as Record<string, unknown>;
  const outputTokens = count(u.completion_tokens);
  return {
    inputTokens,
    outputTokens,
    cacheReadTokens: Math.min(inputTokens, count(prompt.cached_tokens)),
    cacheWriteTokens: Math.min(inputTokens, count(prompt.cache_write_tokens)),
    reasoningTokens: Math.min(outputTokens, count(completion.reasoning_tokens)),
  };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

/**
 * The provider's usage, if it sent one: an object with a numeric `prompt_tokens` or
 * `completion_tokens`. Anything else (absent, `null`, `{}`) is no count at all, so the gateway
 * estimates rather than bill a request as free.
 */
export function reportedUsage(usage: unknown): Usage | undefined {
  if (typeof usage !== "object" || usage === null) return undefined;
  const u = usage as Record<string, unknown>;
  if (typeof u.prompt_tokens !== "number" && typeof u.completion_tokens !== "number") return undefined;
  return usageFromOpenAI(usage);
}

/**
 * Characters of output in a whole completion, every choice's `message`: text, reasoning, a refusal,
 * tool-call names and arguments. What the gateway counts when the provider's usage never arrived.
 */
export function completionOutputChars(completion: Record<string, unknown>): number {
  const choices = completion.choices;
  if (!Array.isArray(choices)) return 0;
  let chars = 0;
  for (const choice of choices as unknown[]) {
    if (typeof choice === "object" && choice !== null)
      chars += messageChars((choice as { message?: unknown }).message);
  }
  return chars;
}

/** A message's output characters; parts of an unexpected type count as nothing. */
function messageChars(message: unknown): number {
  if (typeof message !== "object" || message === null) return 0;
  const m = message as Record<string, unknown>;
  let chars = text(m.content) + text(m.reasoning_content) + text(m.refusal) + functionChars(m.function_call);
  if (Array.isArray(m.tool_calls)) {
    for (const call of m.tool_calls as unknown[]) {
      if (typeof call === "object" && call !== null)
        chars += functionChars((call as { function?: unknown }).function);
    }
  }
  return chars;
}

function functionChars(fn: unknown): number {
  if (typeof fn !== "object" || fn === null) return 0;
  const f = fn as Record<string, unknown>;
  return text(f.name) + text(f.arguments);
}

function text(value: unknown): number {
  return typeof value === "string" ? value.length : 0;
}
