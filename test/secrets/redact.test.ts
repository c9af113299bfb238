import { describe, expect, it } from "vitest";
import type { ProviderConfig } from "../../lib/config/types.ts";
import { jsonLogger } from "../../lib/deps.ts";
import { openAIErrorBody } from "../../lib/dialects/openai-chat/errors.ts";
import { reportOf, UpstreamError } from "../../lib/errors.ts";
import { type ApiKeys, registeringKeys } from "../../lib/providers/keys.ts";
import {
  bodyOf,
  createSecretRedactor,
  MAX_CALLER_KEYS,
  REDACTED,
  redactForCaller,
  redactSecrets,
  registerCallerKey,
  registerSecret,
} from "../../lib/secrets/redact.ts";

const HELD = "Zq8vR2mXk4LpT9wB7nC3dF6hJ1sY5aE0uGiOoPlQ";
/** A provider key of no recognisable shape: only the registry can find it. */
const PROVIDER_KEY = "Pk7wQ2zN9xR4vB1mT8yH5cL3fJ6dS0gA";

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
    [
      "Bedrock AccessDenied (issue 16)",
      "User: arn:aws:sts::123456789012:assumed-role/gw-chat-role/gw-chat-fn is not authorized to perform: bedrock:ApplyGuardrail on resource: arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123: explicit deny",
      "User: [redacted] is not authorized to perform: bedrock:ApplyGuardrail on resource: [redacted]: explicit deny",
    ],
    ["IAM role ARN", "role arn:aws:iam::123456789012:role/Gateway.", "role [redacted]."],
    [
      "ARN in another partition",
      "(arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/x.y-v1:0)",
      "([redacted])",
    ],
    ["account id", "account 123456789012 has no access", "account [redacted] has no access"],
    ["account id in JSON", '{"accountId":"123456789012"}', '{"accountId":"[redacted]"}'],
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
      "request 3f2a9c1e-0b4d-4e8f-9a7b-123456789012 at 1718000000000, id-123456789012, 1234567890123",
      "the arn:aws service prefix; bedrock:InvokeModel",
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

  it("removes every value of a large registry (spread over several expressions)", () => {
    const redactor = createSecretRedactor();
    const values = Array.from({ length: 300 }, (_, i) => `v${String(i).padStart(3, "0")}-${"x".repeat(12)}Q`);
    for (const value of values) redactor.register(value);

    const text = values.join(" ");

    expect(redactor.redact(text)).toBe(values.map(() => REDACTED).join(" "));
  });
});

/** The `i`th 12-character caller-key id, in the id alphabet (lib/callers/key.ts). */
function issuedId(i: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  return [...i.toString(32).padStart(12, "0")].map((digit) => alphabet[Number.parseInt(digit, 32)]).join("");
}

describe("the registry's two sets (issue 16)", () => {
  it("keeps a provider key however many caller keys are verified after it", () => {
    // The process's registry, as the gateway uses it: past 256 caller keys, the old shared LRU
    // evicted the provider key and its echo came back raw.
    registerSecret(PROVIDER_KEY);
    const callers = Array.from({ length: 300 }, (_, i) => `Caller${String(i).padStart(3, "0")}KeyOfAnyShape`);
    for (const key of callers) registerCallerKey(key);

    expect(redactSecrets(`Incorrect API key provided: ${PROVIDER_KEY}`)).toBe(
      "Incorrect API key provided: [redacted]",
    );
    expect(redactSecrets(`${callers[0]} / ${callers[299]}`)).toBe("[redacted] / [redacted]");
  });

  it("bounds the caller keys as an LRU, never touching the provider keys", () => {
    const redactor = createSecretRedactor({ maxCallerKeys: 3 });
    const [one, two, three, four] = ["CallerKeyOne1", "CallerKeyTwo2", "CallerKeyThree3", "CallerKeyFour4"];
    redactor.register(HELD);
    redactor.registerCallerKey(one);
    redactor.registerCallerKey(two);
    redactor.registerCallerKey(three);
    redactor.registerCallerKey(one); // verified again: now the most recent

    redactor.registerCallerKey(four);

    expect(redactor.size).toBe(4);
    expect(redactor.redact(`${HELD} ${one} ${two} ${three} ${four}`)).toBe(
      `${REDACTED} ${REDACTED} ${two} ${REDACTED} ${REDACTED}`,
    );
  });

  it("catches issued caller keys and their bodies by shape, however many are verified", () => {
    const redactor = createSecretRedactor();
    redactor.register(HELD);
    const keys = Array.from(
      { length: MAX_CALLER_KEYS },
      (_, i) => `sk-gw-${issuedId(i)}.${"S3cr3t_-".repeat(5)}${i}`,
    );
    for (const key of keys) redactor.registerCallerKey(key);
    const key = keys[1234] ?? "";

    expect(redactor.size).toBe(MAX_CALLER_KEYS + 1);
    expect(
      redactor.redact(`sent ${key}; JSON-escaped line:\\n${key}; body ${key.slice(6)}; held ${HELD}`),
    ).toBe("sent [redacted]; JSON-escaped line:\\n[redacted]; body [redacted]; held [redacted]");
    // The id alone is what logs name a key by: not a secret.
    expect(redactor.redact(`key ${key.slice(6, 18)} revoked`)).toBe(`key ${key.slice(6, 18)} revoked`);
  });

  it("redacts a body only of a verified issued key, and keeps every other dot", () => {
    const redactor = createSecretRedactor();
    const key = `sk-gw-${issuedId(7)}.${"Q".repeat(43)}`;
    const unknown = `${issuedId(8)}.${"Q".repeat(43)}`;
    redactor.registerCallerKey(key);

    expect(redactor.redact(`a ${key.slice(6)}. b ${unknown}. c x.${"y".repeat(40)} d 12.5`)).toBe(
      `a [redacted]. b ${unknown}. c x.${"y".repeat(40)} d 12.5`,
    );
  });
});

describe("a Bedrock AccessDenied, to the caller and in the log (issue 16)", () => {
  const denied =
    "p (Bedrock us-east-1) AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/gw-chat/fn " +
    "is not authorized to perform: bedrock:ApplyGuardrail on resource: arn:aws:bedrock:us-east-1:123456789012:guardrail/g1 " +
    "(account 123456789012, ref 210987654321)";

  it("the error body names no ARN and no account id", () => {
    const error = new UpstreamError(denied, { status: 502, code: "upstream_error", providerId: "p" });

    expect(openAIErrorBody(reportOf(error)).error.message).toBe(
      "p (Bedrock us-east-1) AccessDeniedException: User: [redacted] is not authorized to perform: " +
        "bedrock:ApplyGuardrail on resource: [redacted] (account [redacted], ref [redacted])",
    );
  });

  it("the JSON log line names no ARN and no account named as one", () => {
    const lines: string[] = [];
    jsonLogger((line) => lines.push(line)).warn({ msg: "attempt failed", error: denied });

    expect(JSON.parse(lines[0] ?? "{}").error).toBe(
      "p (Bedrock us-east-1) AccessDeniedException: User: [redacted] is not authorized to perform: " +
        "bedrock:ApplyGuardrail on resource: [redacted] (account [redacted], ref 210987654321)",
    );
  });
});

describe("account ids (issue 16)", () => {
  it("a bare 12-digit number is redacted in what reaches a caller, and kept in log lines", () => {
    const message = "Account 123456789012 lacks access; request 1234567890123; ref 999999999999.";

    expect(redactForCaller(message)).toBe(
      "Account [redacted] lacks access; request 1234567890123; ref [redacted].",
    );
    expect(redactSecrets(message)).toBe(
      "Account [redacted] lacks access; request 1234567890123; ref 999999999999.",
    );
  });
});

describe("a key's body counts as the key (issue 16)", () => {
  it.each([
    ["OpenAI live", "sk-live-AbCdEfGhIjKlMnO", "AbCdEfGhIjKlMnO"],
    ["OpenAI project", "sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm", "Zx9Yw8Vu7Ts6Rq5Po4Nm"],
    ["Anthropic", "sk-ant-api03-Qw3Er4Ty5Ui6Op7As8", "Qw3Er4Ty5Ui6Op7As8"],
    ["Groq", "gsk_7Hq2Lr9XwVb4Nc8Tz1Km5Pd3", "7Hq2Lr9XwVb4Nc8Tz1Km5Pd3"],
    ["xAI", "xai-Lm4Nb5Vc6Xz7Ka8Js9", "Lm4Nb5Vc6Xz7Ka8Js9"],
  ])("%s: what follows the prefix, echoed alone", (_provider, key, body) => {
    const redactor = createSecretRedactor();
    expect(redactor.redact(`upstream echoed ${body}`)).toBe(`upstream echoed ${body}`);

    redactor.register(key);

    expect(redactor.redact(`upstream echoed ${body}.`)).toBe("upstream echoed [redacted].");
    expect(redactor.redact(`upstream echoed ${key}.`)).toBe("upstream echoed [redacted].");
  });

  it("only from 12 characters: a shorter body is not registered", () => {
    const redactor = createSecretRedactor();
    redactor.register("sk-live-Ab3dEfGh");

    expect(bodyOf("sk-live-Ab3dEfGh")).toBeUndefined();
    expect(redactor.redact("x Ab3dEfGh y")).toBe("x Ab3dEfGh y");
  });

  it("is what follows the whole prefix part", () => {
    expect(bodyOf("sk-ant-api03-Qw3Er4Ty5Ui6Op7As8")).toBe("Qw3Er4Ty5Ui6Op7As8");
    expect(bodyOf("sk_live_51HxYzAbCdEfGhIj")).toBe("51HxYzAbCdEfGhIj");
    expect(bodyOf("github_pat_11ABCDEFG0123456789")).toBe("11ABCDEFG0123456789");
    expect(bodyOf("Zq8vR2mXk4LpT9wB7nC3")).toBeUndefined();
  });
});

describe("linear time for any input (issue 16)", () => {
  /**
   * Each block is hostile to one expression as it was (or to a naive rewrite): the old lookahead
   * rescanned the rest of the text from every `api_key=`, and the mask pass stripped a closing dot
   * with a regex that rescanned a run of dots from each of its characters (measured: 64 KiB took
   * 0.6 s and 4.2 s; quadratic, 4 MiB takes from 40 minutes to hours). Linear, the whole runs well
   * within the test timeout: a super-linear expression fails by hanging. The expected text is
   * written out.
   */
  const BLOCK = 512 * 1024;
  const fill = (unit: string) => unit.repeat(Math.ceil(BLOCK / unit.length)).slice(0, BLOCK);
  const blocks: [hostile: string, redacted: string][] = [
    [fill("api_key=abcdefg."), fill("api_key=abcdefg.")],
    [`api_key=${"a".repeat(BLOCK)}`, `api_key=${"a".repeat(BLOCK)}`],
    [fill("Bearer "), fill("Bearer ")],
    [`Authorization: Bearer ${"x".repeat(BLOCK)}`, "Authorization: Bearer [redacted]"],
    [fill("sk-"), REDACTED],
    [fill("sk-ab "), fill("sk-ab ")],
    [`a${".".repeat(BLOCK)}b`, `a${".".repeat(BLOCK)}b`],
    ["*".repeat(BLOCK), "*".repeat(BLOCK)],
    [fill("a-"), fill("a-")],
    [fill("arn:aws:"), fill("arn:aws:")],
    [fill("&key=x"), fill("&key=x")],
    [fill(`abcdefghijkl.${"x".repeat(40)}.`), fill(`abcdefghijkl.${"x".repeat(40)}.`)],
    [fill("account "), fill("account ")],
  ];

  it("redacts 4 MiB of hostile text, correctly", () => {
    const redactor = createSecretRedactor();
    redactor.register(HELD);
    redactor.register("sk-live-AbCdEfGhIjKlMnO"); // the body expression is on
    redactor.registerCallerKey(`sk-gw-${issuedId(1)}.${"S".repeat(43)}`); // and its anchor
    const hostile = blocks.map(([text]) => text).join(`\n${HELD}\n`);

    const out = redactor.redact(hostile);

    expect(hostile.length).toBeGreaterThan(4 * 1024 * 1024);
    expect(out).toBe(blocks.map(([, redacted]) => redacted).join("\n[redacted]\n"));
  });

  it("redacts bare account ids in 1 MiB of digits for a caller, correctly", () => {
    const ids = fill("123456789012 "); // 40,329 ids, then 11 digits
    const run = "1".repeat(BLOCK);

    expect(redactForCaller(`${ids}\n${run}`)).toBe(`${"[redacted] ".repeat(40_329)}12345678901\n${run}`);
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
