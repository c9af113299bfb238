import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  type QueryCommandOutput,
  ScanCommand,
  type ScanCommandOutput,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  emptyTotals,
  type KeyLimits,
  type KeyRecord,
  LIMIT_NAMES,
  MINUTE_MS,
  type PeriodTotals,
  type UsageRow,
} from "./types.ts";

/**
 * Callers live in the health table, under their own partition key, next to (never mixed with) the
 * health items: one table to deploy, grant, back up (point-in-time recovery) and run locally, and
 * its `ttl` attribute already expires the per-minute counters. Health code reads only `PROVIDER#`
 * and `TARGET#` items by exact key, so caller items cost it nothing.
 *
 * | pk             | sk                        | what                                                   |
 * |----------------|---------------------------|--------------------------------------------------------|
 * | `CALLER#<id>`  | `KEY`                     | name, hash, createdAt, revokedAt, expiresAt, models, limits, lastUsedAt |
 * | `CALLER#<id>`  | `USAGE#<day>#<model>`     | requests, promptTokens, completionTokens, cachedTokens, cacheWriteTokens, cost (ADD) |
 * | `CALLER#<id>`  | `DAY#<day>`               | requests, tokens, cost of the UTC day (ADD)             |
 * | `CALLER#<id>`  | `MONTH#<yyyy-mm>`         | requests, tokens, cost of the UTC month (ADD)           |
 * | `CALLER#<id>`  | `MINUTE#<floor(ms/60000)>`| requests (conditional ADD), tokens (ADD), ttl           |
 * | `CALLER#<id>`  | `CONCURRENT`              | leases: request token → lease end (ms), for maxConcurrent |
 */
export const callerPk = (id: string) => `CALLER#${id}`;
export const KEY_SK = "KEY";
export const usageSk = (day: string, model: string) => `USAGE#${day}#${model}`;
export const daySk = (day: string) => `DAY#${day}`;
export const monthSk = (month: string) => `MONTH#${month}`;
export const minuteSk = (minute: number) => `MINUTE#${minute}`;
export const CONCURRENT_SK = "CONCURRENT";
/** Minute counters are kept an hour past their window, then DynamoDB's TTL removes them. */
export const minuteTtl = (minute: number) => Math.floor(((minute + 1) * MINUTE_MS) / 1000) + 3600;

type Item = Record<string, AttributeValue>;
const s = (value: string): AttributeValue => ({ S: value });
/** A DynamoDB number: never in exponent notation, cost rounded to a billionth of a dollar. */
export const n = (value: number): AttributeValue => ({
  N: Number.isInteger(value) ? String(value) : value.toFixed(9).replace(/\.?0+$/, ""),
});
const num = (item: Item | undefined, key: string) => Number(item?.[key]?.N ?? 0);

/** A key record that is in the table but cannot be used; skipped (the key is refused), never a 500. */
export class MalformedKeyRecordError extends Error {
  constructor(id: string, problem: string) {
    super(`caller key record ${id} is malformed: ${problem}`);
    this.name = "MalformedKeyRecordError";
  }
}

export function toKeyRecord(item: Item): KeyRecord {
  const id = item.id?.S ?? (item.pk?.S ?? "").slice("CALLER#".length);
  const hash = item.hash?.S;
  if (!hash || !/^[0-9a-f]{64}$/.test(hash)) throw new MalformedKeyRecordError(id, "hash is missing");
  const createdAt = Number(item.createdAt?.N);
  if (!Number.isFinite(createdAt)) throw new MalformedKeyRecordError(id, "createdAt is missing");
  const limits: KeyLimits = {};
  const stored = item.limits?.M ?? {};
  for (const name of LIMIT_NAMES) {
    const raw = stored[name]?.N;
    if (raw === undefined) continue;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0)
      throw new MalformedKeyRecordError(id, `limit ${name} is ${raw}`);
    limits[name] = value;
  }
  const models = item.models?.L?.map((m) => m.S);
  if (models?.some((m) => typeof m !== "string"))
    throw new MalformedKeyRecordError(id, "models is not a list of names");
  const revokedAt = item.revokedAt?.N === undefined ? undefined : Number(item.revokedAt.N);
  const expiresAt = item.expiresAt?.N === undefined ? undefined : Number(item.expiresAt.N);
  // A revoked record whose time is unreadable is still revoked: its presence is what counts.
  if (expiresAt !== undefined && !Number.isFinite(expiresAt))
    throw new MalformedKeyRecordError(id, `expiresAt is ${item.expiresAt?.N}`);
  const lastUsedAt = item.lastUsedAt?.N === undefined ? undefined : Number(item.lastUsedAt.N);
  return {
    id,
    name: item.name?.S ?? "",
    hash,
    createdAt,
    limits,
    ...(revokedAt === undefined ? {} : { revokedAt }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(models === undefined ? {} : { models: models as string[] }),
    ...(lastUsedAt === undefined ? {} : { lastUsedAt }),
  };
}

function limitsItem(limits: KeyLimits): AttributeValue {
  const m: Item = {};
  for (const name of LIMIT_NAMES) {
    const value = limits[name];
    if (value !== undefined) m[name] = n(value);
  }
  return { M: m };
}

export interface LoadedKey {
  /** Undefined when no such key; a {@link MalformedKeyRecordError} when the record is unusable. */
  record: KeyRecord | MalformedKeyRecordError | undefined;
  totals: PeriodTotals;
}

export interface CallerStore {
  /** The key record and its current day, month and minute totals, in one BatchGetItem. */
  load(id: string, now: number): Promise<LoadedKey>;
  /**
   * Counts one request in the key's minute window unless that makes more than `limit`: one
   * conditional ADD, exact across every instance sharing the table. False when over the limit.
   */
  countRequest(id: string, minute: number, limit: number, signal?: AbortSignal): Promise<boolean>;
  /**
   * Takes one of the key's `max` concurrency slots for `token` until `leaseEnd` (ms): one
   * conditional update of the key's `CONCURRENT` item, exact across the fleet. Leases that ended
   * before `now` are cleared when the slots look full. False when every slot is held.
   */
  acquireSlot(
    id: string,
    slot: { token: string; leaseEnd: number; max: number; now: number },
    signal?: AbortSignal,
  ): Promise<boolean>;
  /** Frees the slot `token` took (nothing if it is gone already). */
  releaseSlot(id: string, token: string, signal?: AbortSignal): Promise<void>;
  create(record: KeyRecord): Promise<void>;
  update(
    id: string,
    changes: { limits?: KeyLimits; models?: string[] | null; name?: string; expiresAt?: number | null },
  ): Promise<void>;
  /** Marks the key revoked; `now` (the CLI's clock) is kept for people, never compared with. */
  revoke(id: string, now: number): Promise<void>;
  /** Every key record (a Scan: for the operator's CLI, never the request path). */
  list(): Promise<Array<KeyRecord | MalformedKeyRecordError>>;
  /** Usage rows per key, model and day, from `sinceDay` on; one key (a Query) or all (a Scan). */
  usage(options: { keyId?: string; sinceDay?: string }): Promise<UsageRow[]>;
  /** A key's period totals (for `list`). */
  totals(id: string, now: number): Promise<PeriodTotals>;
}

export function createCallerStore(client: DynamoDBClient, tableName: string): CallerStore {
  const TableName = tableName;
  const key = (id: string, sk: string) => ({ pk: s(callerPk(id)), sk: s(sk) });

  async function load(id: string, now: number): Promise<LoadedKey> {
    const totals = emptyTotals(now);
    const keys = [
      key(id, KEY_SK),
      key(id, daySk(totals.day)),
      key(id, monthSk(totals.month)),
      key(id, minuteSk(totals.minute)),
    ];
    const items: Item[] = [];
    let pending: Item[] | undefined = keys;
    for (let round = 0; pending && pending.length > 0 && round < 4; round++) {
      const out: BatchGetItemCommandOutput = await client.send(
        new BatchGetItemCommand({ RequestItems: { [TableName]: { Keys: pending, ConsistentRead: true } } }),
      );
      items.push(...(out.Responses?.[TableName] ?? []));
      pending = out.UnprocessedKeys?.[TableName]?.Keys;
    }
    const bySk = new Map(items.map((item) => [item.sk?.S ?? "", item]));
    const keyItem = bySk.get(KEY_SK);
    let record: LoadedKey["record"];
    try {
      record = keyItem ? toKeyRecord(keyItem) : undefined;
    } catch (error) {
      record = error as MalformedKeyRecordError;
    }
    const day = bySk.get(daySk(totals.day));
    const month = bySk.get(monthSk(totals.month));
    const minute = bySk.get(minuteSk(totals.minute));
    return {
      record,
      totals: {
        ...totals,
        dayTokens: num(day, "tokens"),
        dayCost: num(day, "cost"),
        monthTokens: num(month, "tokens"),
        monthCost: num(month, "cost"),
        minuteTokens: num(minute, "tokens"),
      },
    };
  }

  /** SET one lease in the `leases` map, while fewer than `max` are held. */
  async function setLease(
    id: string,
    slot: { token: string; leaseEnd: number; max: number },
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    try {
      await client.send(
        new UpdateItemCommand({
          TableName,
          Key: key(id, CONCURRENT_SK),
          UpdateExpression: "SET #leases.#token = :end",
          ConditionExpression: "size(#leases) < :max",
          ExpressionAttributeNames: { "#leases": "leases", "#token": slot.token },
          ExpressionAttributeValues: { ":end": n(slot.leaseEnd), ":max": n(slot.max) },
        }),
        signal ? { abortSignal: signal } : {},
      );
      return true;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    // Full, or no `leases` map yet (a key's first slot): the map is created holding this lease.
    try {
      await client.send(
        new UpdateItemCommand({
          TableName,
          Key: key(id, CONCURRENT_SK),
          UpdateExpression: "SET #leases = :leases",
          ConditionExpression: "attribute_not_exists(#leases)",
          ExpressionAttributeNames: { "#leases": "leases" },
          ExpressionAttributeValues: { ":leases": { M: { [slot.token]: n(slot.leaseEnd) } } },
        }),
        signal ? { abortSignal: signal } : {},
      );
      return slot.max > 0;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Removes the leases that ended before `now`, each only if no one renewed it meanwhile. */
  async function clearEndedLeases(
    id: string,
    now: number,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    // A BatchGetItem of one key rather than a GetItem: the chat function's role has only that read.
    const out = await client.send(
      new BatchGetItemCommand({
        RequestItems: { [TableName]: { Keys: [key(id, CONCURRENT_SK)], ConsistentRead: true } },
      }),
      signal ? { abortSignal: signal } : {},
    );
    const item = out.Responses?.[TableName]?.[0];
    const leases = Object.entries(item?.leases?.M ?? {}).filter(([, end]) => Number(end.N) < now);
    if (leases.length === 0) return false;
    const names: Record<string, string> = { "#leases": "leases" };
    const values: Item = {};
    leases.forEach(([token, end], i) => {
      names[`#t${i}`] = token;
      values[`:e${i}`] = end;
    });
    try {
      await client.send(
        new UpdateItemCommand({
          TableName,
          Key: key(id, CONCURRENT_SK),
          UpdateExpression: `REMOVE ${leases.map((_, i) => `#leases.#t${i}`).join(", ")}`,
          ConditionExpression: leases.map((_, i) => `#leases.#t${i} = :e${i}`).join(" AND "),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
        signal ? { abortSignal: signal } : {},
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    return true;
  }

  return {
    load,
    async acquireSlot(id, slot, signal) {
      if (await setLease(id, slot, signal)) return true;
      // Full: a lease whose environment died holds a slot until it ends; clear those, try once more.
      return (await clearEndedLeases(id, slot.now, signal)) && setLease(id, slot, signal);
    },
    async releaseSlot(id, token, signal) {
      try {
        await client.send(
          new UpdateItemCommand({
            TableName,
            Key: key(id, CONCURRENT_SK),
            UpdateExpression: "REMOVE #leases.#token",
            // Without it, a missing map is a ValidationException; a lease cleared as ended is fine.
            ConditionExpression: "attribute_exists(#leases.#token)",
            ExpressionAttributeNames: { "#leases": "leases", "#token": token },
          }),
          signal ? { abortSignal: signal } : {},
        );
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    },
    async countRequest(id, minute, limit, signal) {
      try {
        await client.send(
          new UpdateItemCommand({
            TableName,
            Key: key(id, minuteSk(minute)),
            UpdateExpression: "ADD requests :one SET #ttl = :ttl",
            ConditionExpression: "attribute_not_exists(requests) OR requests < :limit",
            ExpressionAttributeNames: { "#ttl": "ttl" },
            ExpressionAttributeValues: { ":one": n(1), ":ttl": n(minuteTtl(minute)), ":limit": n(limit) },
          }),
          signal ? { abortSignal: signal } : {},
        );
        return true;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) return false;
        throw error;
      }
    },
    async create(record) {
      await client.send(
        new PutItemCommand({
          TableName,
          Item: {
            ...key(record.id, KEY_SK),
            id: s(record.id),
            name: s(record.name),
            hash: s(record.hash),
            createdAt: n(record.createdAt),
            limits: limitsItem(record.limits),
            ...(record.expiresAt === undefined ? {} : { expiresAt: n(record.expiresAt) }),
            ...(record.models ? { models: { L: record.models.map(s) } } : {}),
          },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    },
    async update(id, changes) {
      const sets: string[] = [];
      const removes: string[] = [];
      const values: Item = {};
      const names: Record<string, string> = {};
      if (changes.limits) {
        sets.push("limits = :limits");
        values[":limits"] = limitsItem(changes.limits);
      }
      if (changes.name !== undefined) {
        sets.push("#name = :name");
        names["#name"] = "name";
        values[":name"] = s(changes.name);
      }
      if (changes.expiresAt === null) removes.push("expiresAt");
      else if (changes.expiresAt !== undefined) {
        sets.push("expiresAt = :expiresAt");
        values[":expiresAt"] = n(changes.expiresAt);
      }
      if (changes.models === null) removes.push("models");
      else if (changes.models) {
        sets.push("models = :models");
        values[":models"] = { L: changes.models.map(s) };
      }
      await client.send(
        new UpdateItemCommand({
          TableName,
          Key: key(id, KEY_SK),
          UpdateExpression: [
            sets.length ? `SET ${sets.join(", ")}` : "",
            removes.length ? `REMOVE ${removes.join(", ")}` : "",
          ]
            .filter(Boolean)
            .join(" "),
          ConditionExpression: "attribute_exists(pk)",
          ...(Object.keys(names).length ? { ExpressionAttributeNames: names } : {}),
          ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
        }),
      );
    },
    async revoke(id, now) {
      await client.send(
        new UpdateItemCommand({
          TableName,
          Key: key(id, KEY_SK),
          UpdateExpression: "SET revokedAt = if_not_exists(revokedAt, :now)",
          ConditionExpression: "attribute_exists(pk)",
          ExpressionAttributeValues: { ":now": n(now) },
        }),
      );
    },
    async list() {
      const items = await scan({
        FilterExpression: "sk = :key",
        ExpressionAttributeValues: { ":key": s(KEY_SK) },
      });
      return items.map((item) => {
        try {
          return toKeyRecord(item);
        } catch (error) {
          return error as MalformedKeyRecordError;
        }
      });
    },
    async usage({ keyId, sinceDay }) {
      const since = `USAGE#${sinceDay ?? ""}`;
      let items: Item[];
      if (keyId) {
        items = [];
        let start: Item | undefined;
        do {
          const out: QueryCommandOutput = await client.send(
            new QueryCommand({
              TableName,
              KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
              ExpressionAttributeValues: {
                ":pk": s(callerPk(keyId)),
                ":from": s(since),
                ":to": s("USAGE#~"),
              },
              ...(start ? { ExclusiveStartKey: start } : {}),
            }),
          );
          items.push(...(out.Items ?? []));
          start = out.LastEvaluatedKey;
        } while (start);
      } else {
        items = await scan({
          FilterExpression: "begins_with(pk, :caller) AND sk BETWEEN :from AND :to",
          ExpressionAttributeValues: { ":caller": s("CALLER#"), ":from": s(since), ":to": s("USAGE#~") },
        });
      }
      return items
        .map((item) => ({
          keyId: (item.pk?.S ?? "").slice("CALLER#".length),
          model: item.model?.S ?? "",
          day: item.day?.S ?? "",
          requests: num(item, "requests"),
          promptTokens: num(item, "promptTokens"),
          completionTokens: num(item, "completionTokens"),
          cachedTokens: num(item, "cachedTokens"),
          cacheWriteTokens: num(item, "cacheWriteTokens"),
          cost: num(item, "cost"),
        }))
        .sort(
          (a, b) =>
            a.day.localeCompare(b.day) || a.keyId.localeCompare(b.keyId) || a.model.localeCompare(b.model),
        );
    },
    async totals(id, now) {
      return (await load(id, now)).totals;
    },
  };

  async function scan(filter: {
    FilterExpression: string;
    ExpressionAttributeValues: Item;
  }): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const out: ScanCommandOutput = await client.send(
        new ScanCommand({ TableName, ...filter, ...(start ? { ExclusiveStartKey: start } : {}) }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }
}
