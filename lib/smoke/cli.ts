import { parseArgs } from "node:util";
import { createSecretRedactor } from "../secrets/redact.ts";
import type { ReadHealth } from "./health-table.ts";
import type { SmokeHttp } from "./http.ts";
import { formatJson, formatTable } from "./report.ts";
import { baseUrl, runSmoke } from "./run.ts";

const USAGE = `usage: GATEWAY_KEY=... npm run smoke -- --url URL [options]

Checks a deployed gateway (its Function URL) or a local one in under a minute: the model list, a
completion, a streamed completion and its timing, the error shapes, the provider header and,
with --table, that the health function wrote a check lately. Exit code 0 when nothing failed.

options:
  --url URL          the gateway's base URL (the FunctionUrl output; a trailing /v1 is fine)
  --key-env NAME     the environment variable holding the caller key (default GATEWAY_KEY); the
                     key is never printed, and never taken as an argument (ps would show it)
  --model NAME       the model to ask (default: the first one listed)
  --json             print the report as JSON, for scripts
  --table NAME       also check the health table (the HealthTableName output)
  --region REGION    the table's region (default: $AWS_REGION)
  --endpoint URL     a DynamoDB endpoint instead of AWS (e.g. the one npm start prints)
  --max-age MINUTES  how old the newest health check may be (default 5)
`;

export interface SmokeCliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  http: SmokeHttp;
  now: () => number;
  clock: () => number;
  readHealth: ReadHealth;
}

/** Where the caller key is read from unless `--key-env` names another variable. */
export const KEY_ENV = "GATEWAY_KEY";

/**
 * `--key` is refused, not read: an argument is visible to every user of the machine (`ps`, the
 * process list), an environment variable only to its owner (issue 16). Its value is never echoed.
 */
export const KEY_ARGUMENT_REFUSED = `--key is refused: a process's arguments are visible to every user of the machine (ps), its environment only to you. Put the key in ${KEY_ENV} (${KEY_ENV}=... npm run smoke -- --url URL), or name another variable with --key-env NAME.`;

/** `npm run smoke`. Returns the exit code: 0 all passed (or skipped), 1 a check failed, 2 usage. */
export async function runSmokeCli(argv: string[], io: SmokeCliIo): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: "string" },
        // Declared only to be refused, and so that parseArgs never quotes its value back.
        key: { type: "string" },
        "key-env": { type: "string" },
        model: { type: "string" },
        json: { type: "boolean" },
        table: { type: "string" },
        region: { type: "string" },
        endpoint: { type: "string" },
        "max-age": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    io.err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const text = (name: string) => (typeof values[name] === "string" ? (values[name] as string) : undefined);
  if (values.help === true) {
    io.out(USAGE);
    return 0;
  }
  if (values.key !== undefined) {
    io.err(`${KEY_ARGUMENT_REFUSED}\n${USAGE}`);
    return 2;
  }
  const keyEnv = text("key-env") ?? KEY_ENV;
  // A name is echoed only when it looks like one: a key pasted here by mistake is never printed.
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(keyEnv)) {
    io.err(`--key-env takes the name of an environment variable (letters, digits and _)\n${USAGE}`);
    return 2;
  }
  const key = io.env[keyEnv] || undefined;
  if (key === undefined && text("key-env") !== undefined) {
    io.err(`--key-env ${keyEnv}: that environment variable is not set\n${USAGE}`);
    return 2;
  }
  // Whatever the gateway (or something echoing the request in its place) sends back, the key is
  // removed from everything printed; the report was built from redacted answers already.
  const redactor = createSecretRedactor();
  redactor.register(key);
  const out = (printed: string) => io.out(redactor.redact(printed));
  const url = text("url");
  const maxAgeMinutes = Number(text("max-age") ?? 5);
  const problem =
    url === undefined
      ? "--url is required"
      : !validUrl(url)
        ? `--url is not an http(s) URL: ${url}`
        : !(maxAgeMinutes > 0)
          ? "--max-age must be a number of minutes above 0"
          : (text("region") !== undefined || text("endpoint") !== undefined) && text("table") === undefined
            ? "--region and --endpoint need --table"
            : undefined;
  if (problem !== undefined || url === undefined) {
    io.err(`${problem}\n${USAGE}`);
    return 2;
  }
  const table = text("table");
  const report = await runSmoke(
    {
      url,
      key,
      model: text("model"),
      healthTable:
        table === undefined
          ? undefined
          : { table, region: text("region") ?? io.env.AWS_REGION, endpoint: text("endpoint") },
      maxCheckAgeMs: maxAgeMinutes * 60_000,
      budgetMs: 55_000,
    },
    io,
  );
  out(values.json === true ? formatJson(report) : formatTable(report));
  return report.ok ? 0 : 1;
}

function validUrl(url: string): boolean {
  try {
    baseUrl(url);
    return true;
  } catch {
    return false;
  }
}
