import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClientAuth, hashClientKey, parseClientKeySecret } from "../../lib/gateway/auth.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";
import {
  chatBody,
  fakeProvider,
  jsonOf,
  postChat,
  startGateway,
  type TestGateway,
} from "../support/gateway.ts";

let upstream: FakeUpstream;
let gateway: TestGateway;
const KEY = "sk-gw-caller-key-0123456789";

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const secret = JSON.stringify({ sha256: [hashClientKey("sk-gw-other-key-999999"), hashClientKey(KEY)] });
  gateway = await startGateway(
    {
      providers: [fakeProvider("p", upstream.url)],
      models: { m: { targets: [{ provider: "p", model: "x" }] } },
    },
    { auth: createClientAuth(async () => parseClientKeySecret(secret)) },
  );
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});

describe("client authentication", () => {
  it("answers 401 in the OpenAI shape before any upstream call", async () => {
    for (const headers of [
      {},
      { authorization: "Bearer sk-gw-wrong-key-000000" },
      { authorization: "Basic abc" },
    ]) {
      const res = await postChat(gateway.url, chatBody("m"), headers);
      const body = await jsonOf(res);
      expect(res.status).toBe(401);
      expect(body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });
      expect(JSON.stringify(body)).not.toContain("wrong-key");
    }
    expect((await fetch(`${gateway.url}/v1/models`)).status).toBe(401);
    expect(upstream.requests).toHaveLength(0);
  });

  it("lets a known key through", async () => {
    const res = await postChat(gateway.url, chatBody("m"), { authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
  });

  it("keeps /health open for load balancers and probes", async () => {
    expect((await fetch(`${gateway.url}/health`)).status).toBe(200);
  });

  it("fails closed with 503 when the key store cannot be read", async () => {
    const auth = createClientAuth(async () => {
      throw new Error("secrets manager down");
    });
    await expect(auth.verify({ authorization: `Bearer ${KEY}` })).rejects.toMatchObject({
      status: 503,
      code: "auth_unavailable",
    });
  });

  it("never logs the caller's key", () => {
    expect(JSON.stringify(gateway.logs)).not.toContain(KEY);
  });
});
