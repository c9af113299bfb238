import { afterEach, describe, expect, it, vi } from "vitest";
import {
  compressedAnswer,
  type FakeUpstream,
  hugeAnswer,
  redirectTo,
  sseDataLines,
  startFakeUpstream,
  wholeCompletion,
} from "../support/fake-upstream.ts";
import { chatBody, jsonOf, postChat, type TestGateway } from "../support/gateway.ts";
import { twoUpstreamGateway } from "../support/two-upstreams.ts";

/**
 * Upstream answers a well-behaved provider does not give (issue 9, "Why" 5 and 7): a redirect, a
 * whole JSON answer to a stream request, a compressed body, an answer without bound. Driven through
 * the whole gateway, over HTTP, against fake upstreams.
 */

const FAST = {
  retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 2000 },
  timeouts: { connectMs: 500, headersMs: 300, firstTokenMs: 250, idleMs: 250, responseMs: 600 },
};
const FULL = "Hello from the fake upstream.";
const MiB = 1024 * 1024;
/** The HTTP client's default cap, which the gateway applies when its configuration sets none. */
const DEFAULT_CAP = 16 * MiB;

let a: FakeUpstream;
let b: FakeUpstream;
/** Where a redirect points: it must never see a request. */
let elsewhere: FakeUpstream;
let gateway: TestGateway;

async function setup(defaults: Record<string, unknown> = {}) {
  elsewhere = await startFakeUpstream();
  ({ a, b, gateway } = await twoUpstreamGateway({
    // A long deadline: an answer without end must be stopped by the size cap, not by the clock.
    defaults: { ...FAST, requestTimeoutMs: 60_000, ...defaults },
    models: { solo: { targets: [{ provider: "a", model: "model-a" }] } },
  }));
}

afterEach(async () => {
  await gateway?.close();
  await a?.close();
  await b?.close();
  await elsewhere?.close();
});

/** The content of an SSE answer's chunks, and whether it ended with `[DONE]`. */
function readStream(text: string) {
  const events = sseDataLines(text);
  const chunks = events.filter((e) => e.startsWith("{")).map((e) => JSON.parse(e));
  return {
    done: events.at(-1) === "[DONE]",
    content: chunks.map((c) => c.choices?.[0]?.delta?.content ?? "").join(""),
    finish: chunks.map((c) => c.choices?.[0]?.finish_reason).filter(Boolean),
    errors: chunks.filter((c) => c.error).map((c) => c.error),
  };
}

describe("a redirect from an upstream", () => {
  it("fails over to the next target, and nothing reaches the Location", async () => {
    await setup();
    a.queue.push({ kind: "custom", respond: redirectTo(`${elsewhere.url}/chat/completions`) });

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(200);
    expect(res.headers.get("x-gateway-provider")).toBe("b");
    expect(a.requests).toHaveLength(1); // not retried on the target that redirected
    expect(elsewhere.requests).toHaveLength(0);
  });

  it("is a 502 naming the likely cause, not a 302, when no other target is left", async () => {
    await setup();
    a.fallback = { kind: "custom", respond: redirectTo(`${elsewhere.url}/chat/completions`, 301) };

    const res = await postChat(gateway.url, chatBody("solo", { stream: true }));

    expect(res.status).toBe(502);
    expect(res.headers.get("location")).toBeNull();
    const body = await jsonOf(res);
    expect(body.error.message).toContain("HTTP 301");
    expect(body.error.message).toContain("base URL is likely wrong");
    expect(elsewhere.requests).toHaveLength(0);
  });
});

describe("a whole JSON answer to a stream request", () => {
  it("is served as a proper SSE stream ending in [DONE]", async () => {
    await setup();
    a.fallback = { kind: "custom", respond: wholeCompletion(FULL, { finishReason: "stop" }) };

    const res = await postChat(gateway.url, chatBody("solo", { stream: true }));

    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const stream = readStream(await res.text());
    expect(stream).toMatchObject({ done: true, content: FULL, finish: ["stop"], errors: [] });
    expect(a.requests).toHaveLength(1); // a good answer the first time
  });
});

describe("a compressed answer", () => {
  it.each([false, true])("is decoded (stream: %s), though the gateway asked for none", async (stream) => {
    await setup();
    a.queue.push({ kind: "custom", respond: compressedAnswer("gzip") });

    const res = await postChat(gateway.url, chatBody("solo", { stream }));

    expect(res.status).toBe(200);
    if (stream) expect(readStream(await res.text())).toMatchObject({ done: true, content: FULL });
    else expect((await jsonOf(res)).choices[0].message.content).toBe(FULL);
    expect(a.requests[0]?.headers["accept-encoding"]).toBe("identity");
  });
});

describe("an answer past the size cap", () => {
  it("a 50 MB body is a 502 response_too_large, the upstream connection dropped", async () => {
    await setup();
    const answer = hugeAnswer(50 * MiB);
    a.queue.push({ kind: "custom", respond: answer });

    const res = await postChat(gateway.url, chatBody("m"));

    expect(res.status).toBe(502);
    const body = await jsonOf(res);
    expect(body.error).toMatchObject({ type: "api_error", code: "response_too_large" });
    expect(body.error.message).toContain(`${DEFAULT_CAP} bytes`);
    await vi.waitFor(() => expect(a.requests[0]?.closedEarly).toBe(true));
    expect(answer.sent()).toBeLessThan(50 * MiB);
    expect(b.requests).toHaveLength(0); // another provider would write as much
  });

  it.each([
    ["a 50 MB stream", 50 * MiB],
    ["an endless stream", Number.POSITIVE_INFINITY],
  ])("%s ends at the cap with an error event, not [DONE]", async (_name, size) => {
    await setup();
    const answer = hugeAnswer(size);
    a.queue.push({ kind: "custom", respond: answer });

    const res = await postChat(gateway.url, chatBody("solo", { stream: true }));

    expect(res.status).toBe(200);
    const stream = readStream(await res.text());
    expect(stream.done).toBe(false);
    expect(stream.errors).toHaveLength(1);
    expect(stream.errors[0].message).toContain(`${DEFAULT_CAP} bytes`);
    expect(stream.content.length).toBeLessThanOrEqual(DEFAULT_CAP);
    await vi.waitFor(() => expect(a.requests[0]?.closedEarly).toBe(true));
    expect(answer.sent()).toBeLessThan(DEFAULT_CAP + 8 * MiB);
  });
});
