import type { MeteredUsage } from "../core/usage.ts";

/** Limits a caller key may carry; each is optional and applies to the whole fleet (issue 12). */
export interface KeyLimits {
  /** Requests per minute (window = floor(now / 60 s) by the clock of the instance counting). */
  rpm?: number;
  /** Tokens (prompt + completion) per minute. */
  tpm?: number;
  /** Tokens per UTC day. */
  tokensPerDay?: number;
  /** Tokens per UTC calendar month. */
  tokensPerMonth?: number;
  /** US dollars per UTC day, from `callers.prices`. */
  costPerDay?: number;
  /** US dollars per UTC calendar month. */
  costPerMonth?: number;
  /** Requests of the key in flight at once (LiteLLM's `max_parallel_requests`), across the fleet. */
  maxConcurrent?: number;
}

export const LIMIT_NAMES: readonly (keyof KeyLimits)[] = [
  "rpm",
  "tpm",
  "tokensPerDay",
  "tokensPerMonth",
  "costPerDay",
  "costPerMonth",
  "maxConcurrent",
];

/** The limits admission must reserve a request's worst case against (tokens and cost). */
export const BUDGET_NAMES: readonly (keyof KeyLimits)[] = [
  "tpm",
  "tokensPerDay",
  "tokensPerMonth",
  "costPerDay",
  "costPerMonth",
];

/** A caller key's record in the table (the key itself is never stored, only its hash). */
export interface KeyRecord {
  id: string;
  name: string;
  hash: string;
  createdAt: number;
  /**
   * When `client-key revoke` ran, by the CLI machine's clock: informational only. A record that
   * carries it is refused at once, whatever the clocks say (issue 16).
   */
  revokedAt?: number;
  /** After this moment, by the clock of the function judging the request, the key is refused. */
  expiresAt?: number;
  /** Model route names the key may call; absent means every model. */
  models?: string[];
  limits: KeyLimits;
  lastUsedAt?: number;
}

/** Who made a request, as the gateway knows it after authentication. */
export interface Caller {
  id: string;
  /** Undefined for keys of the legacy secret. */
  name: string | undefined;
  models: readonly string[] | undefined;
  limits: KeyLimits;
}

/** Usage as counted per key, model and day. */
export interface UsageCounts {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  /** Prompt tokens written to the provider's cache (Anthropic's prompt caching). */
  cacheWriteTokens: number;
  /** US dollars; 0 for a model without a configured price. */
  cost: number;
}

/** One row of the ledger: a key's usage of one model on one UTC day. */
export interface UsageRow extends UsageCounts {
  keyId: string;
  model: string;
  day: string;
}

/** A key's totals for the periods its limits watch, as last read from the table. */
export interface PeriodTotals {
  day: string;
  dayTokens: number;
  dayCost: number;
  month: string;
  monthTokens: number;
  monthCost: number;
  minute: number;
  minuteTokens: number;
}

export const MINUTE_MS = 60_000;

/** `YYYY-MM-DD` in UTC. */
export function dayOf(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

/** `YYYY-MM` in UTC. */
export function monthOf(now: number): string {
  return new Date(now).toISOString().slice(0, 7);
}

/** The minute window a request falls in, by the clock of the instance that counts it. */
export function minuteOf(now: number): number {
  return Math.floor(now / MINUTE_MS);
}

export function emptyTotals(now: number): PeriodTotals {
  return {
    day: dayOf(now),
    dayTokens: 0,
    dayCost: 0,
    month: monthOf(now),
    monthTokens: 0,
    monthCost: 0,
    minute: minuteOf(now),
    minuteTokens: 0,
  };
}

/** Told how a request ended, once: its usage goes to the ledger under the caller's key and model. */
export interface UsageMeter {
  readonly keyId: string;
  readonly keyName: string | undefined;
  /**
   * Called exactly once per admitted request, however it ended (answered, failed, cut, the caller
   * gone): what the upstreams produced for it, failed attempts included. Settles the admission's
   * reservation.
   */
  record(usage: MeteredUsage): void;
}

/** What admission needs to know of a request to hold its worst case against the caller's budgets. */
export interface AdmissionRequest {
  /** The route name the caller asked for. */
  model: string;
  /** The prompt's size, estimated (see `estimateTokens`). */
  promptTokens: number;
  /** The caller's output cap (`max_tokens` or the dialect's equivalent), if it set one. */
  maxOutputTokens: number | undefined;
  /** How many answers the request asks for (OpenAI's `n`); 1 otherwise. */
  choices: number;
}

/** Client authentication and, for keys that carry them, model lists and limits (issue 12). */
export interface ClientAuth {
  /** The caller behind the request's bearer key; throws a 401 GatewayError (503 if the store is down). */
  verify(headers: Record<string, string | undefined>): Promise<Caller>;
  /**
   * Once the model is known: throws 404 for a model outside the key's list (exactly as for an
   * unknown one), 429 over a limit or when the request's worst case (see {@link AdmissionRequest})
   * cannot fit in what is left of a budget; returns the meter that records the request's usage and
   * settles what admission reserved. Absent: nothing is limited or metered.
   */
  admit?(caller: Caller, request: AdmissionRequest): Promise<UsageMeter | undefined>;
  /**
   * Awaited after a chat response's last byte, when set: on Lambda the ledger is flushed there,
   * since a frozen execution environment runs no timer, retrying until `deadline` (the request's,
   * inside the invocation's remaining time). Never throws.
   */
  afterResponse?(deadline: number): Promise<void>;
}

/** The id under which a key of the legacy `{ "sha256": [...] }` secret is logged and metered. */
export function legacyCallerId(hash: string): string {
  return `legacy-${hash.slice(0, 12)}`;
}
