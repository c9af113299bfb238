import Anthropic from "@anthropic-ai/sdk";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import { callerPk, usageSk } from "../../lib/callers/store.ts";
import { dayOf } from "../../lib/callers/types.ts";
import { callersOn, createKey, testClock } from "../callers/support.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { FAKE_ANTHROPIC_KEY, type FakeAnthropic, startFakeAnthropic } from "../support/fake-anthropic.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import { fakeProvider, startGateway, type TestGateway } from "../support/gateway.ts";

/**
 * Issue 18, `POST /v1/messages/count_tokens`: the official SDK's `messages.countTokens` against the
 * gateway. A target with a count of its own (the `anthropic` type, on the fake Anthropic API) answers
 * with it; a target without one is passed over; a failing one is failed over; with no count to be
 * had, the gateway's estimate. `x-gateway-token-count` says which.
 */

let good: FakeAnthropic | undefined;
let bad: FakeAnthropic | undefined;
let openai: FakeUpstream | undefined;
let gateway: TestGateway | undefined;
let table: TestTable | undefined;

afterEach(async () => {
  await gateway?.close();
  await Promise.all([good?.close(), bad?.close(), openai?.close(), table?.close()]);
  good = bad = openai = gateway = table = undefined;
});

const FAST = { retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 0 } };

/**
 * Two fake Anthropic APIs (`bad` refuses the gateway's key: a 401, failed over as the target's
 * configuration fault), one OpenAI-compatible upstream (no count of its own), a Bedrock provider
 * whose non-Claude model has none either (refused before any call), and these routes.
 */
async function start(
  models: Record<string, string[]>,
  options: Parameters<typeof startGateway>[1] = {},
): Promise<string> {
  good = await startFakeAnthropic();
  bad = await startFakeAnthropic();
  bad.apiKey = "sk-ant-another-key";
  openai = await startFakeUpstream();
  const targets: Record<string, { provider: string; model: string }> = {
    good: { provider: "good", model: "claude-target-1" },
    bad: { provider: "bad", model: "claude-target-1" },
    openai: { provider: "openai", model: "gpt-x" },
    nova: { provider: "bedrock", model: "amazon.nova-pro-v1:0" },
  };
  const anthropic = (id: string, url: string) => ({
    id,
    type: "anthropic",
    baseUrl: url,
    apiKey: { env: "ANTHROPIC_KEY" },
  });
  gateway = await startGateway(
    {
      defaults: FAST,
      providers: [
        anthropic("good", good.url),
        anthropic("bad", bad.url),
        fakeProvider("openai", openai.url),
        {
          id: "bedrock",
          type: "bedrock",
          region: "us-east-1",
          healthCheck: { kind: "chat", model: "amazon.nova-pro-v1:0" },
        },
      ],
      models: Object.fromEntries(
        Object.entries(models).map(([name, names]) => [
          name,
          { strategy: "HEALTH_FIRST", targets: names.map((n) => targets[n]) },
        ]),
      ),
    },
    { ...options, env: { ANTHROPIC_KEY: FAKE_ANTHROPIC_KEY, TEST_KEY: "sk-test-secret-key-123456" } },
  );
  return gateway.url;
}

/** The SDK's count and the response's headers. */
async function count(url: string, model: string, apiKey = "unused-locally") {
  const client = new Anthropic({ baseURL: url, maxRetries: 0, apiKey });
  const { data, response } = await client.messages
    .countTokens({ model, system: "s".repeat(400), messages: [{ role: "user", content: "t".repeat(800) }] })
    .withResponse();
  return { data, headers: response.headers };
}

/** The gateway's estimate of the body above: 1,200 characters at 4 a token. */
const ESTIMATE = 300;

describe("count_tokens", () => {
  it("answers with an anthropic target's own count, header provider", async () => {
    const url = await start({ claude: ["good"] });
    if (good) good.countTokens = 42;

    const { data, headers } = await count(url, "claude");

    expect(data).toEqual({ input_tokens: 42 });
    expect(headers.get("x-gateway-token-count")).toBe("provider");
    expect(headers.get("x-gateway-provider")).toBe("good");
    expect(headers.get("request-id")).toMatch(/^req-/);
    expect(good?.requests.map((r) => [r.path, r.body.model])).toEqual([
      ["/v1/messages/count_tokens", "claude-target-1"],
    ]);
  });

  it("estimates for a route whose targets cannot count, header estimated, without an upstream call", async () => {
    const url = await start({ gpt: ["openai"] });

    const { data, headers } = await count(url, "gpt");

    expect(data).toEqual({ input_tokens: ESTIMATE });
    expect(headers.get("x-gateway-token-count")).toBe("estimated");
    expect(openai?.requests).toHaveLength(0);
  });

  it("passes over a first target that cannot count, to the next that can", async () => {
    const url = await start({ mixed: ["openai", "nova", "good"] });
    if (good) good.countTokens = 42;

    const { data, headers } = await count(url, "mixed");

    expect(data).toEqual({ input_tokens: 42 });
    expect(headers.get("x-gateway-token-count")).toBe("provider");
    expect(headers.get("x-gateway-provider")).toBe("good");
    // Neither the OpenAI-compatible target nor Bedrock Nova (Bedrock counts only Claude) is asked:
    // both are left out of the plan, so nothing fails and nothing is benched.
    expect(headers.get("x-gateway-attempts")).toBe("1");
    expect(openai?.requests).toHaveLength(0);
    const log = gateway?.logs.find((l) => l.msg === "count_tokens");
    expect(log?.attempts).toMatchObject([{ provider: "good", outcome: "ok" }]);
    expect(gateway?.runtime.cooldowns.get("bedrock/amazon.nova-pro-v1:0", Date.now())).toBeUndefined();
  });

  it("fails over from a target that fails to the next one's count", async () => {
    const url = await start({ claude: ["bad", "good"] });
    if (good) good.countTokens = 42;

    const { data, headers } = await count(url, "claude");

    expect(data).toEqual({ input_tokens: 42 });
    expect(headers.get("x-gateway-token-count")).toBe("provider");
    expect(headers.get("x-gateway-provider")).toBe("good");
    expect(headers.get("x-gateway-attempts")).toBe("2");
    expect(bad?.requests.map((r) => r.path)).toEqual(["/v1/messages/count_tokens"]);
  });

  it("estimates when every target that can count fails, header estimated", async () => {
    const url = await start({ claude: ["bad", "nova"] });

    const { data, headers } = await count(url, "claude");

    expect(data).toEqual({ input_tokens: ESTIMATE });
    expect(headers.get("x-gateway-token-count")).toBe("estimated");
    // The one target that can count failed; Nova is not planned for counting.
    expect(headers.get("x-gateway-attempts")).toBe("1");
    expect(bad?.requests).toHaveLength(1);
  });

  it("counts a target's count against the key's requests per minute, and meters no tokens", async () => {
    table = await startTestTable();
    const clock = testClock();
    const callers = callersOn(table, { clock });
    const url = await start({ claude: ["good"] }, { auth: callers.auth });
    const { id, key } = await createKey(callers, "ide", { limits: { rpm: 2 } });
    if (good) good.countTokens = 42;

    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push(
        await count(url, "claude", key).then(
          ({ data }) => data.input_tokens,
          (e: InstanceType<typeof Anthropic.APIError>) => e.status ?? 0,
        ),
      );
    callers.ledger.stop();
    await callers.ledger.flush();
    const item = await table.client.send(
      new GetItemCommand({
        TableName: table.tableName,
        Key: { pk: { S: callerPk(id) }, sk: { S: usageSk(dayOf(clock.now()), "claude") } },
      }),
    );

    expect(statuses).toEqual([42, 42, 429]);
    expect(good?.requests).toHaveLength(2);
    expect(Number(item.Item?.requests?.N)).toBe(2);
    expect(Number(item.Item?.promptTokens?.N ?? 0)).toBe(0);
    expect(Number(item.Item?.completionTokens?.N ?? 0)).toBe(0);
  });
});
