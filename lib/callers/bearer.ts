import { invalidApiKey } from "../errors.ts";
import { keyMatches } from "./key.ts";
import { type Caller, legacyCallerId } from "./types.ts";

/**
 * The caller key of a request: `Authorization: Bearer <key>` (OpenAI's clients, Claude Code's
 * `ANTHROPIC_AUTH_TOKEN`), else `x-api-key: <key>` (the Anthropic SDKs, Claude Code's
 * `ANTHROPIC_API_KEY`); a 401 when there is neither.
 */
export function bearerKey(headers: Record<string, string | undefined>): string {
  const header = headers.authorization ?? "";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match?.[1]) return match[1];
  const apiKey = headers["x-api-key"]?.trim();
  if (apiKey !== undefined && apiKey !== "" && !/\s/.test(apiKey)) return apiKey;
  throw invalidApiKey(
    "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
  );
}

/**
 * The caller whose key hashes to one of `known`, compared with every stored hash in constant time
 * (no early exit), so neither a key's content nor its position leaks through timing. Such a caller
 * is unnamed and unlimited: what the legacy secret's keys become (issue 12's migration).
 */
export function matchLegacyKey(key: string, known: readonly string[]): Caller | undefined {
  let found: string | undefined;
  for (const hash of known) if (keyMatches(key, hash)) found = hash;
  return found === undefined
    ? undefined
    : { id: legacyCallerId(found), name: undefined, models: undefined, limits: {} };
}

/** Whether the caller's key may use the route `model` (a key without a list may use every route). */
export function mayUseModel(caller: Caller, model: string): boolean {
  return caller.models === undefined || caller.models.includes(model);
}
