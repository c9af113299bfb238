import { type Callers, createCallers } from "../../lib/callers/callers.ts";
import { generateKey } from "../../lib/callers/key.ts";
import type { KeyLimits } from "../../lib/callers/types.ts";
import type { CallersPolicy } from "../../lib/config/types.ts";
import { DEFAULT_CALLERS } from "../../lib/config/validate.ts";
import type { TestTable } from "../support/dynamo.ts";
import { type LogLine, recordingLogger } from "../support/gateway.ts";

/** A clock the test moves: mid-minute by default, so no window boundary falls inside a test. */
export function testClock(start = Date.UTC(2026, 10, 29, 12, 0, 30)) {
  let at = start;
  return {
    now: () => at,
    advance(ms: number) {
      at += ms;
    },
  };
}

export function callersOn(
  table: TestTable,
  options: {
    now: () => number;
    policy?: Partial<CallersPolicy>;
    flushAfterResponse?: boolean;
    legacyHashes?: readonly string[];
    logs?: LogLine[];
  },
): Callers {
  return createCallers({
    client: table.client,
    tableName: table.tableName,
    policy: { ...DEFAULT_CALLERS, ...options.policy },
    now: options.now,
    logger: recordingLogger(options.logs ?? []),
    register: () => {},
    ...(options.flushAfterResponse ? { flushAfterResponse: true } : {}),
    ...(options.legacyHashes ? { legacyHashes: async () => options.legacyHashes ?? [] } : {}),
  });
}

/** Creates a key in the table, as `client-key create` does, and returns it. */
export async function createKey(
  callers: Callers,
  name: string,
  extra: { limits?: KeyLimits; models?: string[]; now?: number; expiresAt?: number } = {},
): Promise<{ id: string; key: string; auth: Record<string, string> }> {
  const made = generateKey();
  await callers.store.create({
    id: made.id,
    name,
    hash: made.hash,
    createdAt: extra.now ?? 0,
    limits: extra.limits ?? {},
    ...(extra.models ? { models: extra.models } : {}),
    ...(extra.expiresAt === undefined ? {} : { expiresAt: extra.expiresAt }),
  });
  return { id: made.id, key: made.key, auth: { authorization: `Bearer ${made.key}` } };
}

export const config = (upstreamUrl: string) => ({
  providers: [{ id: "p", type: "openai", baseUrl: upstreamUrl, apiKey: { env: "TEST_KEY" } }],
  models: {
    m: { targets: [{ provider: "p", model: "x" }] },
    other: { targets: [{ provider: "p", model: "y" }] },
  },
});
