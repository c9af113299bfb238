import type { GenerationRequest } from "./request.ts";

/**
 * Where the caller's dialect has what the canonical request holds (issue 17). A translating target
 * refuses what it cannot carry with a 400 naming the field as the caller wrote it (OpenAI's `n` for
 * `choices`, `messages[3].tool_calls[0].function.arguments` for a tool call's input), and an
 * extension that indexes the caller's messages (`bedrock.cachePoints.messages`) is read against the
 * caller's own numbering. Each inbound dialect has its places; {@link canonicalPlaces} names the
 * canonical request's own.
 */
export interface CallerPlaces {
  /** The caller's name of a top-level canonical field (`choices`, `responseFormat`, `reasoning`, ...). */
  field(name: string): string;
  /** The caller's path of part `part` of canonical message `message`, or of one of its fields. */
  part(message: number, part: number, what?: PartField): string;
  /** The caller's path of tool definition `index` (its kind, or its parameters' schema). */
  tool(index: number, what: "kind" | "parameters"): string;
  /**
   * The canonical part that ends the caller's message `index` (a system part, or a part of one of
   * `messages`), undefined when that message has none.
   */
  lastPart(index: number): object | undefined;
}

/** A field of a part named in a refusal: an image's URL, a tool call, its input, a reasoning part. */
export type PartField = "image-url" | "tool-call" | "tool-input" | "reasoning";

/** The canonical request's own places: `messages[k].content[j]`, `tools[i]`, indexes of `messages`. */
export function canonicalPlaces(request: GenerationRequest): CallerPlaces {
  return {
    field: (name) => name,
    part(message, part, what) {
      const path = `messages[${message}].content[${part}]`;
      if (what === "tool-input") return `${path}.input`;
      if (what === "image-url") return `${path}.url`;
      return path;
    },
    tool: (index, what) => (what === "parameters" ? `tools[${index}].parameters` : `tools[${index}]`),
    lastPart(index) {
      const content = request.messages[index]?.content;
      return content?.[content.length - 1];
    },
  };
}
