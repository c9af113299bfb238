import { type FakeUpstream, startFakeUpstream } from "./fake-upstream.ts";
import { fakeProvider, startGateway, type TestGateway } from "./gateway.ts";

export interface TwoUpstreamOptions {
  defaults?: Record<string, unknown>;
  health?: Record<string, unknown>;
  /** Model "m"'s targets; by default a/model-a, then b/model-b. */
  targets?: Array<Record<string, unknown>>;
  /** More fields of provider b's entry, given its URL (e.g. a prefill base URL under it). */
  b?: (url: string) => Record<string, unknown>;
  /** More models beside "m". */
  models?: Record<string, unknown>;
}

/**
 * The failover set-up most gateway tests share: providers "a" and "b" at two fake upstreams, and
 * model "m" tried on a/model-a first, then on b/model-b.
 */
export function twoUpstreamDocument(aUrl: string, bUrl: string, options: TwoUpstreamOptions = {}) {
  return {
    ...(options.defaults ? { defaults: options.defaults } : {}),
    ...(options.health ? { health: options.health } : {}),
    providers: [fakeProvider("a", aUrl), fakeProvider("b", bUrl, options.b?.(bUrl))],
    models: {
      m: {
        targets: options.targets ?? [
          { provider: "a", model: "model-a" },
          { provider: "b", model: "model-b" },
        ],
      },
      ...options.models,
    },
  };
}

/**
 * Two fake upstreams and a gateway over them ({@link twoUpstreamDocument}); `gateway` is passed to
 * startGateway. The caller closes all three.
 */
export async function twoUpstreamGateway(
  options: TwoUpstreamOptions & { gateway?: Parameters<typeof startGateway>[1] } = {},
): Promise<{ a: FakeUpstream; b: FakeUpstream; gateway: TestGateway }> {
  const a = await startFakeUpstream();
  const b = await startFakeUpstream();
  try {
    return { a, b, gateway: await startGateway(twoUpstreamDocument(a.url, b.url, options), options.gateway) };
  } catch (error) {
    // A document the gateway refuses: the caller never gets the upstreams to close.
    await Promise.all([a.close(), b.close()]);
    throw error;
  }
}
