/**
 * Keeps the gateway's secrets out of everything that reaches a caller or a log (issue 9, "keys come
 * back out"). Two layers, applied in one pass of one precompiled regular expression, a second for
 * keys' bodies (more only past {@link VALUES_PER_PATTERN} literals), and a pass for masked echoes
 * on text that holds a mask:
 *
 * - **By value**: every secret the gateway actually holds (provider keys, upstream header values,
 *   verified caller keys) is registered here when it is obtained, and removed wherever it appears,
 *   whatever its shape: an upstream 401 echoing `gsk_…`, or a 40-character key with no prefix at all.
 *   A key's distinctive body (what follows its prefix, `sk-live-` or `gsk_`) counts as the key.
 * - **By shape**: common key formats the gateway does not hold (a caller pasting a Stripe key into a
 *   prompt that an upstream 400 echoes back), kept to shapes with a distinctive prefix and length so
 *   ordinary words survive; AWS ARNs and account ids (a Bedrock AccessDenied names the role).
 *
 * **Linear time for any input** (issue 16: a 128 KB field of `api_key=` fragments took 5 s, and every
 * other request waited). V8's engine backtracks, so every expression here is written so that no
 * position is scanned more than a bounded number of times: a lookahead or a quantifier followed by
 * anything is bounded (`{0,63}`, `\s{0,16}`), and an unbounded quantifier either ends its
 * alternative (once it has matched its minimum nothing after it can fail and send the engine back:
 * the run it scanned is replaced, never rescanned), or is followed by one character of its own class
 * (an ARN's resource: it backs off only over the punctuation it ends with), or starts only where a
 * lookbehind says its run starts (a mask's `***`: each run is scanned once). The replacers are
 * linear in their match.
 * `test/secrets/redact.test.ts` redacts 4 MiB of hostile text; `npm run bench` prints its time.
 *
 * Only error paths and log lines call {@link redactSecrets} (the JSON logger on every line); the
 * expressions are rebuilt only when the set of literals changes. Every alternative of the first
 * expression starts with one of a few characters (a key's prefix, `B`, `?`, `a`…), which lets V8
 * skip most positions at once. Bodies start with any character, so they get an expression of their
 * own: merged into the first, they made a log line's redaction 2.5 times slower (measured).
 */

/** What a removed secret becomes. */
export const REDACTED = "[redacted]";

/** Shorter values are not registered: redacting a 5-letter value would eat ordinary words. */
export const MIN_SECRET_LENGTH = 8;

/** A key's body (what follows its prefix) counts as the key from this length on. */
export const MIN_BODY_LENGTH = 12;

/**
 * Verified caller keys kept, least recently verified evicted first (issue 16: caller keys shared
 * one bounded registry with provider keys and pushed them out). Keys the gateway issues
 * (`sk-gw-<id>.<secret>`) are caught by shape, body included, so they cost no literal; only keys of
 * another shape (legacy ones) become literals. Provider keys and header values are never evicted.
 */
export const MAX_CALLER_KEYS = 4096;

/**
 * Literals per expression. V8 compiles a very large alternation to slow code (measured: ~300
 * literals scan a log line in ~3 µs, ~500 in ~70 µs); past this many, the literals are split over
 * several expressions, so cost grows linearly, never off that cliff.
 */
const VALUES_PER_PATTERN = 128;

/**
 * Key shapes redacted whether or not the gateway holds them. Groups 1-4 capture a prefix that stays
 * (`Bearer `, `?key=`, `"api_key": `, `account `) so the text still says what was removed.
 */
const SHAPES: readonly string[] = [
  // `Authorization: Bearer <token>` echoed in a message.
  String.raw`([Bb]earer\s{1,16})[A-Za-z0-9._~+/=-]{8,}`,
  // A key in a URL's query (`?key=AIza…` for Google, `&api_key=…`).
  String.raw`([?&](?:api[_-]?key|apikey|key|access_token|token|auth|sig|signature)=)[^&\s"'#<>]{6,}`,
  // `"api_key": "…"`, `x-api-key: …`, `access_token=…`: a value with a digit among its first 64
  // characters, so `api_key: missing_parameter` is left alone. The lookahead is bounded: unbounded,
  // it rescanned the rest of the text from every `api_key=` (issue 16).
  String.raw`(\b(?:x-api-key|api[_-]?key|apikey|access[_-]?token|secret[_-]?key|client[_-]?secret)["']?\s{0,16}[:=]\s{0,16}["']?)(?=[A-Za-z_.~+/=-]{0,63}[0-9])[A-Za-z0-9_.~+/=-]{12,}`,
  // The gateway's own caller keys, with no word boundary before them (a JSON-escaped `\nsk-gw-…`).
  "sk-gw-[A-Za-z0-9_.-]{12,}",
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
  // AWS ARNs in any partition (`arn:aws:iam::123456789012:role/…`, `arn:aws-cn:sts::…`): a Bedrock
  // AccessDenied names the gateway's role and account (issue 16). The resource runs to its last
  // character that is not punctuation, so a sentence's closing `.` stays.
  "arn:aws[a-z-]{0,16}:[a-z0-9-]{0,40}:[a-z0-9-]{0,40}:[0-9]{0,12}:[A-Za-z0-9_+=,.@:/*-]*[A-Za-z0-9_+=@/*-]",
  // An AWS account id named as one (`account 123456789012`, `"accountId":"…"`, `Account ID: …`).
  // A bare 12-digit number is left to {@link redactForCaller}: an alternative that may start at
  // any digit doubles the cost of every log line, and the operator's own logs may name the account.
  String.raw`([Aa]ccount(?:[ _-]?[Ii][Dd])?["']?\s{0,4}[:=#]?\s{0,4}["']?)[0-9]{12}\b`,
];
const PREFIX_GROUPS = [1, 2, 3, 4];

/**
 * Where the body of an issued caller key (`<id>.<secret>`, what follows `sk-gw-`) may be echoed
 * alone: an anchor at the dot, leading the body expression (group 1). The key is then looked up in
 * the caller set, so only a verified key's body goes, at no literal per key. An alternative that
 * matched the body itself would start at any lower-case letter: measured, ten times the cost.
 */
const BODY_ANCHOR = String.raw`(\.)(?=[A-Za-z0-9_-]{32})`;

/** An issued caller key's body at the anchor (`lastIndex` set 12 characters before its dot). */
const ISSUED_BODY = /(?<![A-Za-z0-9_-])[a-z2-7]{12}\.[A-Za-z0-9_-]{32,128}(?![A-Za-z0-9_-])/y;

/** A bare 12-digit number: an AWS account id, as far as a caller is concerned. */
const ACCOUNT_ID = /(?<![\w-])[0-9]{12}(?![\w-])/g;

/**
 * A masked echo of a key: `abcd****wxyz` or DeepSeek's `****wxyz` (always redacted: nobody masks
 * what is not a secret), or `abcd...wxyz` / `abcd…wxyz` (redacted when its ends are the ends of a
 * registered value, since prose has dots too). Run only on text that holds such a mask. The visible
 * head starts where a run of key characters starts (not at every `-` inside one, which made
 * `a-a-a-…` cost 65 steps a character) and is at most 65 characters long.
 */
const MASKED =
  /(?<![\w-])[A-Za-z0-9][A-Za-z0-9_-]{0,64}(?:\*{3,}|\.{2,}|…)[A-Za-z0-9_*.…-]{0,64}|(?<![\w*])\*{3,}[A-Za-z0-9][A-Za-z0-9_*.…-]{0,63}/g;
const MASK_MARKS = ["***", "..", "…"];

/** A key's prefix part, one segment at a time: `sk-`, `live-`, `ant-`, `api03-`, `gsk_`. */
const PREFIX_SEGMENT = /^[a-z][a-z0-9]{0,9}[-_]/;
const MAX_PREFIX_SEGMENTS = 3;

/** A caller key in the format the gateway issues: {@link SHAPES} and a lookup catch it and its body. */
const ISSUED_CALLER_KEY = /^sk-gw-[a-z2-7]{12}\.[A-Za-z0-9_-]{32,128}$/;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/** The forms a value takes on its way out: as is, inside a JSON string, inside a URL. */
function variantsOf(value: string): string[] {
  return [...new Set([value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)])];
}

/**
 * What follows the value's prefix part (`sk-live-`, `sk-ant-api03-`, `gsk_`, `xai-`: up to three
 * short lower-case segments, each ending in `-` or `_`) when it is at least {@link MIN_BODY_LENGTH}
 * characters long; undefined otherwise, or for a value with no such prefix. An upstream that echoes
 * only the part after `sk-live-` still echoes the key (issue 16).
 */
export function bodyOf(value: string): string | undefined {
  let cut = 0;
  for (let i = 0; i < MAX_PREFIX_SEGMENTS; i++) {
    const segment = PREFIX_SEGMENT.exec(value.slice(cut));
    if (segment === null) break;
    cut += segment[0].length;
  }
  return cut > 0 && value.length - cut >= MIN_BODY_LENGTH ? value.slice(cut) : undefined;
}

/** What a registered value is removed as: its variants, and its body's. */
interface Literals {
  whole: readonly string[];
  body: readonly string[];
}

function literalsOf(value: string): Literals {
  const body = bodyOf(value);
  return { whole: variantsOf(value), body: body === undefined ? [] : variantsOf(body) };
}

/** `literals` escaped, longest first, in alternations of at most {@link VALUES_PER_PATTERN}. */
function chunks(literals: Iterable<string>): string[][] {
  // Longest first, so a value that contains another is removed whole.
  const sorted = [...new Set(literals)].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const out: string[][] = [];
  for (let i = 0; i < sorted.length; i += VALUES_PER_PATTERN)
    out.push(sorted.slice(i, i + VALUES_PER_PATTERN));
  return out;
}

/** What a masked echo keeps of a value: its first and last four characters. */
function endsOf(text: string): string {
  return `${text.slice(0, 4)}\u0000${text.slice(-4)}`;
}

/** `text` without its trailing `.`/`…` (a sentence's closing dot is not part of a mask). */
function withoutClosingDots(text: string): string {
  let end = text.length;
  while (end > 0 && (text[end - 1] === "." || text[end - 1] === "…")) end--;
  return text.slice(0, end);
}

export interface SecretRedactor {
  /**
   * Remembers a secret the gateway holds (a provider key, a configured header value), for the
   * life of the redactor: never evicted. Ignored when shorter than {@link MIN_SECRET_LENGTH}.
   */
  register(value: string | undefined): void;
  /** Remembers a verified caller key, in a set bounded at `maxCallerKeys` (least recent goes). */
  registerCallerKey(value: string | undefined): void;
  /** `text` with every registered value and every known key shape replaced by {@link REDACTED}. */
  redact(text: string): string;
  /** How many values are registered (secrets and caller keys). */
  readonly size: number;
}

/** One expression of a redaction, and what its groups mean. */
interface Pass {
  pattern: RegExp;
  /** Groups holding a prefix that stays (the first expression's shapes). */
  prefixGroups: readonly number[];
  /** The group of {@link BODY_ANCHOR}, in the first body expression. */
  anchorGroup: number | undefined;
}

/**
 * A registry of secret values in two parts: the gateway's own secrets, kept for good (as many as
 * the configuration names, plus one per rotated key seen), and verified caller keys, an LRU set bounded at
 * `maxCallerKeys` (registering a key again refreshes it; it is registered on every request). Only
 * values the gateway holds or has verified are ever registered, so a caller cannot flood it with
 * made-up keys. The expressions are rebuilt lazily, only after the set of literals changed.
 */
export function createSecretRedactor(
  options: { maxCallerKeys?: number; minLength?: number } = {},
): SecretRedactor {
  const maxCallerKeys = options.maxCallerKeys ?? MAX_CALLER_KEYS;
  const minLength = options.minLength ?? MIN_SECRET_LENGTH;
  /** Each secret with its literals. */
  const secrets = new Map<string, Literals>();
  /** Each caller key, in LRU order, with its literals: none for an issued key (shapes catch it). */
  const callerKeys = new Map<string, Literals | undefined>();
  /** {@link endsOf} every registered value, counted (two keys may share their ends). */
  const ends = new Map<string, number>();
  let issuedKeys = 0;
  let passes: Pass[] | undefined;

  const added = (value: string, literals: Literals | undefined, by: 1 | -1): void => {
    const key = endsOf(value);
    const count = (ends.get(key) ?? 0) + by;
    if (count > 0) ends.set(key, count);
    else ends.delete(key);
    if (literals !== undefined) {
      passes = undefined;
      return;
    }
    const hadIssued = issuedKeys > 0;
    issuedKeys += by;
    if (hadIssued !== issuedKeys > 0) passes = undefined; // the body anchor comes or goes
  };

  const compile = (): Pass[] => {
    const held = [...secrets.values(), ...callerKeys.values()].filter((l) => l !== undefined);
    const pass = (alternatives: string[], prefixGroups: readonly number[] = [], anchorGroup?: number) => ({
      pattern: new RegExp(alternatives.join("|"), "g"),
      prefixGroups,
      anchorGroup,
    });
    const [wholes = [], ...moreWholes] = chunks(held.flatMap((l) => l.whole));
    const [bodies = [], ...moreBodies] = chunks(held.flatMap((l) => l.body));
    const all = [pass([...wholes, ...SHAPES], PREFIX_GROUPS), ...moreWholes.map((c) => pass(c))];
    // The anchor leads its expression: as the only group there, it is group 1.
    if (issuedKeys > 0) all.push(pass([BODY_ANCHOR, ...bodies], [], 1));
    else if (bodies.length > 0) all.push(pass(bodies));
    return [...all, ...moreBodies.map((c) => pass(c))];
  };

  /** Where the issued caller key's body whose dot is at `dot` ends, if it is a verified key's. */
  const issuedBodyEnd = (text: string, dot: number): number | undefined => {
    if (dot < 12) return undefined;
    ISSUED_BODY.lastIndex = dot - 12;
    const body = ISSUED_BODY.exec(text);
    return body !== null && callerKeys.has(`sk-gw-${body[0]}`) ? ISSUED_BODY.lastIndex : undefined;
  };

  /**
   * One pass: a loop over `exec` rather than `replace`, since a caller key's body is replaced from
   * before its anchor to past it, and a dot that starts no such body is kept.
   */
  const scan = (text: string, { pattern, prefixGroups, anchorGroup }: Pass): string => {
    let out = "";
    let kept = 0;
    pattern.lastIndex = 0;
    for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
      const at = match.index;
      if (anchorGroup !== undefined && match[anchorGroup] !== undefined) {
        const end = issuedBodyEnd(text, at);
        if (end === undefined) continue;
        out += `${text.slice(kept, Math.max(kept, at - 12))}${REDACTED}`;
        kept = end;
        pattern.lastIndex = end;
        continue;
      }
      let prefix = "";
      for (const group of prefixGroups) prefix ||= match[group] ?? "";
      out += `${text.slice(kept, at)}${prefix}${REDACTED}`;
      kept = at + match[0].length;
    }
    return kept === 0 ? text : out + text.slice(kept);
  };

  const unmask = (match: string): string => {
    const core = withoutClosingDots(match);
    if (match.includes("***") || ends.has(endsOf(core))) return REDACTED + match.slice(core.length);
    return match;
  };

  return {
    register(value) {
      if (value === undefined || value.length < minLength || secrets.has(value)) return;
      const literals = literalsOf(value);
      secrets.set(value, literals);
      added(value, literals, 1);
    },
    registerCallerKey(value) {
      if (value === undefined || value.length < minLength) return;
      if (callerKeys.has(value)) {
        // Known: only its place in the LRU order changes (this runs on every request).
        const literals = callerKeys.get(value);
        callerKeys.delete(value);
        callerKeys.set(value, literals);
        return;
      }
      const literals = ISSUED_CALLER_KEY.test(value) ? undefined : literalsOf(value);
      callerKeys.set(value, literals);
      added(value, literals, 1);
      if (callerKeys.size <= maxCallerKeys) return;
      const [oldest] = callerKeys.keys();
      if (oldest === undefined) return;
      const oldestLiterals = callerKeys.get(oldest);
      callerKeys.delete(oldest);
      added(oldest, oldestLiterals, -1);
    },
    redact(text) {
      passes ??= compile();
      let out = text;
      for (const pass of passes) out = scan(out, pass);
      if (!MASK_MARKS.some((mark) => out.includes(mark))) return out;
      return out.replace(MASKED, unmask);
    },
    get size() {
      return secrets.size + callerKeys.size;
    },
  };
}

/** The process's registry: every key the gateway obtains is registered here (see `registeringKeys`). */
const processRedactor = createSecretRedactor();

/** Registers a secret the gateway holds (a provider key, a configured header value): never evicted. */
export function registerSecret(value: string | undefined): void {
  processRedactor.register(value);
}

/** Registers a verified caller key, in its own bounded set (caller keys never push provider keys out). */
export function registerCallerKey(value: string | undefined): void {
  processRedactor.registerCallerKey(value);
}

/**
 * Removes every secret the process holds, and anything shaped like an API key, from text that may
 * reach a caller or a log. Providers echo keys in their 401 messages ("Incorrect API key provided:
 * sk-abc***xyz", or the whole key in another shape).
 */
export function redactSecrets(text: string): string {
  return processRedactor.redact(text);
}

/**
 * {@link redactSecrets}, and every bare 12-digit number as an AWS account id: for what reaches a
 * caller (error bodies and stream error events, each dialect's serializer), where a Bedrock AccessDenied
 * must not tell the caller which account serves it (issue 16). Log lines keep such numbers.
 */
export function redactForCaller(text: string): string {
  return redactSecrets(text).replace(ACCOUNT_ID, REDACTED);
}
