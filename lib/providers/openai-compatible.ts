import { boolean, type ConfigObject, optional } from "../config/fields.ts";
import type { ProviderConfig } from "../config/types.ts";
import type { Deps } from "../deps.ts";
import { type ChunkDecoder, createChunkDecoder, fromCompletion } from "../dialects/openai-chat/decode.ts";
import { toChatRequest } from "../dialects/openai-chat/request.ts";
import {
  type ChatChunk,
  type ChatMessage,
  type ChatRequest,
  completionOutputChars,
  reportedUsage,
} from "../dialects/openai-chat/wire.ts";
import { invalidResponse, quoteCallerText, redactSecrets, type UpstreamError } from "../errors.ts";
import type { HttpResponse } from "../http/client.ts";
import { parseSse } from "../http/sse.ts";
import { errorFromStreamEvent, toUpstreamError } from "../retry/classify.ts";
import { boundedHealthCheck, chatProbe, embeddingsProbe } from "./base.ts";
import { defineProvider, type ProviderContext, type RegisteredProvider } from "./definition.ts";
import type {
  GenerationInput,
  GenerationOptions,
  GenerationStream,
  UpstreamEvent,
  WholeGeneration,
} from "./generation.ts";
import { modelsProbe, postWithKey } from "./keyed-post.ts";
import { createOpenAIEmbeddings } from "./openai-embeddings.ts";
import { createOpenAIResponses } from "./openai-responses.ts";
import type { Provider } from "./types.ts";

/** What sets one OpenAI-compatible provider type apart: data, no code. */
export interface OpenAICompatibleFacts {
  type: string;
  /** The API's base URL, under which `/chat/completions` and `/models` live. */
  baseUrl: string;
  /** Where the API serves prefix completion (a final assistant message continued), if elsewhere. */
  prefillBaseUrl?: string;
}

/** What an OpenAI-compatible provider's configuration has beyond the fields every provider has. */
export interface OpenAICompatibleOptions {
  /**
   * The server speaks OpenAI's Responses API too (issue 19; default false): a Responses caller is
   * sent its own body at `{baseUrl}/responses` (see `openai-responses.ts`); every other caller, and
   * a continuation, still goes through chat completions.
   */
  responsesApi: boolean;
}

function openAICompatibleOptions(provider: ConfigObject, field: string): OpenAICompatibleOptions {
  return { responsesApi: optional(provider, "responsesApi", field, boolean, false) };
}

/**
 * The definition of a provider type that speaks the OpenAI wire format: an API key is required, the
 * base URL may be changed (a proxy, a self-hosted server), prefill is off unless configured, the
 * Responses API is used only if configured, and the health probe is `GET /models` unless a
 * one-token chat is configured.
 */
export function defineOpenAICompatible(facts: OpenAICompatibleFacts): RegisteredProvider {
  return defineProvider<OpenAICompatibleOptions>({
    type: facts.type,
    apiKey: "required",
    baseUrl: { default: facts.baseUrl, configurable: true },
    prefillBaseUrl: facts.prefillBaseUrl,
    capabilities: { assistantPrefill: false },
    healthProbe: { default: { kind: "models" }, kinds: ["models", "chat", "embeddings"] },
    options: openAICompatibleOptions,
    create: createOpenAICompatibleProvider,
  });
}

/**
 * The OpenAI chat completions wire format (https://platform.openai.com/docs/api-reference/chat),
 * spoken by OpenAI, DeepSeek, and most self-hosted servers: the `openai-chat` dialect natively. An
 * OpenAI chat caller's body is sent as it came, with `model` set to the target's upstream name
 * (unknown fields untouched), and the answer's bytes are handed on beside their canonical events;
 * a caller of another dialect is sent the body built from its canonical request. With `responsesApi`,
 * a Responses caller's body goes to `/responses` instead, and its answer's bytes come back likewise.
 */
export function createOpenAICompatibleProvider(
  config: ProviderConfig<OpenAICompatibleOptions>,
  context: ProviderContext,
): Provider {
  const { deps } = context;

  function post(
    request: Readonly<Record<string, unknown>>,
    options: GenerationOptions,
    prefill: boolean,
    streaming: boolean,
    path = "/chat/completions",
  ): Promise<HttpResponse> {
    const base = prefill && config.prefillBaseUrl ? config.prefillBaseUrl : config.baseUrl;
    return postWithKey(context, config, {
      url: `${base}${path}`,
      headers: config.headers,
      credential: (key) => ({ authorization: `Bearer ${key}` }),
      body: JSON.stringify(request),
      streaming,
      options,
    });
  }

  /** What a caller of another dialect asks for that the OpenAI body cannot say: logged once per call. */
  const fromCanonical = (input: GenerationInput): ChatRequest => {
    const dropped = new Set<string>();
    const body = toChatRequest(input.canonical(), { onDrop: (what) => dropped.add(what) });
    if (dropped.size > 0)
      deps.logger.warn({
        msg: "request fields an OpenAI-compatible target cannot carry were dropped",
        provider: config.id,
        dialect: input.dialect,
        dropped: [...dropped].slice(0, 20).map((what) => quoteCallerText(what)),
      });
    return body;
  };

  const responses = config.options.responsesApi
    ? createOpenAIResponses(
        config.id,
        (body, options, streaming) => post(body, options, false, streaming, "/responses"),
        deps,
      )
    : undefined;
  /** The Responses upstream for a Responses caller's own body; a continuation (a prefill) goes as chat. */
  const natively = (input: GenerationInput) =>
    input.dialect === "openai-responses" && input.prefill === undefined ? responses : undefined;

  const chat: Provider["chat"] = {
    resume: config.assistantPrefill ? "prefill" : "restart",

    async complete(input, options): Promise<WholeGeneration> {
      const native = natively(input);
      if (native !== undefined) return native.complete(input, options);
      // Non-streaming answers arrive whole, so one timer in the HTTP client bounds headers and body.
      try {
        const body = upstreamBody(input, options.model, false, fromCanonical);
        const response = await post(body, options, input.prefill !== undefined, false);
        const text = await response.text();
        const json = parseCompletion(config.id, text);
        return {
          raw: text,
          dialect: "openai-chat",
          result: () => fromCompletion(json),
          usage: reportedUsage(json.usage),
          outputChars: completionOutputChars(json),
        };
      } catch (error) {
        throw toUpstreamError(config.id, error);
      }
    },

    async stream(input, options): Promise<GenerationStream> {
      const native = natively(input);
      if (native !== undefined) return native.stream(input, options);
      const body = upstreamBody(input, options.model, true, fromCanonical);
      const response = await post(body, options, input.prefill !== undefined, true);
      if (isJson(response.headers["content-type"])) {
        // Some servers ignore `stream: true` and answer with the whole completion (issue 9: served
        // as a 502 and blamed on the provider). It is a good answer: replay it as stream events.
        let text: string;
        try {
          text = await response.text();
        } catch (error) {
          throw toUpstreamError(config.id, error);
        }
        const cancel = () => response.destroy();
        // A body that is SSE after all (only its content-type was wrong) is read as SSE.
        if (/^\s*(?:data|event|id|retry)?:/.test(text))
          return { events: streamEvents(config.id, once(Buffer.from(text)), deps, () => {}), cancel };
        const completion = parseCompletion(config.id, text);
        return { events: replayed(completion), cancel };
      }
      let released = false;
      return {
        events: streamEvents(config.id, response.body, deps, (clean) => {
          released = clean;
          if (clean) response.release();
          else response.destroy();
        }),
        // After a clean end the socket is back in the pool, possibly serving another request.
        cancel: () => {
          if (!released) response.destroy();
        },
      };
    },
  };

  const embeddings = createOpenAIEmbeddings(config.id, (body, options) =>
    post(body, options, false, false, "/embeddings"),
  );

  return {
    id: config.id,
    config,
    chat,
    embeddings,

    async healthCheck(options) {
      const probe = config.healthProbe;
      return boundedHealthCheck(
        config,
        deps,
        options,
        (error) => toUpstreamError(config.id, error),
        async (check) => {
          if (probe.kind === "chat") return chatProbe({ config, chat }, probe.model, check, deps.now);
          if (probe.kind === "embeddings")
            return embeddingsProbe({ config, embeddings }, probe.model, check, deps.now);
          return modelsProbe(
            context,
            config,
            {
              url: `${config.baseUrl}/models`,
              headers: config.headers,
              credential: (key) => ({ authorization: `Bearer ${key}` }),
            },
            check,
          );
        },
      );
    },
  };
}

/**
 * The body sent upstream. An OpenAI chat caller's own body, copied only if a field must change:
 * `model` is the target's, `stream` says how the call is made, a stream always asks for its usage
 * (`stream_options.include_usage`: the engine meters every request, and the caller's dialect adapter
 * keeps the usage chunk from a caller who did not ask), and a continuation (`input.prefill`) ends
 * with the answer so far as an assistant message with `prefix: true` (DeepSeek's prefix completion,
 * https://api-docs.deepseek.com/guides/chat_prefix_completion). Another dialect's input is sent as
 * the OpenAI body of its canonical request, under the same rules.
 */
function upstreamBody(
  input: GenerationInput,
  model: string,
  streaming: boolean,
  fromCanonical: (input: GenerationInput) => ChatRequest,
): Readonly<Record<string, unknown>> {
  const body: Readonly<Record<string, unknown>> =
    input.dialect === "openai-chat" ? input.body : fromCanonical(input);
  const options = body.stream_options;
  const asksUsage =
    typeof options === "object" &&
    options !== null &&
    (options as { include_usage?: unknown }).include_usage === true;
  const streamRight = streaming ? body.stream === true : body.stream !== true;
  if (body.model === model && streamRight && (!streaming || asksUsage) && input.prefill === undefined)
    return body;
  const out: Record<string, unknown> = { ...body, model };
  // Absent and false both mean "not streamed": a whole answer corrects only a true.
  if (!streamRight) out.stream = streaming;
  if (streaming && !asksUsage)
    out.stream_options = {
      ...(typeof options === "object" && options !== null ? options : {}),
      include_usage: true,
    };
  if (input.prefill !== undefined) {
    const messages = Array.isArray(body.messages) ? (body.messages as ChatMessage[]) : [];
    out.messages = [...messages, { role: "assistant", content: input.prefill, prefix: true }];
  }
  return out;
}

/**
 * Checks a 200's body is one whole JSON chat completion: an object with a list of choices. Anything
 * else (HTML from a proxy, a truncated body, `{"error": ...}` sent with 200, JSON of another API) is
 * not a readable answer, and that is the provider's fault (issue 16): a 502 that fails over, never a
 * 200 carrying an error and never a 400 blamed on the caller.
 */
function parseCompletion(providerId: string, body: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw unreadable(providerId, "a body that is not JSON (truncated or malformed)");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw unreadable(providerId, "JSON that is not an object");
  const object = json as Record<string, unknown>;
  const choices = object.choices;
  if (Array.isArray(choices) && choices.length > 0) return object;
  if (object.error !== undefined && object.error !== null) {
    const error = object.error as { message?: unknown };
    const message = typeof error === "string" ? error : error.message;
    // Upstream text, which may echo the caller's or a key: redacted, then cut to a bounded length.
    throw unreadable(
      providerId,
      typeof message === "string" ? `an error (${quoteCallerText(redactSecrets(message))})` : "an error",
    );
  }
  throw unreadable(providerId, "JSON that is not a chat completion (no choices)");
}

function unreadable(providerId: string, what: string): UpstreamError {
  return invalidResponse(providerId, what);
}

function isJson(contentType: string | string[] | undefined): boolean {
  return typeof contentType === "string" && /^\s*application\/(?:[\w.+-]+\+)?json\b/i.test(contentType);
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/**
 * A whole completion as the events its stream would have had: a chunk with each choice's message as
 * its delta, a chunk with each finish reason, and a usage chunk when it has usage (a stream always
 * asks for it). Each carries its chunk's JSON as `raw` and its canonical events; then the end.
 */
async function* replayed(completion: Record<string, unknown>): AsyncGenerator<UpstreamEvent> {
  const decoder = createChunkDecoder();
  const choices = Array.isArray(completion.choices) ? (completion.choices as unknown[]) : [];
  const head: Record<string, unknown> = {
    id: completion.id,
    object: "chat.completion.chunk",
    created: completion.created,
    model: completion.model,
    ...(completion.system_fingerprint === undefined
      ? {}
      : { system_fingerprint: completion.system_fingerprint }),
  };
  const chunk = (fields: Record<string, unknown>): UpstreamEvent => {
    const object = { ...head, ...fields };
    return { raw: JSON.stringify(object), dialect: "openai-chat", events: decoder.push(object as ChatChunk) };
  };
  const each = (map: (choice: Record<string, unknown>, index: number) => Record<string, unknown>) =>
    choices.map((c, i) => {
      const choice = typeof c === "object" && c !== null ? (c as Record<string, unknown>) : {};
      return map(choice, typeof choice.index === "number" ? choice.index : i);
    });
  yield chunk({
    choices: each((choice, index) => ({
      index,
      delta: deltaOf(choice.message),
      ...(choice.logprobs === undefined ? {} : { logprobs: choice.logprobs }),
      finish_reason: null,
    })),
  });
  yield chunk({
    choices: each((choice, index) => ({
      index,
      delta: {},
      finish_reason: typeof choice.finish_reason === "string" ? choice.finish_reason : "stop",
    })),
  });
  if (completion.usage !== undefined) yield chunk({ choices: [], usage: completion.usage });
}

/** A whole message as one stream delta: tool calls gain the `index` a streamed tool call carries. */
function deltaOf(message: unknown): Record<string, unknown> {
  if (typeof message !== "object" || message === null) return { role: "assistant", content: "" };
  const delta: Record<string, unknown> = { role: "assistant", ...(message as Record<string, unknown>) };
  if (Array.isArray(delta.tool_calls)) {
    delta.tool_calls = delta.tool_calls.map((call: unknown, index) =>
      typeof call === "object" && call !== null ? { index, ...(call as Record<string, unknown>) } : call,
    );
  }
  return delta;
}

/**
 * Upstream SSE as upstream events: each data event's payload as `raw`, beside the canonical events
 * one decoder for the stream reads from it. A malformed event is skipped and logged, never
 * forwarded; an error event becomes a thrown error; keep-alives are dropped here (they are not
 * content); `[DONE]` ends the iterator. `finish` is told whether the body was read to a clean end
 * (the socket can be reused) or not (it is dropped).
 */
async function* streamEvents(
  providerId: string,
  body: AsyncIterable<Uint8Array>,
  deps: Deps,
  finish: (clean: boolean) => void,
): AsyncGenerator<UpstreamEvent> {
  const decoder: ChunkDecoder = createChunkDecoder();
  let malformed = 0;
  let done = false;
  try {
    for await (const event of parseSse(body)) {
      if (event.kind !== "data") continue;
      if (event.data === "[DONE]") {
        done = true;
        return;
      }
      let chunk: ChatChunk;
      try {
        chunk = JSON.parse(event.data) as ChatChunk;
      } catch {
        malformed++;
        deps.logger.warn({ msg: "skipped malformed upstream SSE event", provider: providerId, malformed });
        continue;
      }
      if (typeof chunk !== "object" || chunk === null) {
        malformed++;
        deps.logger.warn({ msg: "skipped malformed upstream SSE event", provider: providerId, malformed });
        continue;
      }
      if (chunk.error !== undefined || event.event === "error")
        throw errorFromStreamEvent(providerId, chunk.error);
      yield { raw: event.data, dialect: "openai-chat", events: decoder.push(chunk) };
    }
    done = true; // the body ended cleanly: the socket can be reused
  } catch (error) {
    throw toUpstreamError(providerId, error);
  } finally {
    finish(done);
  }
}
