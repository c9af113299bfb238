import type { GatewayConfig, ProviderConfig } from "../lib/config/types.ts";

/**
 * A configuration that validates but cannot work once deployed to Lambda. Thrown at synth so the
 * mistake costs a second, not a deploy that answers every request with a 503 (issue 13).
 */
export class UndeployableConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`this configuration cannot work on Lambda:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "UndeployableConfigError";
    this.problems = problems;
  }
}

export interface DeployCheckOptions {
  /**
   * The user sets the providers' environment variables on the functions themselves (`-c
   * allowEnvKeys=true`): `{ "env": ... }` keys are then taken on trust.
   */
  allowEnvKeys?: boolean;
}

/** What synth can know about a configuration on Lambda: errors refuse the synth, warnings are printed. */
export interface DeployCheck {
  errors: string[];
  warnings: string[];
}

/**
 * Secrets Manager's rule for a secret name. The stack creates each `secretId` as a secret of that
 * name, so an ARN (or anything else) would only fail later, in CloudFormation.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html
 */
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|0\.0\.0\.0)$/i;

/** Checks a validated configuration against what the Lambda functions will actually have. */
export function checkDeployable(config: GatewayConfig, options: DeployCheckOptions = {}): DeployCheck {
  const errors: string[] = [];
  const warnings: string[] = [];
  const field = (p: ProviderConfig) => `providers[${config.providers.indexOf(p)}] "${p.id}"`;

  // A key from env is reported once, on its provider: fixing it fixes the routes through it.
  const disabled = new Set(config.providers.filter((p) => !p.enabled).map((p) => p.id));

  for (const p of config.providers) {
    const key = p.apiKey;
    if (!p.enabled || key === undefined) continue;
    if ("env" in key) {
      if (!options.allowEnvKeys)
        errors.push(
          `${field(p)} takes its key from the environment variable ${key.env}, which the Lambda functions ` +
            "do not have: every request routed to it would fail with 503. Keep the key in Secrets Manager: " +
            `"apiKey": { "secretId": "llm-gateway/provider-keys", "jsonKey": "${p.id}" } (as ` +
            "config/aws.example.json does); the stack creates the secret and prints the command that fills " +
            `it. If you set ${key.env} on the functions yourself, synth with -c allowEnvKeys=true.`,
        );
    } else if (!SECRET_NAME.test(key.secretId)) {
      errors.push(
        `${field(p)}: apiKey.secretId ${JSON.stringify(key.secretId)} is not a secret name; the stack ` +
          "creates a secret of that name, so give a name such as llm-gateway/provider-keys, not an ARN.",
      );
    }
    let host = "";
    try {
      host = new URL(p.baseUrl).hostname;
    } catch {
      // Mock providers have a mock:// URL; nothing to reach.
    }
    if (LOOPBACK.test(host)) {
      warnings.push(
        `${field(p)}: baseUrl ${p.baseUrl} is this machine's loopback address; a Lambda function ` +
          "cannot reach it.",
      );
    }
  }

  // One secret read two ways cannot hold both: the whole string as a key, and a JSON object.
  const secretUse = new Map<string, { whole: string[]; json: string[] }>();
  for (const p of config.providers) {
    if (!p.enabled || p.apiKey === undefined || !("secretId" in p.apiKey)) continue;
    const use = secretUse.get(p.apiKey.secretId) ?? { whole: [], json: [] };
    (p.apiKey.jsonKey === undefined ? use.whole : use.json).push(p.id);
    secretUse.set(p.apiKey.secretId, use);
  }
  for (const [secretId, use] of secretUse) {
    if (use.whole.length > 0 && use.json.length > 0) {
      errors.push(
        `secret ${secretId} is read as a plain key by ${use.whole.join(", ")} and as a JSON object ` +
          `by ${use.json.join(", ")}: it cannot be both. Give every provider sharing it a jsonKey.`,
      );
    }
  }

  for (const route of config.models) {
    if (route.targets.every((t) => disabled.has(t.provider))) {
      errors.push(
        `models.${route.name}: every target's provider is disabled ` +
          `(${[...new Set(route.targets.map((t) => t.provider))].join(", ")}); every request for it ` +
          "would fail with 503. Enable one, or remove the model.",
      );
    }
  }
  return { errors, warnings };
}
