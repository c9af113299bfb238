import { readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashClientKey } from "../../lib/gateway/auth.ts";
import { importHandler, synthesizeFunctions, useFunctionEnvironment } from "../support/bundle.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { BEDROCK_TOKENS, type FakeBedrock, startFakeBedrock } from "../support/fake-bedrock.ts";
import { type FakeSecrets, startFakeSecrets } from "../support/fake-secrets.ts";
import { startFunctionUrl } from "../support/lambda-runtime.ts";

/**
 * The chat handler exactly as deployed with a Bedrock route: the stack synthesized with bundling,
 * its chat asset imported and run through the Lambda streaming shim, Bedrock reached through the
 * bundled SDK client (loaded on first use) at the fake endpoint, credentials from the environment as
 * the function's role provides them on Lambda.
 */
const CLIENT_KEY = "sk-gw-bedrock-client-key-123456";
const outdir = resolve(`cdk.out/test-bedrock-bundle-${process.pid}`);
const MODEL = "us.anthropic.claude-test-v1:0";

let bedrock: FakeBedrock;
let table: TestTable;
let secrets: FakeSecrets;
let functionUrl: { url: string; close(): Promise<void> };
let chatAsset: string;
const saved = { ...process.env };

beforeAll(async () => {
  bedrock = await startFakeBedrock();
  table = await startTestTable();
  secrets = await startFakeSecrets({
    "bedrock-e2e/client-keys": JSON.stringify({ sha256: [hashClientKey(CLIENT_KEY)] }),
  });
  const configText = JSON.stringify({
    defaults: { timeouts: { firstTokenMs: 2000, idleMs: 2000 } },
    health: { cacheTtlMs: 0 },
    providers: [
      {
        id: "bedrock-us",
        type: "bedrock",
        region: "us-east-1",
        healthCheck: { kind: "chat", model: MODEL },
      },
    ],
    models: { claude: { targets: [{ provider: "bedrock-us", model: MODEL }] } },
  });
  chatAsset = synthesizeFunctions(outdir, "BedrockE2E", configText).chat;

  useFunctionEnvironment(table, secrets.endpoint, {
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
    CLIENT_KEYS_SECRET: "bedrock-e2e/client-keys",
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

describe("the bundled chat handler with a Bedrock route", () => {
  it("carries the Bedrock client inside the bundle: nothing resolved from node_modules", () => {
    const code = readFileSync(chatAsset, "utf8");
    expect(code).toContain("ConverseStream");
    expect(code).not.toMatch(/from\s*["']@aws-sdk\/client-bedrock-runtime["']/);
    expect(code).not.toMatch(/(?:require|import)\(["']@aws-sdk\/client-bedrock-runtime["']\)/);
  });

  it("answers the official openai client from Bedrock, streamed and not", async () => {
    const client = new OpenAI({ baseURL: `${functionUrl.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
    const whole = await client.chat.completions.create({
      model: "claude",
      messages: [{ role: "user", content: "Say hello" }],
    });
    expect(whole.choices[0]?.message.content).toBe(BEDROCK_TOKENS.join(""));

    const stream = await client.chat.completions.create({
      model: "claude",
      messages: [{ role: "user", content: "Say hello" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(BEDROCK_TOKENS.join(""));
    expect(usage).toMatchObject({ total_tokens: 16 });
    expect(bedrock.requests.map((r) => r.operation)).toEqual(["converse", "converse-stream"]);
    expect(String(bedrock.requests[0]?.headers.authorization)).toContain("/us-east-1/bedrock/");
  });
});
