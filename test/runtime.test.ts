import { afterEach, describe, expect, it } from "vitest";
import { ConfigError } from "../lib/config/fields.ts";
import {
  createRuntime,
  type GatewayRuntime,
  getHealthChecker,
  getSharedRuntime,
  loadConfigFromEnv,
  resetSharedRuntime,
} from "../lib/runtime.ts";

afterEach(() => resetSharedRuntime());

describe("the process's shared runtime", () => {
  it("is created once, on first use, and shared by every accessor", () => {
    const runtime = getSharedRuntime();
    expect(getSharedRuntime()).toBe(runtime);
    expect(getHealthChecker()).toBe(runtime.healthChecker);
  });

  it("is built by the creator of its first use (the Lambda's), and only once", () => {
    let built = 0;
    const create = (): GatewayRuntime => {
      built++;
      return createRuntime(loadConfigFromEnv({ GATEWAY_CONFIG: "config/openai-deepseek.example.json" }));
    };
    const checker = getHealthChecker(create);
    const runtime = getSharedRuntime(create);
    expect(runtime.config.providers.map((p) => p.id)).toEqual(["openai", "deepseek"]);
    expect(checker).toBe(runtime.healthChecker);
    expect(getHealthChecker()).toBe(checker);
    expect(built).toBe(1);
  });

  it("is built afresh after a reset", () => {
    const first = getSharedRuntime();
    resetSharedRuntime();
    expect(getSharedRuntime()).not.toBe(first);
  });
});

describe("loadConfigFromEnv", () => {
  it("prefers the document in GATEWAY_CONFIG_JSON, then the file in GATEWAY_CONFIG", () => {
    const inline = JSON.stringify({
      providers: [{ id: "x", type: "mock" }],
      models: { only: { targets: [{ provider: "x", model: "m" }] } },
    });
    expect(
      loadConfigFromEnv({ GATEWAY_CONFIG_JSON: inline, GATEWAY_CONFIG: "config/default.json" }).models.map(
        (m) => m.name,
      ),
    ).toEqual(["only"]);
    expect(
      loadConfigFromEnv({ GATEWAY_CONFIG: "config/openai-deepseek.example.json" }).providers.map((p) => p.id),
    ).toEqual(["openai", "deepseek"]);
  });

  it("names the file it cannot read, and the field it cannot use", () => {
    expect(() => loadConfigFromEnv({ GATEWAY_CONFIG: "nope.json" })).toThrow(
      /cannot read configuration file nope\.json/,
    );
    expect(() => loadConfigFromEnv({ GATEWAY_CONFIG_JSON: '{"providers":[]}' })).toThrow(ConfigError);
  });
});
