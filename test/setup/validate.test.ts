import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS } from "../../lib/config/defaults.ts";
import { ConfigError } from "../../lib/config/fields.ts";
import { parseConfig, validateConfig } from "../../lib/setup/validate.ts";

const minimal = {
  providers: [{ id: "openai", type: "openai", apiKey: { env: "OPENAI_API_KEY" } }],
  models: { "gpt-4o-mini": { targets: [{ provider: "openai", model: "gpt-4o-mini" }] } },
};

function errorOf(document: unknown): ConfigError {
  try {
    validateConfig(document);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("validateConfig", () => {
  it("fills in every default", () => {
    const config = validateConfig(minimal);
    const provider = config.providers[0];
    expect(provider).toMatchObject({
      baseUrl: "https://api.openai.com/v1",
      weight: 1,
      enabled: true,
      assistantPrefill: false,
      timeouts: DEFAULT_TIMEOUTS,
      retry: DEFAULT_RETRY,
    });
    expect(config.models).toEqual([
      {
        name: "gpt-4o-mini",
        strategy: "HEALTH_FIRST",
        targets: [{ provider: "openai", model: "gpt-4o-mini" }],
      },
    ]);
    expect(config.resumeByRestart).toBe(true);
  });

  it("gives DeepSeek its base URL and its /beta prefix-completion URL", () => {
    const config = validateConfig({
      providers: [{ id: "ds", type: "deepseek", apiKey: { secretId: "gateway/deepseek" } }],
      models: { chat: { targets: [{ provider: "ds", model: "deepseek-chat" }] } },
    });
    expect(config.providers[0]?.baseUrl).toBe("https://api.deepseek.com");
    expect(config.providers[0]?.prefillBaseUrl).toBe("https://api.deepseek.com/beta");
    expect(config.providers[0]?.apiKey).toEqual({ secretId: "gateway/deepseek" });
  });

  it("merges provider timeouts over the defaults section", () => {
    const config = validateConfig({
      ...minimal,
      defaults: { timeouts: { firstTokenMs: 5000 } },
      providers: [{ ...minimal.providers[0], timeouts: { idleMs: 7000 } }],
    });
    expect(config.providers[0]?.timeouts).toEqual({ ...DEFAULT_TIMEOUTS, firstTokenMs: 5000, idleMs: 7000 });
  });

  it.each([
    [{ models: minimal.models }, "providers"],
    [{ ...minimal, providers: [{ id: "x", type: "vertex", apiKey: { env: "K" } }] }, "providers[0].type"],
    [{ ...minimal, providers: [{ id: "openai", type: "openai" }] }, "providers[0].apiKey"],
    [
      { ...minimal, providers: [{ id: "openai", type: "openai", apiKey: { file: "k" } }] },
      "providers[0].apiKey",
    ],
    [{ ...minimal, providers: [{ ...minimal.providers[0], baseUrl: "ftp://x" }] }, "providers[0].baseUrl"],
    [{ ...minimal, providers: [{ ...minimal.providers[0], weight: -1 }] }, "providers[0].weight"],
    [
      { ...minimal, providers: [{ ...minimal.providers[0], timeouts: { idleMs: "5s" } }] },
      "providers[0].timeouts.idleMs",
    ],
    [{ ...minimal, providers: [minimal.providers[0], minimal.providers[0]] }, "providers[1].id"],
    [{ ...minimal, models: {} }, "models"],
    [{ ...minimal, models: { m: { targets: [] } } }, "models.m.targets"],
    [
      { ...minimal, models: { m: { targets: [{ provider: "nobody", model: "x" }] } } },
      "models.m.targets[0].provider",
    ],
    [{ ...minimal, defaults: { retry: { maxAttempts: 0 } } }, "defaults.retry.maxAttempts"],
    [{ ...minimal, defaults: { retry: { baseDelayMs: 500, maxDelayMs: 100 } } }, "defaults.retry.maxDelayMs"],
  ])("names the field in error %#", (document, field) => {
    const error = errorOf(document);
    expect(error.field).toBe(field);
    expect(error.message.startsWith(`${field}: `)).toBe(true);
  });

  it("reports a JSON syntax error against the source", () => {
    expect(() => parseConfig("{", "my.json")).toThrow(/^my\.json: is not valid JSON/);
  });

  it("accepts the shipped default and example configurations", () => {
    for (const file of ["config/default.json", "config/openai-deepseek.example.json"]) {
      const config = parseConfig(readFileSync(file, "utf8"), file);
      expect(config.models.length).toBeGreaterThan(0);
    }
  });
});

describe("embedding targets and probes (issue 20)", () => {
  const withTarget = (extra: Record<string, unknown>) => ({
    ...minimal,
    models: { vectors: { targets: [{ provider: "openai", model: "text-embedding-3-small", ...extra }] } },
  });

  it("keeps a target's declared space and dimensions", () => {
    const config = validateConfig(withTarget({ space: "openai-small", dimensions: 512 }));
    expect(config.models[0]?.targets[0]).toEqual({
      provider: "openai",
      model: "text-embedding-3-small",
      space: "openai-small",
      dimensions: 512,
    });
  });

  it("refuses a space or dimensions that are not one, naming the field", () => {
    expect(errorOf(withTarget({ space: "two words" })).message).toMatch(
      /^models\.vectors\.targets\[0\]\.space: /,
    );
    expect(errorOf(withTarget({ dimensions: 1.5 })).message).toMatch(
      /^models\.vectors\.targets\[0\]\.dimensions: must be a whole number/,
    );
    expect(errorOf(withTarget({ dimensions: 0 })).message).toMatch(
      /^models\.vectors\.targets\[0\]\.dimensions: /,
    );
  });

  it("takes an embeddings probe on OpenAI-compatible and Bedrock providers, with its model", () => {
    const config = validateConfig({
      providers: [
        {
          id: "openai",
          type: "openai",
          apiKey: { env: "K" },
          healthCheck: { kind: "embeddings", model: "text-embedding-3-small" },
        },
        {
          id: "b",
          type: "bedrock",
          region: "us-east-1",
          healthCheck: { kind: "embeddings", model: "amazon.titan-embed-text-v2:0" },
        },
      ],
      models: { vectors: { targets: [{ provider: "b", model: "amazon.titan-embed-text-v2:0" }] } },
    });
    expect(config.providers.map((p) => p.healthProbe)).toEqual([
      { kind: "embeddings", model: "text-embedding-3-small" },
      { kind: "embeddings", model: "amazon.titan-embed-text-v2:0" },
    ]);
    expect(
      errorOf({
        ...minimal,
        providers: [
          { id: "openai", type: "openai", apiKey: { env: "K" }, healthCheck: { kind: "embeddings" } },
        ],
      }).message,
    ).toMatch(/^providers\[0\]\.healthCheck\.model: /);
  });
});
