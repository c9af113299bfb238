/**
 * Readers for the fields of a configuration document, shared by the gateway's validation
 * (`lib/setup/validate.ts`) and each provider definition's validation of its own fields
 * (`lib/providers/*`). They live in lib/config, below the providers, and the validator above them,
 * since it imports the provider registry: no folder imports the other's (issue 17).
 */

/** A configuration that cannot be used; the message starts with the path of the offending field. */
export class ConfigError extends Error {
  readonly field: string;
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = "ConfigError";
    this.field = field;
  }
}

/** A configuration object, not yet validated. */
export type ConfigObject = Record<string, unknown>;

export function isObject(value: unknown): value is ConfigObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function object(value: unknown, field: string): ConfigObject {
  if (!isObject(value)) throw new ConfigError(field, "must be an object");
  return value;
}

/** `obj[key]` read with `read` (errors name `field.key`), or `fallback` when absent. */
export function optional<T>(
  obj: ConfigObject,
  key: string,
  field: string,
  read: (v: unknown, f: string) => T,
  fallback: T,
): T {
  const value = obj[key];
  return value === undefined ? fallback : read(value, `${field}.${key}`);
}

export function string(value: unknown, field: string): string {
  if (typeof value !== "string" || value.trim() === "")
    throw new ConfigError(field, "must be a non-empty string");
  return value;
}

export function boolean(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") throw new ConfigError(field, "must be true or false");
  return value;
}

/** A reader of a finite number from `min` to `max`. */
export function number(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: unknown, field: string): number => {
    if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
      throw new ConfigError(field, `must be a number from ${min} to ${max}`);
    }
    return value;
  };
}

/** An http(s) URL, without its trailing slashes (paths are appended to it). */
export function url(value: unknown, field: string): string {
  const text = string(value, field);
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new ConfigError(field, `is not a URL: ${JSON.stringify(text)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ConfigError(field, "must be an http(s) URL");
  }
  return text.replace(/\/+$/, "");
}
