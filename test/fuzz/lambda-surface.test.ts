import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { bundleAsDeployed, importHandler, useFunctionEnvironment } from "../support/bundle.ts";
import { startTestTable, type TestTable } from "../support/dynamo.ts";
import { isStreamingHandler, lambdaContext, ResponseStream } from "../support/lambda-runtime.ts";
import { fuzzSeed, percent, request } from "./arbitraries.ts";
import { isOpenAIError } from "./raw-http.ts";

/**
 * The same fuzzing as the local server's, against the chat handler bundled as it is deployed (the
 * stack's esbuild options), invoked through a shim of the Lambda streaming runtime. Function URLs
 * parse HTTP themselves, so what reaches the handler is an event: the generated method, path,
 * headers and body go into one, sometimes base64-encoded, sometimes with a broken encoding.
 */
const RUNS = 120;
const DELIMITER = Buffer.alloc(8);

type StreamingHandler = (event: unknown, stream: ResponseStream, context: unknown) => Promise<unknown>;

let table: TestTable;
let outdir: string;
let handler: StreamingHandler;
const savedEnv = { ...process.env };
const stdout: string[] = [];

beforeAll(async () => {
  table = await startTestTable();
  outdir = mkdtempSync(join(tmpdir(), "fuzz-lambda-"));
  const configText = JSON.stringify({
    providers: [{ id: "mock", type: "mock", mock: { firstTokenDelayMs: 0, tokenDelayMs: 0 } }],
    models: { m: { targets: [{ provider: "mock", model: "mock-model" }] } },
  });
  await bundleAsDeployed("functions/chat.ts", configText, join(outdir, "chat.mjs"));
  // No secrets are needed (a mock provider, no caller keys): the Secrets Manager endpoint is unused.
  useFunctionEnvironment(table, "http://127.0.0.1:9", { LOG_LEVEL: "info" });
  delete process.env.CLIENT_KEYS_SECRET;
  delete process.env.GATEWAY_CONFIG_JSON;
  const chat = await importHandler(join(outdir, "chat.mjs"));
  expect(isStreamingHandler(chat)).toBe(true);
  handler = chat as StreamingHandler;
  // The function logs (JSON lines) and writes metrics (EMF) to stdout: keep them to inspect.
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout.push(String(chunk));
    return true;
  });
}, 60_000);

afterAll(async () => {
  vi.restoreAllMocks();
  process.env = savedEnv;
  await table?.close();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

interface Invocation {
  statusCode: number | undefined;
  headers: Record<string, string>;
  body: Buffer;
}

/** Invokes the handler as the streaming runtime does; the prelude (status, headers) ends at 8 NULs. */
async function invoke(event: unknown): Promise<Invocation> {
  const chunks: Buffer[] = [];
  const stream = new ResponseStream((chunk) => chunks.push(chunk));
  await handler(event, stream, lambdaContext(30_000));
  const all = Buffer.concat(chunks);
  const end = all.indexOf(DELIMITER);
  if (end === -1) return { statusCode: undefined, headers: {}, body: all };
  const prelude = JSON.parse(all.subarray(0, end).toString("utf8")) as {
    statusCode?: number;
    headers?: Record<string, string>;
  };
  return { statusCode: prelude.statusCode, headers: prelude.headers ?? {}, body: all.subarray(end + 8) };
}

/** A Function URL event (payload 2.0) from a generated request. */
const event = fc
  .tuple(
    request,
    fc.constantFrom("text", "base64", "broken-base64"),
    // Function URLs pass on paths a Node server would refuse (raw Unicode, stray '%'); so may other
    // invokers. One event in three asks for such a model id.
    fc.oneof(
      { weight: 2, arbitrary: fc.constant(null) },
      {
        weight: 1,
        arbitrary: fc.record({
          method: fc.constantFrom("GET", "HEAD", "OPTIONS"),
          id: fc
            .array(
              fc.oneof(percent, fc.string({ maxLength: 4 }), fc.string({ unit: "grapheme", maxLength: 4 })),
              {
                minLength: 1,
                maxLength: 4,
              },
            )
            .map((parts) => parts.join("")),
        }),
      },
    ),
  )
  .map(([r, encoding, odd]) => {
    const path = odd === null ? r.path : `/v1/models/${odd.id}`;
    const method = odd === null ? r.method : odd.method;
    const query = path.indexOf("?");
    return {
      version: "2.0",
      rawPath: query === -1 ? path : path.slice(0, query),
      rawQueryString: query === -1 ? "" : path.slice(query + 1),
      headers: Object.fromEntries(r.headers.map(([name, value]) => [name.toLowerCase(), value])),
      requestContext: { http: { method, path }, requestId: "url-req" },
      body:
        encoding === "text"
          ? r.body.toString("utf8")
          : encoding === "base64"
            ? r.body.toString("base64")
            : `${r.body.toString("base64")}!*%`,
      isBase64Encoded: encoding !== "text",
    };
  });

describe("the bundled chat handler under generated events", () => {
  it(`answers ${RUNS} odd events without a 5xx, every 4xx in the OpenAI shape`, async () => {
    await fc.assert(
      fc.asyncProperty(event, async (e) => {
        const res = await invoke(e);
        expect(res.statusCode, "the handler sent a prelude").toBeTypeOf("number");
        const status = res.statusCode ?? 0;
        expect(status, "no 5xx from a gateway over a healthy mock").toBeLessThan(500);
        expect(status).toBeGreaterThanOrEqual(200);
        if (status >= 400) {
          expect(res.headers["content-type"]).toBe("application/json");
          expect(res.headers["x-request-id"]).toBeTruthy();
          const method = e.requestContext.http.method;
          if (method !== "HEAD" || res.body.length > 0)
            expect(isOpenAIError(JSON.parse(res.body.toString("utf8")))).toBe(true);
        }
      }),
      { numRuns: RUNS, ...fuzzSeed() },
    );
    const errors = stdout.filter((line) => line.includes('"level":"error"'));
    expect(errors).toEqual([]);
  }, 60_000);

  it("refuses a body nested 10,000 levels deep with a 400", async () => {
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    const res = await invoke({
      rawPath: "/v1/chat/completions",
      headers: { "content-type": "application/json" },
      requestContext: { http: { method: "POST" } },
      body: `{"model":"m","messages":[{"role":"user","content":${deep}}]}`,
      isBase64Encoded: false,
    });
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body.toString("utf8"))).toMatchObject({ error: { code: "nesting_too_deep" } });
  });
});
