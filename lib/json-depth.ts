/**
 * Nesting depth of caller JSON, measured without recursion: the request validator bounds the body
 * with it, and a provider adapter bounds the JSON it parses out of a caller's strings (tool-call
 * arguments) with the same limit. Issue 9: a body nested 10,000 levels deep blew the stack when it
 * was serialised; issue 16: tool-call `arguments` nested 100,000 deep did the same on Bedrock routes.
 */

/**
 * How deeply arrays and objects may nest unless configured otherwise (`maxNestingDepth`). A real
 * chat request nests about six levels (body, messages, message, content parts, part, image_url);
 * tool schemas add a few more.
 */
export const DEFAULT_MAX_NESTING_DEPTH = 64;

/**
 * How many `{` and `[` the text holds: an upper bound on its nesting depth. Most bodies have a
 * handful, so the walk of {@link exceedsDepth} (an allocation per object) is skipped for them (see
 * BENCHMARKS.md).
 */
export function bracketCount(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 123 || c === 91) count++;
  }
  return count;
}

/**
 * Whether `value` nests arrays/objects more than `limit` levels deep (the value itself is level 1).
 * Iterative, with an explicit stack, so the check cannot itself overflow the call stack; it stops at
 * the first container past the limit.
 */
export function exceedsDepth(value: unknown, limit: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const v = item.value;
    if (typeof v !== "object" || v === null) continue;
    if (item.depth > limit) return true;
    const children = Array.isArray(v) ? v : Object.values(v);
    for (const child of children) {
      if (typeof child === "object" && child !== null) stack.push({ value: child, depth: item.depth + 1 });
    }
  }
  return false;
}

/**
 * Whether JSON text nests arrays/objects more than `limit` levels deep, read before it is parsed:
 * one pass over the characters, brackets inside strings not counted, nothing allocated. Exact for
 * valid JSON; for text that is not JSON the answer does not matter (the parse refuses it).
 */
export function textExceedsDepth(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      // After a backslash the next character is escaped (an escaped quote does not end the string).
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > limit) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}
