/**
 * `anthropic-beta` flags per target (issue 18). Claude Code sends a list of flags on every request
 * (eight in 2.1.332); Bedrock refuses one it does not know with a 400 ("invalid beta flag", LiteLLM
 * #16561), so each target forwards only the flags it is configured to take and the rest are dropped
 * (for the caller to log once per flag), never turned into the caller's 400.
 */

/**
 * The flags of an `anthropic-beta` header (comma-separated; white space and empty items ignored,
 * a repeated flag kept once) split into those `allowed` keeps (`"all"`: every one) and those it
 * drops, each in the header's order.
 */
export function filterBetas(
  header: string | undefined,
  allowed: readonly string[] | "all",
): { kept: string[]; dropped: string[] } {
  const kept: string[] = [];
  const dropped: string[] = [];
  if (header === undefined) return { kept, dropped };
  const allow = allowed === "all" ? undefined : new Set(allowed);
  const seen = new Set<string>();
  for (const item of header.split(",")) {
    const flag = item.trim();
    if (flag === "" || seen.has(flag)) continue;
    seen.add(flag);
    if (allow === undefined || allow.has(flag)) kept.push(flag);
    else dropped.push(flag);
  }
  return { kept, dropped };
}
