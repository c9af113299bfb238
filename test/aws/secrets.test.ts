import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runClientKeyCli } from "../../lib/aws/client-key-cli.ts";
import { createSecretCache, secretKeys, secretsManagerReader } from "../../lib/aws/secrets.ts";
import { hashClientKey, parseClientKeySecret } from "../../lib/gateway/auth.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import { type FakeSecrets, startFakeSecrets } from "../support/fake-secrets.ts";
import { startFakeUpstream } from "../support/fake-upstream.ts";
import { chatBody, jsonOf, postChat, startGateway } from "../support/gateway.ts";

let secrets: FakeSecrets;
beforeAll(async () => {
  secrets = await startFakeSecrets({
    "gw/keys": JSON.stringify({ openai: "sk-old-123456", deepseek: "sk-ds-123456" }),
    plain: "sk-plain-123456",
  });
});
afterAll(async () => {
  await secrets.close();
});

const providers = validateConfig({
  providers: [
    { id: "openai", type: "openai", apiKey: { secretId: "gw/keys", jsonKey: "openai" } },
    { id: "deepseek", type: "deepseek", apiKey: { secretId: "gw/keys", jsonKey: "deepseek" } },
    { id: "plain", type: "openai", apiKey: { secretId: "plain" } },
    { id: "missing", type: "openai", apiKey: { secretId: "nope" } },
    { id: "local", type: "openai", apiKey: { env: "LOCAL_KEY" } },
  ],
  models: { m: { targets: [{ provider: "openai", model: "x" }] } },
}).providers;
const p = (id: string) => providers.find((x) => x.id === id) ?? (undefined as never);

describe("provider keys from Secrets Manager", () => {
  it("reads JSON and plain secrets once per TTL, shared by concurrent requests", async () => {
    let now = 0;
    const cache = createSecretCache(secretsManagerReader(secrets.client()), { ttlMs: 1000, now: () => now });
    const keys = secretKeys(cache, { LOCAL_KEY: "sk-local-123456" });

    const got = await Promise.all([keys.get(p("openai")), keys.get(p("deepseek")), keys.get(p("openai"))]);
    expect(got).toEqual(["sk-old-123456", "sk-ds-123456", "sk-old-123456"]);
    expect(await keys.get(p("plain"))).toBe("sk-plain-123456");
    expect(await keys.get(p("local"))).toBe("sk-local-123456");
    expect(await keys.get(p("missing"))).toBeUndefined();
    expect(secrets.reads.get("gw/keys")).toBe(1);

    now = 1500;
    await keys.get(p("openai"));
    expect(secrets.reads.get("gw/keys")).toBe(2);
  });

  it("refetches once after a 401, however many requests saw the old key", async () => {
    const cache = createSecretCache(secretsManagerReader(secrets.client()), { ttlMs: 600_000, now: () => 0 });
    const keys = secretKeys(cache, {});
    expect(await keys.get(p("openai"))).toBe("sk-old-123456");
    const before = cache.fetches;

    secrets.values.set("gw/keys", JSON.stringify({ openai: "sk-new-123456", deepseek: "sk-ds-123456" }));
    for (let i = 0; i < 5; i++) keys.invalidate(p("openai"), "sk-old-123456");
    await new Promise((r) => setTimeout(r, 10));
    const after = await Promise.all([keys.get(p("openai")), keys.get(p("openai")), keys.get(p("openai"))]);
    keys.invalidate(p("openai"), "sk-old-123456"); // a straggler with the old key: no new fetch
    await new Promise((r) => setTimeout(r, 10));
    await keys.get(p("openai"));

    expect(after).toEqual(["sk-new-123456", "sk-new-123456", "sk-new-123456"]);
    expect(cache.fetches - before).toBe(1);
  });
});

describe("key rotation seen through a 401", () => {
  it("refetches the secret and retries once on the same target with the new key", async () => {
    const upstream = await startFakeUpstream();
    secrets.values.set("gw/rotating", JSON.stringify({ p: "sk-old-key-123456" }));
    const cache = createSecretCache(secretsManagerReader(secrets.client()), {
      ttlMs: 600_000,
      now: Date.now,
    });
    const gateway = await startGateway(
      {
        providers: [
          {
            id: "p",
            type: "openai",
            baseUrl: upstream.url,
            apiKey: { secretId: "gw/rotating", jsonKey: "p" },
          },
        ],
        models: { m: { targets: [{ provider: "p", model: "x" }] } },
      },
      { keys: secretKeys(cache, {}) },
    );
    try {
      const first = await postChat(gateway.url, chatBody("m"));
      expect(await first.text()).toContain("chat.completion");

      // Rotated in Secrets Manager; the gateway still holds the old key until the provider refuses it.
      secrets.values.set("gw/rotating", JSON.stringify({ p: "sk-new-key-123456" }));
      upstream.queue.push({ kind: "status", status: 401, error: { message: "Incorrect API key provided" } });
      const rotated = await postChat(gateway.url, chatBody("m"));
      expect(rotated.status).toBe(200);
      expect(rotated.headers.get("x-gateway-attempts")).toBe("1");
      expect(upstream.requests.map((r) => r.headers.authorization)).toEqual([
        "Bearer sk-old-key-123456",
        "Bearer sk-old-key-123456",
        "Bearer sk-new-key-123456",
      ]);
      expect(secrets.reads.get("gw/rotating")).toBe(2);

      // A key that is simply wrong: one refetch, the same key, no second try; the caller is not blamed.
      upstream.queue.push({ kind: "status", status: 401, error: { message: "Incorrect API key provided" } });
      const refused = await postChat(gateway.url, chatBody("m"));
      expect(refused.status).toBe(502);
      expect((await jsonOf(refused)).error.message).toContain("rejected the gateway's credentials");
      expect(upstream.requests).toHaveLength(4);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});

describe("npm run client-key", () => {
  it("creates a key, stores only its hash, and revokes it", async () => {
    secrets.values.set("gw/clients", '{"sha256":[]}');
    let out = "";
    const io = {
      out: (t: string) => {
        out += t;
      },
      err: () => {},
      env: {},
      client: secrets.client(),
      now: () => 0,
      randomBytes,
    };

    expect(await runClientKeyCli(["new", "--secret", "gw/clients"], io)).toBe(0);
    const key = out.trim();
    const stored = parseClientKeySecret(secrets.values.get("gw/clients"));
    expect(key).toMatch(/^sk-gw-/);
    expect(stored).toEqual([hashClientKey(key)]);
    expect(secrets.values.get("gw/clients")).not.toContain(key);

    expect(
      await runClientKeyCli(["revoke", stored[0]?.slice(0, 12) ?? "", "--secret", "gw/clients"], io),
    ).toBe(0);
    expect(parseClientKeySecret(secrets.values.get("gw/clients"))).toEqual([]);
  });
});
