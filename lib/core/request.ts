/**
 * A generation request in the gateway's own terms (issue 17), one floor below every API dialect
 * and provider. Each inbound dialect (OpenAI Chat Completions, Anthropic Messages, OpenAI Responses)
 * parses its body into this; each provider that does not speak the caller's dialect builds its own
 * wire request from it. Modelled on the vercel/ai provider spec (`LanguageModelV2` prompt parts).
 *
 * What a dialect has that this model has no field for is kept in {@link GenerationRequest.unmapped}
 * under the dialect's own name, so a translating target can refuse it by name (or drop it, with one
 * log line per kind) instead of losing it in silence.
 */

/** Where a prompt-caching breakpoint sits: after the part that carries it (Anthropic's `cache_control`). */
export interface CacheMark {
  cache?: { ttl?: string } | undefined;
}

export interface TextPart extends CacheMark {
  type: "text";
  text: string;
}

export interface ImagePart extends CacheMark {
  type: "image";
  /** `image/png`, `image/jpeg`, ...; `image/*` when unknown (an image given by URL). */
  mediaType: string;
  /** Base64 bytes, or else a URL the target must fetch (not every target can). */
  data?: string | undefined;
  url?: string | undefined;
  /** The resolution asked for (`low`, `high`, `auto`: OpenAI Chat and Responses both have it). */
  detail?: string | undefined;
}

export interface ToolCallPart extends CacheMark {
  type: "tool-call";
  id: string;
  name: string;
  /** The arguments as JSON text, as the model produced them (not parsed: some are not valid JSON). */
  input: string;
  /** A custom (free-form) tool's call: `input` is its raw text, not JSON. */
  custom?: boolean | undefined;
}

export interface ToolResultPart extends CacheMark {
  type: "tool-result";
  callId: string;
  content: Array<TextPart | ImagePart>;
  isError?: boolean | undefined;
}

/**
 * Model reasoning. A signature (Anthropic's thinking `signature`, OpenAI's encrypted content) is only
 * valid for the provider family that made it: `family` says which, and a target of another family
 * never receives it.
 */
export interface ReasoningPart extends CacheMark {
  type: "reasoning";
  text: string;
  signature?: string | undefined;
  /** Anthropic's `redacted_thinking` data: opaque, for the same family only. */
  redacted?: string | undefined;
  family?: string | undefined;
}

/**
 * The model declining to answer, said apart from its text (OpenAI's `refusal`). A dialect without
 * such a field carries it as text.
 */
export interface RefusalPart extends CacheMark {
  type: "refusal";
  text: string;
}

export type UserPart = TextPart | ImagePart | ToolResultPart;
export type AssistantPart = TextPart | ToolCallPart | ReasoningPart | RefusalPart;

export type Message = { role: "user"; content: UserPart[] } | { role: "assistant"; content: AssistantPart[] };

export interface ToolDefinition extends CacheMark {
  name: string;
  description?: string | undefined;
  /** JSON Schema of the input (for a custom tool, none: its input is free text). */
  parameters?: unknown;
  /** Whether calls must follow `parameters` exactly (OpenAI's and Anthropic's `strict`). */
  strict?: boolean | undefined;
  /**
   * A custom (free-form input) tool. `grammar` is the constraint on its input in neutral terms (a
   * Lark or regex grammar); `format` is the format as a dialect gave it, for the same dialect only.
   */
  custom?: { format?: unknown; grammar?: { syntax: string; definition: string } | undefined } | undefined;
}

export type ToolChoice =
  | { type: "auto" }
  | { type: "none" }
  | { type: "required" }
  | { type: "tool"; name: string };

export interface GenerationRequest {
  /** The target's model (the route name until a target is chosen). */
  model: string;
  /** System instructions, in order (system and developer messages, Anthropic's `system`). */
  system: TextPart[];
  messages: Message[];
  tools?: ToolDefinition[] | undefined;
  toolChoice?: ToolChoice | undefined;
  parallelToolCalls?: boolean | undefined;
  maxOutputTokens?: number | undefined;
  temperature?: number | undefined;
  topP?: number | undefined;
  topK?: number | undefined;
  stop?: string[] | undefined;
  /** Answers asked for (OpenAI's `n`); 1 when absent. */
  choices?: number | undefined;
  /** Structured output: a JSON schema (or any JSON object when `schema` is absent). */
  responseFormat?:
    | {
        type: "json";
        schema?: unknown;
        name?: string | undefined;
        description?: string | undefined;
        strict?: boolean | undefined;
      }
    | undefined;
  reasoning?:
    | {
        effort?: string | undefined;
        budgetTokens?: number | undefined;
        /**
         * Whether the caller turned reasoning on, left it to the model, or off (Anthropic's
         * `thinking.type`: `enabled` with a budget, `adaptive`, `disabled`); absent when it did not say.
         */
        mode?: "enabled" | "adaptive" | "disabled" | undefined;
      }
    | undefined;
  /** An end-user id for the provider's abuse monitoring. */
  user?: string | undefined;
  stream: boolean;
  /** Provider-specific extension fields, by provider family (`bedrock`, `anthropic`, ...). */
  extensions: Record<string, unknown>;
  /** Fields of the caller's dialect this model has no place for, by their name in that dialect. */
  unmapped: Record<string, unknown>;
}

/** The text of a request's last user turn (health probes, mocks, estimates). */
export function lastUserText(request: GenerationRequest): string {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const message = request.messages[i];
    if (message?.role !== "user") continue;
    let text = "";
    for (const part of message.content) if (part.type === "text") text += part.text;
    return text;
  }
  return "";
}
