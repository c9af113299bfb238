import { rmSync } from "node:fs";
import { resolve } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashClientKey } from "../../lib/gateway/auth.ts";
import { importHandler, synthesizeFunctions, useFunctionEnvironment } from "../support/bundle.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { type FakeSecrets, startFakeSecrets } from "../support/fake-secrets.ts";
import { type FakeUpstream, sseDataLines, startFakeUpstream } from "../support/fake-upstream.ts";
import { isStreamingHandler, lambdaContext, startFunctionUrl } from "../support/lambda-runtime.ts";

/**
 * The handlers exactly as they would be deployed: the stack is synthesized with bundling (local
 * esbuild), and the chat and health assets it produced are imported and run through a shim of the
 * Lambda streaming runtime, against dynalite and a Secrets Manager fake on loopback.
 */
const CLIENT_KEY = "sk-gw-e2e-client-key-123456";
const outdir = resolve(`cdk.out/test-bundle-${process.pid}`);

let upstream: FakeUpstream;
let table: TestTable;
let secrets: FakeSecrets;
let functionUrl: { url: string; close(): Promise<void> };
let healthHandler: (
  event: unknown,
  context: unknown,
) => Promise<{ runs: number; providers: Array<{ id: string; status?: string }> }>;
let assets: { chat: string; health: string };

beforeAll(async () => {
  upstream = await startFakeUpstream();
  table = await startTestTable();
  secrets = await startFakeSecrets({
    "e2e/provider-keys": JSON.stringify({ primary: "sk-upstream-key-123456" }),
    "e2e/client-keys": JSON.stringify({ sha256: [hashClientKey(CLIENT_KEY)] }),
  });
  const configText = JSON.stringify({
    defaults: { timeouts: { firstTokenMs: 1000, idleMs: 1000 } },
    health: { intervalMs: 60_000, failureThreshold: 1, cacheTtlMs: 0 },
    providers: [
      {
        id: "primary",
        type: "openai",
        baseUrl: upstream.url,
        apiKey: { secretId: "e2e/provider-keys", jsonKey: "primary" },
      },
      { id: "backup", type: "mock", mock: { reply: "backup answer", firstTokenDelayMs: 0, tokenDelayMs: 0 } },
    ],
    models: {
      m: {
        targets: [
          { provider: "primary", model: "up-model" },
          { provider: "backup", model: "mock-model" },
        ],
      },
    },
  });

  assets = synthesizeFunctions(outdir, "E2E", configText);

  useFunctionEnvironment(table, secrets.endpoint, { CLIENT_KEYS_SECRET: "e2e/client-keys" });
  const chat = await importHandler(assets.chat);
  healthHandler = (await importHandler(assets.health)) as typeof healthHandler;
  expect(isStreamingHandler(chat)).toBe(true);
  functionUrl = await startFunctionUrl(chat);
}, 60_000);

afterAll(async () => {
  await functionUrl?.close();
  await upstream?.close();
  await secrets?.close();
  await table?.close();
  rmSync(outdir, { recursive: true, force: true });
});

const post = (body: object, headers: Record<string, string> = { authorization: `Bearer ${CLIENT_KEY}` }) =>
  fetch(`${functionUrl.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
const messages = [{ role: "user", content: "Say hello" }];

describe("the bundled chat handler behind a (shimmed) Function URL", () => {
  it("is self-contained and carries its configuration", async () => {
    const { readFileSync } = await import("node:fs");
    const code = readFileSync(assets.chat, "utf8");
    expect(code).toContain("e2e/provider-keys");
    // Everything is bundled (the SDK included): nothing is resolved from node_modules at run time.
    // (The SDK keeps two optional, guarded requires of its CRT signers, which it never needs here.)
    expect(code).not.toMatch(/from\s*["'](@aws-sdk|@smithy|@middy)\//);
    expect(code).not.toMatch(/require\(["'](@aws-sdk\/client-|@smithy|@middy)/);
  });

  it("streams status, headers, then SSE chunks as they arrive upstream", async () => {
    upstream.queue.push({ kind: "answer", tokenDelayMs: 150 });
    const started = Date.now();
    const res = await post({ model: "m", messages, stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("x-gateway-provider")).toBe("primary");

    const arrivals: Array<{ at: number; text: string }> = [];
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      arrivals.push({ at: Date.now() - started, text: decoder.decode(chunk) });
    }
    const events = sseDataLines(arrivals.map((a) => a.text).join(""));
    expect(events.at(-1)).toBe("[DONE]");
    const text = events
      .slice(0, -1)
      .map((e) => JSON.parse(e).choices[0]?.delta?.content ?? "")
      .join("");
    expect(text).toBe("Hello from the fake upstream.");
    // Six tokens 150 ms apart arrive as they are made, not in one piece at the end.
    expect(arrivals.length).toBeGreaterThanOrEqual(4);
    expect((arrivals.at(-1)?.at ?? 0) - (arrivals[0]?.at ?? 0)).toBeGreaterThanOrEqual(600);
    expect(upstream.requests.at(-1)?.headers.authorization).toBe("Bearer sk-upstream-key-123456");
  });

  it("answers the official openai client, streaming and not", async () => {
    const client = new OpenAI({ baseURL: `${functionUrl.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
    const whole = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(whole.choices[0]?.message.content).toBe("Hello from the fake upstream.");
    let text = "";
    for await (const chunk of await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    })) {
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    expect(text).toBe("Hello from the fake upstream.");
  });

  it("serves the Responses API, a stored turn continued from the table (issue 19)", async () => {
    const client = new OpenAI({ baseURL: `${functionUrl.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
    const opening = await client.responses.create({ model: "m", input: "My name is Ada." });
    expect(opening.output_text).toBe("Hello from the fake upstream.");
    const next = await client.responses
      .stream({ model: "m", previous_response_id: opening.id, input: "What is my name?" })
      .finalResponse();
    expect(next.status).toBe("completed");
    expect(upstream.requests.at(-1)?.body.messages).toEqual([
      { role: "user", content: "My name is Ada." },
      { role: "assistant", content: "Hello from the fake upstream." },
      { role: "user", content: "What is my name?" },
    ]);
    // The streamed turn was written after its last event, before the invocation ended.
    expect((await client.responses.retrieve(next.id)).id).toBe(next.id);
  });

  it("rejects a caller without a known key before any upstream call", async () => {
    const before = upstream.requests.length;
    const res = await post({ model: "m", messages }, {});
    expect(res.status).toBe(401);
    expect((await res.json()) as object).toMatchObject({ error: { code: "invalid_api_key" } });
    expect(upstream.requests.length).toBe(before);
  });

  it("stops the upstream request when the caller goes away", async () => {
    upstream.queue.push({ kind: "answer", tokenDelayMs: 100, tokens: Array(40).fill(" tok") });
    const res = await post({ model: "m", messages, stream: true });
    const reader = res.body?.getReader();
    await reader?.read();
    await reader?.cancel();
    await expect.poll(() => upstream.requests.at(-1)?.closedEarly, { timeout: 3000 }).toBe(true);

    // A caller leaving is not the provider's fault: no failure is recorded against it.
    await new Promise((r) => setTimeout(r, 200));
    const target = (await table.store().read([], ["primary/up-model"])).targets.get("primary/up-model");
    expect(target?.failures ?? 0).toBe(0);
  });

  it("ends a cut stream with an error event and no [DONE]", async () => {
    // Every continuation (a restart on either target) is cut too: the answer cannot be completed.
    const fallback = upstream.fallback;
    upstream.fallback = { kind: "answer", cutAfter: 3, tokenDelayMs: 20 };
    const res = await post({ model: "m", messages, stream: true });
    const events = sseDataLines(await res.text());
    upstream.fallback = fallback;
    expect(events).not.toContain("[DONE]");
    expect(JSON.parse(events.at(-1) ?? "{}").error.code).toBe("stream_interrupted");
  });
});

describe("the bundled health handler", () => {
  it("writes the records the chat function's balancer then reads", async () => {
    upstream.queue.push({ kind: "status", status: 503 }); // GET /models fails once: unhealthy at threshold 1
    const result = await healthHandler({}, lambdaContext(60_000));
    expect(result.providers).toEqual(
      expect.arrayContaining([
        { id: "primary", ok: false, status: "unhealthy" },
        { id: "backup", ok: true, status: "healthy" },
      ]),
    );
    const state = (await table.store().read(["primary"], [])).providers.get("primary");
    expect(state?.status).toBe("unhealthy");

    const res = await post({ model: "m", messages });
    expect(res.headers.get("x-gateway-provider")).toBe("backup");
  });
});
