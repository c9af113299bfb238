import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createDynamoClient, ensureTable } from "../../lib/aws/dynamodb.ts";
import { DEFAULT_HEALTH } from "../../lib/config/defaults.ts";
import type { HealthPolicy } from "../../lib/config/types.ts";
import { createDynamoHealthStore } from "../../lib/health/dynamo-store.ts";
import type { HealthStore } from "../../lib/health/types.ts";
import { type LocalDynamo, startLocalDynamo } from "../../lib/server/local-dynamo.ts";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export interface TestTable {
  dynamo: LocalDynamo;
  client: DynamoDBClient;
  tableName: string;
  store(policy?: { health?: Partial<HealthPolicy> }): HealthStore;
  close(): Promise<void>;
}

let tables = 0;

/** dynalite on 127.0.0.1 (port 0) with a fresh health table. */
export async function startTestTable(): Promise<TestTable> {
  const dynamo = await startLocalDynamo(0);
  const client = createDynamoClient({ endpoint: dynamo.endpoint });
  const tableName = `health-test-${++tables}`;
  await ensureTable(client, tableName);
  return {
    dynamo,
    client,
    tableName,
    store: (policy = {}) =>
      createDynamoHealthStore({
        client,
        tableName,
        health: { ...DEFAULT_HEALTH, ...policy.health },
      }),
    async close() {
      client.destroy();
      await dynamo.close();
    },
  };
}
