import http from "node:http";
import { listen } from "../lib/server/node-server.ts";

/**
 * A seeded, misbehaving OpenAI-compatible upstream for `npm run bench:chaos` (issue 9, point 10).
 * It streams one known answer and fails a share of chat requests, in one of the ways real upstreams
 * fail. It runs in the load generator's process: it is cheap (a timer per token), and its counters
 * are then plain reads.
 *
 * Determinism: the fault for a call is drawn from a generator seeded by (seed, upstream name,
 * request key, how many calls this upstream has had for that key), where the request key is the
 * number in the caller's `chaos request <n>` message. So request 17's first call to the primary
 * meets the same fault in every run with the same seed, whatever the timing and concurrency; which
 * upstream the gateway picks for a retry still depends on its breaker state, so later draws may differ.
 */

/** The ways a call can fail. */
export type FaultKind =
  /** 503 with an OpenAI error body. */
  | "503"
  /** 429 with `Retry-After: 1` and an OpenAI error body. */
  | "429"
  /** The request is read, then the socket is reset (RST) before any status line. */
  | "reset"
  /** 200, the role chunk and some tokens, then the socket is destroyed mid-body. */
  | "cut"
  /** 200 headers, then nothing at all until the caller gives up. */
  | "stall-headers"
  /** 200, some tokens, then nothing until the caller gives up. */
  | "stall-tokens"
  /** The whole answer, finish and `[DONE]`, with 1 to 3 garbage `data:` events in between. */
  | "malformed"
  /**
   * Every token, then `data: [DONE]` and a clean end, but no chunk with a `finish_reason`: the
   * upstream claims completion of an answer it never finished. Whoever relays the `[DONE]` to a
   * caller passes that claim on: the soak counts it as a lie, since the caller cannot know the
   * answer is whole.
   */
  | "no-finish-done"
  /** Every token, then a clean end of the body with neither a `finish_reason` nor `[DONE]`. */
  | "no-finish-eof";

export const FAULT_KINDS: readonly FaultKind[] = [
  "503",
  "429",
  "reset",
  "cut",
  "stall-headers",
  "stall-tokens",
  "malformed",
  "no-finish-done",
  "no-finish-eof",
];

/** 20 tokens; a whole answer is exactly their concatenation. */
export const ANSWER_TOKENS: readonly string[] = [
  "The",
  " quick",
  " brown",
  " fox",
  " jumps",
  " over",
  " the",
  " lazy",
  " dog",
  " while",
  " the",
  " gateway",
  " keeps",
  " every",
  " answer",
  " whole",
  " and",
  " honest",
  " for",
  " callers.",
];
export const ANSWER = ANSWER_TOKENS.join("");

export interface ChaosUpstreamOptions {
  /** Names the upstream in stats and salts its fault draws. */
  name: string;
  /** Share of chat calls that fail, 0 to 1. */
  faultRate: number;
  /** The faults drawn from, uniformly. */
  faults: readonly FaultKind[];
  seed: number;
  /** Gap between two streamed tokens. */
  tokenMs: number;
  /** A stalled socket is destroyed after this long if the caller has not left (never leak one). */
  stallLimitMs?: number;
}

export interface ChaosUpstreamStats {
  name: string;
  /** Chat completion requests received (continuations included). */
  received: number;
  /** Of those, continuations: a last assistant message with `prefix: true`. */
  continuations: number;
  /** Calls that got the rest of the answer with a finish reason and `[DONE]` (no fault, or "malformed"). */
  answered: number;
  /** Faults injected, by kind. */
  faults: Partial<Record<FaultKind, number>>;
  /** Continuations whose prefix is not a prefix of the known answer (answered 400). */
  prefixMismatches: number;
  /** `GET /models` calls (health probes); never faulted. */
  probes: number;
}

export interface ChaosUpstream {
  url: string;
  stats(): ChaosUpstreamStats;
  close(): Promise<void>;
}

/** SplitMix32-style mixing: a well-spread 32-bit value from several integers. */
function mix(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const v of values) {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** Mulberry32: a small seeded generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

interface ChatBody {
  stream?: unknown;
  messages?: Array<{ role?: unknown; content?: unknown; prefix?: unknown }>;
}

/** The text still to send after `prefix`, split on the answer's token boundaries. */
function remainingTokens(prefix: string): string[] {
  const out: string[] = [];
  let offset = 0;
  for (const token of ANSWER_TOKENS) {
    const end = offset + token.length;
    if (end > prefix.length) out.push(offset >= prefix.length ? token : token.slice(prefix.length - offset));
    offset = end;
  }
  return out;
}

const GARBAGE = [
  'data: {"id":"chatcmpl-chaos","object":"chat.completion.chunk","choices":[{"delta":{"content":"',
  "data: <html><body>502 Bad Gateway</body></html>",
  "data: null",
  "data: ",
  "data: {not json}",
];

/** Starts a chaos upstream on 127.0.0.1 (port 0). */
export async function startChaosUpstream(options: ChaosUpstreamOptions): Promise<ChaosUpstream> {
  const { name, faultRate, faults, seed, tokenMs } = options;
  const stallLimitMs = options.stallLimitMs ?? 60_000;
  const salt = hashString(name);
  const callsByKey = new Map<string, number>();
  let anonymous = 0;
  const stats: ChaosUpstreamStats = {
    name,
    received: 0,
    continuations: 0,
    answered: 0,
    faults: {},
    prefixMismatches: 0,
    probes: 0,
  };

  const chunk = (id: string, delta: object, finish: string | null) =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: 1, model: name, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const errorBody = (message: string, type: string, code: string) =>
    JSON.stringify({ error: { message, type, param: null, code } });

  function sendError(res: http.ServerResponse, status: number, body: string, headers: object = {}): void {
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }

  function chat(req: http.IncomingMessage, res: http.ServerResponse, text: string): void {
    let body: ChatBody;
    try {
      body = JSON.parse(text) as ChatBody;
    } catch {
      sendError(res, 400, errorBody("body is not JSON", "invalid_request_error", "invalid_json"));
      return;
    }
    stats.received++;
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const last = messages[messages.length - 1];
    const continuing = last?.role === "assistant" && last.prefix === true;
    const prefix = continuing && typeof last.content === "string" ? last.content : "";
    if (continuing) stats.continuations++;
    if (!ANSWER.startsWith(prefix)) {
      stats.prefixMismatches++;
      sendError(
        res,
        400,
        errorBody(
          "the prefix is not the start of the answer",
          "invalid_request_error",
          "chaos_prefix_mismatch",
        ),
      );
      return;
    }
    const user = messages.find((m) => m.role === "user");
    const key =
      (typeof user?.content === "string" ? /chaos request (\d+)/.exec(user.content)?.[1] : undefined) ??
      `anonymous-${anonymous++}`;
    const call = callsByKey.get(key) ?? 0;
    callsByKey.set(key, call + 1);
    const random = seededRandom(mix(seed, salt, hashString(key), call));
    const fault =
      faults.length > 0 && random() < faultRate ? faults[Math.floor(random() * faults.length)] : undefined;
    if (fault) stats.faults[fault] = (stats.faults[fault] ?? 0) + 1;

    const tokens = remainingTokens(prefix);
    if (body.stream !== true) {
      // Not used by the soak (every request streams); answered whole so a stray call is harmless.
      stats.answered++;
      const completion = JSON.stringify({
        id: `chatcmpl-chaos-${key}`,
        object: "chat.completion",
        created: 1,
        model: name,
        choices: [
          { index: 0, message: { role: "assistant", content: tokens.join("") }, finish_reason: "stop" },
        ],
      });
      sendError(res, 200, completion);
      return;
    }
    switch (fault) {
      case "503":
        sendError(res, 503, errorBody("chaos: service unavailable", "api_error", "service_unavailable"));
        return;
      case "429":
        sendError(res, 429, errorBody("chaos: rate limited", "rate_limit_error", "rate_limit_exceeded"), {
          "retry-after": "1",
        });
        return;
      case "reset":
        req.socket.resetAndDestroy();
        return;
    }

    const id = `chatcmpl-chaos-${key}-${call}`;
    // What to write, one entry per tick, then how the response ends.
    const writes: string[] = [];
    let ending: "answered" | "destroy" | "stall" | "end";
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    if (fault === "stall-headers") {
      res.flushHeaders();
      ending = "stall";
    } else {
      writes.push(chunk(id, { role: "assistant", content: "" }, null));
      const partial = fault === "cut" || fault === "stall-tokens";
      // Tokens sent before a cut or a stall: 0 to n-1, so the answer is never complete.
      const sent = partial ? tokens.slice(0, Math.floor(random() * tokens.length)) : tokens;
      for (const token of sent) writes.push(chunk(id, { content: token }, null));
      if (fault === "cut") ending = "destroy";
      else if (fault === "stall-tokens") ending = "stall";
      else if (fault === "no-finish-eof") ending = "end";
      else if (fault === "no-finish-done") {
        writes.push("data: [DONE]\n\n");
        ending = "end";
      } else {
        if (fault === "malformed") {
          const count = 1 + Math.floor(random() * 3);
          for (let i = 0; i < count; i++) {
            const at = 1 + Math.floor(random() * writes.length);
            const garbage = GARBAGE[Math.floor(random() * GARBAGE.length)] as string;
            writes.splice(at, 0, `${garbage}\n\n`);
          }
        }
        writes.push(chunk(id, {}, "stop"), "data: [DONE]\n\n");
        ending = "answered";
      }
    }

    let timer: NodeJS.Timeout | undefined;
    res.on("close", () => clearTimeout(timer));
    let next = 0;
    // One write per tick, `tokenMs` apart; the ending follows the last write at once, so a caller
    // that leaves as soon as it has read `[DONE]` does not make a whole answer look unanswered.
    const tick = () => {
      if (res.destroyed) return;
      const write = writes[next++];
      if (write !== undefined) res.write(write);
      if (next < writes.length) {
        timer = setTimeout(tick, tokenMs);
        return;
      }
      if (ending === "destroy") res.destroy();
      else if (ending === "stall") timer = setTimeout(() => res.destroy(), stallLimitMs);
      else {
        if (ending === "answered") stats.answered++;
        res.end();
      }
    };
    tick();
  }

  const server = http.createServer((req, res) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => {
      text += d;
    });
    req.on("end", () => {
      if (req.method === "GET" && req.url?.endsWith("/models")) {
        stats.probes++;
        sendError(res, 200, JSON.stringify({ object: "list", data: [{ id: "chaos", object: "model" }] }));
        return;
      }
      if (req.method === "POST" && req.url?.endsWith("/chat/completions")) {
        chat(req, res, text);
        return;
      }
      sendError(res, 404, errorBody("no such route", "invalid_request_error", "not_found"));
    });
  });
  server.keepAliveTimeout = 60_000;
  const url = await listen(server, 0, "127.0.0.1");
  return {
    url,
    stats: () => structuredClone(stats),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
