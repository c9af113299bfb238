/**
 * The key of one target (provider + upstream model): what the breaker, the health table's target
 * records, the balancer and the health checker all name a target by.
 */
export function targetKey(providerId: string, model: string): string {
  return `${providerId}/${model}`;
}
