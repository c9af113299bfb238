import { createHash, timingSafeEqual } from "node:crypto";

/**
 * A caller key: `sk-gw-<id>.<secret>`. The id (12 lower-case base-32 characters) is readable without
 * a lookup, so the gateway fetches exactly one record, and logs, the CLI and the ledger can name the
 * key without ever holding it. Only the SHA-256 of the whole key is stored. Keys of the older format
 * (`sk-gw-<base64url>`, no dot) never match this pattern and are checked against the legacy secret.
 */
const KEY_PATTERN = /^sk-gw-([a-z2-7]{12})\.([A-Za-z0-9_-]{32,128})$/;
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

export interface NewKey {
  id: string;
  key: string;
  hash: string;
}

/** A fresh key: a 60-bit id and a 256-bit secret from `bytes`, a CSPRNG (the CLI passes `crypto.randomBytes`). */
export function generateKey(bytes: (n: number) => Buffer): NewKey {
  const raw = bytes(12);
  let id = "";
  for (let i = 0; i < 12; i++) id += ID_ALPHABET[(raw[i] ?? 0) % 32];
  const key = `sk-gw-${id}.${bytes(32).toString("base64url")}`;
  return { id, key, hash: hashKey(key) };
}

/** The key's id, or undefined when the key is not of the table format. */
export function keyIdOf(key: string): string | undefined {
  return KEY_PATTERN.exec(key)?.[1];
}

/** A valid key id (also what `client-key set/revoke` accept). */
export function isKeyId(id: string): boolean {
  return /^[a-z2-7]{12}$/.test(id);
}

/** SHA-256 of the key, hex: what the table (and the legacy secret) stores. */
export function hashKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** Whether `key` hashes to `storedHex`, compared in constant time (no early exit on a mismatch). */
export function keyMatches(key: string, storedHex: string): boolean {
  const presented = Buffer.from(hashKey(key), "hex");
  const stored = Buffer.from(storedHex, "hex");
  return stored.length === presented.length && timingSafeEqual(stored, presented);
}
