import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { HealthPolicy } from "../config/types.ts";
import type { CooldownReason } from "../cooldown/types.ts";
import { nextState } from "./transition.ts";
import {
  type CheckRecord,
  type HealthSnapshot,
  type HealthStatus,
  type HealthStore,
  initialState,
  type ProviderState,
  type TargetState,
} from "./types.ts";

/**
 * The health table (one per deployment), keyed by `pk` and `sk` (both strings):
 *
 * | pk                         | sk                 | what                                                |
 * |----------------------------|--------------------|-----------------------------------------------------|
 * | `PROVIDER#<id>`            | `STATE`            | status, counters, last check, latency, ttft, lastError, weight, enabled, version |
 * | `PROVIDER#<id>`            | `CHECK#<ms, 15 digits>` | one check: ok, status, latencyMs, ttftMs, error, at, ttl (epoch s) |
 * | `TARGET#<provider>/<model>`| `STATE`            | live-traffic failures, cooldownUntil, reason        |
 */
export const STATE_SK = "STATE";
const providerPk = (id: string) => `PROVIDER#${id}`;
const targetPk = (target: string) => `TARGET#${target}`;
const checkSk = (at: number) => `CHECK#${String(at).padStart(15, "0")}`;

type Item = Record<string, AttributeValue>;

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({ N: String(value) });
const str = (item: Item, key: string) => item[key]?.S;
const num = (item: Item, key: string) => (item[key]?.N === undefined ? undefined : Number(item[key]?.N));
const bool = (item: Item, key: string) => item[key]?.BOOL;

function toProviderState(providerId: string, item: Item): ProviderState {
  return {
    providerId,
    status: (str(item, "status") as HealthStatus | undefined) ?? "unknown",
    consecutiveFailures: num(item, "consecutiveFailures") ?? 0,
    consecutiveSuccesses: num(item, "consecutiveSuccesses") ?? 0,
    lastCheckAt: num(item, "lastCheckAt"),
    latencyMs: num(item, "latencyMs"),
    ttftMs: num(item, "ttftMs"),
    lastError: str(item, "lastError"),
    weight: num(item, "weight"),
    enabled: bool(item, "enabled"),
    version: num(item, "version") ?? 0,
  };
}

function toTargetState(target: string, item: Item): TargetState {
  return {
    target,
    failures: num(item, "failures") ?? 0,
    cooldownUntil: num(item, "cooldownUntil"),
    reason: str(item, "reason") as CooldownReason | undefined,
  };
}

/** Builds `SET a = :a, …` / `REMOVE b` from a record, with every name aliased (status, ttl are reserved). */
function updateExpression(values: Record<string, AttributeValue | undefined>) {
  const names: Record<string, string> = {};
  const attributeValues: Record<string, AttributeValue> = {};
  const sets: string[] = [];
  const removes: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    names[`#${key}`] = key;
    if (value === undefined) removes.push(`#${key}`);
    else {
      sets.push(`#${key} = :${key}`);
      attributeValues[`:${key}`] = value;
    }
  }
  const expression = [
    sets.length ? `SET ${sets.join(", ")}` : "",
    removes.length ? `REMOVE ${removes.join(", ")}` : "",
  ]
    .filter(Boolean)
    .join(" ");
  return { expression, names, values: attributeValues };
}

export interface DynamoHealthStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  health: HealthPolicy;
}

export function createDynamoHealthStore(options: DynamoHealthStoreOptions): HealthStore {
  const { client, tableName: TableName } = options;
  const key = (pk: string, sk = STATE_SK) => ({ pk: s(pk), sk: s(sk) });

  async function getState(providerId: string): Promise<ProviderState> {
    const { Item } = await client.send(
      new GetItemCommand({ TableName, Key: key(providerPk(providerId)), ConsistentRead: true }),
    );
    return Item ? toProviderState(providerId, Item) : initialState(providerId);
  }

  return {
    async read(providerIds, targets) {
      const wanted = [
        ...providerIds.map((id) => key(providerPk(id))),
        ...targets.map((t) => key(targetPk(t))),
      ];
      const snapshot: HealthSnapshot = { providers: new Map(), targets: new Map() };
      for (let i = 0; i < wanted.length; i += 100) {
        let keys: Item[] | undefined = wanted.slice(i, i + 100);
        for (let round = 0; keys && keys.length > 0 && round < 4; round++) {
          const out: BatchGetItemCommandOutput = await client.send(
            new BatchGetItemCommand({ RequestItems: { [TableName]: { Keys: keys } } }),
          );
          for (const item of out.Responses?.[TableName] ?? []) {
            const pk = str(item, "pk") ?? "";
            if (pk.startsWith("PROVIDER#")) {
              const id = pk.slice("PROVIDER#".length);
              snapshot.providers.set(id, toProviderState(id, item));
            } else if (pk.startsWith("TARGET#")) {
              const target = pk.slice("TARGET#".length);
              snapshot.targets.set(target, toTargetState(target, item));
            }
          }
          keys = out.UnprocessedKeys?.[TableName]?.Keys;
        }
      }
      return snapshot;
    },

    async applyCheck(providerId, result, now) {
      // Read, fold, write if nobody wrote in between; otherwise read again. Weight and enabled are
      // the operators' and are never written here.
      for (let attempt = 0; attempt < 10; attempt++) {
        const current = await getState(providerId);
        const next = nextState(current, result, options.health, now);
        const update = updateExpression({
          providerId: s(providerId),
          status: s(next.status),
          consecutiveFailures: n(next.consecutiveFailures),
          consecutiveSuccesses: n(next.consecutiveSuccesses),
          lastCheckAt: n(now),
          latencyMs: n(next.latencyMs ?? 0),
          ttftMs: next.ttftMs === undefined ? undefined : n(next.ttftMs),
          lastError: next.lastError === undefined ? undefined : s(next.lastError),
          version: n(current.version + 1),
        });
        try {
          await client.send(
            new UpdateItemCommand({
              TableName,
              Key: key(providerPk(providerId)),
              UpdateExpression: update.expression,
              ConditionExpression: "attribute_not_exists(pk) OR #version = :expected",
              ExpressionAttributeNames: update.names,
              ExpressionAttributeValues: { ...update.values, ":expected": n(current.version) },
            }),
          );
          return { ...next, version: current.version + 1 };
        } catch (error) {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        }
      }
      throw new Error(`health state of ${providerId} kept changing under concurrent writers`);
    },

    async appendHistory(record) {
      await client.send(
        new PutItemCommand({
          TableName,
          Item: {
            ...key(providerPk(record.providerId), checkSk(record.at)),
            providerId: s(record.providerId),
            at: n(record.at),
            ok: { BOOL: record.ok },
            latencyMs: n(record.latencyMs),
            ttl: n(record.ttl),
            ...(record.status === undefined ? {} : { status: n(record.status) }),
            ...(record.ttftMs === undefined ? {} : { ttftMs: n(record.ttftMs) }),
            ...(record.error === undefined ? {} : { error: s(record.error.slice(0, 200)) }),
          },
        }),
      );
    },

    async history(providerId, limit, now) {
      const out = await client.send(
        new QueryCommand({
          TableName,
          KeyConditionExpression: "pk = :pk AND begins_with(sk, :check)",
          ExpressionAttributeValues: { ":pk": s(providerPk(providerId)), ":check": s("CHECK#") },
          ScanIndexForward: false,
          Limit: limit * 2,
        }),
      );
      return (out.Items ?? [])
        .map((item) => ({
          providerId,
          at: num(item, "at") ?? 0,
          ok: bool(item, "ok") ?? false,
          status: num(item, "status"),
          latencyMs: num(item, "latencyMs") ?? 0,
          ttftMs: num(item, "ttftMs"),
          error: str(item, "error"),
          ttl: num(item, "ttl") ?? 0,
        }))
        .filter((record: CheckRecord) => record.ttl * 1000 > now)
        .slice(0, limit);
    },

    async recordTargetFailure(target, bench, now) {
      try {
        // Conditional, so a longer bench another instance set is kept; ADD counts benches atomically.
        await client.send(
          new UpdateItemCommand({
            TableName,
            Key: key(targetPk(target)),
            UpdateExpression:
              "SET #target = :target, lastFailureAt = :now, cooldownUntil = :until, #reason = :reason ADD failures :one",
            ConditionExpression: "attribute_not_exists(cooldownUntil) OR cooldownUntil < :until",
            ExpressionAttributeNames: { "#target": "target", "#reason": "reason" },
            ExpressionAttributeValues: {
              ":target": s(target),
              ":now": n(now),
              ":until": n(bench.until),
              ":reason": s(bench.reason),
              ":one": n(1),
            },
          }),
        );
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error; // a longer bench is already set
      }
    },

    async clearTarget(target, now, keepRateLimit) {
      try {
        await client.send(
          new UpdateItemCommand({
            TableName,
            Key: key(targetPk(target)),
            UpdateExpression: "SET failures = :zero REMOVE cooldownUntil, #reason",
            ConditionExpression: keepRateLimit
              ? "attribute_exists(pk) AND (attribute_not_exists(#reason) OR #reason <> :limited OR cooldownUntil <= :now)"
              : "attribute_exists(pk)",
            ExpressionAttributeNames: { "#reason": "reason" },
            ExpressionAttributeValues: {
              ":zero": n(0),
              ...(keepRateLimit ? { ":limited": s("rate_limited"), ":now": n(now) } : {}),
            },
          }),
        );
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    },

    async setWeight(providerId, weight) {
      await operatorUpdate(providerId, "weight", n(weight));
    },

    async setEnabled(providerId, enabled) {
      await operatorUpdate(providerId, "enabled", { BOOL: enabled });
    },
  };

  /** Operator changes bump the version so a concurrent checker re-reads instead of overwriting. */
  async function operatorUpdate(providerId: string, field: string, value: AttributeValue) {
    await client.send(
      new UpdateItemCommand({
        TableName,
        Key: key(providerPk(providerId)),
        UpdateExpression: "SET #field = :value, providerId = :id ADD #version :one",
        ExpressionAttributeNames: { "#field": field, "#version": "version" },
        ExpressionAttributeValues: { ":value": value, ":id": s(providerId), ":one": n(1) },
      }),
    );
  }
}
