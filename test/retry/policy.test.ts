import { describe, expect, it } from "vitest";
import { ClientAbortError, GatewayError } from "../../lib/errors.ts";
import { retry } from "../../lib/retry/policy.ts";

const policy = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 5000 };

function fakeClock() {
  let now = 0;
  const waits: number[] = [];
  return {
    waits,
    deps: {
      now: () => now,
      sleep: async (ms: number) => {
        waits.push(ms);
        now += ms;
      },
      random: () => 0.5,
    },
  };
}

const retryable = (extra: { retryAfterMs?: number } = {}) =>
  new GatewayError("busy", { status: 503, code: "upstream_error", action: "retry", ...extra });

describe("retry", () => {
  it("retries with jittered backoff until it succeeds", async () => {
    const { deps, waits } = fakeClock();
    let calls = 0;
    const result = await retry(
      async () => {
        calls++;
        if (calls < 3) throw retryable();
        return "ok";
      },
      policy,
      deps,
      { signal: new AbortController().signal, deadline: 10_000 },
    );
    expect(result).toBe("ok");
    expect(waits).toEqual([50, 100]);
  });

  it("stops after maxAttempts and rethrows the last error", async () => {
    const { deps } = fakeClock();
    const failed: number[] = [];
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw retryable();
        },
        policy,
        deps,
        {
          signal: new AbortController().signal,
          deadline: 10_000,
          onAttemptFailed: (_e, n) => failed.push(n),
        },
      ),
    ).rejects.toThrow("busy");
    expect(calls).toBe(3);
    expect(failed).toEqual([1, 2, 3]);
  });

  it("waits what Retry-After says, and not at all when it is over the cap", async () => {
    const { deps, waits } = fakeClock();
    let calls = 0;
    await retry(
      async () => {
        calls++;
        if (calls === 1) throw retryable({ retryAfterMs: 1200 });
        return 1;
      },
      policy,
      deps,
      {
        signal: new AbortController().signal,
        deadline: 10_000,
      },
    );
    expect(waits).toEqual([1200]);

    calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw retryable({ retryAfterMs: 6000 });
        },
        policy,
        deps,
        {
          signal: new AbortController().signal,
          deadline: 100_000,
        },
      ),
    ).rejects.toThrow("busy");
    expect(calls).toBe(1);
  });

  it("never waits past the deadline", async () => {
    const { deps, waits } = fakeClock();
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw retryable({ retryAfterMs: 800 });
        },
        policy,
        deps,
        {
          signal: new AbortController().signal,
          deadline: 500,
        },
      ),
    ).rejects.toThrow("busy");
    expect(calls).toBe(1);
    expect(waits).toEqual([]);
  });

  it("does not retry errors that say fail over or return", async () => {
    const { deps } = fakeClock();
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new GatewayError("timeout", { status: 504, code: "upstream_error", action: "failover" });
        },
        policy,
        deps,
        {
          signal: new AbortController().signal,
          deadline: 10_000,
        },
      ),
    ).rejects.toThrow("timeout");
    expect(calls).toBe(1);
  });

  it("gives up when the caller has gone", async () => {
    const { deps } = fakeClock();
    const controller = new AbortController();
    controller.abort();
    await expect(
      retry(
        async () => {
          throw retryable();
        },
        policy,
        deps,
        { signal: controller.signal, deadline: 10_000 },
      ),
    ).rejects.toBeInstanceOf(ClientAbortError);
  });
});
