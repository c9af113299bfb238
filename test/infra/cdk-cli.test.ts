import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

describe("npx cdk synth", () => {
  it("synthesizes offline through cdk.json, bundling with the local esbuild, cdk-nag passing", () => {
    const out = mkdtempSync(join(tmpdir(), "cdk-synth-"));
    try {
      const run = spawnSync(
        "npx",
        ["cdk", "synth", "--quiet", "--no-notices", "-o", out, "-c", "config=config/aws.example.json"],
        { encoding: "utf8", env: { ...process.env, CDK_DISABLE_VERSION_CHECK: "true" } },
      );
      expect(run.stderr).not.toMatch(/ERROR|AwsSolutions-/);
      // cdk.json carries the recommended flags for the aws-cdk-lib in the lock file (issue 13).
      expect(run.stderr).not.toMatch(/feature flags are not configured/);
      expect(run.status).toBe(0);
      const template = JSON.parse(readFileSync(join(out, "LlmGateway.template.json"), "utf8"));
      const urls = Object.values(template.Resources as Record<string, { Type: string }>).filter(
        (r) => r.Type === "AWS::Lambda::Url",
      );
      expect(urls).toHaveLength(1);
      const reserved = Object.values(
        template.Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>,
      )
        .filter((r) => r.Type === "AWS::Lambda::Function")
        .map((r) => r.Properties.ReservedConcurrentExecutions);
      expect(reserved.sort()).toEqual([100, undefined]); // the chat function's default cap; none for health
      const assets = JSON.parse(readFileSync(join(out, "LlmGateway.assets.json"), "utf8"));
      const bundled = Object.keys(assets.files ?? {}).filter((hash) =>
        existsSync(join(out, `asset.${hash}`, "index.mjs")),
      );
      expect(bundled).toHaveLength(2);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);

  it("refuses the env-keyed example with one message per provider naming the fix, and no stack trace", () => {
    const run = spawnSync(
      "npx",
      ["cdk", "synth", "--quiet", "--no-notices", "-c", "config=config/openai-deepseek.example.json"],
      { encoding: "utf8", env: { ...process.env, CDK_DISABLE_VERSION_CHECK: "true" } },
    );
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(
      'config/openai-deepseek.example.json: this configuration cannot work on Lambda:\n  - providers[0] "openai"',
    );
    expect(run.stderr).toContain(
      '"apiKey": { "secretId": "llm-gateway/provider-keys", "jsonKey": "deepseek" }',
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  it("refuses a reservedConcurrency that is not a number of executions, saying what is", () => {
    const run = spawnSync(
      "npx",
      ["cdk", "synth", "--quiet", "--no-notices", "-c", "reservedConcurrency=ten"],
      {
        encoding: "utf8",
        env: { ...process.env, CDK_DISABLE_VERSION_CHECK: "true" },
      },
    );
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(
      '-c reservedConcurrency must be a whole number of executions (1 or more), or none (or 0) to reserve none; got "ten"',
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
