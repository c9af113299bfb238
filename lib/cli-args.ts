import { parseArgs } from "node:util";

/**
 * The operator commands' arguments: positionals plus `--name value` options from a fixed list, and
 * `--help`. Unknown options throw, with Node's message naming them.
 */
export function parseCliArgs(
  argv: string[],
  names: readonly string[],
): { options: Record<string, string | undefined>; args: string[]; help: boolean } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: "boolean", short: "h" },
      ...Object.fromEntries(names.map((n) => [n, { type: "string" as const }])),
    },
  });
  const { help, ...rest } = values as Record<string, string | boolean | undefined>;
  return {
    options: Object.fromEntries(
      Object.entries(rest).map(([k, v]) => [k, typeof v === "string" ? v : undefined]),
    ),
    args: positionals,
    help: help === true,
  };
}
