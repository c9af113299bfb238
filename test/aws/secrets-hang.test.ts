import { afterEach, describe, expect, it } from "vitest";
import { createSecretCache, createSecretsClient, secretsManagerReader } from "../../lib/aws/secrets.ts";
import { startFakeSecrets } from "../support/fake-secrets.ts";
import { startHangingEndpoint } from "../support/hanging-endpoint.ts";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe("a Secrets Manager that accepts connections and never answers (issue 9)", () => {
  it("fails a key fetch instead of holding it, and the next fetch succeeds once it answers", async () => {
    const secrets = await startFakeSecrets({ "gw/keys": "sk-live-123456" });
    const hanging = await startHangingEndpoint();
    // Short timeouts keep the test fast; the defaults are in SECRETS_TIMEOUTS.
    const client = createSecretsClient(
      {
        endpoint: hanging.endpoint,
        region: "us-east-1",
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
        maxAttempts: 1,
      },
      { connectMs: 200, requestMs: 300 },
    );
    cleanup.push(
      () => secrets.close(),
      () => hanging.close(),
      () => client.destroy(),
    );
    const cache = createSecretCache(secretsManagerReader(client), { ttlMs: 60_000, now: Date.now });

    await expect(cache.get("gw/keys")).rejects.toMatchObject({ name: "TimeoutError" });
    expect(hanging.connections).toBe(1);

    hanging.relayTo(secrets.endpoint);
    await expect(cache.get("gw/keys")).resolves.toBe("sk-live-123456");
    expect(secrets.reads.get("gw/keys")).toBe(1);
  });
});
