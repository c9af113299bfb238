import { parseArgs } from "node:util";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { PutSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { generateKey, isKeyId } from "../callers/key.ts";
import { type CallerStore, createCallerStore, MalformedKeyRecordError } from "../callers/store.ts";
import { dayOf, type KeyLimits, type KeyRecord, LIMIT_NAMES } from "../callers/types.ts";
import { hashClientKey, parseClientKeySecret } from "../gateway/auth.ts";
import { createDynamoClient, LOCAL_TABLE_NAME, tableNameFromEnv } from "./dynamodb.ts";
import { secretsManagerReader } from "./secrets.ts";

const CLIENT_KEY_USAGE = `usage: npm run client-key -- <command> [options]

caller keys (in the gateway's table):
  create --name NAME [limits] [--models a,b] [--expires WHEN]   make a key; prints it once (only its hash is stored)
  list                                         keys: name, id, status, limits, models, expiry, usage today and this month, last used
  set <id> [limits] [--models a,b|all] [--name NAME] [--expires WHEN|none]   change a key (a limit "none" removes it)
  revoke <id>                                  refuse the key (within the key cache TTL, 30 s by default)
  usage [--key <id>] [--days N]                usage per key x model x day (default: the last 7 days)

limits: --rpm N  --tpm N  --tokens-per-day N  --tokens-per-month N  --cost-per-day USD  --cost-per-month USD
        --max-concurrent N (requests in flight at once)
expiry: --expires 2027-01-31 | 2027-01-31T18:00:00Z | 30d | 12h | 90m | 2w (from now); refused once passed

where: locally the embedded table of \`npm start\` (http://127.0.0.1:$DYNAMODB_PORT, 8788); on AWS
  --table <HealthTableName output> --region <region> ($GATEWAY_TABLE, else $HEALTH_TABLE, names the
  table when --table does not); or --endpoint URL. --json prints JSON.

legacy secret ({ "sha256": [...] }, kept working as unnamed keys without limits):
  new | count | revoke <hash prefix> --secret NAME [--region REGION] | hash <key>
`;

export interface ClientKeyIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  client?: SecretsManagerClient;
  /** A DynamoDB client to use instead of one built from the options (tests). */
  dynamo?: DynamoDBClient;
  /** This machine's clock (a key's createdAt, `--expires 30d`, which day `usage` starts). */
  now: () => number;
  /** A CSPRNG for new keys: `crypto.randomBytes` at the edge. */
  randomBytes: (size: number) => Buffer;
}

const LIMIT_FLAGS: Record<string, keyof KeyLimits> = {
  rpm: "rpm",
  tpm: "tpm",
  "tokens-per-day": "tokensPerDay",
  "tokens-per-month": "tokensPerMonth",
  "cost-per-day": "costPerDay",
  "cost-per-month": "costPerMonth",
  "max-concurrent": "maxConcurrent",
};

/** Limits that count things, so take whole numbers only. */
const WHOLE_LIMITS: ReadonlySet<keyof KeyLimits> = new Set([
  "rpm",
  "tpm",
  "tokensPerDay",
  "tokensPerMonth",
  "maxConcurrent",
]);

class UsageError extends Error {}

/** What every table command works with: one object rather than five positional parameters. */
interface CommandContext {
  store: CallerStore;
  opt: (name: string) => string | undefined;
  io: ClientKeyIo;
  now: () => number;
  json: boolean;
}

/** The `npm run client-key` command. Returns the exit code. */
export async function runClientKeyCli(argv: string[], io: ClientKeyIo): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let args: string[];
  try {
    const parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: "boolean", short: "h" },
        json: { type: "boolean" },
        ...Object.fromEntries(
          [
            "secret",
            "region",
            "table",
            "endpoint",
            "name",
            "models",
            "key",
            "days",
            "expires",
            ...Object.keys(LIMIT_FLAGS),
          ].map((n) => [n, { type: "string" as const }]),
        ),
      },
    });
    values = parsed.values as Record<string, string | boolean | undefined>;
    args = parsed.positionals;
  } catch (error) {
    io.err(`${(error as Error).message}\n${CLIENT_KEY_USAGE}`);
    return 2;
  }
  const opt = (name: string) => (typeof values[name] === "string" ? (values[name] as string) : undefined);
  const [command, value] = args;
  if (values.help || !command) {
    (values.help ? io.out : io.err)(CLIENT_KEY_USAGE);
    return values.help ? 0 : 2;
  }
  if (command === "hash" && value) {
    io.out(`${hashClientKey(value)}\n`);
    return 0;
  }
  if (command === "new" || command === "count" || (command === "revoke" && opt("secret"))) {
    return legacySecretCommand(command, value, opt, io);
  }
  if (!["create", "list", "set", "revoke", "usage"].includes(command)) {
    io.err(CLIENT_KEY_USAGE);
    return 2;
  }

  const region = opt("region");
  const endpoint =
    opt("endpoint") ??
    io.env.DYNAMODB_ENDPOINT ??
    (region ? undefined : `http://127.0.0.1:${io.env.DYNAMODB_PORT ?? 8788}`);
  const tableName = opt("table") ?? tableNameFromEnv(io.env) ?? LOCAL_TABLE_NAME;
  const client =
    io.dynamo ?? createDynamoClient({ ...(endpoint ? { endpoint } : {}), ...(region ? { region } : {}) });
  const store = createCallerStore(client, tableName);
  const now = io.now;
  const json = values.json === true;
  const ctx: CommandContext = { store, opt, io, now, json };
  try {
    if (command === "create") return await create(ctx);
    if (command === "list") return await list(ctx);
    if (command === "set") return await set(ctx, value);
    if (command === "revoke") {
      await store.revoke(keyId(value), now());
      io.out(json ? `${JSON.stringify({ id: value, revoked: true })}\n` : `revoked ${value}\n`);
      io.err("the gateway refuses it once its key cache expires (callers.cacheTtlMs, 30 s by default)\n");
      return 0;
    }
    return await usage(ctx);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`client-key: ${error.message}\n`);
      return 2;
    }
    const e = error as Error;
    const missing = e.name === "ConditionalCheckFailedException" ? " (no such key)" : "";
    io.err(
      `client-key: ${e.name}: ${e.message}${missing} (table ${tableName}${endpoint ? ` at ${endpoint}` : ""})\n`,
    );
    return 1;
  } finally {
    if (!io.dynamo) client.destroy();
  }
}

function keyId(value: string | undefined): string {
  if (!value || !isKeyId(value))
    throw new UsageError(`give a key id (12 characters, as 'list' shows): ${value ?? ""}`);
  return value;
}

/** Limits from the options over `base`; `none` removes one. */
function limitsFrom(opt: (name: string) => string | undefined, base: KeyLimits = {}): KeyLimits {
  const limits: KeyLimits = { ...base };
  for (const [flag, name] of Object.entries(LIMIT_FLAGS)) {
    const raw = opt(flag);
    if (raw === undefined) continue;
    if (raw === "none") {
      delete limits[name];
      continue;
    }
    const value = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(value) || value < 0)
      throw new UsageError(`--${flag} must be a number from 0, or none (got ${raw})`);
    if (WHOLE_LIMITS.has(name) && !Number.isInteger(value))
      throw new UsageError(`--${flag} must be a whole number, or none (got ${raw})`);
    limits[name] = value;
  }
  return limits;
}

const DURATION_UNITS_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * `--expires` as a moment (ms): an ISO date (UTC midnight) or date and time, or a duration from now
 * (`30d`, `12h`, `90m`, `2w`). `none` (for `set`) is null. The gateway compares the moment with its
 * own clock; this machine's clock only turns a duration into it.
 */
export function expiryFrom(raw: string | undefined, now: number): number | null | undefined {
  if (raw === undefined) return undefined;
  if (raw === "none") return null;
  const duration = /^(\d+)([mhdw])$/.exec(raw.trim());
  const at = duration
    ? now + Number(duration[1]) * (DURATION_UNITS_MS[duration[2] as string] ?? 0)
    : /^\d{4}-\d{2}-\d{2}/.test(raw)
      ? Date.parse(raw)
      : Number.NaN;
  if (!Number.isFinite(at))
    throw new UsageError(
      `--expires must be an ISO date or date-time, or a duration such as 30d, 12h, 90m (got ${raw})`,
    );
  if (at <= now) throw new UsageError(`--expires ${raw} has already passed`);
  return at;
}

function modelsFrom(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const models = raw
    .split(",")
    .map((m) => m.trim())
    .filter(Boolean);
  if (models.length === 0) throw new UsageError("--models needs at least one model name (or 'all' with set)");
  return models;
}

async function create({ store, opt, io, now, json }: CommandContext): Promise<number> {
  const name = opt("name");
  if (!name) throw new UsageError("create needs --name NAME");
  const made = generateKey(io.randomBytes);
  const models = modelsFrom(opt("models"));
  const createdAt = now();
  const expiresAt = expiryFrom(opt("expires"), createdAt);
  const record: KeyRecord = {
    id: made.id,
    name,
    hash: made.hash,
    createdAt,
    limits: limitsFrom(opt),
    ...(models ? { models } : {}),
    ...(typeof expiresAt === "number" ? { expiresAt } : {}),
  };
  await store.create(record);
  if (json) io.out(`${JSON.stringify({ ...describe(record), key: made.key })}\n`);
  else {
    io.out(`${made.key}\n`);
    io.err(`created ${made.id} (${name}); the key is shown only this once\n`);
  }
  return 0;
}

async function set(
  { store, opt, io, now, json }: CommandContext,
  value: string | undefined,
): Promise<number> {
  const id = keyId(value);
  const { record } = await store.load(id, now());
  if (record === undefined) throw new UsageError(`no key ${id}`);
  const base = record instanceof MalformedKeyRecordError ? {} : record.limits;
  const rawModels = opt("models");
  const name = opt("name");
  const expiresAt = expiryFrom(opt("expires"), now());
  await store.update(id, {
    limits: limitsFrom(opt, base),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(rawModels === "all"
      ? { models: null }
      : rawModels !== undefined
        ? { models: modelsFrom(rawModels) ?? [] }
        : {}),
    ...(name !== undefined ? { name } : {}),
  });
  const after = (await store.load(id, now())).record;
  const shown = after instanceof MalformedKeyRecordError ? undefined : after;
  if (json) io.out(`${JSON.stringify(shown ? describe(shown) : { id })}\n`);
  else
    io.out(
      `updated ${id}${shown ? `: ${limitsText(shown.limits)}${shown.expiresAt === undefined ? "" : `, expires ${iso(shown.expiresAt)}`}` : ""}\n`,
    );
  return 0;
}

function describe(r: KeyRecord) {
  return {
    id: r.id,
    name: r.name,
    createdAt: iso(r.createdAt),
    revokedAt: r.revokedAt === undefined ? null : iso(r.revokedAt),
    expiresAt: r.expiresAt === undefined ? null : iso(r.expiresAt),
    models: r.models ?? null,
    limits: r.limits,
    lastUsedAt: r.lastUsedAt === undefined ? null : iso(r.lastUsedAt),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** As the gateway will judge it (its own clock may differ from this machine's by a little). */
function status(r: KeyRecord, now: number): string {
  if (r.revokedAt !== undefined) return "revoked";
  return r.expiresAt !== undefined && r.expiresAt <= now ? "expired" : "active";
}

function limitsText(limits: KeyLimits): string {
  const parts = LIMIT_NAMES.flatMap((n) => (limits[n] === undefined ? [] : [`${n}=${limits[n]}`]));
  return parts.length ? parts.join(" ") : "no limits";
}

async function list({ store, io, now, json }: CommandContext): Promise<number> {
  const at = now();
  const records = await store.list();
  const rows = [];
  for (const r of records) {
    if (r instanceof MalformedKeyRecordError) {
      io.err(`skipped: ${r.message}\n`);
      continue;
    }
    rows.push({ ...describe(r), status: status(r, at), usage: await store.totals(r.id, at) });
  }
  rows.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  return printRows(
    io,
    json,
    rows,
    [
      "ID",
      "NAME",
      "STATUS",
      "LIMITS",
      "MODELS",
      "EXPIRES",
      "TOKENS TODAY",
      "TOKENS MONTH",
      "COST MONTH",
      "LAST USED",
    ],
    (r) => [
      r.id,
      r.name,
      r.status,
      limitsText(r.limits),
      r.models?.join(",") ?? "all",
      r.expiresAt ?? "never",
      String(r.usage.dayTokens),
      String(r.usage.monthTokens),
      money(r.usage.monthCost),
      r.lastUsedAt ?? "never",
    ],
  );
}

async function usage({ store, opt, io, now, json }: CommandContext): Promise<number> {
  const days = Number(opt("days") ?? 7);
  if (!Number.isInteger(days) || days < 1) throw new UsageError("--days must be a whole number from 1");
  const key = opt("key");
  const sinceDay = dayOf(now() - (days - 1) * 86_400_000);
  const rows = await store.usage({ ...(key ? { keyId: keyId(key) } : {}), sinceDay });
  const names = new Map(
    (await store.list()).flatMap((r) =>
      r instanceof MalformedKeyRecordError ? [] : [[r.id, r.name] as const],
    ),
  );
  const named = rows.map((r) => ({ ...r, name: names.get(r.keyId) ?? "" }));
  return printRows(
    io,
    json,
    named,
    ["DAY", "KEY", "NAME", "MODEL", "REQUESTS", "PROMPT", "COMPLETION", "CACHED", "COST"],
    (r) => [
      r.day,
      r.keyId,
      r.name,
      r.model,
      String(r.requests),
      String(r.promptTokens),
      String(r.completionTokens),
      String(r.cachedTokens),
      money(r.cost),
    ],
  );
}

/** Rows as one JSON array with `--json`, else as a text table with `head` and `cells` of each row. */
function printRows<T>(
  io: ClientKeyIo,
  json: boolean,
  rows: T[],
  head: string[],
  cells: (row: T) => string[],
): number {
  io.out(json ? `${JSON.stringify(rows)}\n` : table(head, rows.map(cells)));
  return 0;
}

function money(usd: number): string {
  return `$${usd.toFixed(usd !== 0 && usd < 0.01 ? 6 : 2)}`;
}

/** A plain text table: columns padded to their widest cell. */
function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return `${[line(head), ...rows.map(line)].join("\n")}\n${rows.length === 0 ? "(none)\n" : ""}`;
}

/** The legacy `{ "sha256": [...] }` secret: its keys keep working as unnamed keys without limits. */
async function legacySecretCommand(
  command: string,
  value: string | undefined,
  opt: (name: string) => string | undefined,
  io: ClientKeyIo,
): Promise<number> {
  const secretId = opt("secret") ?? io.env.CLIENT_KEYS_SECRET ?? "LlmGateway/client-keys";
  const region = opt("region") ?? io.env.AWS_REGION;
  if (command === "revoke" && !value) {
    io.err(CLIENT_KEY_USAGE);
    return 2;
  }
  const client = io.client ?? new SecretsManagerClient(region ? { region } : {});
  try {
    const hashes = parseClientKeySecret(await secretsManagerReader(client)(secretId));
    const save = (list: string[]) =>
      client.send(
        new PutSecretValueCommand({ SecretId: secretId, SecretString: JSON.stringify({ sha256: list }) }),
      );
    if (command === "count") {
      io.out(`${hashes.length} key(s) in ${secretId}\n`);
    } else if (command === "new") {
      const key = `sk-gw-${io.randomBytes(24).toString("base64url")}`;
      await save([...hashes, hashClientKey(key)]);
      io.out(`${key}\n`);
      io.err(`added to ${secretId}; the gateway accepts it within the secret cache TTL (5 min by default)\n`);
    } else {
      const matches = hashes.filter((h) => h.startsWith((value as string).toLowerCase()));
      if (matches.length !== 1) {
        io.err(`${matches.length} hashes match ${value}; give a longer prefix\n`);
        return 2;
      }
      await save(hashes.filter((h) => h !== matches[0]));
      io.out(`revoked ${matches[0]}\n`);
    }
    return 0;
  } catch (error) {
    io.err(`client-key: ${(error as Error).name}: ${(error as Error).message} (secret ${secretId})\n`);
    return 1;
  } finally {
    if (!io.client) client.destroy();
  }
}
