import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkDeployable } from "../../infra/deployable.ts";
import { validateConfig } from "../../lib/setup/validate.ts";

const secret = (jsonKey: string) => ({ secretId: "llm-gateway/provider-keys", jsonKey });
const check = (document: unknown, allowEnvKeys = false) =>
  checkDeployable(validateConfig(document), { allowEnvKeys });

describe("checkDeployable", () => {
  it("accepts the shipped configurations meant for AWS: the mock default and the AWS example", () => {
    for (const path of ["config/default.json", "config/aws.example.json"]) {
      expect(check(JSON.parse(readFileSync(path, "utf8")))).toEqual({ errors: [], warnings: [] });
    }
  });

  it("refuses a key from env, naming the provider, the variable and the secretId fix", () => {
    const { errors } = check(JSON.parse(readFileSync("config/openai-deepseek.example.json", "utf8")));
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(
      /providers\[0\] "openai" takes its key from the environment variable OPENAI_API_KEY/,
    );
    expect(errors[0]).toContain('"secretId": "llm-gateway/provider-keys", "jsonKey": "openai"');
    expect(errors[0]).toContain("-c allowEnvKeys=true");
    expect(errors[1]).toMatch(/providers\[1\] "deepseek" .* DEEPSEEK_API_KEY/);
  });

  it("takes env keys on trust when told the variables are set on the functions", () => {
    const document = JSON.parse(readFileSync("config/openai-deepseek.example.json", "utf8"));
    expect(check(document, true).errors).toEqual([]);
  });

  it("ignores a disabled provider's key source", () => {
    const document = {
      providers: [
        { id: "a", type: "openai", apiKey: secret("a") },
        { id: "b", type: "openai", apiKey: { env: "B_KEY" }, enabled: false },
      ],
      models: {
        m: {
          targets: [
            { provider: "a", model: "x" },
            { provider: "b", model: "y" },
          ],
        },
      },
    };
    expect(check(document).errors).toEqual([]);
  });

  it("refuses a model whose every target's provider is disabled", () => {
    const document = {
      providers: [
        { id: "a", type: "openai", apiKey: secret("a") },
        { id: "b", type: "openai", apiKey: secret("b"), enabled: false },
        { id: "c", type: "mock", enabled: false },
      ],
      models: {
        ok: { targets: [{ provider: "a", model: "x" }] },
        dead: {
          targets: [
            { provider: "b", model: "y" },
            { provider: "c", model: "z" },
          ],
        },
      },
    };
    expect(check(document).errors).toEqual([
      expect.stringMatching(/^models\.dead: every target's provider is disabled \(b, c\)/),
    ]);
  });

  it("refuses a secretId the stack cannot create as a secret, and a secret read two ways", () => {
    const document = {
      providers: [
        {
          id: "a",
          type: "openai",
          apiKey: { secretId: "arn:aws:secretsmanager:us-east-1:123456789012:secret:keys-AbCdEf" },
        },
        { id: "b", type: "openai", apiKey: { secretId: "shared" } },
        { id: "c", type: "deepseek", apiKey: { secretId: "shared", jsonKey: "c" } },
      ],
      models: { m: { targets: [{ provider: "a", model: "x" }] } },
    };
    const { errors } = check(document);
    expect(errors).toEqual([
      expect.stringMatching(/^providers\[0\] "a": apiKey\.secretId "arn:aws:.*" is not a secret name/),
      expect.stringMatching(/^secret shared is read as a plain key by b and as a JSON object by c/),
    ]);
  });

  it("warns about a provider on this machine's loopback address", () => {
    const document = {
      providers: [{ id: "local", type: "openai", baseUrl: "http://127.0.0.1:9999/v1", apiKey: secret("l") }],
      models: { m: { targets: [{ provider: "local", model: "x" }] } },
    };
    const { errors, warnings } = check(document);
    expect(errors).toEqual([]);
    expect(warnings).toEqual([
      expect.stringContaining('providers[0] "local": baseUrl http://127.0.0.1:9999/v1'),
    ]);
  });
});
