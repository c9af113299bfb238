import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";

/**
 * Secrets Manager's JSON 1.1 API on 127.0.0.1 (GetSecretValue, PutSecretValue), enough for the
 * real SDK client to talk to it. Counts reads so caching can be checked.
 */
export interface FakeSecrets {
  endpoint: string;
  values: Map<string, string>;
  reads: Map<string, number>;
  client(): SecretsManagerClient;
  close(): Promise<void>;
}

export async function startFakeSecrets(initial: Record<string, string> = {}): Promise<FakeSecrets> {
  const values = new Map(Object.entries(initial));
  const reads = new Map<string, number>();
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as {
      SecretId?: string;
      SecretString?: string;
    };
    const action = String(req.headers["x-amz-target"] ?? "").split(".")[1];
    const id = body.SecretId ?? "";
    const reply = (status: number, json: object) => {
      res.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify(json));
    };
    if (action === "GetSecretValue") {
      reads.set(id, (reads.get(id) ?? 0) + 1);
      const value = values.get(id);
      if (value === undefined) {
        reply(400, {
          __type: "ResourceNotFoundException",
          message: "Secrets Manager can't find the specified secret.",
        });
        return;
      }
      reply(200, {
        ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${id}`,
        Name: id,
        SecretString: value,
        VersionId: "v1",
      });
    } else if (action === "PutSecretValue") {
      values.set(id, body.SecretString ?? "");
      reply(200, {
        ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${id}`,
        Name: id,
        VersionId: "v2",
      });
    } else {
      reply(400, { __type: "InvalidRequestException", message: `unsupported ${action}` });
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: SecretsManagerClient[] = [];
  return {
    endpoint,
    values,
    reads,
    client() {
      const client = new SecretsManagerClient({
        endpoint,
        region: "us-east-1",
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
        maxAttempts: 1,
      });
      clients.push(client);
      return client;
    },
    async close() {
      for (const c of clients) c.destroy();
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}

/**
 * Points the AWS SDK of this test process at loopback fakes: dynalite and the Secrets Manager fake,
 * with dummy credentials (the SDK reads service endpoints from AWS_ENDPOINT_URL_<SERVICE>).
 */
export function useLoopbackAws(dynamoEndpoint: string, secretsEndpoint: string): void {
  Object.assign(process.env, {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsEndpoint,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  });
}
