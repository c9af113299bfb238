import { bearerKey } from "../callers/bearer.ts";
import { verifyLegacyKey } from "../callers/gate.ts";
import { hashKey } from "../callers/key.ts";
import type { ClientAuth } from "../callers/types.ts";
import { registerCallerKey } from "../secrets/redact.ts";

export type { Caller, ClientAuth, UsageMeter } from "../callers/types.ts";

/** The SHA-256 of a client key, hex: what the client-keys secret stores (never the key itself). */
export function hashClientKey(key: string): string {
  return hashKey(key);
}

/**
 * Bearer-key authentication against a set of SHA-256 hashes (the `{ "sha256": [...] }` secret).
 * `hashes` is asked on every request and is expected to cache.
 *
 * A key that passed is registered for redaction by value (issue 9): an upstream echoing what the
 * caller sent, or a log line, never shows it. Only verified keys are registered, so the registry
 * stays as small as the set of valid keys and a caller cannot flood it with made-up ones; a refused
 * key is never echoed (the 401 messages below name no key).
 */
export function createClientAuth(
  hashes: () => Promise<readonly string[]>,
  register: (key: string) => void = registerCallerKey,
): ClientAuth {
  return {
    // async: a missing bearer key is a rejected promise, as from every other verify, not a throw.
    async verify(headers) {
      return verifyLegacyKey(bearerKey(headers), hashes, register);
    },
  };
}

/** Reads the client-keys secret: `{ "sha256": ["<hex>", ...] }`. */
export function parseClientKeySecret(text: string | undefined): string[] {
  if (!text) return [];
  const parsed = JSON.parse(text) as { sha256?: unknown };
  if (!Array.isArray(parsed.sha256))
    throw new Error('client-keys secret must be { "sha256": ["<hex>", ...] }');
  return parsed.sha256
    .filter((h): h is string => typeof h === "string" && /^[0-9a-f]{64}$/i.test(h))
    .map((h) => h.toLowerCase());
}
