import { describe, expect, it } from "vitest";
import type { ProviderConfig } from "../../lib/config/types.ts";
import { type ApiKeys, registeringKeys } from "../../lib/providers/keys.ts";
import { createSecretRedactor, REDACTED } from "../../lib/secrets/redact.ts";

const HELD = "Zq8vR2mXk4LpT9wB7nC3dF6hJ1sY5aE0uGiOoPlQ";

describe("redaction by shape", () => {
  const redactor = createSecretRedactor();

  it.each([
    ["Groq", "Invalid API Key: gsk_7Hq2Lr9XwVb4Nc8Tz1Km5Pd3Fy6Js0AeGuRiOoWl", "Invalid API Key: [redacted]"],
    ["Stripe live", "card key sk_live_51HxYzAbCdEfGhIj refused", "card key [redacted] refused"],
    ["Stripe test", "rk_test_abcdefgh12345", "[redacted]"],
    ["OpenAI project", "key sk-proj-AbCdEf0123456789xyz", "key [redacted]"],
    ["Anthropic", "sk-ant-api03-AbCdEf0123456789", "[redacted]"],
    ["OpenAI masked", "provided: sk-proj-************abcd", "provided: [redacted]"],
    ["xAI", "xai-AbCdEfGhIjKlMnOpQrSt0123", "[redacted]"],
    ["Hugging Face", "token hf_AbCdEfGhIjKlMnOpQrSt0123 invalid", "token [redacted] invalid"],
    ["Google", "AIzaSyA1234567890abcdefghijklmnopqrstu", "[redacted]"],
    ["AWS key id", "AKIAIOSFODNN7EXAMPLE / ASIAY34FZKBOKMUTVV7A", "[redacted] / [redacted]"],
    ["bearer", "sent Authorization: Bearer abc.def-ghi_jkl123", "sent Authorization: Bearer [redacted]"],
    ["URL key", "GET /v1/models?key=AIzaSyA12345&alt=json", "GET /v1/models?key=[redacted]&alt=json"],
    ["URL api_key", "https://h/x?a=1&api_key=abcdef123456", "https://h/x?a=1&api_key=[redacted]"],
    ["JSON api_key", '{"api_key": "live_abc123def456ghi"}', '{"api_key": "[redacted]"}'],
    ["x-api-key header", "x-api-key: abcdef1234567890", "x-api-key: [redacted]"],
    ["starred mask", "key abcd********wxyz.", "key [redacted]."],
  ])("%s", (_shape, text, expected) => {
    expect(redactor.redact(text)).toBe(expected);
  });

  it("leaves ordinary text alone", () => {
    const texts = [
      "risk-free task_list desk-top sk-learn hf_hub_download",
      "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
      "api_key: missing_parameter_value",
      "the bearer of bad news; tokens=5; ?key=ab",
      "Please wait... then retry. Rate limit reached for gpt-4o-mini in organization org-123.",
      "Invalid 'messages[0].content': expected a string, got an object.",
    ];
    for (const text of texts) expect(redactor.redact(text)).toBe(text);
  });
});

describe("redaction by value", () => {
  it("removes a registered key of no known shape, and only once registered", () => {
    const redactor = createSecretRedactor();
    expect(redactor.redact(`refused ${HELD}`)).toBe(`refused ${HELD}`);

    redactor.register(HELD);

    expect(redactor.redact(`refused ${HELD}, again:${HELD}`)).toBe("refused [redacted], again:[redacted]");
  });

  it("removes the JSON-escaped and URL-encoded forms of a value", () => {
    const redactor = createSecretRedactor();
    const value = 'pa"ss/wo+rd=1234';
    redactor.register(value);

    expect(redactor.redact(JSON.stringify({ e: `x ${value} y` }))).toBe(
      JSON.stringify({ e: "x [redacted] y" }),
    );
    expect(redactor.redact(`GET /a?b=1&c=${encodeURIComponent(value)}`)).toBe("GET /a?b=1&c=[redacted]");
  });

  it("removes a masked echo of a registered value, keeping other dotted text", () => {
    const redactor = createSecretRedactor();
    redactor.register(HELD);

    expect(redactor.redact("Incorrect API key provided: Zq8v...oPlQ.")).toBe(
      "Incorrect API key provided: [redacted].",
    );
    expect(redactor.redact("key Zq8v…oPlQ refused")).toBe("key [redacted] refused");
    expect(redactor.redact("Zq8v...abcd and wait...then")).toBe("Zq8v...abcd and wait...then");
  });

  it("ignores values too short to be keys, so words survive", () => {
    const redactor = createSecretRedactor();
    redactor.register("model");
    redactor.register(undefined);

    expect(redactor.size).toBe(0);
    expect(redactor.redact("model not found")).toBe("model not found");
  });

  it("removes the longer of two overlapping values whole", () => {
    const redactor = createSecretRedactor();
    redactor.register("abcdefgh12");
    redactor.register("abcdefgh12345678");

    expect(redactor.redact("x abcdefgh12345678 y")).toBe("x [redacted] y");
  });

  it("is bounded: past the limit the least recently registered value goes", () => {
    const redactor = createSecretRedactor({ maxValues: 3 });
    const [one, two, three, four] = ["value-one-1", "value-two-2", "value-three-3", "value-four-4"];
    redactor.register(one);
    redactor.register(two);
    redactor.register(three);
    redactor.register(one); // used again: now the most recent

    redactor.register(four);

    expect(redactor.size).toBe(3);
    expect(redactor.redact(`${one} ${two} ${three} ${four}`)).toBe(
      `${REDACTED} ${two} ${REDACTED} ${REDACTED}`,
    );
  });

  it("removes every value of a large registry (spread over several expressions)", () => {
    const redactor = createSecretRedactor({ maxValues: 400 });
    const values = Array.from({ length: 300 }, (_, i) => `v${String(i).padStart(3, "0")}-${"x".repeat(12)}Q`);
    for (const value of values) redactor.register(value);

    const text = values.join(" ");

    expect(redactor.redact(text)).toBe(values.map(() => REDACTED).join(" "));
  });
});

describe("registeringKeys", () => {
  const provider = {
    id: "p",
    type: "openai",
    headers: { "x-api-key": "header-secret-123", "anthropic-version": "2023-06-01", "x-auth-token": "abc" },
  } as unknown as ProviderConfig;

  it("registers each key it hands out, and the values of the provider's credential headers only", async () => {
    const registered: string[] = [];
    const inner: ApiKeys = { get: async () => HELD, has: () => true, invalidate() {} };
    const keys = registeringKeys(inner, (value) => registered.push(value));

    expect(await keys.get(provider)).toBe(HELD);

    expect(registered).toEqual([HELD, "header-secret-123", "abc"]);
    expect(registered).not.toContain("2023-06-01");
  });

  it("registers nothing for a provider without a key but still its headers", async () => {
    const registered: string[] = [];
    const inner: ApiKeys = { get: async () => undefined, has: () => false, invalidate() {} };
    const keys = registeringKeys(inner, (value) => registered.push(value));

    expect(await keys.get(provider)).toBeUndefined();
    expect(keys.has(provider)).toBe(false);

    expect(registered).toEqual(["header-secret-123", "abc"]);
  });
});

describe("masked echoes without a visible prefix", () => {
  it("redacts DeepSeek's '****3456' form and leaves prose stars alone", () => {
    const r = createSecretRedactor();
    expect(r.redact("Authentication Fails, Your api key: ****3456 is invalid")).not.toContain("3456");
    expect(r.redact("rated ** out of five")).toBe("rated ** out of five");
  });
});
