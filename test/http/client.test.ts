import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  createHttpClient,
  type HttpClient,
  HttpPoolSaturatedError,
  type HttpRequest,
  HttpResponseTooLargeError,
  HttpTimeoutError,
} from "../../lib/http/client.ts";
import {
  compressedAnswer,
  DEFAULT_TOKENS,
  type FakeUpstream,
  hugeAnswer,
  redirectTo,
  sseDataLines,
  startFakeUpstream,
} from "../support/fake-upstream.ts";

let upstream: FakeUpstream;
const client = createHttpClient();
const limits = { connectTimeoutMs: 1000, headersTimeoutMs: 300, bodyIdleTimeoutMs: 300 };
/** A chat completion request to the fake upstream, with the test limits unless overridden. */
const post = (stream: boolean, extra: Partial<HttpRequest> = {}, via: HttpClient = client) =>
  via.request({
    url: `${upstream.url}/chat/completions`,
    method: "POST",
    headers: {},
    body: JSON.stringify({ model: "m", stream, messages: [{ role: "user", content: "hi" }] }),
    ...limits,
    ...extra,
  });

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  client.close();
  await upstream.close();
});

describe("createHttpClient", () => {
  it("reuses one pooled connection for sequential requests", async () => {
    const before = upstream.connections();
    for (let i = 0; i < 5; i++) {
      const res = await post(false);
      expect(res.status).toBe(200);
      await res.text();
    }
    expect(upstream.connections() - before).toBe(1);
  });

  it("reuses the connection after a stream read to [DONE] and released", async () => {
    const before = upstream.connections();
    for (let i = 0; i < 3; i++) {
      const res = await post(true);
      for await (const _ of res.body) {
        // read everything
      }
      res.release();
    }
    expect(upstream.connections() - before).toBeLessThanOrEqual(1);
  });

  it("times out waiting for headers", async () => {
    upstream.queue.push({ kind: "hang" });
    const request = post(false);
    await expect(request).rejects.toBeInstanceOf(HttpTimeoutError);
    await expect(request).rejects.toMatchObject({ phase: "headers" });
  });

  it("times out a silent body", async () => {
    upstream.queue.push({ kind: "answer", stallAfter: 1 });
    const res = await post(true);
    const read = async () => {
      for await (const _ of res.body) {
        // keep reading until the stall trips the timer
      }
    };
    await expect(read()).rejects.toMatchObject({ phase: "body" });
  });

  it("aborts on the caller's signal", async () => {
    upstream.queue.push({ kind: "hang" });
    const controller = new AbortController();
    const request = post(false, { signal: controller.signal, headersTimeoutMs: 5000 });
    setTimeout(() => controller.abort(), 20);
    await expect(request).rejects.toMatchObject({ name: "AbortError" });
  });

  it("reports a refused connection as a network error before any response", async () => {
    const closed = await startFakeUpstream();
    const url = closed.url;
    await closed.close();
    await expect(post(false, { url: `${url}/chat/completions` })).rejects.toMatchObject({
      name: "HttpNetworkError",
      code: "ECONNREFUSED",
      beforeResponse: true,
    });
  });
});

/** Reads a whole body through its async iterator. */
async function readAll(body: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk);
  return Buffer.concat(parts).toString("utf8");
}

describe("pool saturation", () => {
  it("refuses at once when every connection to the origin is busy, and serves again once one frees", async () => {
    // Prepare: a pool of two, both held by requests the upstream never answers.
    const small = createHttpClient({ maxSockets: 2 });
    const slow = await startFakeUpstream();
    const other = await startFakeUpstream();
    const url = `${slow.url}/chat/completions`;
    try {
      slow.queue.push({ kind: "hang" }, { kind: "hang" });
      const holders = new AbortController();
      let holdersSettled = 0;
      const held = [0, 1].map(() =>
        post(false, { url, signal: holders.signal, headersTimeoutMs: 5000 }, small).finally(
          () => holdersSettled++,
        ),
      );
      await vi.waitFor(() => expect(slow.requests).toHaveLength(2));

      // Act: a third request to the same origin.
      const third = post(false, { url, headersTimeoutMs: 5000 }, small);

      // Assess: refused as overloaded while the two holders still wait (it queued for nothing).
      await expect(third).rejects.toBeInstanceOf(HttpPoolSaturatedError);
      await expect(third).rejects.toMatchObject({ maxSockets: 2 });
      expect(holdersSettled).toBe(0);
      expect(slow.requests).toHaveLength(2);
      // Another origin has its own connections.
      const elsewhere = await post(false, { url: `${other.url}/chat/completions` }, small);
      expect(elsewhere.status).toBe(200);
      await elsewhere.text();
      // Once the holders give their connections up, the origin is served again.
      holders.abort();
      await Promise.allSettled(held);
      const again = await post(false, { url }, small);
      expect(again.status).toBe(200);
      await again.text();
    } finally {
      small.close();
      await slow.close();
      await other.close();
    }
  });
});

describe("a reader that stops reading", () => {
  it("is not timed out while data it has not read yet is buffered", async () => {
    // Prepare: 1 MB of events, far more than the socket and stream buffers take.
    upstream.queue.push({ kind: "custom", respond: hugeAnswer(1024 * 1024) });
    const res = await post(true, { bodyIdleTimeoutMs: 100 });

    // Act: read one chunk, stop for five idle periods (back-pressure pauses the socket), read on.
    let bytes = 0;
    let paused = false;
    for await (const chunk of res.body) {
      bytes += chunk.length;
      if (!paused) {
        paused = true;
        await sleep(500);
      }
    }

    // Assess: the whole answer arrived.
    expect(bytes).toBeGreaterThan(1024 * 1024);
    res.release();
  });
});

describe("maxResponseBytes", () => {
  const MiB = 1024 * 1024;

  it("fails a whole body past the limit and drops the connection", async () => {
    const answer = hugeAnswer(8 * MiB);
    upstream.queue.push({ kind: "custom", respond: answer });
    const before = upstream.requests.length;

    const res = await post(false, { maxResponseBytes: MiB });

    await expect(res.text()).rejects.toMatchObject({ name: "HttpResponseTooLargeError", limit: MiB });
    await vi.waitFor(() => expect(upstream.requests[before]?.closedEarly).toBe(true));
    expect(answer.sent()).toBeLessThan(8 * MiB);
  });

  it("stops an endless stream at the limit", async () => {
    const answer = hugeAnswer(Number.POSITIVE_INFINITY);
    upstream.queue.push({ kind: "custom", respond: answer });
    const before = upstream.requests.length;

    // The signal only keeps a broken client from reading for ever.
    const res = await post(true, { maxResponseBytes: MiB, signal: AbortSignal.timeout(5000) });

    const read = readAll(res.body);
    await expect(read).rejects.toBeInstanceOf(HttpResponseTooLargeError);
    await expect(read).rejects.toThrow(`${MiB} bytes`);
    await vi.waitFor(() => expect(upstream.requests[before]?.closedEarly).toBe(true));
  });

  it("applies the client's default, and refuses a declared length past it before reading", async () => {
    const capped = createHttpClient({ maxResponseBytes: 1000 });
    try {
      upstream.queue.push({
        kind: "custom",
        respond: (_record, res) => {
          res.writeHead(200, { "content-type": "application/json", "content-length": "5000" });
          res.write("{"); // and nothing more: only the declared length can fail it at once
        },
      });
      const res = await post(false, { bodyIdleTimeoutMs: 5000 }, capped);
      await expect(res.text()).rejects.toMatchObject({ name: "HttpResponseTooLargeError", limit: 1000 });
    } finally {
      capped.close();
    }
  });
});

describe("odd upstream answers", () => {
  it("asks for an uncompressed body", async () => {
    const before = upstream.requests.length;
    await (await post(false)).text();
    expect(upstream.requests[before]?.headers["accept-encoding"]).toBe("identity");
  });

  it.each(["gzip", "deflate", "br"] as const)("decodes a %s body, whole and streamed", async (encoding) => {
    upstream.queue.push({ kind: "custom", respond: compressedAnswer(encoding) });
    const whole = JSON.parse(await (await post(false)).text());
    expect(whole.choices[0].message.content).toBe(DEFAULT_TOKENS.join(""));

    upstream.queue.push({ kind: "custom", respond: compressedAnswer(encoding) });
    const events = sseDataLines(await readAll((await post(true)).body));
    expect(events.at(-1)).toBe("[DONE]");
    const text = events
      .slice(0, -1)
      .map((e) => JSON.parse(e).choices[0].delta.content ?? "")
      .join("");
    expect(text).toBe(DEFAULT_TOKENS.join(""));
  });

  it("never follows a redirect", async () => {
    const elsewhere = await startFakeUpstream();
    try {
      upstream.queue.push({ kind: "custom", respond: redirectTo(`${elsewhere.url}/chat/completions`) });
      const res = await post(false, { headers: { authorization: "Bearer sk-secret-key-123456" } });
      expect(res.status).toBe(302);
      await res.text();
      expect(elsewhere.requests).toHaveLength(0);
    } finally {
      await elsewhere.close();
    }
  });
});
