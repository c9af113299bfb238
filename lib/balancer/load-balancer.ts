import { LoadBalanceStrategy } from "../config/types.ts";
import type { HealthStatus } from "../health/types.ts";

/** What the balancer needs to know of a provider's health: the table's view, cached. */
export interface HealthLookup {
  status(providerId: string): HealthStatus;
  /** The operator's weight from the table, if set. */
  weight(providerId: string): number | undefined;
  /** The operator's switch from the table; undefined means not set (enabled). */
  enabled(providerId: string): boolean | undefined;
}

interface Entry {
  id: string;
  providerId: string;
  weight: number;
}

/**
 * Orders a route's targets for one request: `getAvailableProviders()` is the failover order the
 * request path walks, `getProvider()` its first. Per strategy ({@link LoadBalanceStrategy}):
 * - `ROUND_ROBIN`: rotates the start among available targets (per execution environment: each Lambda
 *   instance keeps its own counter, so the fleet's split is even only on average).
 * - `WEIGHTED`: draws without replacement, each draw in proportion to weight.
 * - `HEALTH_FIRST`: healthy (and never-checked) targets in route order, then degraded ones.
 * In every strategy a target whose provider is unhealthy comes last (tried only when nothing else
 * is left) and one disabled by an operator is left out.
 */
export class LoadBalancer {
  readonly strategy: LoadBalanceStrategy;
  readonly #random: () => number;
  readonly #health: HealthLookup;
  #entries: Entry[] = [];
  #turn = 0;

  constructor(strategy: LoadBalanceStrategy, random: () => number, health: HealthLookup) {
    this.strategy = strategy;
    this.#random = random;
    this.#health = health;
  }

  /** Adds a target (`id`) served by `providerId` (the id itself by default), with a weight. */
  registerProvider(id: string, options: { providerId?: string; weight?: number } = {}): void {
    this.unregisterProvider(id);
    this.#entries.push({ id, providerId: options.providerId ?? id, weight: options.weight ?? 1 });
  }

  unregisterProvider(id: string): void {
    this.#entries = this.#entries.filter((e) => e.id !== id);
  }

  /** The pick for one request (the first of {@link getAvailableProviders}), or undefined when none is enabled. */
  getProvider(): string | undefined {
    return this.getAvailableProviders()[0];
  }

  /**
   * Every enabled target, in the failover order of one request: the strategy's order over the
   * targets whose provider is not unhealthy, then the unhealthy ones. Each call is a new pick (round
   * robin advances, weighted draws again).
   */
  getAvailableProviders(): string[] {
    const enabled = this.#enabled();
    const available = enabled.filter((e) => this.#health.status(e.providerId) !== "unhealthy");
    const unavailable = enabled.filter((e) => this.#health.status(e.providerId) === "unhealthy");
    let ordered: Entry[];
    switch (this.strategy) {
      case LoadBalanceStrategy.ROUND_ROBIN: {
        const start = available.length === 0 ? 0 : this.#turn++ % available.length;
        ordered = [...available.slice(start), ...available.slice(0, start)];
        break;
      }
      case LoadBalanceStrategy.WEIGHTED:
        ordered = this.#weightedDraw(available);
        break;
      case LoadBalanceStrategy.HEALTH_FIRST:
        ordered = [
          ...available.filter((e) => this.#health.status(e.providerId) !== "degraded"),
          ...available.filter((e) => this.#health.status(e.providerId) === "degraded"),
        ];
        break;
    }
    return [...ordered, ...unavailable].map((e) => e.id);
  }

  #enabled(): Entry[] {
    return this.#entries.filter((e) => this.#health.enabled(e.providerId) !== false);
  }

  #weightOf(entry: Entry): number {
    return this.#health.weight(entry.providerId) ?? entry.weight;
  }

  #weightedDraw(entries: Entry[]): Entry[] {
    const pool = entries.filter((e) => this.#weightOf(e) > 0);
    const zero = entries.filter((e) => this.#weightOf(e) <= 0);
    const out: Entry[] = [];
    while (pool.length > 0) {
      const total = pool.reduce((sum, e) => sum + this.#weightOf(e), 0);
      let point = this.#random() * total;
      let index = pool.length - 1;
      for (let i = 0; i < pool.length; i++) {
        point -= this.#weightOf(pool[i] as Entry);
        if (point < 0) {
          index = i;
          break;
        }
      }
      out.push(...pool.splice(index, 1));
    }
    return [...out, ...zero];
  }
}
