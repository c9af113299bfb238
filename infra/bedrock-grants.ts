/**
 * The Bedrock resources the functions' roles may invoke: exactly those the configuration names
 * (issue 11), never `bedrock:*` on `*`.
 *
 * IAM checks every resource a call touches. A plain model id is one foundation model in the
 * provider's region. A cross-region inference profile (`us.anthropic...`) is the profile in the
 * provider's region plus the foundation model in every region the profile may route to
 * (https://docs.aws.amazon.com/bedrock/latest/userguide/geographic-cross-region-inference.html); a
 * global profile (`global.`) routes to any commercial region and is granted, as AWS documents, on the
 * foundation model's region-less ARN
 * (https://docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html). An ARN
 * is granted as it is. `bedrock:CountTokens` (Messages' `count_tokens`, issue 18) is granted apart, on
 * the model each Claude route target counts for (see `BedrockGrants.countTokens`).
 */

import type { ModelRoute, ProviderConfig } from "../lib/config/types.ts";
import { countTokensModel } from "../lib/providers/bedrock-invoke.ts";

/** One model a Bedrock provider is asked for: a route target's, or its health probe's. */
export interface BedrockTarget {
  providerId: string;
  region: string;
  /** A model id, an inference profile id, or an ARN. */
  model: string;
  /** The provider's health probe, which never counts tokens; else a route target, which may. */
  probe?: boolean;
}

/**
 * The regions each geography's system inference profiles route to, as AWS lists them. A superset
 * per geography: a profile for one model may use fewer, and granting a region it never uses costs
 * nothing, while missing one fails the calls Bedrock routes there (AccessDenied at random). Add a
 * region here when AWS adds one to a geography.
 */
export const PROFILE_REGIONS: Readonly<Record<string, readonly string[]>> = {
  us: ["us-east-1", "us-east-2", "us-west-1", "us-west-2"],
  "us-gov": ["us-gov-east-1", "us-gov-west-1"],
  ca: ["ca-central-1", "ca-west-1"],
  eu: [
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
  ],
  apac: [
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
  ],
  jp: ["ap-northeast-1", "ap-northeast-3"],
  au: ["ap-southeast-2", "ap-southeast-4"],
};

export interface BedrockGrants {
  /** Resource ARNs for `bedrock:InvokeModel` and `bedrock:InvokeModelWithResponseStream`, sorted, unique. */
  resources: string[];
  /**
   * Resource ARNs for `bedrock:CountTokens` (Messages' `count_tokens`, issue 18), sorted, unique: the
   * Claude models route targets name, each as the call names it (`countTokensModel`): a profile's
   * foundation model in the provider's region, an ARN as it is. For the chat function only.
   */
  countTokens: string[];
  /** What the stack cannot grant by itself and the operator must know (synth warnings). */
  warnings: string[];
}

/**
 * The resources to grant for `targets`. `partition` and `account` may be CDK tokens (the stack's
 * own); regions and models are literal, from the configuration.
 */
export function bedrockGrants(
  targets: readonly BedrockTarget[],
  scope: { partition: string; account: string },
): BedrockGrants {
  const resources = new Set<string>();
  const countTokens = new Set<string>();
  const warnings: string[] = [];
  const { partition, account } = scope;
  const foundationModel = (region: string, model: string) =>
    `arn:${partition}:bedrock:${region}::foundation-model/${model}`;
  for (const { providerId, region, model, probe } of targets) {
    const counted = probe === true ? undefined : countTokensModel(model);
    if (counted !== undefined)
      countTokens.add(counted.startsWith("arn:") ? counted : foundationModel(region, counted));
    if (model.startsWith("arn:")) {
      resources.add(model);
      if (/:application-inference-profile\//.test(model)) {
        warnings.push(
          `${providerId}: ${model} is an application inference profile; the role also needs the ` +
            "foundation models it routes to, which the configuration does not name: add them to the " +
            "chat and health functions' roles",
        );
      }
      continue;
    }
    const dot = model.indexOf(".");
    const prefix = dot > 0 ? model.slice(0, dot) : "";
    const base = model.slice(dot + 1);
    if (prefix === "global") {
      resources.add(`arn:${partition}:bedrock:${region}:${account}:inference-profile/${model}`);
      resources.add(foundationModel(region, base));
      resources.add(`arn:${partition}:bedrock:::foundation-model/${base}`);
      continue;
    }
    const regions = PROFILE_REGIONS[prefix];
    if (regions !== undefined) {
      resources.add(`arn:${partition}:bedrock:${region}:${account}:inference-profile/${model}`);
      for (const r of new Set([region, ...regions])) resources.add(foundationModel(r, base));
      continue;
    }
    resources.add(foundationModel(region, model));
  }
  return { resources: [...resources].sort(), countTokens: [...countTokens].sort(), warnings };
}

/**
 * Every model the configuration sends to an enabled Bedrock provider: its route targets (embedding
 * models included: an embeddings target is a target) and its health probe's model, chat or
 * embeddings. `regionOf` reads a Bedrock provider's region (its validated options).
 */
export function bedrockTargets(
  config: { providers: readonly ProviderConfig[]; models: readonly ModelRoute[] },
  regionOf: (provider: ProviderConfig) => string | undefined,
): BedrockTarget[] {
  const regions = new Map<string, string>();
  const targets: BedrockTarget[] = [];
  for (const p of config.providers) {
    const region = p.enabled ? regionOf(p) : undefined;
    if (region === undefined) continue;
    regions.set(p.id, region);
    // A chat probe's model, or an embeddings probe's (issue 20: a provider that serves only embeddings).
    if (p.healthProbe.kind !== "models")
      targets.push({ providerId: p.id, region, model: p.healthProbe.model, probe: true });
  }
  for (const route of config.models) {
    for (const t of route.targets) {
      const region = regions.get(t.provider);
      if (region !== undefined) targets.push({ providerId: t.provider, region, model: t.model });
    }
  }
  return targets;
}
