/**
 * Keeps the gateway's secrets out of everything that reaches a caller or a log (issue 9, "keys come
 * back out"). Two layers, applied in one pass of one precompiled regular expression (more only past
 * {@link VALUES_PER_PATTERN} values), plus a pass for masked echoes on text that holds a mask:
 *
 * - **By value**: every secret the gateway actually holds (provider keys, upstream header values,
 *   verified caller keys) is registered here when it is obtained, and removed wherever it appears,
 *   whatever its shape: an upstream 401 echoing `gsk_…`, or a 40-character key with no prefix at all.
 * - **By shape**: common key formats the gateway does not hold (a caller pasting a Stripe key into a
 *   prompt that an upstream 400 echoes back), kept to shapes with a distinctive prefix and length so
 *   ordinary words survive.
 *
 * Only error paths and log lines call {@link redactSecrets}; the expression is rebuilt only when the
 * set of values changes, so redacting a short message costs one regex scan (about 1 µs for a
 * request's log line with ten keys registered).
 */

/** What a removed secret becomes. */
export const REDACTED = "[redacted]";

/** Shorter values are not registered: redacting a 5-letter value would eat ordinary words. */
export const MIN_SECRET_LENGTH = 8;

/**
 * Enough for every provider key and header value of a configuration plus its verified caller keys.
 * Bounded because V8 compiles a very large alternation to slow code (measured: ~300 literals scan a
 * log line in ~3 µs, ~500 in ~70 µs); the values are split over several expressions past
 * {@link VALUES_PER_PATTERN}, so cost grows linearly, never off that cliff.
 */
export const MAX_SECRETS = 256;
const VALUES_PER_PATTERN = 128;

/**
 * Key shapes redacted whether or not the gateway holds them. Groups 1-3 capture a prefix that stays
 * (`Bearer `, `?key=`, `"api_key": `) so the text still says what was removed.
 */
const SHAPES: readonly string[] = [
  // `Authorization: Bearer <token>` echoed in a message.
  String.raw`([Bb]earer\s+)[A-Za-z0-9._~+/=-]{8,}`,
  // A key in a URL's query (`?key=AIza…` for Google, `&api_key=…`).
  String.raw`([?&](?:api[_-]?key|apikey|key|access_token|token|auth|sig|signature)=)[^&\s"'#<>]{6,}`,
  // `"api_key": "…"`, `x-api-key: …`, `access_token=…`: a value with at least one digit, so
  // `api_key: missing_parameter` is left alone.
  String.raw`(\b(?:x-api-key|api[_-]?key|apikey|access[_-]?token|secret[_-]?key|client[_-]?secret)["']?\s*[:=]\s*["']?)(?=[A-Za-z_.~+/=-]*[0-9])[A-Za-z0-9_.~+/=-]{12,}`,
  // OpenAI (`sk-…`, `sk-proj-…`), Anthropic (`sk-ant-…`), DeepSeek, and masked echoes `sk-abc***xyz`.
  String.raw`\b(?:sk|pk|rk)-[A-Za-z0-9_*.-]{6,}`,
  // Stripe-style live and test keys.
  String.raw`\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}`,
  // Groq, xAI, Hugging Face, Replicate, Perplexity, NVIDIA, Fireworks, Cerebras, GitHub, GitLab.
  String.raw`\b(?:gsk_|xai-|hf_|r8_|pplx-|nvapi-|fw_|csk-|gh[pousr]_|github_pat_|glpat-)[A-Za-z0-9_-]{20,}`,
  // Google API keys.
  String.raw`\bAIza[0-9A-Za-z_-]{30,}`,
  // AWS access key ids (long-term and temporary).
  String.raw`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`,
];

/**
 * A masked echo of a key: `abcd****wxyz` or DeepSeek's `****wxyz` (always redacted: nobody masks
 * what is not a secret), or
 * `abcd...wxyz` / `abcd…wxyz` (redacted when its ends are the ends of a registered value, since
 * prose has dots too). Run only on text that holds such a mask: the scan is the costliest of all.
 */
const MASKED =
  /(?:\b[A-Za-z0-9][A-Za-z0-9_-]{0,64}|(?<![\w*])(?=\*{3,}[A-Za-z0-9]))(?:\*{3,}|\.{2,}|…)[A-Za-z0-9_*.…-]{0,64}/g;
const MASK_MARKS = ["***", "..", "…"];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/** The forms a value takes on its way out: as is, inside a JSON string, inside a URL. */
function variantsOf(value: string): string[] {
  return [...new Set([value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)])];
}

/** What a masked echo keeps of a value: its first and last four characters. */
function endsOf(text: string): string {
  return `${text.slice(0, 4)}\u0000${text.slice(-4)}`;
}

export interface SecretRedactor {
  /** Remembers a secret to remove by value (ignored when shorter than {@link MIN_SECRET_LENGTH}). */
  register(value: string | undefined): void;
  /** `text` with every registered value and every known key shape replaced by {@link REDACTED}. */
  redact(text: string): string;
  /** How many values are registered. */
  readonly size: number;
}

interface Compiled {
  /** The longest {@link VALUES_PER_PATTERN} values, then {@link SHAPES}. */
  first: RegExp;
  /** Any further values, {@link VALUES_PER_PATTERN} to an expression. */
  rest: RegExp[];
  /** {@link endsOf} of every registered value. */
  ends: Set<string>;
}

/**
 * A registry of secret values, bounded as an LRU: registering a value again refreshes it (provider
 * keys are registered on every use, so they are never the ones evicted), and past `maxValues` the
 * least recently registered goes. Only values the gateway holds or has verified are ever registered,
 * so a caller cannot flush it with made-up keys. The expressions are rebuilt lazily, only after the
 * set changed.
 */
export function createSecretRedactor(
  options: { maxValues?: number; minLength?: number } = {},
): SecretRedactor {
  const maxValues = options.maxValues ?? MAX_SECRETS;
  const minLength = options.minLength ?? MIN_SECRET_LENGTH;
  const values = new Map<string, readonly string[]>();
  let compiled: Compiled | undefined;

  const compile = (): Compiled => {
    // Longest first, so a value that contains another is removed whole.
    const exact = [...values.values()]
      .flat()
      .sort((a, b) => b.length - a.length)
      .map(escapeRegExp);
    const first = new RegExp([...exact.slice(0, VALUES_PER_PATTERN), ...SHAPES].join("|"), "g");
    const rest: RegExp[] = [];
    for (let i = VALUES_PER_PATTERN; i < exact.length; i += VALUES_PER_PATTERN)
      rest.push(new RegExp(exact.slice(i, i + VALUES_PER_PATTERN).join("|"), "g"));
    return { first, rest, ends: new Set([...values.keys()].map(endsOf)) };
  };

  const keepPrefix = (_match: string, bearer?: string, query?: string, assigned?: string): string =>
    (bearer ?? query ?? assigned ?? "") + REDACTED;

  return {
    register(value) {
      if (value === undefined || value.length < minLength) return;
      const variants = values.get(value);
      if (variants !== undefined) {
        // Known: only its place in the LRU order changes (this runs on every upstream call).
        values.delete(value);
        values.set(value, variants);
        return;
      }
      values.set(value, variantsOf(value));
      if (values.size > maxValues) {
        const oldest = values.keys().next();
        if (!oldest.done) values.delete(oldest.value);
      }
      compiled = undefined;
    },
    redact(text) {
      compiled ??= compile();
      const { first, rest, ends } = compiled;
      let out = text.replace(first, keepPrefix);
      // Only the first expression has the prefix groups: the others are plain values.
      for (const pattern of rest) out = out.replace(pattern, REDACTED);
      if (!MASK_MARKS.some((mark) => out.includes(mark))) return out;
      return out.replace(MASKED, (match) => {
        // A sentence's closing dot is not part of the mask.
        const core = match.replace(/[.…]+$/, "");
        if (match.includes("***") || ends.has(endsOf(core))) return REDACTED + match.slice(core.length);
        return match;
      });
    },
    get size() {
      return values.size;
    },
  };
}

/** The process's registry: every key the gateway obtains is registered here (see `registeringKeys`). */
const processRedactor = createSecretRedactor();

/** Registers a secret the gateway holds (a provider key, a configured header value). */
export function registerSecret(value: string | undefined): void {
  processRedactor.register(value);
}

/** Registers a verified caller key (issue 16: caller keys must never push provider keys out). */
export function registerCallerKey(value: string | undefined): void {
  processRedactor.register(value);
}

/**
 * Removes every secret the process holds, and anything shaped like an API key, from text that may
 * reach a caller or a log. Providers echo keys in their 401 messages ("Incorrect API key provided:
 * sk-abc***xyz", or the whole key in another shape).
 */
export function redactSecrets(text: string): string {
  return processRedactor.redact(text);
}
