import { createDynamoClient } from "../aws/dynamodb.ts";
import { DEFAULT_HEALTH } from "../config/defaults.ts";
import { createDynamoHealthStore } from "../health/dynamo-store.ts";
import type { CheckRecord, ProviderState } from "../health/types.ts";

export interface HealthTableTarget {
  table: string;
  region: string | undefined;
  /** A DynamoDB endpoint (dynalite in tests, the one `npm start` runs). */
  endpoint: string | undefined;
}

export interface ProviderHealth {
  providerId: string;
  state: ProviderState | undefined;
  /** The newest history record the health function appended. */
  latest: CheckRecord | undefined;
}

/** Reads what the health function last wrote, as the gateway itself reads it (the same store). */
export type ReadHealth = (
  target: HealthTableTarget,
  providerIds: string[],
  now: number,
) => Promise<ProviderHealth[]>;

export const readHealthTable: ReadHealth = async (target, providerIds, now) => {
  const client = createDynamoClient({
    ...(target.region ? { region: target.region } : {}),
    ...(target.endpoint ? { endpoint: target.endpoint } : {}),
  });
  try {
    const store = createDynamoHealthStore({
      client,
      tableName: target.table,
      health: DEFAULT_HEALTH,
    });
    const snapshot = await store.read(providerIds, []);
    return await Promise.all(
      providerIds.map(async (providerId) => ({
        providerId,
        state: snapshot.providers.get(providerId),
        latest: (await store.history(providerId, 1, now))[0],
      })),
    );
  } finally {
    client.destroy();
  }
};
