import { createHash, timingSafeEqual } from "node:crypto";
import { GatewayError } from "../errors.ts";
import { registerSecret } from "../secrets/redact.ts";

/** The SHA-256 of a client key, hex: what the client-keys secret stores (never the key itself). */
export function hashClientKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

export interface ClientAuth {
  /** Throws a 401 GatewayError unless the request carries a known key. */
  verify(headers: Record<string, string | undefined>): Promise<void>;
}

/**
 * Bearer-key authentication against a set of SHA-256 hashes. The presented key is hashed and
 * compared with every stored hash in constant time (no early exit), so neither a key's content nor
 * its position leaks through timing. `hashes` is asked on every request and is expected to cache.
 *
 * A key that passed is registered for redaction by value (issue 9): an upstream echoing what the
 * caller sent, or a log line, never shows it. Only verified keys are registered, so the registry
 * stays as small as the set of valid keys and a caller cannot flood it with made-up ones; a refused
 * key is never echoed (the 401 messages below name no key).
 */
export function createClientAuth(
  hashes: () => Promise<readonly string[]>,
  register: (key: string) => void = registerSecret,
): ClientAuth {
  return {
    async verify(headers) {
      const header = headers.authorization ?? "";
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match?.[1]) {
        throw unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.");
      }
      let known: readonly string[];
      try {
        known = await hashes();
      } catch (error) {
        throw new GatewayError("Client authentication is unavailable; retry later.", {
          status: 503,
          type: "api_error",
          code: "auth_unavailable",
          cause: error,
        });
      }
      const presented = Buffer.from(hashClientKey(match[1]), "hex");
      let found = false;
      for (const hash of known) {
        const stored = Buffer.from(hash, "hex");
        if (stored.length === presented.length && timingSafeEqual(stored, presented)) found = true;
      }
      if (!found) throw unauthorized("Incorrect API key provided.");
      register(match[1]);
    },
  };
}

function unauthorized(message: string): GatewayError {
  return new GatewayError(message, { status: 401, type: "invalid_request_error", code: "invalid_api_key" });
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
