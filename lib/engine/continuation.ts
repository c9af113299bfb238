import { GatewayError, streamInterrupted } from "../errors.ts";
import type { GenerationInput } from "../providers/generation.ts";
import { toUpstreamError } from "../retry/classify.ts";
import type { RelayState } from "./forward.ts";
import { type OpenedStream, openStream } from "./open.ts";
import { type Candidate, cooldownOf, name, type RequestRun, recordFailure } from "./run.ts";

/**
 * Finds a candidate to continue a cut answer: one declared able to take an assistant prefill gets
 * the conversation plus the partial answer and streams only the continuation; otherwise, if allowed,
 * one restarts the answer and is kept only if it begins with exactly the text already sent. When the
 * only usable targets are rate limited for a moment (within `maxRetryAfterMs` and the deadline), it
 * waits for the first of them rather than cut the answer.
 */
export async function resume(
  run: RequestRun,
  candidates: Candidate[],
  state: RelayState,
): Promise<{ opened: OpenedStream; skipPrefix: string | undefined } | undefined> {
  const { deps, call } = run;
  const usable = candidates.filter(
    (c) => c.provider.chat.resume === "prefill" || run.context.config.resumeByRestart,
  );
  const limited: Array<{ candidate: Candidate; until: number }> = [];
  for (const candidate of usable) {
    if (run.signal.aborted) return undefined;
    const cooldown = cooldownOf(run, candidate);
    if (cooldown?.reason === "rate_limited") limited.push({ candidate, until: cooldown.until });
    if (cooldown) continue;
    const opened = await continueOn(run, candidate, state);
    if (opened !== undefined || call.signal.aborted) return opened;
  }
  if (limited.length === 0 || run.signal.aborted) return undefined;
  const soonest = limited.reduce((x, y) => (y.until < x.until ? y : x));
  const wait = Math.max(0, soonest.until - deps.now());
  if (wait > soonest.candidate.provider.config.retry.maxRetryAfterMs || deps.now() + wait >= call.deadline) {
    return undefined;
  }
  try {
    await deps.sleep(wait, run.signal);
  } catch {
    return undefined; // the caller left or the deadline passed
  }
  return continueOn(run, soonest.candidate, state);
}

/** One continuation attempt on one candidate; a failure is recorded and gives undefined. */
async function continueOn(
  run: RequestRun,
  candidate: Candidate,
  state: RelayState,
): Promise<{ opened: OpenedStream; skipPrefix: string | undefined } | undefined> {
  const { deps, call } = run;
  // The target's provider knows how it continues a partial answer (DeepSeek's prefix flag, a
  // trailing assistant message for Claude); the engine only hands it the text.
  const prefill = candidate.provider.chat.resume === "prefill";
  const input: GenerationInput = prefill ? { ...call.input, prefill: state.text } : call.input;
  const started = deps.now();
  try {
    const opened = await openStream(run, candidate, input);
    run.attempts.push({ ...name(candidate), outcome: "ok", ms: deps.now() - started });
    deps.logger.info({
      msg: prefill ? "continuing cut stream" : "restarting cut stream",
      requestId: call.requestId,
      provider: candidate.target.provider,
    });
    if (prefill) {
      // The continuation's role-only opening is noise to a caller already mid-answer.
      opened.buffered = opened.buffered.filter((upstream) => upstream.events.length > 0);
    }
    return { opened, skipPrefix: prefill || state.text === "" ? undefined : state.text };
  } catch (error) {
    if (call.signal.aborted) return undefined;
    const e = toUpstreamError(candidate.provider.id, error);
    if (e instanceof GatewayError) recordFailure(run, candidate, e, deps.now() - started);
    return undefined;
  }
}

/** The error a caller gets for a cut stream: it names the original failure, not a continuation's. */
export function interrupted(original: GatewayError, state: RelayState): GatewayError {
  return streamInterrupted(state.sentChars, original);
}
