/**
 * Where an OpenAI chat body has what its canonical request holds (see `CallerPlaces`), so a
 * translating target names a field as the caller wrote it. Follows `toGeneration` (parse.ts):
 * system and developer messages go to `system`, consecutive `tool` messages are one user turn of
 * tool results, every other message is one canonical message; an assistant's parts are its
 * reasoning, text, refusal and tool calls, in that order. Read only when a place is asked for (a
 * refusal, or `bedrock.cachePoints.messages`), from a body `toGeneration` already accepted.
 */
import type { CallerPlaces } from "../../core/places.ts";
import type { GenerationRequest } from "../../core/request.ts";
import type { ChatRequest } from "./wire.ts";

/** Canonical field → OpenAI field, where the names differ. */
const FIELDS: ReadonlyMap<string, string> = new Map([
  ["choices", "n"],
  ["responseFormat", "response_format"],
  ["reasoning", "reasoning_effort"],
  ["parallelToolCalls", "parallel_tool_calls"],
  ["toolChoice", "tool_choice"],
  ["maxOutputTokens", "max_tokens"],
  ["topP", "top_p"],
]);

interface Index {
  /** Per canonical message: the OpenAI index of each part's message (one for all, but a tool turn's). */
  owners: number[][];
  /** Per OpenAI message: the canonical part that ends it. */
  last: Array<object | undefined>;
}

export function chatPlaces(body: ChatRequest, request: GenerationRequest): CallerPlaces {
  let index: Index | undefined;
  const indexed = (): Index => {
    index ??= build(body, request);
    return index;
  };
  const message = (k: number, part: number): number => {
    const owners = indexed().owners[k];
    return owners?.[Math.min(part, owners.length - 1)] ?? k;
  };
  return {
    field: (name) => FIELDS.get(name) ?? name,
    part(k, part, what) {
      const i = message(k, part);
      const role = body.messages[i]?.role;
      if (role === "tool") return `messages[${i}]`;
      if (what === "reasoning") return `messages[${i}].reasoning_content`;
      if (what === "tool-call" || what === "tool-input") {
        // The j-th tool-call part is `tool_calls[j]`.
        let call = 0;
        const content = request.messages[k]?.content ?? [];
        for (let p = 0; p < part && p < content.length; p++) if (content[p]?.type === "tool-call") call++;
        const path = `messages[${i}].tool_calls[${call}]`;
        return what === "tool-input" ? `${path}.function.arguments` : path;
      }
      const path = `messages[${i}].content[${part}]`;
      return what === "image-url" ? `${path}.image_url.url` : path;
    },
    tool: (i, what) => (what === "parameters" ? `tools[${i}].function.parameters` : `tools[${i}].type`),
    lastPart: (i) => indexed().last[i],
  };
}

function build(body: ChatRequest, request: GenerationRequest): Index {
  const owners: number[][] = [];
  const last: Array<object | undefined> = [];
  let k = -1;
  let system = 0;
  let inTools = false;
  for (let i = 0; i < body.messages.length; i++) {
    const m = body.messages[i];
    const role = m?.role;
    if (role === "system" || role === "developer") {
      inTools = false;
      const content = m?.content;
      let parts = typeof content === "string" ? 1 : 0;
      if (Array.isArray(content))
        for (const part of content as unknown[])
          if ((part as { type?: unknown } | null)?.type === "text") parts++;
      system += parts;
      last[i] = parts > 0 ? request.system[system - 1] : undefined;
    } else if (role === "tool") {
      if (!inTools) {
        k++;
        owners[k] = [];
        inTools = true;
      }
      const turn = owners[k] ?? [];
      turn.push(i);
      last[i] = request.messages[k]?.content[turn.length - 1];
    } else if (role === "user" || role === "assistant") {
      inTools = false;
      k++;
      owners[k] = [i];
      const content = request.messages[k]?.content;
      last[i] = content?.[content.length - 1];
    } else inTools = false; // `function`: unmapped, no canonical message
  }
  return { owners, last };
}
