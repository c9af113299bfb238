import { createHash } from "node:crypto";
import { boolean, ConfigError, number, object, optional, string } from "../config/fields.ts";
import type { ProviderConfig } from "../config/types.ts";
import { type EmbeddingInput, estimateEmbeddingTokens } from "../core/embeddings.ts";
import { type GenerationRequest, lastUserText } from "../core/request.ts";
import type { Deps } from "../deps.ts";
import { createChunkDecoder, fromCompletion } from "../dialects/openai-chat/decode.ts";
import { type ChatChunk, completionOutputChars, reportedUsage } from "../dialects/openai-chat/wire.ts";
import { ClientAbortError, streamCut } from "../errors.ts";
import { errorFromStatus } from "../retry/classify.ts";
import { defineProvider } from "./definition.ts";
import type { GenerationInput, GenerationStream, UpstreamEvent, WholeGeneration } from "./generation.ts";
import type { Provider } from "./types.ts";

export interface MockScriptStep {
  /** Answer with this HTTP-like status and an OpenAI error body instead of a completion. */
  status?: number;
  /** With `status`: a `Retry-After` in seconds. */
  retryAfterSeconds?: number;
  /** Stream this many tokens, then fail as a cut connection would. */
  cutAfterTokens?: number;
  /** Never produce a first token (the request hangs until a timeout or abort). */
  hang?: boolean;
}

/** The `mock` section of a mock provider's configuration. */
export interface MockOptions {
  /** The answer; `{input}` is replaced by the last user message. */
  reply: string;
  firstTokenDelayMs: number;
  tokenDelayMs: number;
  /** Steps taken in turn, one per call, cycling; an empty script always answers. */
  script: MockScriptStep[];
  /** What the mock's health probe reports. */
  healthy: boolean;
}

export const DEFAULT_MOCK: MockOptions = {
  reply: "This is the mock provider answering: {input}",
  firstTokenDelayMs: 50,
  tokenDelayMs: 20,
  script: [],
  healthy: true,
};

/**
 * The mock provider type: no key needed (one may be configured), no URL (a configured `baseUrl` is
 * ignored), and its health is what its `mock.healthy` says, whatever probe is configured.
 */
export const mock = defineProvider<MockOptions>({
  type: "mock",
  apiKey: "optional",
  baseUrl: { default: "mock://local", configurable: false },
  prefillBaseUrl: undefined,
  capabilities: { assistantPrefill: false },
  healthProbe: { default: { kind: "models" }, kinds: ["models", "chat"] },
  options: (provider, field) => optional(provider, "mock", field, mockOptions, DEFAULT_MOCK),
  create: (config, context) => createMockProvider(config, context.deps),
});

function mockOptions(value: unknown, field: string): MockOptions {
  const obj = object(value, field);
  const script = obj.script === undefined ? [] : obj.script;
  if (!Array.isArray(script)) throw new ConfigError(`${field}.script`, "must be an array");
  return {
    reply: optional(obj, "reply", field, string, DEFAULT_MOCK.reply),
    firstTokenDelayMs: optional(
      obj,
      "firstTokenDelayMs",
      field,
      number(0, 600_000),
      DEFAULT_MOCK.firstTokenDelayMs,
    ),
    tokenDelayMs: optional(obj, "tokenDelayMs", field, number(0, 60_000), DEFAULT_MOCK.tokenDelayMs),
    script: script.map((step, i) => mockStep(step, `${field}.script[${i}]`)),
    healthy: optional(obj, "healthy", field, boolean, DEFAULT_MOCK.healthy),
  };
}

function mockStep(value: unknown, field: string): MockScriptStep {
  if (value === "ok") return {};
  const obj = object(value, field);
  const step: MockScriptStep = {};
  if (obj.status !== undefined) step.status = number(400, 599)(obj.status, `${field}.status`);
  if (obj.retryAfterSeconds !== undefined) {
    step.retryAfterSeconds = number(0, 86_400)(obj.retryAfterSeconds, `${field}.retryAfterSeconds`);
  }
  if (obj.cutAfterTokens !== undefined)
    step.cutAfterTokens = number(0)(obj.cutAfterTokens, `${field}.cutAfterTokens`);
  if (obj.hang !== undefined) step.hang = boolean(obj.hang, `${field}.hang`);
  return step;
}

/**
 * A provider with no network, a mock of an OpenAI-compatible server: answers with a fixed reply,
 * token by token, after configurable delays, as native `openai-chat` chunks with their canonical
 * events, and follows a script of failures (an error status, a cut stream, a hang) so failover can be
 * shown and tested locally. The prompt is read from the canonical request, so a caller of any dialect
 * gets an answer. With `assistantPrefill` it continues a partial answer (`input.prefill`), as
 * DeepSeek's prefix completion does.
 */
export function createMockProvider(config: ProviderConfig<MockOptions>, deps: Deps): Provider {
  const options = config.options;
  let calls = 0;

  const nextStep = (): MockScriptStep => {
    const step = options.script.length === 0 ? {} : (options.script[calls % options.script.length] ?? {});
    calls++;
    return step;
  };

  const failIfScripted = async (step: MockScriptStep, signal: AbortSignal) => {
    if (step.hang) {
      await deps.sleep(2 ** 31 - 1, signal).catch(() => undefined);
      throw new ClientAbortError();
    }
    if (step.status !== undefined) {
      const headers =
        step.retryAfterSeconds === undefined ? {} : { "retry-after": String(step.retryAfterSeconds) };
      const body = JSON.stringify({
        error: { message: `mock failure ${step.status}`, type: "api_error", param: null, code: null },
      });
      throw errorFromStatus(config.id, step.status, headers, body, deps.now());
    }
  };

  const wait = async (ms: number, signal: AbortSignal) => {
    if (ms <= 0) return;
    try {
      await deps.sleep(ms, signal);
    } catch {
      throw new ClientAbortError();
    }
  };

  const chat: Provider["chat"] = {
    resume: config.assistantPrefill ? "prefill" : "restart",

    async complete(input, call): Promise<WholeGeneration> {
      const step = nextStep();
      await failIfScripted(step, call.signal);
      const request = promptOf(input);
      const answer = answerFor(options, request, input.prefill);
      await wait(options.firstTokenDelayMs + options.tokenDelayMs * answer.tokens.length, call.signal);
      const json = {
        id: `chatcmpl-mock-${deps.newId()}`,
        object: "chat.completion",
        created: Math.floor(deps.now() / 1000),
        model: call.model,
        choices: [{ index: 0, message: { role: "assistant", content: answer.text }, finish_reason: "stop" }],
        usage: usage(request, input.prefill, answer.tokens.length),
      };
      return {
        raw: JSON.stringify(json),
        dialect: "openai-chat",
        result: () => fromCompletion(json),
        usage: reportedUsage(json.usage),
        outputChars: completionOutputChars(json),
      };
    },

    async stream(input, call): Promise<GenerationStream> {
      const step = nextStep();
      await failIfScripted(step, call.signal);
      const request = promptOf(input);
      const answer = answerFor(options, request, input.prefill);
      const id = `chatcmpl-mock-${deps.newId()}`;
      const created = Math.floor(deps.now() / 1000);
      const decoder = createChunkDecoder();
      const event = (json: ChatChunk): UpstreamEvent => ({
        raw: JSON.stringify(json),
        dialect: "openai-chat",
        events: decoder.push(json),
      });
      const chunk = (delta: object, finish: string | null, extra: object = {}): UpstreamEvent =>
        event({
          id,
          object: "chat.completion.chunk",
          created,
          model: call.model,
          choices: [{ index: 0, delta, finish_reason: finish }],
          ...extra,
        } as ChatChunk);
      async function* events(): AsyncGenerator<UpstreamEvent> {
        yield chunk({ role: "assistant", content: "" }, null);
        await wait(options.firstTokenDelayMs, call.signal);
        for (const [i, token] of answer.tokens.entries()) {
          if (step.cutAfterTokens !== undefined && i >= step.cutAfterTokens) {
            throw streamCut(config.id, `stream cut after ${i} tokens (scripted)`);
          }
          if (i > 0) await wait(options.tokenDelayMs, call.signal);
          yield chunk({ content: token }, null);
        }
        yield chunk({}, "stop");
        // As an OpenAI-compatible server asked for `stream_options.include_usage`, as every stream is.
        yield event({
          id,
          object: "chat.completion.chunk",
          created,
          model: call.model,
          choices: [],
          usage: usage(request, input.prefill, answer.tokens.length),
        } as ChatChunk);
      }
      return { events: events(), cancel() {} };
    },
  };

  const embeddings: Provider["embeddings"] = {
    serves: () => true,
    async embed(request, call) {
      await failIfScripted(nextStep(), call.signal);
      await wait(options.firstTokenDelayMs, call.signal);
      return {
        vectors: request.inputs.map((input) => mockVector(input, request.dimensions ?? 16)),
        usage: { inputTokens: estimateEmbeddingTokens(request.inputs), estimated: false },
        model: call.model,
      };
    },
  };

  return {
    id: config.id,
    config,
    chat,
    embeddings,

    async healthCheck() {
      return options.healthy
        ? {
            ok: true,
            status: 200,
            latencyMs: options.firstTokenDelayMs,
            ttftMs: options.firstTokenDelayMs,
            error: undefined,
          }
        : { ok: false, status: 503, latencyMs: 0, ttftMs: undefined, error: "mock configured unhealthy" };
    },
  };
}

/**
 * The request as the mock reads it. A real OpenAI-compatible server takes content shapes the
 * canonical model refuses (a part that is an array), and so does the mock: it answers an empty
 * prompt then, as the gateway's own validation already passed the body.
 */
function promptOf(input: GenerationInput): GenerationRequest {
  try {
    return input.canonical();
  } catch {
    return { model: "", system: [], messages: [], stream: false, extensions: {}, unmapped: {} };
  }
}

function answerFor(
  options: MockOptions,
  request: GenerationRequest,
  prefill: GenerationInput["prefill"],
): { text: string; tokens: string[] } {
  const reply = options.reply.replaceAll("{input}", lastUserText(request).slice(0, 200));
  // Continue the partial answer: the rest of our reply if it starts the same way.
  const text = prefill !== undefined && reply.startsWith(prefill) ? reply.slice(prefill.length) : reply;
  return { text, tokens: text.match(/\s*\S+/g) ?? [] };
}

/** About what a server would count: the prompt's words and 3 per message (the prefill one too). */
function usage(request: GenerationRequest, prefill: string | undefined, completionTokens: number) {
  const words = (text: string) => text.match(/\S+/g)?.length ?? 0;
  let promptTokens = prefill === undefined ? 0 : words(prefill) + 3;
  for (const part of request.system) promptTokens += words(part.text) + 3;
  for (const message of request.messages) {
    promptTokens += 3;
    for (const part of message.content) if (part.type === "text") promptTokens += words(part.text);
  }
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/**
 * The mock's vector for an input, the same on every call: `dimensions` values k/1024 drawn from a
 * SHA-256 of the input, exact in float32 (the same values as the tests' fake embeddings servers),
 * 16 of them unless the request names `dimensions`.
 */
function mockVector(input: EmbeddingInput, dimensions: number): number[] {
  const text = "text" in input ? input.text : `tokens:${input.tokens.join(",")}`;
  const out: number[] = new Array(dimensions);
  let block = Buffer.alloc(0);
  for (let i = 0; i < dimensions; i++) {
    if (i % 8 === 0)
      block = createHash("sha256")
        .update(`${text}\u0000${i / 8}`)
        .digest();
    out[i] = ((block.readUInt32BE((i % 8) * 4) % 2049) - 1024) / 1024;
  }
  return out;
}
