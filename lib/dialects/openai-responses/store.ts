/**
 * Stored responses (issue 19), the pure part: the DynamoDB record shape, its serialisation within
 * the item size bound, and the rebuilding of a conversation's input for `previous_response_id`. The
 * table calls are the caller's; nothing here does I/O.
 *
 * One record per response holds the response object as the caller received it and the whole input
 * the model saw (the history of its chain expanded, each earlier turn's input and output), so
 * continuing a conversation is one read, from any instance, whichever target answers next. The
 * record is JSON, gzip-compressed (conversations compress 4–10×), and split into parts of at most
 * {@link STORED_PART_BYTES} bytes, one DynamoDB item each (DynamoDB refuses items over 400 KB), all
 * under one partition key: `RESPONSE#<id>`, sort keys `PART#000`, `PART#001`, ...
 *
 * Past {@link MAX_STORED_PARTS} parts (about 4.2 MB compressed) the record is not stored:
 * {@link serialiseStoredResponse} says so, and the response is answered as usual, its `store`
 * false (a later `previous_response_id` naming it is a 404, as an expired one is). Reading is
 * bounded too: a record never inflates past {@link MAX_STORED_JSON_BYTES}.
 */
import { gunzipSync, gzipSync } from "node:zlib";

/** How long a stored response lives: OpenAI keeps them 30 days. */
export const RESPONSE_TTL_SECONDS = 30 * 24 * 60 * 60;
/** Compressed bytes per item: under DynamoDB's 400 KB with room for the keys and attributes. */
export const STORED_PART_BYTES = 350_000;
/** Items per record at most: about 4.2 MB compressed, more than any context window's text. */
export const MAX_STORED_PARTS = 12;
/** The most a record may inflate to when read (a record is the gateway's own, but bound it anyway). */
export const MAX_STORED_JSON_BYTES = 64 * 1024 * 1024;

/** A stored response, as the routes use it. */
export interface StoredResponse {
  id: string;
  /** The caller key that made it (its id, never the key): another key gets a 404. */
  owner: string;
  /** Seconds since the epoch. */
  createdAt: number;
  /** Seconds since the epoch; the record's `ttl`. */
  expiresAt: number;
  /** The response object as the caller received it. */
  response: Record<string, unknown>;
  /** Every input item the model saw, earlier turns' included, oldest first. */
  input: unknown[];
  /** Where this response's own input begins in `input` (before it: the chain's history). */
  ownInputFrom: number;
}

/** One DynamoDB item of a stored response (attribute names as the table holds them). */
export interface StoredResponseItem {
  pk: string;
  sk: string;
  owner: string;
  /** DynamoDB's TTL attribute: seconds since the epoch. */
  ttl: number;
  /** Parts of the record (the same on every item, so any one says whether all were read). */
  parts: number;
  data: Uint8Array;
}

export function responseKey(id: string): string {
  return `RESPONSE#${id}`;
}

function partKey(index: number): string {
  return `PART#${String(index).padStart(3, "0")}`;
}

export type SerialisedResponse =
  | { stored: true; items: StoredResponseItem[] }
  | { stored: false; compressedBytes: number };

/** The items to write for a stored response, or why it cannot be (too large, past the bound). */
export function serialiseStoredResponse(record: StoredResponse): SerialisedResponse {
  const json = JSON.stringify({
    id: record.id,
    createdAt: record.createdAt,
    response: record.response,
    input: record.input,
    ownInputFrom: record.ownInputFrom,
  });
  const compressed = gzipSync(json);
  const parts = Math.max(1, Math.ceil(compressed.length / STORED_PART_BYTES));
  if (parts > MAX_STORED_PARTS) return { stored: false, compressedBytes: compressed.length };
  const items: StoredResponseItem[] = [];
  for (let i = 0; i < parts; i++) {
    items.push({
      pk: responseKey(record.id),
      sk: partKey(i),
      owner: record.owner,
      ttl: record.expiresAt,
      parts,
      data: compressed.subarray(i * STORED_PART_BYTES, (i + 1) * STORED_PART_BYTES),
    });
  }
  return { stored: true, items };
}

/**
 * The stored response the items of one partition hold, or undefined for what is a 404 to the
 * caller: no items, another key's, expired (DynamoDB deletes expired items late, up to days), a
 * part missing or the record unreadable.
 */
export function readStoredResponse(
  items: readonly StoredResponseItem[],
  who: { owner: string; nowSeconds: number },
): StoredResponse | undefined {
  const first = items[0];
  if (first === undefined) return undefined;
  if (first.owner !== who.owner || first.ttl <= who.nowSeconds) return undefined;
  const byKey = new Map<string, Uint8Array>();
  for (const item of items) if (item.pk === first.pk) byKey.set(item.sk, item.data);
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < first.parts; i++) {
    const piece = byKey.get(partKey(i));
    if (piece === undefined) return undefined;
    pieces.push(piece);
  }
  let value: unknown;
  try {
    value = JSON.parse(
      gunzipSync(Buffer.concat(pieces), { maxOutputLength: MAX_STORED_JSON_BYTES }).toString(),
    );
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const body = value as Record<string, unknown>;
  if (
    typeof body.id !== "string" ||
    typeof body.createdAt !== "number" ||
    typeof body.response !== "object" ||
    body.response === null ||
    !Array.isArray(body.input) ||
    typeof body.ownInputFrom !== "number"
  )
    return undefined;
  return {
    id: body.id,
    owner: first.owner,
    createdAt: body.createdAt,
    expiresAt: first.ttl,
    response: body.response as Record<string, unknown>,
    input: body.input,
    ownInputFrom: body.ownInputFrom,
  };
}

/**
 * The whole input for a request that continues `previous`: the history it saw, its output, then the
 * new input. An `item_reference` in the new input is replaced by the item of that id from the
 * history or the output (OpenAI's way to point at an item instead of repeating it); one naming no
 * such item is kept as it is (the parser keeps it unmapped). `instructions` are not carried over,
 * as OpenAI does not carry them. Returns the input and where the new items begin.
 */
export function expandHistory(
  previous: StoredResponse,
  newInput: readonly unknown[],
): { input: unknown[]; ownInputFrom: number } {
  const input: unknown[] = previous.input.slice();
  const output = previous.response.output;
  if (Array.isArray(output)) for (const item of output) input.push(item);
  const ownInputFrom = input.length;
  const byId = new Map<string, unknown>();
  for (const item of input) {
    if (typeof item === "object" && item !== null && "id" in item && typeof item.id === "string")
      byId.set(item.id, item);
  }
  for (const item of newInput) {
    if (typeof item === "object" && item !== null && "type" in item && item.type === "item_reference") {
      const id = "id" in item && typeof item.id === "string" ? item.id : undefined;
      const found = id === undefined ? undefined : byId.get(id);
      input.push(found ?? item);
    } else input.push(item);
  }
  return { input, ownInputFrom };
}
