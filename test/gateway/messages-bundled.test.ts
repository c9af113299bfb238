import { rmSync } from "node:fs";
import { resolve } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashClientKey } from "../../lib/gateway/auth.ts";
import { importHandler, synthesizeFunctions, useFunctionEnvironment } from "../support/bundle.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { BEDROCK_TOKENS, type FakeBedrock, startFakeBedrock } from "../support/fake-bedrock.ts";
import { type FakeSecrets, startFakeSecrets } from "../support/fake-secrets.ts";
import { startFunctionUrl } from "../support/lambda-runtime.ts";

/**
 * Issue 18 on the deployed path: the chat handler as bundled by the stack, run through the Lambda
 * streaming shim, serving the official Anthropic SDK on `/v1/messages` from a Bedrock Converse route
 * (a translated target), with the caller's key in `x-api-key` as Claude Code's `ANTHROPIC_API_KEY`.
 */
const CLIENT_KEY = "sk-gw-messages-client-key-123456";
const outdir = resolve(`cdk.out/test-messages-bundle-${process.pid}`);
// Not a Claude model: Messages callers of Claude go through InvokeModel (test/providers/bedrock-invoke.test.ts);
// any other Bedrock model is served to them through Converse, which the shared fake speaks.
const MODEL = "us.amazon.nova-test-v1:0";

let bedrock: FakeBedrock;
let table: TestTable;
let secrets: FakeSecrets;
let functionUrl: { url: string; close(): Promise<void> };
const saved = { ...process.env };

beforeAll(async () => {
  bedrock = await startFakeBedrock();
  table = await startTestTable();
  secrets = await startFakeSecrets({
    "messages-e2e/client-keys": JSON.stringify({ sha256: [hashClientKey(CLIENT_KEY)] }),
  });
  const configText = JSON.stringify({
    defaults: { timeouts: { firstTokenMs: 2000, idleMs: 2000 } },
    health: { cacheTtlMs: 0 },
    providers: [
      { id: "bedrock-us", type: "bedrock", region: "us-east-1", healthCheck: { kind: "chat", model: MODEL } },
    ],
    models: { claude: { targets: [{ provider: "bedrock-us", model: MODEL }] } },
  });
  const chatAsset = synthesizeFunctions(outdir, "MessagesE2E", configText).chat;
  useFunctionEnvironment(table, secrets.endpoint, {
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
    CLIENT_KEYS_SECRET: "messages-e2e/client-keys",
  });
  functionUrl = await startFunctionUrl(await importHandler(chatAsset));
}, 60_000);

afterAll(async () => {
  process.env = saved;
  await functionUrl?.close();
  await bedrock?.close();
  await secrets?.close();
  await table?.close();
  rmSync(outdir, { recursive: true, force: true });
});

describe("the bundled chat handler serving Messages", () => {
  it("answers the Anthropic SDK from Bedrock Converse, streamed and not, and refuses a wrong key in Anthropic's shape", async () => {
    const client = new Anthropic({ baseURL: functionUrl.url, apiKey: CLIENT_KEY, maxRetries: 0 });
    const request = {
      model: "claude",
      max_tokens: 64,
      messages: [{ role: "user" as const, content: "Say hello" }],
    };

    const whole = await client.messages.create(request);
    const streamed = await client.messages.stream(request).finalMessage();
    const refused = await new Anthropic({
      baseURL: functionUrl.url,
      apiKey: "sk-gw-wrong-000000",
      maxRetries: 0,
    }).messages
      .create(request)
      .catch((e: unknown) => e);

    expect(whole.content).toEqual([{ type: "text", text: BEDROCK_TOKENS.join("") }]);
    expect(streamed.content).toEqual(whole.content);
    expect(streamed.stop_reason).toBe("end_turn");
    expect(bedrock.requests.map((r) => r.operation)).toEqual(["converse", "converse-stream"]);
    expect(refused).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((refused as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: "error",
      error: { type: "authentication_error" },
    });
  });
});
