/** The gateway's configuration document, after validation and with every default filled in. */

/**
 * A provider type's name, as registered in `lib/providers/registry.ts` (`openai`, `deepseek`,
 * `mock`, ...). A plain string here so this file never imports the providers; validation checks the
 * name against the registry.
 */
export type ProviderType = string;

/** Where a provider's API key comes from. */
export type KeySource =
  | { env: string }
  /** A Secrets Manager secret: the whole string, or `jsonKey` of a JSON secret. */
  | { secretId: string; jsonKey?: string };

export interface Timeouts {
  /** TCP/TLS connect. */
  connectMs: number;
  /** From request sent to response headers (streaming). */
  headersMs: number;
  /** From request sent to the first content token; keep-alive comments and blank lines do not count. */
  firstTokenMs: number;
  /** Longest gap between two data events once a stream has started. */
  idleMs: number;
  /** A whole non-streaming response, headers and body. */
  responseMs: number;
}

export interface RetryPolicy {
  /** Attempts per target, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** The longest `Retry-After` we wait on the same target; a longer one fails over at once. */
  maxRetryAfterMs: number;
}

/**
 * The circuit breaker of one target. A target is judged on its failure *rate* over a sliding window
 * with a minimum number of requests (as Hystrix and Envoy's outlier detection do), not on N failures
 * in a row, which under concurrency trip on noise. Only the provider's own faults count.
 */
export interface CooldownPolicy {
  /** Share of failed requests in the window (0 to 1) that benches the target. */
  failureRateThreshold: number;
  /** Requests the window must hold before its failure rate is trusted. */
  minRequests: number;
  /** The sliding window the rate is measured over. */
  windowMs: number;
  /** How long a target is benched when its failure rate trips; then one trial request decides. */
  cooldownMs: number;
  /** Upper bound on a cooldown taken from an upstream `Retry-After`. */
  maxCooldownMs: number;
}

/**
 * How a route's balancer orders its targets (`lib/balancer/load-balancer.ts` says what each does).
 * One constant that the configuration's validation, its types and the balancer all name.
 */
export const LoadBalanceStrategy = {
  ROUND_ROBIN: "ROUND_ROBIN",
  WEIGHTED: "WEIGHTED",
  HEALTH_FIRST: "HEALTH_FIRST",
} as const;
export type LoadBalanceStrategy = (typeof LoadBalanceStrategy)[keyof typeof LoadBalanceStrategy];

/** How a provider is probed by the health checker (which kinds a type accepts is its definition's). */
export type HealthProbe =
  /** `GET {baseUrl}/models`: cheap, proves the API and the key answer. */
  | { kind: "models" }
  /** A one-token streamed chat completion: also measures time to first token. */
  | { kind: "chat"; model: string }
  /** One short input embedded: for a provider that serves only embeddings (issue 20). */
  | { kind: "embeddings"; model: string };

export interface HealthPolicy {
  /** How often the checker runs (in-process locally; the schedule's loop on AWS). */
  intervalMs: number;
  /** Per-provider probe timeout. */
  timeoutMs: number;
  /** Consecutive failed checks that mark a provider unhealthy. */
  failureThreshold: number;
  /** Consecutive good checks that bring an unhealthy provider back. */
  recoveryThreshold: number;
  /** A good check slower than this marks the provider degraded. */
  degradedLatencyMs: number;
  /** A chat probe whose first token takes longer than this marks the provider degraded. */
  degradedTtftMs: number;
  /** How long check history is kept (DynamoDB TTL). */
  historyTtlHours: number;
  /** How long the request path trusts its copy of the health table. */
  cacheTtlMs: number;
}

/**
 * One provider, validated: the fields every provider has, and `options`, the fields of its own type
 * (the mock's reply and script, a region, ...) as its definition in `lib/providers/` validated them.
 */
export interface ProviderConfig<Options = unknown> {
  id: string;
  type: ProviderType;
  /** Where it is reached (a fixed placeholder for a type with no URL, such as the mock). */
  baseUrl: string;
  /** Absent when the type needs none (its definition says whether a key is required, optional or unused). */
  apiKey: KeySource | undefined;
  weight: number;
  enabled: boolean;
  /** The provider accepts a partial assistant message to continue (DeepSeek's prefix completion). */
  assistantPrefill: boolean;
  /** Base URL for prefix-completion requests when it differs (DeepSeek serves it under /beta). */
  prefillBaseUrl: string | undefined;
  /** Extra headers sent upstream (never logged). */
  headers: Record<string, string>;
  timeouts: Timeouts;
  retry: RetryPolicy;
  healthProbe: HealthProbe;
  /** The fields of this provider's own type; `undefined` for a type that has none. */
  options: Options;
}

export interface RouteTarget {
  provider: string;
  model: string;
  /** Overrides the provider's weight for this target. */
  weight?: number;
  /**
   * The model's context window in tokens. A `context_length_exceeded` from an earlier target falls
   * back to a later target of the route declared with a larger one; otherwise that 400 goes back.
   */
  contextWindow?: number;
  /**
   * Embeddings (issue 20): a vector space this target shares with others that declare the same name
   * (the same model on two hosts under different ids). Undeclared, targets share a space only when
   * they call the same model. An embeddings request never fails over across spaces.
   */
  space?: string;
  /** Embeddings: the output dimensions this target produces (sent when the caller names none). */
  dimensions?: number;
}

export interface ModelRoute {
  name: string;
  targets: RouteTarget[];
  strategy: LoadBalanceStrategy;
}

export interface GatewayConfig {
  /** The whole request, all attempts and waits included, never takes longer than this. */
  requestTimeoutMs: number;
  maxBodyBytes: number;
  /** Deepest nesting of arrays and objects accepted in a request body (hostile bodies get a 400). */
  maxNestingDepth: number;
  /** Largest upstream answer relayed, streamed or not; past it the answer ends with a clear error. */
  maxResponseBytes: number;
  /** Longest answer text kept to continue a cut stream; past it a cut is reported, not continued. */
  maxResumeChars: number;
  /** Upstream connections per origin; when all are busy a request is answered 503 `gateway_overloaded`. */
  upstreamMaxSockets: number;
  /** After a cut stream, restart on a target that cannot continue and keep only what extends the sent text. */
  resumeByRestart: boolean;
  cooldown: CooldownPolicy;
  health: HealthPolicy;
  providers: ProviderConfig[];
  models: ModelRoute[];
  callers: CallersPolicy;
}

/** Price of a model in US dollars per million tokens (issue 12: cost budgets). */
export interface ModelPrice {
  input: number;
  output: number;
  /** Prompt tokens served from the provider's cache; defaults to `input`. */
  cachedInput: number;
  /**
   * Prompt tokens written to the provider's cache (Anthropic's `cache_creation_input_tokens`: 1.25×
   * `input` for a 5-minute entry, 2× for an hour); defaults to `input`.
   */
  cacheWrite?: number;
}

/** Caller keys, their usage ledger and their limits (issue 12; see lib/callers/). */
export interface CallersPolicy {
  /** How long a key record is trusted before it is read again: revocation takes at most this long. */
  cacheTtlMs: number;
  /** How often usage aggregated in this process is added to the table (Lambda also flushes per invocation). */
  flushIntervalMs: number;
  /** When the table cannot be reached to enforce a limit: serve (true, the default) or answer 503. */
  failOpen: boolean;
  /** Longest wait for the shared per-minute request counter before the table counts as unreachable. */
  limitTimeoutMs: number;
  /** Prices per model route name, for cost budgets and the cost column of `client-key usage`. */
  prices: Record<string, ModelPrice>;
  /** Adds a KeyId dimension to the token metrics (every dimension value is a billed metric). */
  metricsPerKey: boolean;
  /**
   * Output tokens admission reserves per answer when the caller set no `max_tokens` (issue 16): a
   * request's worst case is its prompt estimate plus its cap (this, without one) times `n`.
   */
  defaultOutputReservation: number;
  /**
   * How long a `maxConcurrent` slot is held in the table at most: a slot whose environment died
   * before releasing it is free again after this (keep it above the longest request).
   */
  concurrencyLeaseMs: number;
}
