import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  type SecretsManagerClientConfig,
} from "@aws-sdk/client-secrets-manager";
import type { ProviderConfig } from "../config/types.ts";
import type { ApiKeys } from "../providers/keys.ts";

/** How long one Secrets Manager call may take (see {@link createSecretsClient}). */
export interface SecretsTimeouts {
  /** Opening the TCP and TLS connection. */
  connectMs: number;
  /** From sending the request to the response's headers; also the longest a socket may sit idle. */
  requestMs: number;
}

/**
 * A key fetch sits on a request's path (the first request of an execution environment, and after a
 * rotation), so a Secrets Manager that hangs must fail it, not hold it: 1 s to connect, 3 s to answer,
 * with the SDK's default 3 attempts about 12 s at worst, inside the request's own deadline.
 */
export const SECRETS_TIMEOUTS: SecretsTimeouts = { connectMs: 1_000, requestMs: 3_000 };

/**
 * A Secrets Manager client with connect and request timeouts; without them the SDK waits as long as
 * the socket lives (issue 9). Region, endpoint and credentials come from `config` or the SDK's usual
 * environment.
 */
export function createSecretsClient(
  config: SecretsManagerClientConfig = {},
  timeouts: Partial<SecretsTimeouts> = {},
): SecretsManagerClient {
  const { connectMs, requestMs } = { ...SECRETS_TIMEOUTS, ...timeouts };
  return new SecretsManagerClient({
    ...config,
    // `throwOnRequestTimeout`: without it a breached `requestTimeout` only logs a warning.
    requestHandler: {
      connectionTimeout: connectMs,
      requestTimeout: requestMs,
      throwOnRequestTimeout: true,
      socketTimeout: requestMs,
    },
  });
}

/** Reads a secret's string value; undefined when the secret has none. */
export type SecretReader = (secretId: string) => Promise<string | undefined>;

export function secretsManagerReader(client: SecretsManagerClient): SecretReader {
  return async (secretId) => {
    try {
      const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
      return out.SecretString;
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return undefined;
      throw error;
    }
  };
}

export interface SecretCache {
  get(secretId: string): Promise<string | undefined>;
  /**
   * The value `rejected` was refused: fetch again on the next `get`, unless the cache already holds
   * another value (a refetch happened meanwhile). So a burst of 401s after a rotation costs one fetch.
   */
  invalidate(secretId: string, rejected: string): void;
  /** The cached value, fresh or not, without fetching. */
  peek(secretId: string): string | undefined;
  /** Fetches made so far (tests). */
  readonly fetches: number;
}

/**
 * Secrets fetched once per execution environment and kept for `ttlMs`; concurrent requests for a
 * secret being fetched share that one fetch.
 */
export function createSecretCache(
  read: SecretReader,
  options: { ttlMs: number; now: () => number },
): SecretCache {
  const entries = new Map<string, { value: string | undefined; expiresAt: number }>();
  const inflight = new Map<string, Promise<string | undefined>>();
  let fetches = 0;
  return {
    async get(secretId) {
      const entry = entries.get(secretId);
      if (entry && entry.expiresAt > options.now()) return entry.value;
      let pending = inflight.get(secretId);
      if (!pending) {
        fetches++;
        pending = read(secretId)
          .then((value) => {
            entries.set(secretId, { value, expiresAt: options.now() + options.ttlMs });
            return value;
          })
          .finally(() => inflight.delete(secretId));
        inflight.set(secretId, pending);
      }
      return pending;
    },
    invalidate(secretId, rejected) {
      const entry = entries.get(secretId);
      if (entry && entry.value === rejected) entry.expiresAt = 0;
    },
    peek: (secretId) => entries.get(secretId)?.value,
    get fetches() {
      return fetches;
    },
  };
}

/** The key inside a secret: the whole string, or one field of a JSON secret. */
function pick(text: string | undefined, jsonKey: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (jsonKey === undefined) return text.trim() || undefined;
  try {
    const value = (JSON.parse(text) as Record<string, unknown>)[jsonKey];
    return typeof value === "string" && value.trim() ? value.trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Provider keys from Secrets Manager (`{ "secretId", "jsonKey"? }`), or the environment (`{ "env" }`). */
export function secretKeys(cache: SecretCache, env: NodeJS.ProcessEnv = process.env): ApiKeys {
  return {
    async get(provider) {
      const source = provider.apiKey;
      if (source === undefined) return undefined;
      if ("env" in source) return env[source.env]?.trim() || undefined;
      return pick(await cache.get(source.secretId), source.jsonKey);
    },
    has(provider: ProviderConfig) {
      const source = provider.apiKey;
      if (source === undefined) return false;
      return "env" in source ? Boolean(env[source.env]?.trim()) : true;
    },
    invalidate(provider, rejected) {
      const source = provider.apiKey;
      if (source && "secretId" in source) {
        // The cache holds the whole secret text; compare by the key drawn from it.
        const text = cache.peek(source.secretId);
        if (text !== undefined && pick(text, source.jsonKey) === rejected)
          cache.invalidate(source.secretId, text);
      }
    },
  };
}
