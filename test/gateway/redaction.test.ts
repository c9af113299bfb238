import type { Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { type Deps, jsonLogger, setTimer, sleep } from "../../lib/deps.ts";
import { MAX_ECHO_CHARS } from "../../lib/errors.ts";
import { createClientAuth, hashClientKey } from "../../lib/gateway/auth.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import { createRuntime, type GatewayRuntime } from "../../lib/runtime.ts";
import { createNodeServer, listen } from "../../lib/server/node-server.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import { type FakeUpstream, sseDataLines, startFakeUpstream } from "../support/fake-upstream.ts";
import { chatBody, jsonOf, postChat } from "../support/gateway.ts";

// Issue 9, "keys come back out": every secret below is echoed by a fake upstream and must appear in
// no response (status line, headers, body) and no log line. Each shape escaped the old `sk-` pattern.
/** A Groq key: held by the gateway, a shape the old pattern did not know. */
const GROQ_KEY = "gsk_7Hq2Lr9XwVb4Nc8Tz1Km5Pd3Fy6Js0AeGuRiOoWlEtYpQaSx";
/** A key with no recognisable shape at all: only redaction by value can catch it. */
const RAW_KEY = "Zq8vR2mXk4LpT9wB7nC3dF6hJ1sY5aE0uGiOoPlQ";
/** A key configured as an upstream header (`x-api-key`), not as the provider's `apiKey`. */
const HEADER_SECRET = "hdrSecret0a1b2c3d4e5f6a7b8c9d";
/** A Stripe-style key the gateway does not hold, pasted by a caller, echoed in an upstream 400. */
const STRIPE_KEY = "sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUv";
/** The caller's own key, verified by the gateway's client authentication. */
const CALLER_KEY = "Cl1entKeyForTheGatewayOnlyXy7wV6uT5";
/** Another caller's key, for requests that must not wait on the first caller's. */
const OTHER_CALLER_KEY = "An0therCallerKeyXy7wV6uT5sR4qP3oN2";

const SECRETS = [GROQ_KEY, RAW_KEY, HEADER_SECRET, STRIPE_KEY, CALLER_KEY];

const FAST = {
  retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 2000 },
  timeouts: { connectMs: 500, headersMs: 500, firstTokenMs: 500, idleMs: 500, responseMs: 1000 },
  resumeByRestart: false,
};

let a: FakeUpstream;
let b: FakeUpstream;
let lines: string[];
let url: string;
let server: Server | undefined;
let runtime: GatewayRuntime | undefined;

/**
 * The gateway with the logger it runs with in production (JSON lines), so the log assertions see
 * exactly what would be written. Provider "groq" on `a`, provider "raw" on `b` with a header secret.
 */
async function setup(): Promise<void> {
  a = await startFakeUpstream();
  b = await startFakeUpstream();
  lines = [];
  const deps: Deps = {
    now: Date.now,
    sleep,
    setTimer,
    random: () => 0.5,
    newId: () => "req-1",
    logger: jsonLogger((line) => lines.push(line)),
  };
  const config = validateConfig({
    defaults: FAST,
    providers: [
      { id: "groq", type: "openai", baseUrl: a.url, apiKey: { env: "GROQ_KEY" } },
      {
        id: "raw",
        type: "openai",
        baseUrl: b.url,
        apiKey: { env: "RAW_KEY" },
        headers: { "x-api-key": HEADER_SECRET },
      },
    ],
    models: {
      m: {
        targets: [
          { provider: "groq", model: "llama" },
          { provider: "raw", model: "raw-model" },
        ],
      },
      solo: { targets: [{ provider: "raw", model: "raw-model" }] },
      echo: { targets: [{ provider: "groq", model: "llama" }] },
    },
  });
  const auth = createClientAuth(async () => [hashClientKey(CALLER_KEY), hashClientKey(OTHER_CALLER_KEY)]);
  runtime = createRuntime(config, { deps, keys: envKeys({ GROQ_KEY, RAW_KEY }), auth });
  server = createNodeServer(runtime.gateway, { maxBodyBytes: config.maxBodyBytes, logger: deps.logger });
  url = await listen(server, 0, "127.0.0.1");
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  runtime?.http.close();
  await a?.close();
  await b?.close();
});

const asCaller = { authorization: `Bearer ${CALLER_KEY}` };

/** Everything a caller sees of a response, as one string: status line, headers, body. */
async function seen(res: Response): Promise<{ all: string; body: string }> {
  const body = await res.text();
  const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
  return { all: `${res.status} ${res.statusText}\n${headers}\n\n${body}`, body };
}

function expectNoSecret(text: string): void {
  for (const secret of SECRETS) expect(text).not.toContain(secret);
}

describe("keys never leave the gateway", () => {
  it("a 401 echoing each provider's key fails over, and the final error names neither", async () => {
    await setup();
    a.queue.push({
      kind: "status",
      status: 401,
      error: { message: `Invalid API Key: ${GROQ_KEY}`, type: "invalid_request_error" },
    });
    b.queue.push({
      kind: "status",
      status: 401,
      error: {
        message: `Incorrect API key provided: ${RAW_KEY} (x-api-key ${HEADER_SECRET}), also ${RAW_KEY.slice(0, 4)}...${RAW_KEY.slice(-4)}`,
        type: "invalid_request_error",
      },
    });

    const res = await postChat(url, chatBody("m"), asCaller);
    const { all, body } = await seen(res);

    // Both providers were tried and their messages reached the caller, with the keys cut out.
    expect(res.status).toBe(502);
    expect(a.requests).toHaveLength(1);
    expect(b.requests[0]?.headers["x-api-key"]).toBe(HEADER_SECRET);
    const message = JSON.parse(body).error.message as string;
    expect(message).toContain("Invalid API Key: [redacted]");
    expect(message).toContain(
      "Incorrect API key provided: [redacted] (x-api-key [redacted]), also [redacted]",
    );
    expectNoSecret(all);
    expect(lines.some((l) => l.includes("[redacted]"))).toBe(true);
    expectNoSecret(lines.join(""));
  });

  it("a passed-through 400 keeps no key in any field", async () => {
    await setup();
    b.queue.push({
      kind: "status",
      status: 400,
      error: {
        message: `Invalid content: ${STRIPE_KEY} and ${CALLER_KEY} (sent with ${RAW_KEY})`,
        type: "invalid_request_error",
        param: `messages[0].content.${HEADER_SECRET}`,
        code: `bad_key_${GROQ_KEY}`,
      },
    });

    const res = await postChat(url, chatBody("solo"), asCaller);
    const { all, body } = await seen(res);

    expect(res.status).toBe(400);
    expect(JSON.parse(body).error).toEqual({
      message: "Invalid content: [redacted] and [redacted] (sent with [redacted])",
      type: "invalid_request_error",
      param: "messages[0].content.[redacted]",
      code: "bad_key_[redacted]",
    });
    expectNoSecret(all);
    expectNoSecret(lines.join(""));
  });

  it("a stream error event after the first byte reaches the caller without the key", async () => {
    await setup();
    const errorEvent = {
      message: `server error for key ${RAW_KEY}, header ${HEADER_SECRET}, caller ${CALLER_KEY}`,
      type: "server_error",
    };
    b.fallback = { kind: "answer", errorEvent, errorEventAfter: 2 };

    const res = await postChat(url, chatBody("solo", { stream: true }), asCaller);
    const { all, body } = await seen(res);

    expect(res.status).toBe(200);
    const events = sseDataLines(body);
    expect(events).not.toContain("[DONE]");
    const error = JSON.parse(events.at(-1) ?? "{}").error;
    expect(error.code).toBe("stream_interrupted");
    expect(error.message).toContain("server error for key [redacted], header [redacted], caller [redacted]");
    expectNoSecret(all);
    expect(lines.some((l) => l.includes("stream failed after first byte"))).toBe(true);
    expectNoSecret(lines.join(""));
  });

  it("a refused caller key is never echoed, in the answer or the log", async () => {
    await setup();
    const wrong = "WrongCallerKey9x8y7z6w5v4u3t2s1r";

    const res = await postChat(url, chatBody("m"), { authorization: `Bearer ${wrong}` });
    const { all } = await seen(res);

    expect(res.status).toBe(401);
    expect(all).not.toContain(wrong);
    expect(lines.join("")).not.toContain(wrong);
    expect(a.requests).toHaveLength(0);
  });

  it("the JSON logger removes held keys from any field, whatever the path that logged it", async () => {
    await setup();
    // Registered by use: one answered request through each provider.
    expect((await postChat(url, chatBody("m"), asCaller)).status).toBe(200);
    expect((await postChat(url, chatBody("solo"), asCaller)).status).toBe(200);
    lines.length = 0;

    runtime?.deps.logger.warn({
      msg: "something failed",
      error: `connect to https://x.example/?token=${RAW_KEY} with ${HEADER_SECRET}`,
      cause: { detail: `key ${GROQ_KEY} / ${CALLER_KEY}` },
    });

    expect(lines).toHaveLength(1);
    expectNoSecret(lines.join(""));
    expect(JSON.parse(lines[0] ?? "{}")).toMatchObject({
      msg: "something failed",
      error: "connect to https://x.example/?token=[redacted] with [redacted]",
      cause: { detail: "key [redacted] / [redacted]" },
    });
  });
});

describe("a hostile echo stalls no one (issue 16)", () => {
  /** One answered request of the other caller; resolves with its latency in ms. */
  async function otherCallersRequest(): Promise<number> {
    const started = performance.now();
    const res = await postChat(url, chatBody("solo"), { authorization: `Bearer ${OTHER_CALLER_KEY}` });
    expect(res.status).toBe(200);
    await res.text();
    return performance.now() - started;
  }

  it("128 KB of api_key= fragments, as an invalid role and in an upstream's echo, get their 400s while another caller is answered", async () => {
    await setup();
    // No digit anywhere: the old key-shape lookahead rescanned the rest of the text from each of
    // the 8,192 `api_key=`, in the upstream's message, in the error body and in the log line.
    const fragments = "api_key=abcdefg.".repeat(8192);
    await otherCallersRequest(); // connections open, code warm
    const baseline: number[] = [];
    for (let i = 0; i < 5; i++) baseline.push(await otherCallersRequest());
    a.queue.push({
      kind: "status",
      status: 400,
      error: { message: `Invalid content: ${fragments}`, type: "invalid_request_error" },
    });

    let hostileDone = false;
    const hostile = Promise.all([
      postChat(
        url,
        JSON.stringify({ model: "solo", messages: [{ role: fragments, content: "hi" }] }),
        asCaller,
      ),
      postChat(
        url,
        JSON.stringify({ model: "echo", messages: [{ role: "user", content: fragments }] }),
        asCaller,
      ),
    ]).finally(() => {
      hostileDone = true;
    });
    // The other caller's requests, back to back for as long as the hostile ones are in flight: one
    // of them is in flight whenever the process is busy with the hostile text.
    const during: number[] = [];
    do during.push(await otherCallersRequest());
    while (!hostileDone);
    const [role, echo] = await hostile;

    expect(role.status).toBe(400);
    const roleMessage = (await jsonOf(role)).error.message as string;
    expect(roleMessage).toMatch(/^Invalid value for 'messages\[0\]\.role': 'api_key=abcdefg\./);
    expect(roleMessage.length).toBeLessThan(MAX_ECHO_CHARS + 200);
    expect(echo.status).toBe(400);
    expect((await jsonOf(echo)).error.message).toBe(`Invalid content: ${fragments}`);
    // A generous multiple of the other caller's own baseline, measured just before on this machine.
    const median = [...baseline].sort((x, y) => x - y)[2] ?? 0;
    expect(Math.max(...during)).toBeLessThanOrEqual(20 * median + 200);
  });
});

describe("createClientAuth", () => {
  it("registers a key for redaction only once it is verified", async () => {
    const registered: string[] = [];
    const auth = createClientAuth(
      async () => [hashClientKey(CALLER_KEY)],
      (k) => registered.push(k),
    );

    await expect(auth.verify({ authorization: "Bearer NotAValidKey123456789" })).rejects.toMatchObject({
      status: 401,
    });
    await auth.verify({ authorization: `Bearer ${CALLER_KEY}` });

    expect(registered).toEqual([CALLER_KEY]);
  });
});
