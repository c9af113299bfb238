import { CreateTableCommand, DynamoDBClient, ResourceInUseException } from "@aws-sdk/client-dynamodb";

/**
 * The gateway's one DynamoDB table and the client every part of it shares: provider health and
 * target benches (lib/health/dynamo-store.ts), caller keys, limits and usage (lib/callers/store.ts,
 * lib/callers/ledger.ts), one item layout per partition key (infra/table-access.ts lists them).
 */

/** The environment variable naming the table, read by the functions, `npm start` and the CLIs. */
export const TABLE_ENV = "GATEWAY_TABLE";

/**
 * Its name from before the table held callers too (issue 17), still read when {@link TABLE_ENV} is
 * unset, so an environment or a script that sets only it keeps working.
 */
export const LEGACY_TABLE_ENV = "HEALTH_TABLE";

/**
 * The table's name locally (`npm start`, the CLIs) when the environment names none. Kept from when
 * it held health alone, so a table made under that name is found again.
 */
export const LOCAL_TABLE_NAME = "llm-gateway-health";

/** The table named by the environment: `GATEWAY_TABLE`, else `HEALTH_TABLE`; undefined if neither (or empty). */
export function tableNameFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  return env[TABLE_ENV] || env[LEGACY_TABLE_ENV] || undefined;
}

/**
 * How long one DynamoDB call may take. Without these the SDK waits as long as the socket lives: a
 * table endpoint that accepted connections and never answered froze health reads and checks for
 * minutes, and `npm start` never listened (issue 9).
 */
export interface DynamoTimeouts {
  /** Opening the TCP (and TLS) connection. */
  connectMs: number;
  /** From sending the request to the response's headers; also the longest a socket may sit idle. */
  requestMs: number;
}

/**
 * For the gateway and the health job: a read or write is small (one BatchGetItem of at most
 * 100 keys, single-item updates and counters) and normally answers in tens of milliseconds, so 1 s to connect and
 * 2 s to answer are generous; with `maxAttempts: 2` a dead table fails a call within about 6 s.
 */
export const DYNAMO_TIMEOUTS: DynamoTimeouts = { connectMs: 1_000, requestMs: 2_000 };

export interface DynamoClientOptions {
  region?: string;
  /** A local endpoint (dynalite); dummy credentials are used with it. */
  endpoint?: string;
  /** Default {@link DYNAMO_TIMEOUTS}. */
  timeouts?: Partial<DynamoTimeouts>;
}

/** One client per process; with an endpoint it talks to a local DynamoDB with dummy credentials. */
export function createDynamoClient(options: DynamoClientOptions = {}): DynamoDBClient {
  const timeouts = { ...DYNAMO_TIMEOUTS, ...options.timeouts };
  const common = {
    maxAttempts: 2,
    // The SDK accepts the NodeHttpHandler's options here. `requestTimeout` alone only logs a warning
    // (it used to mean an idle timeout): `throwOnRequestTimeout` makes it fail the call, which the
    // SDK then retries as a transient error. `socketTimeout` bounds a response body that stalls
    // after its headers.
    requestHandler: {
      connectionTimeout: timeouts.connectMs,
      requestTimeout: timeouts.requestMs,
      throwOnRequestTimeout: true,
      socketTimeout: timeouts.requestMs,
    },
  };
  if (options.endpoint) {
    return new DynamoDBClient({
      ...common,
      endpoint: options.endpoint,
      region: options.region ?? "local",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
  }
  return new DynamoDBClient(options.region ? { ...common, region: options.region } : common);
}

/** Creates the table as the CDK stack does (for the local embedded DynamoDB); an existing one is kept. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
        AttributeDefinitions: [
          { AttributeName: "pk", AttributeType: "S" },
          { AttributeName: "sk", AttributeType: "S" },
        ],
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
}
