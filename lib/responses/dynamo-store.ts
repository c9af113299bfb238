import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  type QueryCommandOutput,
} from "@aws-sdk/client-dynamodb";
import {
  MAX_STORED_PARTS,
  readStoredResponse,
  responseKey,
  type StoredResponseItem,
  serialiseStoredResponse,
} from "../dialects/openai-responses/store.ts";
import type { ResponseStore } from "./store.ts";

/**
 * Stored responses on the gateway's table (issue 19), beside health and callers under their own
 * partition key: `RESPONSE#<id>`, one item per part (`PART#000`, ...; the layout and the bound are
 * lib/dialects/openai-responses/store.ts's). Written with one `PutItem` per part, read with one
 * strongly consistent `Query` of the partition (so another instance reads what this one just
 * wrote), deleted part by part with a `DeleteItem` conditional on the owner. The chat function's
 * role allows exactly these three on `RESPONSE#*` (infra/table-access.ts).
 */
export function createDynamoResponseStore(options: {
  client: DynamoDBClient;
  tableName: string;
  /** Milliseconds since the epoch (`Deps.now`): expiry is judged by it, not only by DynamoDB's TTL. */
  now: () => number;
}): ResponseStore {
  const { client, now } = options;
  const TableName = options.tableName;

  /** Every item of one partition (a record spans at most a few 1 MB query pages). */
  async function query(id: string, projection?: string): Promise<Record<string, AttributeValue>[]> {
    const items: Record<string, AttributeValue>[] = [];
    let start: Record<string, AttributeValue> | undefined;
    // Parts of 350 KB: a page of 1 MB holds two or three; the bound on pages is the bound on parts.
    for (let page = 0; page <= MAX_STORED_PARTS; page++) {
      const out: QueryCommandOutput = await client.send(
        new QueryCommand({
          TableName,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": { S: responseKey(id) } },
          ConsistentRead: true,
          ...(projection === undefined
            ? {}
            : { ProjectionExpression: projection, ExpressionAttributeNames: { "#o": "owner", "#t": "ttl" } }),
          ...(start === undefined ? {} : { ExclusiveStartKey: start }),
        }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
      if (start === undefined) break;
    }
    return items;
  }

  return {
    async put(record) {
      const serialised = serialiseStoredResponse(record);
      if (!serialised.stored) return false;
      await Promise.all(
        serialised.items.map((item) => client.send(new PutItemCommand({ TableName, Item: toItem(item) }))),
      );
      return true;
    },

    async get(id, owner) {
      const items = (await query(id)).flatMap((item) => fromItem(item) ?? []);
      return readStoredResponse(items, { owner, nowSeconds: Math.floor(now() / 1000) });
    },

    async delete(id, owner) {
      const items = await query(id, "pk, sk, #o, #t");
      const first = items[0];
      if (first === undefined || first.owner?.S !== owner) return false;
      if (Number(first.ttl?.N ?? 0) <= Math.floor(now() / 1000)) return false;
      try {
        await Promise.all(
          items.map((item) =>
            client.send(
              new DeleteItemCommand({
                TableName,
                Key: { pk: item.pk as AttributeValue, sk: item.sk as AttributeValue },
                ConditionExpression: "#o = :o",
                ExpressionAttributeNames: { "#o": "owner" },
                ExpressionAttributeValues: { ":o": { S: owner } },
              }),
            ),
          ),
        );
      } catch (error) {
        // Another request deleted it (or rewrote it under another owner) meanwhile: not this caller's.
        if (error instanceof ConditionalCheckFailedException) return false;
        throw error;
      }
      return true;
    },
  };
}

function toItem(item: StoredResponseItem): Record<string, AttributeValue> {
  return {
    pk: { S: item.pk },
    sk: { S: item.sk },
    owner: { S: item.owner },
    ttl: { N: String(item.ttl) },
    parts: { N: String(item.parts) },
    data: { B: item.data },
  };
}

/** An item as the dialect reads it; undefined for one that is not a stored response's part. */
function fromItem(item: Record<string, AttributeValue>): StoredResponseItem | undefined {
  const { pk, sk, owner, ttl, parts, data } = item;
  if (pk?.S === undefined || sk?.S === undefined || owner?.S === undefined || data?.B === undefined)
    return undefined;
  const expires = Number(ttl?.N);
  const count = Number(parts?.N);
  if (!Number.isFinite(expires) || !Number.isInteger(count)) return undefined;
  return { pk: pk.S, sk: sk.S, owner: owner.S, ttl: expires, parts: count, data: data.B };
}
