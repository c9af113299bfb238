import { describe, expect, it } from "vitest";
import { type Deps, silentLogger } from "../../lib/deps.ts";
import { GatewayError } from "../../lib/errors.ts";
import { boundedHealthCheck, type HealthProbe } from "../../lib/providers/base.ts";
import { validateConfig } from "../../lib/setup/validate.ts";
import { createFakeClock } from "../support/fake-clock.ts";

/**
 * The health-check wrapper every provider's `healthCheck` goes through (Bedrock, OpenAI-compatible):
 * a deadline, the caller's abort, and a failure turned into a result instead of a throw.
 */
const config = (() => {
  const provider = validateConfig({
    providers: [{ id: "p", type: "mock" }],
    models: { m: { targets: [{ provider: "p", model: "x" }] } },
  }).providers[0];
  if (!provider) throw new Error("no provider");
  return provider;
})();

function setup() {
  const clock = createFakeClock();
  const deps: Deps = {
    now: clock.now,
    sleep: clock.sleep,
    setTimer: clock.setTimer,
    random: () => 0.5,
    newId: () => "id",
    logger: silentLogger,
  };
  return { clock, deps };
}

/** A probe that waits for its signal, then throws what an aborted call throws. */
const hangs = ({ signal }: HealthProbe) =>
  new Promise<never>((_, reject) => {
    signal.addEventListener("abort", () => reject(new Error("The operation was aborted")), { once: true });
  });

describe("boundedHealthCheck", () => {
  it("aborts a probe at the deadline and says there was no answer in time", async () => {
    const { clock, deps } = setup();
    const result = boundedHealthCheck(config, deps, { timeoutMs: 500 }, (e) => e as Error, hangs);
    await clock.advance(500);

    expect(await result).toEqual({
      ok: false,
      status: undefined,
      latencyMs: 500,
      ttftMs: undefined,
      error: "p: no answer within 500 ms",
    });
    expect(clock.pending()).toEqual([]);
  });

  it("reports the probe's own error, not the deadline, when the caller aborts", async () => {
    const { deps } = setup();
    const caller = new AbortController();
    const result = boundedHealthCheck(
      config,
      deps,
      { signal: caller.signal, timeoutMs: 500 },
      (e) => e as Error,
      hangs,
    );
    caller.abort();

    expect(await result).toMatchObject({ ok: false, error: "The operation was aborted" });
  });

  it("carries the status of the error the provider maps a failure to", async () => {
    const { deps } = setup();
    const result = await boundedHealthCheck(
      config,
      deps,
      { timeoutMs: 500 },
      () => new GatewayError("p answered with HTTP 403", { status: 403, code: "upstream_error" }),
      async () => {
        throw new Error("raw");
      },
    );

    expect(result).toMatchObject({ ok: false, status: 403, error: "p answered with HTTP 403" });
  });

  it("returns what a probe that succeeds returns, and clears its timer", async () => {
    const { clock, deps } = setup();
    const ok = { ok: true, status: 200, latencyMs: 0, ttftMs: undefined, error: undefined };

    expect(
      await boundedHealthCheck(
        config,
        deps,
        { timeoutMs: 500 },
        (e) => e as Error,
        async () => ok,
      ),
    ).toBe(ok);
    expect(clock.pending()).toEqual([]);
  });
});
