import type { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { toGatewayRequest, toHandlerResponse } from "../../lib/lambda/function-url.ts";

describe("Function URL adapter", () => {
  const signal = new AbortController().signal;

  it("turns a payload 2.0 event into the gateway's request, inside the remaining time", () => {
    const request = toGatewayRequest(
      {
        rawPath: "/v1/models",
        rawQueryString: "a=1",
        headers: { Authorization: "Bearer k", "content-type": "application/json" },
        body: '{"x":1}',
        isBase64Encoded: false,
        requestContext: { requestId: "url-id", http: { method: "GET" } },
      },
      { awsRequestId: "aws-id", getRemainingTimeInMillis: () => 10_000 },
      signal,
      1_500,
    );
    expect(request).toMatchObject({
      method: "GET",
      path: "/v1/models?a=1",
      headers: { authorization: "Bearer k", "content-type": "application/json" },
      body: '{"x":1}',
      remainingMs: 8_500,
      requestId: "aws-id",
    });
  });

  it("decodes base64 bodies and survives a bare event", () => {
    const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "héllo" }] });
    const request = toGatewayRequest(
      { body: Buffer.from(body).toString("base64"), isBase64Encoded: true },
      {},
      signal,
      0,
    );
    expect(request).toMatchObject({ method: "GET", path: "/", body });
    expect(request.remainingMs).toBeUndefined();
  });

  it("passes string bodies through and streams iterables", async () => {
    const whole = toHandlerResponse({ status: 404, headers: { a: "b" }, body: "{}" }, () => {});
    expect(whole).toEqual({ statusCode: 404, headers: { a: "b" }, body: "{}" });

    async function* chunks() {
      yield "data: 1\n\n";
      yield "data: [DONE]\n\n";
    }
    const streamed = toHandlerResponse({ status: 200, headers: {}, body: chunks() }, () => {});
    let text = "";
    for await (const c of streamed.body as Readable) text += c;
    expect(text).toBe("data: 1\n\ndata: [DONE]\n\n");
  });

  it("aborts, and ends the relay quietly, when the pipeline destroys the body", async () => {
    // A relay waiting on its upstream when the caller goes away; the abort is what releases it.
    let releaseUpstream = () => {};
    const upstreamWait = new Promise<void>((resolve) => {
      releaseUpstream = resolve;
    });
    let aborted = false;
    let relayError: unknown;
    let relayEnded = false;
    async function* relay() {
      try {
        yield "data: 1\n\n";
        await upstreamWait;
        yield "data: 2\n\n";
      } catch (error) {
        relayError = error;
      } finally {
        relayEnded = true;
      }
    }
    const response = toHandlerResponse({ status: 200, headers: {}, body: relay() }, () => {
      aborted = true;
      releaseUpstream();
    });
    const body = response.body as Readable;
    await new Promise((resolve) => body.once("data", resolve));
    const closed = new Promise((resolve) => body.once("close", resolve));
    body.on("error", () => {}); // as middy's pipeline does
    body.destroy(new Error("client went away"));
    await closed;

    expect(aborted).toBe(true);
    expect(relayEnded).toBe(true);
    // Node's Readable.from would have thrown the pipeline's error into the relay; the guard does not.
    expect(relayError).toBeUndefined();
  });
});
