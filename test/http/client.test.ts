import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpClient, type HttpRequest, HttpTimeoutError } from "../../lib/http/client.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";

let upstream: FakeUpstream;
const client = createHttpClient();
const limits = { connectTimeoutMs: 1000, headersTimeoutMs: 300, bodyIdleTimeoutMs: 300 };
/** A chat completion request to the fake upstream, with the test limits unless overridden. */
const post = (stream: boolean, extra: Partial<HttpRequest> = {}) =>
  client.request({
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
