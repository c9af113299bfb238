import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  expandHistory,
  MAX_STORED_PARTS,
  RESPONSE_TTL_SECONDS,
  readStoredResponse,
  STORED_PART_BYTES,
  type StoredResponse,
  serialiseStoredResponse,
} from "../../../lib/dialects/openai-responses/store.ts";

const NOW = 1_760_000_000;

function record(input: unknown[], output: unknown[] = []): StoredResponse {
  return {
    id: "resp_1",
    owner: "key-a",
    createdAt: NOW,
    expiresAt: NOW + RESPONSE_TTL_SECONDS,
    response: { id: "resp_1", object: "response", status: "completed", output },
    input,
    ownInputFrom: 0,
  };
}

function items(stored: StoredResponse) {
  const serialised = serialiseStoredResponse(stored);
  if (!serialised.stored) throw new Error("expected the record to fit");
  return serialised.items;
}

describe("stored responses: serialisation", () => {
  it("writes one gzip part under RESPONSE#<id> and reads it back for its owner", () => {
    // Prepare
    const stored = record(
      [{ type: "message", role: "user", content: "Hi" }],
      [{ type: "message", id: "msg_1" }],
    );
    // Act
    const written = items(stored);
    const read = readStoredResponse(written, { owner: "key-a", nowSeconds: NOW });
    // Assess
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({
      pk: "RESPONSE#resp_1",
      sk: "PART#000",
      owner: "key-a",
      ttl: NOW + 30 * 24 * 3600,
      parts: 1,
    });
    expect(Buffer.from(written[0]?.data ?? []).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(read).toEqual(stored);
  });

  it("is a 404 (undefined) for another key, once expired, or with a part missing", () => {
    // Prepare: random base64 (it compresses to about 3/4), so the record needs three parts.
    const big = randomBytes(STORED_PART_BYTES * 3)
      .toString("base64")
      .slice(0, 3 * STORED_PART_BYTES);
    const written = items(record([{ type: "message", role: "user", content: big }]));
    // Act / Assess
    expect(written.map((item) => item.sk)).toEqual(["PART#000", "PART#001", "PART#002"]);
    for (const item of written) expect(item.data.length).toBeLessThanOrEqual(STORED_PART_BYTES);
    expect(readStoredResponse(written, { owner: "key-a", nowSeconds: NOW })?.input).toHaveLength(1);
    expect(readStoredResponse(written, { owner: "key-b", nowSeconds: NOW })).toBeUndefined();
    expect(
      readStoredResponse(written, { owner: "key-a", nowSeconds: NOW + RESPONSE_TTL_SECONDS }),
    ).toBeUndefined();
    expect(readStoredResponse(written.slice(0, 2), { owner: "key-a", nowSeconds: NOW })).toBeUndefined();
    // Parts in any order (a Query may page them) read the same.
    expect(readStoredResponse(written.slice().reverse(), { owner: "key-a", nowSeconds: NOW })).toBeDefined();
  });

  it("refuses to store past the bound, saying how large it was", () => {
    // Prepare: more incompressible bytes than MAX_STORED_PARTS parts hold.
    const big = randomBytes(Math.ceil(STORED_PART_BYTES * MAX_STORED_PARTS * 1.05)).toString("base64");
    // Act
    const serialised = serialiseStoredResponse(record([{ type: "message", role: "user", content: big }]));
    // Assess
    expect(serialised.stored).toBe(false);
    if (!serialised.stored)
      expect(serialised.compressedBytes).toBeGreaterThan(STORED_PART_BYTES * MAX_STORED_PARTS);
  });
});

describe("expandHistory", () => {
  it("rebuilds the whole input: history, the previous output, then the new items, references resolved", () => {
    // Prepare
    const previous: StoredResponse = {
      ...record(
        [{ type: "message", id: "in_1", role: "user", content: "Fix it" }],
        [{ type: "function_call", id: "fc_1", call_id: "c1", name: "f", arguments: "{}" }],
      ),
    };
    // Act
    const { input, ownInputFrom } = expandHistory(previous, [
      { type: "item_reference", id: "in_1" },
      { type: "function_call_output", call_id: "c1", output: "ok" },
      { type: "item_reference", id: "nowhere" },
    ]);
    // Assess
    expect(input).toEqual([
      { type: "message", id: "in_1", role: "user", content: "Fix it" },
      { type: "function_call", id: "fc_1", call_id: "c1", name: "f", arguments: "{}" },
      { type: "message", id: "in_1", role: "user", content: "Fix it" },
      { type: "function_call_output", call_id: "c1", output: "ok" },
      { type: "item_reference", id: "nowhere" },
    ]);
    expect(ownInputFrom).toBe(2);
  });
});
