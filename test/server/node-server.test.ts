import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNodeServer, listen, SERVER_TIMEOUTS } from "../../lib/server/node-server.ts";
import { isOpenAIError, jsonBody, rawRequest } from "../fuzz/raw-http.ts";
import { type LogLine, recordingLogger, startGateway, type TestGateway } from "../support/gateway.ts";

/**
 * The local server's own edges (issue 9): its timeouts, the answers to requests that never reach
 * the gateway, and what it logs when a caller leaves. The timeouts are shortened here so a slow
 * caller is cut in a fraction of a second; the assertions are about what is answered, not when.
 */
let gateway: TestGateway;
let server: ReturnType<typeof createNodeServer>;
let url: string;
const logs: LogLine[] = [];

beforeAll(async () => {
  gateway = await startGateway({
    providers: [{ id: "mock", type: "mock", mock: { firstTokenDelayMs: 0, tokenDelayMs: 60 } }],
    models: { m: { targets: [{ provider: "mock", model: "mock-model" }] } },
  });
  server = createNodeServer(gateway.runtime.gateway, {
    maxBodyBytes: 100_000,
    logger: recordingLogger(logs),
    headersTimeoutMs: 300,
    requestTimeoutMs: 600,
    timeoutCheckIntervalMs: 50,
  });
  url = await listen(server, 0, "127.0.0.1");
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await gateway.close();
});

const errorLines = () => logs.filter((l) => l.level === "error");

describe("the local server's timeouts", () => {
  it("sets them on purpose by default", () => {
    const defaults = createNodeServer(gateway.runtime.gateway, {
      maxBodyBytes: 1024,
      logger: recordingLogger([]),
    });
    expect(defaults.headersTimeout).toBe(SERVER_TIMEOUTS.headersTimeoutMs);
    expect(defaults.requestTimeout).toBe(SERVER_TIMEOUTS.requestTimeoutMs);
    expect(defaults.keepAliveTimeout).toBe(SERVER_TIMEOUTS.keepAliveTimeoutMs);
    // Node's own defaults (60 s, 300 s, 5 s) are what let a slowloris socket live ~90 s.
    expect(SERVER_TIMEOUTS).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 65_000,
      timeoutCheckIntervalMs: 1_000,
    });
  });

  it("answers a caller that never finishes its headers with a 408 in the OpenAI shape, then closes", async () => {
    const res = await rawRequest(url, "GET /v1/models HTTP/1.1\r\nhost: x\r\nx-slow: ");
    expect(res.timedOut).toBeUndefined();
    expect(res.status).toBe(408);
    expect(res.headers.connection).toBe("close");
    expect(jsonBody(res)).toMatchObject({ error: { code: "request_timeout" } });
    expect(isOpenAIError(jsonBody(res))).toBe(true);
  });

  it("answers a body that stops arriving with a 408 and logs no error", async () => {
    const res = await rawRequest(
      url,
      'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 500\r\n\r\n{"model":"m",',
    );
    expect(res.status).toBe(408);
    expect(isOpenAIError(jsonBody(res))).toBe(true);
    expect(errorLines()).toEqual([]);
  });

  it("never cuts a response that outlasts the request timeout", async () => {
    // Ten tokens 60 ms apart: the stream runs past the 600 ms allowed for receiving the request.
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "m",
        messages: [{ role: "user", content: "one two three four five six seven eight nine ten" }],
        stream: true,
      }),
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });
});

describe("what the server answers itself", () => {
  it("answers an HTTP/1.1 request without Host with a 400 in the OpenAI shape", async () => {
    const res = await rawRequest(url, "GET /v1/models HTTP/1.1\r\nconnection: close\r\n\r\n");
    expect(res.status).toBe(400);
    expect(jsonBody(res)).toMatchObject({ error: { code: "missing_host_header" } });
  });

  it("answers CONNECT with a 405 instead of dropping the connection", async () => {
    const res = await rawRequest(url, "CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n");
    expect(res.status).toBe(405);
    expect(isOpenAIError(jsonBody(res))).toBe(true);
  });
});

describe("a failure of the server itself", () => {
  it("is a 500 in the OpenAI shape with a request id, logged once at error", async () => {
    const real = gateway.runtime.gateway;
    const failingLogs: LogLine[] = [];
    const failing = createNodeServer(
      { ...real, handle: () => Promise.reject(new Error("socket hang up in a bug of ours")) },
      { maxBodyBytes: 1024, logger: recordingLogger(failingLogs) },
    );
    const failingUrl = await listen(failing, 0, "127.0.0.1");
    try {
      const res = await fetch(`${failingUrl}/v1/models`);
      expect(res.status).toBe(500);
      expect(res.headers.get("x-request-id")).toBeTruthy();
      const body = (await res.json()) as unknown;
      expect(isOpenAIError(body)).toBe(true);
      expect(JSON.stringify(body)).not.toContain("hang up");
      expect(failingLogs.filter((l) => l.level === "error")).toEqual([
        expect.objectContaining({ msg: "response failed" }),
      ]);
    } finally {
      failing.closeAllConnections();
      await new Promise<void>((resolve) => failing.close(() => resolve()));
    }
  });
});

describe("a caller leaving mid-body", () => {
  it("is logged at info, not error", async () => {
    const before = logs.length;
    const socket = net.connect(Number(new URL(url).port), "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write('POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 500\r\n\r\n{"model"');
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.destroy();

    await expect
      .poll(() => logs.slice(before).find((l) => l.msg === "caller left before the response was sent"))
      .toMatchObject({ level: "info" });
    expect(errorLines()).toEqual([]);
  });
});

describe("back-pressure", () => {
  it("waits for a slow reader without piling up listeners", async () => {
    const chunk = "x".repeat(64 * 1024);
    const chunks = 200;
    const slow = createNodeServer(
      {
        handle: async () => ({
          status: 200,
          headers: { "content-type": "text/plain" },
          body: (async function* () {
            for (let i = 0; i < chunks; i++) yield chunk;
          })(),
        }),
        tooLarge: () => ({ status: 413, headers: {}, body: "" }),
        refuse: () => ({ status: 400, headers: {}, body: "" }),
      },
      { maxBodyBytes: 1000, logger: recordingLogger([]) },
    );
    const slowUrl = await listen(slow, 0, "127.0.0.1");
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const received = await new Promise<number>((resolve, reject) => {
        import("node:http").then(({ get }) =>
          get(slowUrl, (res) => {
            let size = 0;
            res.on("data", (data: Buffer) => {
              size += data.length;
              // Read a little, then stop for a moment: the server meets a full socket many times.
              res.pause();
              setTimeout(() => res.resume(), 1);
            });
            res.on("end", () => resolve(size));
            res.on("error", reject);
          }),
        );
      });
      expect(received).toBe(chunk.length * chunks);
      expect(warnings).not.toContain("MaxListenersExceededWarning");
    } finally {
      process.off("warning", onWarning);
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });
});
