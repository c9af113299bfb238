/**
 * `anthropic-beta` flags per target (issue 18), for the providers that speak Anthropic Messages
 * upstream: the `anthropic` type and Claude on Bedrock through InvokeModel. Each target forwards the
 * caller's flags its allow-list takes (`filterBetas`, lib/dialects/anthropic-messages/beta.ts); a
 * flag it would refuse ("invalid beta flag" from Bedrock, LiteLLM #16561; "Unsupported beta header"
 * from a proxy) is dropped and logged once per flag, never turned into the caller's 400.
 */
import { ConfigError, string } from "../config/fields.ts";
import type { Logger } from "../deps.ts";
import { filterBetas } from "../dialects/anthropic-messages/beta.ts";
import { quoteCallerText } from "../errors.ts";

/** Which flags a target forwards: these, or every one (`"all"`). */
export type BetaAllowList = readonly string[] | "all";

/**
 * Flags Amazon Bedrock documents for Claude's InvokeModel `anthropic_beta`
 * (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html):
 * the default of a Bedrock provider's `anthropicBetas`. Claude Code's own flags
 * (`claude-code-20250219`, `advanced-tool-use-…`, dated previews) are not among them and are dropped.
 * A flag a model does not take is still refused by Bedrock (a 400 handed back): narrow the list per
 * provider for older models or regions (GovCloud lags).
 */
export const BEDROCK_DEFAULT_BETAS: readonly string[] = [
  "interleaved-thinking-2025-05-14",
  "context-1m-2025-08-07",
  "context-management-2025-06-27",
  "effort-2025-11-24",
  "fine-grained-tool-streaming-2025-05-14",
  "token-efficient-tools-2025-02-19",
  "output-128k-2025-02-19",
  "computer-use-2025-01-24",
  "tool-search-tool-2025-10-19",
  "tool-examples-2025-10-29",
];

/** Distinct dropped flags remembered for "log once" (a caller may send endless made-up ones). */
const MAX_REMEMBERED = 256;

/**
 * Reads an allow-list field: `"all"`, or a list of non-empty flag names (an empty list forwards none).
 */
export function betaAllowList(value: unknown, field: string): BetaAllowList {
  if (value === "all") return "all";
  if (!Array.isArray(value))
    throw new ConfigError(field, 'must be "all" or a list of anthropic-beta flag names');
  return value.map((flag, i) => string(flag, `${field}[${i}]`).trim());
}

/**
 * The filter of one provider: the caller's `anthropic-beta` header → the flags to forward. Each
 * dropped flag is logged the first time this provider meets it (up to {@link MAX_REMEMBERED}
 * distinct flags; later new ones are dropped in silence).
 */
export function createBetaFilter(
  providerId: string,
  allowed: BetaAllowList,
  logger: Logger,
): (header: string | undefined) => string[] {
  const logged = new Set<string>();
  return (header) => {
    const { kept, dropped } = filterBetas(header, allowed);
    const fresh = dropped.filter((flag) => !logged.has(flag)).slice(0, 20);
    if (fresh.length > 0 && logged.size < MAX_REMEMBERED) {
      for (const flag of fresh) logged.add(flag);
      logger.warn({
        msg: "anthropic-beta flags the target does not take were dropped (logged once per flag)",
        provider: providerId,
        dropped: fresh.map((flag) => quoteCallerText(flag, 80)),
      });
    }
    return kept;
  };
}
