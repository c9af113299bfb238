import { type AttributeValue, type DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import {
  createDynamoClient,
  type DynamoTimeouts,
  LOCAL_TABLE_NAME,
  tableNameFromEnv,
} from "../aws/dynamodb.ts";
import { parseCliArgs } from "../cli-args.ts";
import { DEFAULT_HEALTH } from "../config/defaults.ts";
import { createDynamoHealthStore, STATE_SK } from "./dynamo-store.ts";

/**
 * An operator waits at a prompt, and `list` scans the whole table, so the CLI allows more than the
 * gateway (lib/aws/dynamodb.ts DYNAMO_TIMEOUTS): 3 s to connect, 10 s per call. A table that
 * does not answer then ends the command with an error instead of a prompt that never comes back.
 */
export const CLI_DYNAMO_TIMEOUTS: DynamoTimeouts = { connectMs: 3_000, requestMs: 10_000 };

const USAGE = `usage: npm run health -- [command] [options]

commands:
  list                          each provider's status, weight, latency, failures, last check (default)
  history <provider> [count]    the provider's latest checks
  set-weight <provider> <n>     route n/total of the weighted share to it (0 takes it out of WEIGHTED picks)
  enable <provider>             put it back in every route
  disable <provider>            take it out of every route, without a redeploy

options:
  --table NAME      the gateway's table (default: $GATEWAY_TABLE, else $HEALTH_TABLE, else llm-gateway-health)
  --region REGION   an AWS table in this region (default: $AWS_REGION)
  --endpoint URL    a DynamoDB endpoint (default: $DYNAMODB_ENDPOINT, else the local
                    one npm start runs, http://127.0.0.1:$DYNAMODB_PORT (8788), when no
                    region is given)
`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  now: () => number;
  /** For tests: a client already pointed at the table. */
  client?: DynamoDBClient;
}

/** The `npm run health` command. Returns the exit code. */
export async function runHealthCli(argv: string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseCliArgs>;
  try {
    parsed = parseCliArgs(argv, ["table", "region", "endpoint"]);
  } catch (error) {
    io.err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    io.out(USAGE);
    return 0;
  }
  const { options, args } = parsed;
  const tableName = options.table ?? tableNameFromEnv(io.env) ?? LOCAL_TABLE_NAME;
  const region = options.region ?? io.env.AWS_REGION;
  const endpoint =
    options.endpoint ??
    io.env.DYNAMODB_ENDPOINT ??
    // The same port `npm start` gives its embedded DynamoDB (issue 13).
    (region === undefined ? `http://127.0.0.1:${io.env.DYNAMODB_PORT || 8788}` : undefined);
  const client =
    io.client ??
    createDynamoClient({
      ...(region ? { region } : {}),
      ...(endpoint ? { endpoint } : {}),
      timeouts: CLI_DYNAMO_TIMEOUTS,
    });
  const store = createDynamoHealthStore({
    client,
    tableName,
    health: DEFAULT_HEALTH,
  });
  const [command = "list", provider, value] = args;

  try {
    switch (command) {
      case "list":
        io.out(await listTable(client, tableName, io.now()));
        return 0;
      case "history": {
        if (!provider) throw new UsageError("history needs a provider id");
        const count = value === undefined ? 10 : Number(value);
        const records = await store.history(provider, count, io.now());
        io.out(
          table(
            ["time", "ok", "status", "latency", "ttft", "error"],
            records.map((r) => [
              new Date(r.at).toISOString(),
              r.ok ? "yes" : "no",
              r.status === undefined ? "-" : String(r.status),
              `${r.latencyMs} ms`,
              r.ttftMs === undefined ? "-" : `${r.ttftMs} ms`,
              r.error ?? "",
            ]),
          ),
        );
        return 0;
      }
      case "set-weight": {
        const weight = Number(value);
        if (!provider || value === undefined || !Number.isFinite(weight) || weight < 0 || weight > 1000) {
          throw new UsageError("set-weight needs a provider id and a weight from 0 to 1000");
        }
        await store.setWeight(provider, weight);
        io.out(`${provider}: weight set to ${weight}\n`);
        return 0;
      }
      case "enable":
      case "disable":
        if (!provider) throw new UsageError(`${command} needs a provider id`);
        await store.setEnabled(provider, command === "enable");
        io.out(`${provider}: ${command}d\n`);
        return 0;
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${error.message}\n${USAGE}`);
      return 2;
    }
    io.err(
      `health: ${(error as Error).name}: ${(error as Error).message} (table ${tableName}${endpoint ? ` at ${endpoint}` : ` in ${region}`})\n`,
    );
    return 1;
  } finally {
    if (!io.client) client.destroy();
  }
}

class UsageError extends Error {}

/** Every provider and cooling target in the table, as text. An operator tool: a Scan is fine. */
async function listTable(client: DynamoDBClient, tableName: string, now: number): Promise<string> {
  const items = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await client.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: "sk = :state",
        ExpressionAttributeValues: { ":state": { S: STATE_SK } },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);

  const providers = items
    .filter((i) => i.pk?.S?.startsWith("PROVIDER#"))
    .sort((a, b) => String(a.pk?.S).localeCompare(String(b.pk?.S)));
  const targets = items.filter((i) => i.pk?.S?.startsWith("TARGET#"));
  const ago = (ms: number | undefined) =>
    ms === undefined ? "never" : `${Math.max(0, Math.round((now - ms) / 1000))} s ago`;
  const num = (v: { N?: string } | undefined) => (v?.N === undefined ? undefined : Number(v.N));

  let text = table(
    ["provider", "status", "enabled", "weight", "latency", "ttft", "failures", "last check", "last error"],
    providers.map((p) => [
      String(p.pk?.S).slice("PROVIDER#".length),
      p.status?.S ?? "unknown",
      p.enabled?.BOOL === false ? "no" : "yes",
      p.weight?.N ?? "(config)",
      num(p.latencyMs) === undefined ? "-" : `${num(p.latencyMs)} ms`,
      num(p.ttftMs) === undefined ? "-" : `${num(p.ttftMs)} ms`,
      String(num(p.consecutiveFailures) ?? 0),
      ago(num(p.lastCheckAt)),
      p.lastError?.S ?? "",
    ]),
  );
  const cooling = targets.filter((t) => (num(t.cooldownUntil) ?? 0) > now || (num(t.failures) ?? 0) > 0);
  if (cooling.length > 0) {
    text += `\n${table(
      ["target", "live failures", "cooldown", "reason"],
      cooling.map((t) => {
        const until = num(t.cooldownUntil) ?? 0;
        return [
          String(t.pk?.S).slice("TARGET#".length),
          String(num(t.failures) ?? 0),
          until > now ? `${Math.ceil((until - now) / 1000)} s left` : "-",
          t.reason?.S ?? "",
        ];
      }),
    )}`;
  }
  return providers.length === 0 ? `no provider has been checked yet in ${tableName}\n` : text;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `${cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd()}\n`;
  return line(header) + line(widths.map((w) => "-".repeat(w))) + rows.map(line).join("");
}
