/**
 * What each function's role may do to the table (issue 16, "least privilege in the stack"). IAM
 * cannot name an item, but it can name partition keys (`dynamodb:LeadingKeys`) and the attributes a
 * request touches (`dynamodb:Attributes`): together they keep the chat function, the one exposed to
 * callers, to the counters, ledger items and benches it writes. Before this, its role could
 * `UpdateItem` any item: mint a key, un-revoke one, lift its limits, switch a provider off.
 *
 * The items (lib/callers/store.ts and lib/health/dynamo-store.ts have the layout):
 * `CALLER#<id>` (a key record `KEY` and its usage and counters), `PROVIDER#<id>` (health state,
 * check history, the operators' weight and switch) and `TARGET#<provider>/<model>` (benches).
 * The sort key cannot be named in a condition, so a caller's `KEY` item and its counters share one
 * grant: the attribute list below is what keeps `hash`, `revokedAt`, `limits`, `models`, `name` and
 * `createdAt` out of the chat function's reach.
 *
 * Policies follow AWS's documented forms
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html):
 * `ForAllValues` on `LeadingKeys`; the key attributes listed with the others; `ReturnValues`
 * limited to `NONE`, `UPDATED_OLD`, `UPDATED_NEW` (an update with `ALL_OLD`/`ALL_NEW` reads
 * attributes outside the list); no `PutItem`, `DeleteItem` or `Scan` for the chat function (a put
 * replaces every attribute, and a scan has no leading key, so `ForAllValues` would let it read all).
 */

import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";

export const CALLER_ITEMS = "CALLER#*";
export const PROVIDER_ITEMS = "PROVIDER#*";
export const TARGET_ITEMS = "TARGET#*";

/** The table's key: a statement that lists attributes must list these too, or no request matches. */
const KEY_ATTRIBUTES = ["pk", "sk"] as const;

/**
 * Every attribute the chat function writes, or reads in a condition, under `CALLER#<id>`. Add a
 * name here when the function writes a new one (test/infra/table-access.test.ts drives the code
 * and fails, naming it, until you do). Writers:
 * - lib/callers/store.ts `countRequest`: `MINUTE#` requests (conditional ADD), ttl;
 * - lib/callers/ledger.ts: `USAGE#` requests, promptTokens, completionTokens, cachedTokens, cacheWriteTokens, cost,
 *   keyId, model, day, estimatedRequests; `DAY#` and `MONTH#` requests, tokens, cost; `MINUTE#` tokens, ttl; the
 *   `KEY` item's lastUsedAt (only if the item exists);
 * - lib/callers/store.ts `acquireSlot`/`releaseSlot`: the `CONCURRENT` item's `leases` map
 *   (maxConcurrent), one entry per request in flight.
 */
export const CHAT_CALLER_ATTRIBUTES: readonly string[] = [
  "requests",
  "tokens",
  "cost",
  "promptTokens",
  "completionTokens",
  "cachedTokens",
  "cacheWriteTokens",
  "keyId",
  "model",
  "day",
  "ttl",
  "lastUsedAt",
  "leases",
  "estimatedRequests",
];

/**
 * Every attribute the chat function writes under `TARGET#<target>`: a bench and its recovery
 * (lib/health/dynamo-store.ts `recordTargetFailure`, `clearTarget`, called by
 * lib/cooldown/shared-store.ts).
 */
export const CHAT_BENCH_ATTRIBUTES: readonly string[] = [
  "target",
  "failures",
  "lastFailureAt",
  "cooldownUntil",
  "reason",
];

/** What an attribute-restricted update may return: only the attributes it wrote. */
const UPDATED_ONLY = ["NONE", "UPDATED_OLD", "UPDATED_NEW"];

const onTable = (tableArn: string) => ({ effect: Effect.ALLOW, resources: [tableArn] });
const leadingKeys = (...prefixes: string[]) => ({
  "ForAllValues:StringLike": { "dynamodb:LeadingKeys": prefixes },
});

/** An `UpdateItem` on items under `prefix` touching only `attributes`. */
function updateOnly(tableArn: string, prefix: string, attributes: readonly string[]): PolicyStatement {
  return new PolicyStatement({
    ...onTable(tableArn),
    actions: ["dynamodb:UpdateItem"],
    conditions: {
      ...leadingKeys(prefix),
      "ForAllValues:StringEquals": { "dynamodb:Attributes": [...KEY_ATTRIBUTES, ...attributes] },
      StringEqualsIfExists: { "dynamodb:ReturnValues": UPDATED_ONLY },
    },
  });
}

/**
 * The chat function: reads a caller's key and totals and the fleet's health in `BatchGetItem`s;
 * writes only its counters, ledger items and `lastUsedAt`, and benches.
 */
export function chatTableStatements(tableArn: string): PolicyStatement[] {
  return [
    new PolicyStatement({
      ...onTable(tableArn),
      actions: ["dynamodb:BatchGetItem"],
      conditions: leadingKeys(CALLER_ITEMS, PROVIDER_ITEMS, TARGET_ITEMS),
    }),
    updateOnly(tableArn, CALLER_ITEMS, CHAT_CALLER_ATTRIBUTES),
    updateOnly(tableArn, TARGET_ITEMS, CHAT_BENCH_ATTRIBUTES),
  ];
}

/**
 * The health function: provider health and benches only (lib/health/checker.ts: the targets' state
 * in a `BatchGetItem`, each provider's state read and updated, a check record put, benches
 * cleared). Never a caller's item.
 */
export function healthTableStatements(tableArn: string): PolicyStatement[] {
  return [
    new PolicyStatement({
      ...onTable(tableArn),
      actions: ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"],
      conditions: leadingKeys(PROVIDER_ITEMS, TARGET_ITEMS),
    }),
  ];
}
