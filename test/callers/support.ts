import { randomBytes } from "node:crypto";
import { type Callers, type CallersOptions, createCallers } from "../../lib/callers/callers.ts";
import { generateKey } from "../../lib/callers/key.ts";
import type { KeyLimits } from "../../lib/callers/types.ts";
import { DEFAULT_CALLERS } from "../../lib/config/defaults.ts";
import type { CallersPolicy } from "../../lib/config/types.ts";
import type { TestTable } from "../support/dynamo.ts";
import { createFakeClock, type FakeClock } from "../support/fake-clock.ts";
import { type LogLine, recordingLogger } from "../support/gateway.ts";
import { seededRandom } from "../support/random.ts";

/** A fake clock the test moves: mid-minute by default, so no window boundary falls inside a test. */
export function testClock(start = Date.UTC(2026, 10, 29, 12, 0, 30)): FakeClock {
  return createFakeClock(start);
}

/** Slot ids unique across every gate of a test file: two gates on one table must not share a token. */
let nextId = 0;

/** The timers and random sources `createCallers` takes, on `clock`: seeded jitter, numbered ids. */
export function timersOn(clock: FakeClock): CallersOptions["timers"] {
  return {
    setTimer: clock.setTimer,
    sleep: clock.sleep,
    random: seededRandom(7),
    newId: () => `slot-${++nextId}`,
  };
}

export function callersOn(
  table: TestTable,
  options: {
    clock: FakeClock;
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
    now: options.clock.now,
    logger: recordingLogger(options.logs ?? []),
    timers: timersOn(options.clock),
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
  const made = generateKey(randomBytes);
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
