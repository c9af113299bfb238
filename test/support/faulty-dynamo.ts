import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";

/** One DynamoDB call as the proxy saw it. */
export interface DynamoCall {
  /** The operation, from `x-amz-target` (`DynamoDB_20120810.UpdateItem` gives `UpdateItem`). */
  operation: string;
  body: string;
  failed: boolean;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a DynamoDB (dynalite) that answers chosen calls with a
 * 500 `InternalServerError` instead of passing them on, the way a table in trouble looks to the
 * SDK (which retries it as transient). `fail` decides per call; `failNext(n, match)` fails the next
 * `n` calls that match and passes everything after them.
 */
export interface FaultyDynamo {
  endpoint: string;
  readonly calls: readonly DynamoCall[];
  /** Whether to fail a call; the default passes every call. */
  fail: (call: Omit<DynamoCall, "failed">) => boolean;
  failNext(count: number, match: (call: Omit<DynamoCall, "failed">) => boolean): void;
  close(): Promise<void>;
}

/** A usage-ledger write: an UpdateItem on a caller's partition. */
export const ledgerWrite = (call: Omit<DynamoCall, "failed">): boolean =>
  call.operation === "UpdateItem" && call.body.includes('"CALLER#');

export async function startFaultyDynamo(target: string): Promise<FaultyDynamo> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const calls: DynamoCall[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const call = {
      operation: String(req.headers["x-amz-target"] ?? "").split(".")[1] ?? "",
      body: body.toString("utf8"),
    };
    const failed = faulty.fail(call);
    calls.push({ ...call, failed });
    if (failed) {
      res.writeHead(500, { "content-type": "application/x-amz-json-1.0" });
      res.end(
        JSON.stringify({
          __type: "com.amazonaws.dynamodb.v20120810#InternalServerError",
          message: "injected by the test",
        }),
      );
      return;
    }
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    forward.end(body);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const faulty: FaultyDynamo = {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    fail: () => false,
    failNext(count, match) {
      let left = count;
      faulty.fail = (call) => {
        if (left === 0 || !match(call)) return false;
        left--;
        return true;
      };
    },
    async close() {
      server.closeAllConnections();
      server.close();
      agent.destroy();
      await once(server, "close");
    },
  };
  return faulty;
}
