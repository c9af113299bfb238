import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, number, optional, string } from "../../lib/config/fields.ts";
import { setTimer, silentLogger } from "../../lib/deps.ts";
import { chatInput } from "../../lib/dialects/openai-chat/input.ts";
import { createHttpClient } from "../../lib/http/client.ts";
import { deepseek } from "../../lib/providers/deepseek.ts";
import { defineProvider, type ProviderContext } from "../../lib/providers/definition.ts";
import { createProviderFactory } from "../../lib/providers/factory.ts";
import type { WholeGeneration } from "../../lib/providers/generation.ts";
import { envKeys } from "../../lib/providers/keys.ts";
import { mock } from "../../lib/providers/mock.ts";
import { openai } from "../../lib/providers/openai.ts";
import { createProviderRegistry, needsApiKey, providerRegistry } from "../../lib/providers/registry.ts";
import type { Provider } from "../../lib/providers/types.ts";
import { validateConfig } from "../../lib/setup/validate.ts";

const http = createHttpClient();
afterAll(() => http.close());
const deps = {
  now: () => 1_000,
  sleep: async () => {},
  random: () => 0.5,
  newId: () => "id",
  setTimer,
  logger: silentLogger,
};
const context: ProviderContext = { http, keys: envKeys({}), deps };
const TIMEOUTS = { connectMs: 100, headersMs: 100, firstTokenMs: 100, idleMs: 100, responseMs: 100 };

/** A document with these providers and one route through the first. */
function documentWith(...providers: Record<string, unknown>[]) {
  return {
    providers,
    models: { m: { targets: [{ provider: String(providers[0]?.id), model: "x" }] } },
  };
}

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

/** The calls of a provider, without its identity. */
type ProviderCalls = Pick<Provider, "chat" | "healthCheck">;

/**
 * A keyless provider type with a field of its own (`region`), as Amazon Bedrock is: it shows the
 * definition shape holds such a type. `build` counts how often the factory builds it.
 */
function keylessType(build: () => ProviderCalls) {
  return defineProvider<{ region: string; maxRetries: number }>({
    type: "keyless",
    apiKey: "none",
    baseUrl: { default: "https://keyless.invalid", configurable: false },
    prefillBaseUrl: undefined,
    capabilities: { assistantPrefill: true },
    healthProbe: { default: { kind: "chat", model: "probe-model" }, kinds: ["chat"] },
    options: (provider, field) => ({
      region: string(provider.region, `${field}.region`),
      maxRetries: optional(provider, "maxRetries", field, number(0, 5), 1),
    }),
    create: (config) => ({ id: config.id, config, ...build() }),
  });
}

const answer: WholeGeneration = {
  result: () => ({ model: "x", choices: [] }),
  usage: undefined,
  outputChars: 0,
};
const loadedCalls = (): ProviderCalls => ({
  chat: {
    complete: async () => answer,
    stream: async () => ({ events: (async function* () {})(), cancel() {} }),
    resume: "prefill",
  },
  healthCheck: async () => ({ ok: true, status: 200, latencyMs: 5, ttftMs: 5, error: undefined }),
});

describe("the gateway's provider registry", () => {
  it("holds one definition per type, in order", () => {
    expect(providerRegistry.types).toEqual(["openai", "deepseek", "mock", "bedrock", "anthropic"]);
    expect(providerRegistry.get("openai")).toBe(openai);
    expect(providerRegistry.get("deepseek")).toBe(deepseek);
    expect(providerRegistry.get("mock")).toBe(mock);
  });

  it("names its types when asked for one it does not have", () => {
    expect(providerRegistry.find("vertex")).toBeUndefined();
    expect(() => providerRegistry.get("vertex")).toThrow(
      'unknown provider type "vertex": the types are openai, deepseek, mock, bedrock, anthropic',
    );
  });

  it("refuses a type registered twice", () => {
    expect(() => createProviderRegistry([openai, mock, openai])).toThrow(/"openai" is registered twice/);
  });

  it("says which providers need a key: the OpenAI-compatible types, not the mock", () => {
    const [open, seek, fake] = validateConfig(
      documentWith(
        { id: "o", type: "openai", apiKey: { env: "K" } },
        { id: "d", type: "deepseek", apiKey: { env: "K" } },
        { id: "m", type: "mock", apiKey: { env: "K" } },
      ),
    ).providers;
    expect([open, seek, fake].map((p) => p && needsApiKey(p))).toEqual([true, true, false]);
  });
});

describe("each definition validates its own fields", () => {
  it.each([
    [{ id: "o", type: "openai" }, "providers[0].apiKey", /is required for a provider of type openai/],
    [{ id: "d", type: "deepseek" }, "providers[0].apiKey", /is required for a provider of type deepseek/],
    [
      { id: "d", type: "deepseek", apiKey: { env: "K" }, prefillBaseUrl: "beta" },
      "providers[0].prefillBaseUrl",
      /is not a URL/,
    ],
    [
      { id: "o", type: "openai", apiKey: { env: "K" }, healthCheck: { kind: "ping" } },
      "providers[0].healthCheck.kind",
      /must be "models" or "chat"/,
    ],
    [
      { id: "o", type: "openai", apiKey: { env: "K" }, healthCheck: { kind: "chat" } },
      "providers[0].healthCheck.model",
      /non-empty string/,
    ],
    [{ id: "m", type: "mock", mock: "fast" }, "providers[0].mock", /must be an object/],
    [{ id: "m", type: "mock", mock: { script: {} } }, "providers[0].mock.script", /must be an array/],
    [
      { id: "m", type: "mock", mock: { script: ["ok", { status: 200 }] } },
      "providers[0].mock.script[1].status",
      /from 400 to 599/,
    ],
    [
      { id: "m", type: "mock", mock: { script: [{ hang: "yes" }] } },
      "providers[0].mock.script[0].hang",
      /true or false/,
    ],
    [
      { id: "m", type: "mock", mock: { firstTokenDelayMs: -1 } },
      "providers[0].mock.firstTokenDelayMs",
      /from 0 to 600000/,
    ],
    [{ id: "m", type: "mock", mock: { tokenDelayMs: "20" } }, "providers[0].mock.tokenDelayMs", /number/],
    [{ id: "m", type: "mock", mock: { healthy: 1 } }, "providers[0].mock.healthy", /true or false/],
    [{ id: "m", type: "mock", mock: { reply: "" } }, "providers[0].mock.reply", /non-empty string/],
  ])("rejects %j at %s", (provider, field, problem) => {
    const error = configError(() => validateConfig(documentWith(provider)));
    expect(error.field).toBe(field);
    expect(error.message.startsWith(`${field}: `)).toBe(true);
    expect(error.message).toMatch(problem);
  });

  it("fills in each type's defaults", () => {
    const [open, seek, fake] = validateConfig(
      documentWith(
        { id: "o", type: "openai", apiKey: { env: "K" } },
        { id: "d", type: "deepseek", apiKey: { env: "K" }, baseUrl: "http://127.0.0.1:9/v1/" },
        { id: "m", type: "mock", baseUrl: "https://ignored.example", mock: { tokenDelayMs: 0 } },
      ),
    ).providers;
    expect(open).toMatchObject({
      baseUrl: "https://api.openai.com/v1",
      prefillBaseUrl: undefined,
      assistantPrefill: false,
      healthProbe: { kind: "models" },
      options: { responsesApi: false },
    });
    // A configured base URL replaces the default, trailing slash dropped; the /beta default stays.
    expect(seek).toMatchObject({
      baseUrl: "http://127.0.0.1:9/v1",
      prefillBaseUrl: "https://api.deepseek.com/beta",
      assistantPrefill: false,
    });
    // The mock has no URL: a configured one is ignored, as it always was. No key is needed.
    expect(fake).toMatchObject({
      baseUrl: "mock://local",
      apiKey: undefined,
      healthProbe: { kind: "models" },
    });
    expect(fake?.options).toEqual({
      reply: "This is the mock provider answering: {input}",
      firstTokenDelayMs: 50,
      tokenDelayMs: 0,
      script: [],
      healthy: true,
    });
  });

  it("reads the mock's own section through its definition alone", () => {
    const provider = {
      id: "m",
      type: "mock",
      mock: { script: ["ok", { status: 429, retryAfterSeconds: 2 }] },
    };
    expect(mock.options(provider, "somewhere")).toMatchObject({
      script: [{}, { status: 429, retryAfterSeconds: 2 }],
    });
    expect(configError(() => mock.options({ mock: { script: [7] } }, "somewhere")).field).toBe(
      "somewhere.mock.script[0]",
    );
  });
});

describe("a registry drives validation and the factory", () => {
  it("lists its own types when a provider names another", () => {
    const registry = createProviderRegistry([keylessType(() => loadedCalls()), mock]);
    const error = configError(() =>
      validateConfig(documentWith({ id: "o", type: "openai", apiKey: { env: "K" } }), registry),
    );
    expect(error.field).toBe("providers[0].type");
    expect(error.message).toBe('providers[0].type: must be one of keyless, mock, got "openai"');
    expect(configError(() => validateConfig(documentWith({ id: "x", type: "vertex" }))).message).toBe(
      'providers[0].type: must be one of openai, deepseek, mock, bedrock, anthropic, got "vertex"',
    );
  });

  it("validates a keyless type with fields of its own, from its definition", () => {
    const registry = createProviderRegistry([keylessType(() => loadedCalls())]);
    const [provider] = validateConfig(
      documentWith({ id: "k", type: "keyless", region: "eu-west-1", baseUrl: "https://elsewhere.example" }),
      registry,
    ).providers;
    expect(provider).toMatchObject({
      type: "keyless",
      apiKey: undefined,
      baseUrl: "https://keyless.invalid",
      assistantPrefill: true,
      healthProbe: { kind: "chat", model: "probe-model" },
      options: { region: "eu-west-1", maxRetries: 1 },
    });

    const errors = [
      documentWith({ id: "k", type: "keyless" }),
      documentWith({ id: "k", type: "keyless", region: "r", maxRetries: 9 }),
      documentWith({ id: "k", type: "keyless", region: "r", apiKey: { env: "K" } }),
      documentWith({ id: "k", type: "keyless", region: "r", healthCheck: { kind: "models" } }),
    ].map((document) => configError(() => validateConfig(document, registry)).message);
    expect(errors).toEqual([
      "providers[0].region: must be a non-empty string",
      "providers[0].maxRetries: must be a number from 0 to 5",
      "providers[0].apiKey: is not used by a provider of type keyless; remove it",
      'providers[0].healthCheck.kind: must be "chat"',
    ]);
  });

  it("builds providers with their definition once, a keyless one configured without a key", async () => {
    let builds = 0;
    const registry = createProviderRegistry([
      keylessType(() => {
        builds++;
        return loadedCalls();
      }),
      mock,
    ]);
    const config = validateConfig(
      documentWith({ id: "k", type: "keyless", region: "r" }, { id: "m", type: "mock" }),
      registry,
    );
    const factory = createProviderFactory(config, context, registry);

    expect(factory.isProviderConfigured("k")).toBe(true);
    expect(builds).toBe(0); // nothing is built before it is asked for
    const provider = factory.getProvider("k");
    expect(provider?.config.options).toEqual({ region: "r", maxRetries: 1 });
    const request = chatInput({ model: "x", messages: [{ role: "user", content: "hi" }] });
    const call = { model: "x", signal: new AbortController().signal, timeouts: TIMEOUTS };
    expect(await provider?.chat.complete(request, call)).toBe(answer);
    expect(factory.getProvider("k")).toBe(provider);
    expect(builds).toBe(1); // built once, shared by every later call
    expect(factory.getProvider("m")?.config.type).toBe("mock");
  });

  it("refuses to build a type from another type's configuration, and a type it does not have", () => {
    const config = validateConfig(documentWith({ id: "o", type: "openai", apiKey: { env: "K" } }));
    const [openaiConfig] = config.providers;
    if (openaiConfig === undefined) throw new Error("no provider");
    const factory = createProviderFactory(config, context);
    expect(factory.createProvider("openai", openaiConfig).id).toBe("o");
    // The mock's options would be missing: its constructor must not see an OpenAI configuration.
    expect(() => factory.createProvider("mock", openaiConfig)).toThrow(
      /type "mock" cannot be built from the configuration of "o", of type "openai"/,
    );
    expect(() => factory.createProvider("vertex", openaiConfig)).toThrow(
      /the types are openai, deepseek, mock/,
    );
  });

  it("keeps a type's fields to that type's definition", () => {
    // The mock's section is the mock's: an OpenAI provider neither reads nor keeps it.
    const [provider] = validateConfig(
      documentWith({ id: "o", type: "openai", apiKey: { env: "K" }, mock: { script: "nonsense" } }),
    ).providers;
    expect(provider?.options).toEqual({ responsesApi: false });
    expect(provider).not.toHaveProperty("mock");
  });
});
