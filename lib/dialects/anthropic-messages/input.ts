import type { GenerationRequest } from "../../core/request.ts";
import type { GenerationInput } from "../../providers/generation.ts";
import { toGeneration } from "./parse.ts";

/** The caller's headers a Messages-speaking target is told (betas are filtered per target there). */
export const FORWARDED_HEADERS = ["anthropic-beta", "anthropic-version"] as const;

/**
 * A Messages body as a generation input: passed through as it is by a provider that speaks
 * Anthropic Messages (with the caller's `anthropic-beta` and `anthropic-version`), parsed into the
 * canonical request by one that translates. `canonical` is the form the endpoint already parsed to
 * validate the body, if it did; else it is parsed once, on first use.
 */
export function messagesInput(
  body: Readonly<Record<string, unknown>>,
  headers: Readonly<Record<string, string | undefined>>,
  canonical?: GenerationRequest,
): GenerationInput {
  let parsed = canonical;
  const forwarded: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const value = headers[name];
    if (value !== undefined) forwarded[name] = value;
  }
  return {
    dialect: "anthropic-messages",
    body,
    headers: forwarded,
    canonical() {
      parsed ??= toGeneration(body);
      return parsed;
    },
  };
}
