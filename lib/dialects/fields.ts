/**
 * Field readers shared by the dialect parsers (chat, Messages, Responses, embeddings): whether a
 * value is there, copying what has no canonical place into `unmapped`, and the typed reads of an
 * optional or a required field that answer a 400 naming the field. The 400s are worded as the
 * caller's dialect words them ({@link FieldWording}): OpenAI's by default, the Messages API's in the
 * Anthropic parser.
 *
 * Nothing here walks the caller's JSON deeper than one object's keys or one array.
 */
import type { TextPart } from "../core/request.ts";
import {
  type InvalidRequestError,
  invalidType,
  invalidValue,
  missingParameter,
  quoteCallerText,
} from "../errors.ts";

/** A JSON object of the caller's body. */
export type Obj = Record<string, unknown>;

/** A JSON object (not an array, not `null`). */
export function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A present value: `null` is taken for "not set", as most clients mean it. */
export function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/** Sets a key of a record, `__proto__` included, as an own property (never the prototype). */
export function put(record: Obj, key: string, value: unknown): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Keys of `object` not in `known` (and present) into `unmapped`, as `param.key`. */
export function extras(object: Obj, known: ReadonlySet<string>, param: string, unmapped: Obj): void {
  for (const key of Object.keys(object)) {
    if (!known.has(key) && present(object[key])) put(unmapped, `${param}.${key}`, object[key]);
  }
}

/**
 * OpenAI's 400 for a value outside a field's choices: `Invalid value for 'param': 'value'. Supported
 * values are: ...` (the value quoted and bounded; `supported` written as it should read).
 */
export function notOneOf(param: string, value: unknown, supported: string): InvalidRequestError {
  return invalidValue(
    param,
    `Invalid value for '${param}': '${quoteCallerText(value)}'. Supported values are: ${supported}.`,
  );
}

/** How a dialect words the 400s of a field that is absent or of the wrong type. */
export interface FieldWording {
  missing(param: string): InvalidRequestError;
  wrongType(param: string, expected: string): InvalidRequestError;
}

type TypeName = { string: string; number: number; boolean: boolean };

/** The typed field reads, each throwing its 400 in one dialect's words. */
export interface FieldReaders {
  /** `object[field]` if present and of `type` (a finite number), else undefined; another type is a 400. */
  optional<K extends keyof TypeName>(
    object: Obj,
    field: string,
    type: K,
    param?: string,
  ): TypeName[K] | undefined;
  /** {@link FieldReaders.optional} for an integer. */
  optionalInteger(object: Obj, field: string, param?: string): number | undefined;
  /** `object[field]`, a string; absent or another type is a 400 naming `param.field`. */
  requiredString(object: Obj, field: string, param: string): string;
  /** The 400 for a required field that is absent or of the wrong type. */
  badField(value: unknown, param: string, expected: string): InvalidRequestError;
  /** A part or block of a kind with no canonical place into `unmapped`; its `type` must be a string. */
  unmappedPart(part: Obj, param: string, unmapped: Obj): void;
  /** An array of strings (`param[k]` named when one is not), copied. */
  strings(value: unknown, param: string, expected?: string): string[];
}

/** The field reads in `wording`. */
export function fieldReaders(wording: FieldWording): FieldReaders {
  const { missing, wrongType } = wording;
  function optional<K extends keyof TypeName>(
    object: Obj,
    field: string,
    type: K,
    param = field,
  ): TypeName[K] | undefined {
    const value = object[field];
    if (!present(value)) return undefined;
    if (typeof value !== type || (type === "number" && !Number.isFinite(value)))
      throw wrongType(param, type === "boolean" ? "a boolean" : `a ${type}`);
    return value as TypeName[K];
  }
  function badField(value: unknown, param: string, expected: string): InvalidRequestError {
    return present(value) ? wrongType(param, expected) : missing(param);
  }
  return {
    optional,
    badField,
    optionalInteger(object, field, param = field) {
      const value = optional(object, field, "number", param);
      if (value !== undefined && !Number.isInteger(value)) throw wrongType(param, "an integer");
      return value;
    },
    requiredString(object, field, param) {
      const value = object[field];
      if (typeof value !== "string") throw badField(value, `${param}.${field}`, "a string");
      return value;
    },
    unmappedPart(part, param, unmapped) {
      if (typeof part.type !== "string") throw badField(part.type, `${param}.type`, "a string");
      put(unmapped, param, part);
    },
    strings(value, param, expected = "an array of strings") {
      if (!Array.isArray(value)) throw wrongType(param, expected);
      const out: string[] = [];
      for (let k = 0; k < value.length; k++) {
        const item = value[k];
        if (typeof item !== "string") throw wrongType(`${param}[${k}]`, "a string");
        out.push(item);
      }
      return out;
    },
  };
}

/** OpenAI's words: `Missing required parameter: 'param'.`, `Invalid type for 'param': expected ...`. */
export const OPENAI_WORDING: FieldWording = {
  missing: (param) => missingParameter(param),
  wrongType: (param, expected) => invalidType(param, expected),
};

/** The field reads in OpenAI's words, for the chat, Responses and embeddings parsers. */
export const { optional, optionalInteger, requiredString, badField, unmappedPart, strings } =
  fieldReaders(OPENAI_WORDING);

/**
 * A content field that is a string or an array of part objects, in OpenAI's words: a string is one
 * text part pushed `into`, each part (an object, else a 400) is `onPart`'s with its param
 * (`param[j]`). Absent is a 400.
 */
export function eachPart(
  content: unknown,
  param: string,
  into: { push(part: TextPart): unknown },
  onPart: (part: Obj, partParam: string) => void,
): void {
  if (!present(content)) throw missingParameter(param);
  if (typeof content === "string") {
    into.push({ type: "text", text: content });
    return;
  }
  if (!Array.isArray(content)) throw invalidType(param, "a string or an array of content parts");
  for (let j = 0; j < content.length; j++) {
    const part = content[j];
    const partParam = `${param}[${j}]`;
    if (!isObject(part)) throw invalidType(partParam, "an object");
    onPart(part, partParam);
  }
}

/**
 * The bytes and media type of a base64 data URL (`data:image/png;base64,...`), or else the URL.
 * Slices, no regular expression over the bytes. OpenAI's `image_url`, in chat and Responses alike.
 */
export function fromDataUrl(url: string): { mediaType?: string; data?: string; url?: string } {
  if (url.slice(0, 5).toLowerCase() !== "data:") return { url };
  const comma = url.indexOf(",");
  const header = comma === -1 ? "" : url.slice(5, comma);
  if (!header.toLowerCase().endsWith(";base64")) return { url };
  const mediaType = header.slice(0, header.indexOf(";")).trim().toLowerCase();
  return { mediaType: mediaType === "" ? "image/*" : mediaType, data: url.slice(comma + 1) };
}
