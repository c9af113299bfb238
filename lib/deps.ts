import { randomUUID } from "node:crypto";
import type { MetricsSink } from "./metrics/emf.ts";
import { redactSecrets } from "./secrets/redact.ts";

/** Structured logger: one JSON object per line. Never pass prompts, completions or keys. */
export interface Logger {
  info(fields: Record<string, unknown>): void;
  warn(fields: Record<string, unknown>): void;
  error(fields: Record<string, unknown>): void;
}

/**
 * Every effect the request path uses, built once at the edge and passed down, so tests can hand in
 * a fake clock, a seeded random source and a recording logger.
 */
export interface Deps {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Uniform in [0, 1). */
  random(): number;
  newId(): string;
  logger: Logger;
  /** Per-request metrics (CloudWatch EMF on Lambda); none locally. */
  metrics?: MetricsSink;
}

export type LogLevel = "info" | "warn" | "error" | "off";
const LEVELS: readonly LogLevel[] = ["info", "warn", "error", "off"];

/**
 * The level from LOG_LEVEL, else Lambda's AWS_LAMBDA_LOG_LEVEL (advanced logging controls), else
 * info. DEBUG/TRACE count as info; anything unknown is info too, so a typo never silences errors.
 */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const wanted = (env.LOG_LEVEL ?? env.AWS_LAMBDA_LOG_LEVEL ?? "info").toLowerCase();
  return LEVELS.includes(wanted as LogLevel) ? (wanted as LogLevel) : "info";
}

/**
 * One JSON object per line, each line passed through {@link redactSecrets} as a last line of
 * defence: whatever field carries an upstream message, an error or a cause, no key the gateway
 * holds and nothing shaped like a key reaches the log (issue 9).
 */
export function jsonLogger(
  write: (line: string) => void = (line) => process.stdout.write(line),
  level: LogLevel = "info",
): Logger {
  const min = LEVELS.indexOf(level);
  const emitter = (name: "info" | "warn" | "error") =>
    LEVELS.indexOf(name) < min
      ? () => {}
      : (fields: Record<string, unknown>) =>
          write(
            `${redactSecrets(JSON.stringify({ level: name, time: new Date().toISOString(), ...fields }))}\n`,
          );
  return { info: emitter("info"), warn: emitter("warn"), error: emitter("error") };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export function systemDeps(logger: Logger = jsonLogger()): Deps {
  return { now: Date.now, sleep, random: Math.random, newId: randomUUID, logger };
}
