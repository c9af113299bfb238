import { capTimeouts } from "../config/timeouts.ts";
import type { ModelRoute } from "../config/types.ts";
import { InternalError } from "../errors.ts";
import type { ProviderFactory } from "../providers/factory.ts";
import type { ChatCapability } from "../providers/generation.ts";
import { type Operation, withAttempts } from "./serve.ts";

/**
 * A prompt's input tokens as a target itself counts them (issue 18, Messages' `count_tokens`): the
 * Anthropic API's `count_tokens`, Bedrock's `CountTokens`. It runs over the engine like a whole
 * answer, so the route's order, cooldowns, retries and failover apply; only the targets whose provider
 * has a count are planned. A Bedrock model other than Claude rejects with `count_tokens_unsupported`,
 * the gateway's fault (`retry/blame.ts`): the request fails over and the target is not benched; the
 * plan leaves such targets out up front (`countsTokensFor`), so a route of them estimates without a
 * failed request in the log and the error metrics.
 * Nothing is metered: counting is free upstream, and no attempt is started on the usage tally.
 */
export const tokenCount: Operation<number> = {
  continues: false,
  plan: (candidates) => candidates.filter((c) => counts(c.provider.chat, c.target.model)),
  attempt: (run, candidate, maxAttempts) =>
    withAttempts(run, candidate, maxAttempts, () => {
      const chat = candidate.provider.chat;
      // The plan holds only providers that count.
      if (chat.countTokens === undefined)
        throw new InternalError(new Error(`${candidate.target.provider} cannot count tokens`));
      return chat.countTokens(run.call.input, {
        model: candidate.target.model,
        signal: run.signal,
        timeouts: capTimeouts(candidate.provider.config.timeouts, run.call.deadline - run.deps.now()),
      });
    }),
};

/**
 * Whether some target of `route` is of a configured provider with a count of its own. Else the
 * endpoint estimates without asking the engine (no request to plan, no failure to log).
 */
export function mayCountTokens(factory: ProviderFactory, route: ModelRoute): boolean {
  return route.targets.some((t) => {
    if (!factory.isProviderConfigured(t.provider)) return false;
    const chat = factory.getProvider(t.provider)?.chat;
    return chat !== undefined && counts(chat, t.model);
  });
}

/** Whether a provider's chat capability has a count of its own for `model`. */
function counts(chat: ChatCapability, model: string): boolean {
  return chat.countTokens !== undefined && (chat.countsTokensFor?.(model) ?? true);
}
