/**
 * Reasoning of another provider family carried through a Responses caller (issue 19).
 *
 * A Responses caller that runs without stored responses (Codex: `store: false`,
 * `include: ["reasoning.encrypted_content"]`) sends each reasoning item back on the next turn with
 * its `encrypted_content`. When the answer came from Claude, that blob must give the next turn
 * Anthropic's thinking `signature` (or `redacted_thinking` data) back, or a tool loop with thinking
 * on is refused. So a signature of a family other than OpenAI's is sealed into `encrypted_content`
 * with a prefix of the gateway's own, and opened again on the way in; OpenAI's own encrypted content
 * (family `openai`) is written and read as is. Neither is a secret: the provider verifies its own
 * signature, and a target of another family never receives it (`family` says whose it is).
 */

/** The prefix of a gateway-sealed `encrypted_content`; OpenAI's own begin otherwise (`gAAAA…`). */
export const SEALED_PREFIX = "llmgw-r1.";

/** OpenAI's family name, for reasoning the Responses API itself produced. */
export const OPENAI_FAMILY = "openai";

export interface ReasoningSeal {
  family: string;
  signature?: string | undefined;
  redacted?: string | undefined;
}

/** The `encrypted_content` for a reasoning block's signature, or undefined when it has none. */
export function sealReasoning(seal: ReasoningSeal): string | undefined {
  if (seal.signature === undefined && seal.redacted === undefined) return undefined;
  if (seal.family === OPENAI_FAMILY && seal.redacted === undefined) return seal.signature;
  const body: Record<string, string> = { f: seal.family };
  if (seal.signature !== undefined) body.s = seal.signature;
  if (seal.redacted !== undefined) body.r = seal.redacted;
  return SEALED_PREFIX + Buffer.from(JSON.stringify(body), "utf8").toString("base64url");
}

/**
 * The family and signature an `encrypted_content` carries: a sealed one opened, anything else
 * OpenAI's. A sealed blob that does not open (cut, edited) is kept as OpenAI's opaque content, so
 * it can only ever reach an OpenAI target, which refuses it in its own words.
 */
export function openReasoning(encrypted: string): ReasoningSeal {
  if (!encrypted.startsWith(SEALED_PREFIX)) return { family: OPENAI_FAMILY, signature: encrypted };
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(encrypted.slice(SEALED_PREFIX.length), "base64url").toString("utf8"));
  } catch {
    return { family: OPENAI_FAMILY, signature: encrypted };
  }
  if (typeof body !== "object" || body === null) return { family: OPENAI_FAMILY, signature: encrypted };
  const { f, s, r } = body as Record<string, unknown>;
  if (typeof f !== "string" || (typeof s !== "string" && typeof r !== "string"))
    return { family: OPENAI_FAMILY, signature: encrypted };
  const seal: ReasoningSeal = { family: f };
  if (typeof s === "string") seal.signature = s;
  if (typeof r === "string") seal.redacted = r;
  return seal;
}
