import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNodeServer, listen } from "../../lib/server/node-server.ts";
import { type LogLine, recordingLogger, startGateway, type TestGateway } from "../support/gateway.ts";
import { fuzzSeed, type GeneratedRequest, request } from "./arbitraries.ts";
import { isOpenAIError, jsonBody, type RawResponse, rawRequest, requestBytes } from "./raw-http.ts";

/**
 * Property-based fuzzing of the local server's HTTP surface (issue 9), over real sockets: whatever
 * a caller sends, the answer is never a 500 (nor any 5xx: the only provider is a healthy mock), and
 * every 4xx carries a JSON body in the OpenAI error shape with a request id. A failure prints the
 * seed and the shrunk request; replay it with FUZZ_SEED=<seed>.
 */
const RUNS = 300;

let gateway: TestGateway;
let server: ReturnType<typeof createNodeServer>;
let url: string;
const serverLogs: LogLine[] = [];

beforeAll(async () => {
  gateway = await startGateway({
    providers: [{ id: "mock", type: "mock", mock: { firstTokenDelayMs: 0, tokenDelayMs: 0 } }],
    models: { m: { targets: [{ provider: "mock", model: "mock-model" }] } },
  });
  // Short request timeouts: a request the generator left incomplete is cut (408) in a second or two
  // instead of waiting out the defaults; a response that never comes still shows as a hang.
  server = createNodeServer(gateway.runtime.gateway, {
    maxBodyBytes: 1024 * 1024,
    logger: recordingLogger(serverLogs),
    headersTimeoutMs: 1_000,
    requestTimeoutMs: 1_500,
    timeoutCheckIntervalMs: 100,
  });
  url = await listen(server, 0, "127.0.0.1");
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await gateway.close();
});

/** What every answer must be, whatever was asked. */
function expectPoliteAnswer(res: RawResponse, method: string): void {
  expect(res.timedOut, "the server answered and closed the connection").toBeUndefined();
  expect(res.status, "an HTTP answer came back").toBeGreaterThanOrEqual(200);
  expect(res.status, "no 5xx from a gateway over a healthy mock").toBeLessThan(500);
  if (res.status >= 400) {
    expect(res.headers["content-type"]).toBe("application/json");
    expect(res.headers["x-request-id"]).toBeTruthy();
    // A HEAD answer has no body; whatever body there is must be the OpenAI shape.
    if (method !== "HEAD" || res.body.length > 0) expect(isOpenAIError(jsonBody(res))).toBe(true);
  }
}

function bytesOf(r: GeneratedRequest): Buffer {
  return requestBytes(r.method, Buffer.from(r.path, "utf8"), r.headers, r.body);
}

describe("the local server under generated requests", () => {
  it(`answers ${RUNS} odd requests without a 5xx, every 4xx in the OpenAI shape`, async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        expectPoliteAnswer(await rawRequest(url, bytesOf(r), 5_000), r.method);
      }),
      { numRuns: RUNS, ...fuzzSeed() },
    );
    // Nothing a caller sends is the gateway's own failure.
    expect([...gateway.logs, ...serverLogs].filter((l) => l.level === "error")).toEqual([]);
  }, 60_000);
});

describe("what Node's HTTP parser refuses, answered in the OpenAI shape", () => {
  const chat = '{"model":"m","messages":[{"role":"user","content":"hi"}]}';
  const cases: Array<[string, string, number, string]> = [
    [
      "a 20 KB header",
      `GET /v1/models HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(20 * 1024)}\r\n\r\n`,
      431,
      "request_headers_too_large",
    ],
    [
      "broken chunked encoding",
      "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
      400,
      "invalid_http_request",
    ],
    [
      "Content-Length with Transfer-Encoding",
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: ${chat.length}\r\ntransfer-encoding: chunked\r\n\r\n${chat}`,
      400,
      "invalid_http_request",
    ],
    [
      "two different Content-Lengths",
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ncontent-length: ${chat.length}\r\n\r\n${chat}`,
      400,
      "invalid_http_request",
    ],
    [
      "bytes that are not HTTP",
      "\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\r\n\r\n",
      400,
      "invalid_http_request",
    ],
    [
      "an Expect the server cannot meet",
      "GET /v1/models HTTP/1.1\r\nhost: x\r\nexpect: 200-ok\r\n\r\n",
      417,
      "expectation_failed",
    ],
  ];
  for (const [name, raw, status, code] of cases) {
    it(`answers ${name} with a ${status}`, async () => {
      const res = await rawRequest(url, Buffer.from(raw, "latin1"));
      expect(res.status).toBe(status);
      expect(res.headers["content-type"]).toBe("application/json");
      expect(res.headers["x-request-id"]).toBeTruthy();
      expect(res.headers.connection).toBe("close");
      const json = jsonBody(res);
      expect(isOpenAIError(json)).toBe(true);
      expect(json).toMatchObject({ error: { code } });
    });
  }
});
