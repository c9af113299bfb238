import {
  MAX_STORED_PARTS,
  readStoredResponse,
  responseKey,
  STORED_PART_BYTES,
  type StoredResponse,
  type StoredResponseItem,
  serialiseStoredResponse,
} from "../dialects/openai-responses/store.ts";

/**
 * Where stored responses live (issue 19): `store: true` writes one, `previous_response_id` and the
 * `GET`/`DELETE /v1/responses/{id}` routes read and delete it. A record belongs to the caller key
 * that made it (its id, or {@link OPEN_OWNER} on a gateway without caller keys): every method takes
 * that owner, and another owner's record is as absent as an unknown or expired one. The records'
 * shape and bounds are the dialect's (lib/dialects/openai-responses/store.ts); the DynamoDB store is
 * `dynamo-store.ts`, this file's memory store is for tests.
 */
export interface ResponseStore {
  /** Writes the record; false (nothing written) when it is past the size bound. */
  put(record: StoredResponse): Promise<boolean>;
  /** The owner's record of that id, or undefined (unknown, expired, deleted, another owner's). */
  get(id: string, owner: string): Promise<StoredResponse | undefined>;
  /** Deletes the owner's record of that id; false when there was none to delete. */
  delete(id: string, owner: string): Promise<boolean>;
}

/** The owner of responses made on a gateway that has no caller keys. */
export const OPEN_OWNER = "open";

/**
 * Whether a record fits the size bound. Gzip never grows JSON by more than a few bytes per 32 KB
 * block, so a record whose JSON is well under the bound fits without compressing it; only a record
 * near or past the bound is compressed to find out.
 */
export function fitsStoredBound(record: StoredResponse): boolean {
  const bound = MAX_STORED_PARTS * STORED_PART_BYTES;
  const json = JSON.stringify({ response: record.response, input: record.input });
  if (Buffer.byteLength(json) < bound * 0.95) return true;
  return serialiseStoredResponse(record).stored;
}

/**
 * Ids as the gateway makes them (`resp_` and hex): anything else, or longer, is a 404 without a
 * table call (a partition key holds at most 2,048 bytes, and the id is caller text).
 */
export function isResponseId(id: string): boolean {
  return id.length <= 128 && /^[A-Za-z0-9_-]+$/.test(id);
}

/**
 * Records in this process's memory, through the same serialisation, size bound and expiry as the
 * table's (`now` in milliseconds, as `Deps.now`).
 */
export function createMemoryResponseStore(now: () => number): ResponseStore {
  const records = new Map<string, StoredResponseItem[]>();
  const read = (id: string, owner: string) =>
    readStoredResponse(records.get(responseKey(id)) ?? [], { owner, nowSeconds: Math.floor(now() / 1000) });
  return {
    async put(record) {
      const serialised = serialiseStoredResponse(record);
      if (!serialised.stored) return false;
      records.set(responseKey(record.id), serialised.items);
      return true;
    },
    async get(id, owner) {
      return read(id, owner);
    },
    async delete(id, owner) {
      if (read(id, owner) === undefined) return false;
      return records.delete(responseKey(id));
    },
  };
}
