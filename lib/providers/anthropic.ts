/**
 * The `anthropic` provider type: Anthropic's Messages API (https://docs.anthropic.com/en/api/messages),
 * the `anthropic-messages` dialect natively (issue 18). A Messages caller's body is sent as it came,
 * with `model` set to the target's and `stream` to how the call is made: unknown fields,
 * `cache_control`, thinking blocks and their signatures are untouched, and the answer's bytes are
 * handed on beside their canonical events. A caller of another dialect (OpenAI chat) is sent the
 * Messages body of its canonical request (`toMessagesRequest`), whose answer is read back through
 * the same decoder. The key goes in `x-api-key`, the API version in `anthropic-version`, the caller's
 * `anthropic-beta` flags as the provider's `betas` allow them.
 */
import { ConfigError, type ConfigObject, isObject } from "../config/fields.ts";
import type { ProviderConfig } from "../config/types.ts";
import type { GenerationResult } from "../core/events.ts";
import type { Deps } from "../deps.ts";
import { createEventDecoder, fromMessage } from "../dialects/anthropic-messages/decode.ts";
import {
  anthropicToolNames,
  type ToolNames,
  toMessagesRequest,
} from "../dialects/anthropic-messages/request.ts";
import { usageFromAnthropic } from "../dialects/anthropic-messages/usage.ts";
import { invalidResponse, quoteCallerText, UpstreamError } from "../errors.ts";
import type { HttpResponse } from "../http/client.ts";
import { parseSse } from "../http/sse.ts";
import { toUpstreamError } from "../retry/classify.ts";
import { type BetaAllowList, betaAllowList, createBetaFilter } from "./anthropic-betas.ts";
import { boundedHealthCheck, chatProbe } from "./base.ts";
import { defineProvider, type ProviderContext } from "./definition.ts";
import type {
  GenerationInput,
  GenerationOptions,
  GenerationStream,
  UpstreamEvent,
  WholeGeneration,
} from "./generation.ts";
import { modelsProbe, postWithKey } from "./keyed-post.ts";
import {
  COUNT_TOKENS_REFUSES,
  readMessage,
  resultOutputChars,
  withCanonicalPrefill,
  withPrefill,
} from "./messages-upstream.ts";
import type { Provider } from "./types.ts";

type Obj = Record<string, unknown>;

/** The API version sent in `anthropic-version` (the only one the API has had since 2023). */
export const ANTHROPIC_VERSION = "2023-06-01";

/** What an `anthropic` provider's configuration has beyond the fields every provider has. */
export interface AnthropicOptions {
  /**
   * The caller's `anthropic-beta` flags forwarded: `"all"` (the default: the API is the authority
   * on its own flags, and Claude Code sends only flags it knows) or a list, for a proxy or a
   * compatible server that refuses flags it does not know. Others are dropped and logged once.
   */
  betas: BetaAllowList;
}

/**
 * The `anthropic` type: key required (`x-api-key`), base URL `https://api.anthropic.com` (a proxy's
 * may be set; `/v1/messages` is appended), prefill off unless configured (`assistantPrefill`: Claude
 * continues a trailing assistant message, but not every model takes one), health probe
 * `GET /v1/models` unless a one-token message is configured.
 */
export const anthropic = defineProvider<AnthropicOptions>({
  type: "anthropic",
  apiKey: "required",
  baseUrl: { default: "https://api.anthropic.com", configurable: true },
  prefillBaseUrl: undefined,
  capabilities: { assistantPrefill: false },
  healthProbe: { default: { kind: "models" }, kinds: ["models", "chat"] },
  options: anthropicOptions,
  create: (config, context) => createAnthropicProvider(config, config.options, context),
});

function anthropicOptions(provider: ConfigObject, field: string): AnthropicOptions {
  if (provider.betas === undefined) return { betas: "all" };
  if (isObject(provider.betas)) throw new ConfigError(`${field}.betas`, 'must be "all" or a list of flags');
  return { betas: betaAllowList(provider.betas, `${field}.betas`) };
}

/** What one call sends: the body, and the way back for the tool names it renamed. */
interface Outgoing {
  body: Obj;
  toolNames: ToolNames | undefined;
}

export function createAnthropicProvider(
  config: ProviderConfig,
  options: AnthropicOptions,
  context: ProviderContext,
): Provider {
  const { deps } = context;
  const betasFor = createBetaFilter(config.id, options.betas, deps.logger);

  function post(
    path: string,
    body: Obj,
    input: GenerationInput,
    options: GenerationOptions,
    streaming: boolean,
  ): Promise<HttpResponse> {
    const betas = input.dialect === "anthropic-messages" ? betasFor(input.headers?.["anthropic-beta"]) : [];
    return postWithKey(context, config, {
      url: `${config.baseUrl}${path}`,
      headers: {
        "anthropic-version": ANTHROPIC_VERSION,
        ...config.headers,
        ...(betas.length > 0 ? { "anthropic-beta": betas.join(",") } : {}),
      },
      credential: (key) => ({ "x-api-key": key }),
      body: JSON.stringify(body),
      streaming,
      options,
    });
  }

  /** What a caller of another dialect asks for that the Messages body cannot say: logged once per call. */
  const fromCanonical = (input: GenerationInput, model: string, streaming: boolean): Outgoing => {
    const canonical = input.canonical();
    const request = input.prefill === undefined ? canonical : withCanonicalPrefill(canonical, input.prefill);
    const toolNames = anthropicToolNames(request);
    const dropped = new Set<string>();
    const body = toMessagesRequest(
      { ...request, model, stream: streaming },
      { toolNames, onDrop: (what) => dropped.add(what) },
    );
    if (dropped.size > 0)
      deps.logger.warn({
        msg: "request fields an Anthropic target cannot carry were dropped",
        provider: config.id,
        dialect: input.dialect,
        dropped: [...dropped].slice(0, 20).map((what) => quoteCallerText(what)),
      });
    return { body, toolNames };
  };

  const outgoing = (input: GenerationInput, model: string, streaming: boolean): Outgoing =>
    input.dialect === "anthropic-messages"
      ? { body: ownBody(input.body, model, streaming, input.prefill), toolNames: undefined }
      : fromCanonical(input, model, streaming);

  const chat: Provider["chat"] = {
    resume: config.assistantPrefill ? "prefill" : "restart",

    async complete(input, options): Promise<WholeGeneration> {
      try {
        const { body, toolNames } = outgoing(input, options.model, false);
        const response = await post("/v1/messages", body, input, options, false);
        const text = await response.text();
        const json = readMessage(text);
        if (typeof json === "string") throw unreadable(config.id, json);
        const toolName = toolNames?.fromWire;
        let result: GenerationResult | undefined;
        const read = () => {
          result ??= fromMessage(json, { toolName });
          return result;
        };
        return {
          raw: text,
          dialect: "anthropic-messages",
          result: read,
          usage: isObject(json.usage) ? usageFromAnthropic(json.usage) : undefined,
          outputChars: resultOutputChars(read()),
        };
      } catch (error) {
        throw toUpstreamError(config.id, error);
      }
    },

    async stream(input, options): Promise<GenerationStream> {
      const { body, toolNames } = outgoing(input, options.model, true);
      const response = await post("/v1/messages", body, input, options, true);
      let released = false;
      return {
        events: streamEvents(config.id, response.body, toolNames, deps, (clean) => {
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

    async countTokens(input, options): Promise<number> {
      try {
        const { body } = outgoing(input, options.model, false);
        for (const key of COUNT_TOKENS_REFUSES) delete body[key];
        const response = await post("/v1/messages/count_tokens", body, input, options, false);
        const text = await response.text();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const count = isObject(json) ? json.input_tokens : undefined;
        if (typeof count !== "number" || !Number.isFinite(count) || count < 0)
          throw unreadable(config.id, "a token count that is not one (no input_tokens)");
        return count;
      } catch (error) {
        throw toUpstreamError(config.id, error);
      }
    },
  };

  return {
    id: config.id,
    config,
    chat,

    async healthCheck(healthOptions) {
      const probe = config.healthProbe;
      return boundedHealthCheck(
        config,
        deps,
        healthOptions,
        (error) => toUpstreamError(config.id, error),
        async (check) => {
          if (probe.kind === "chat") return chatProbe({ config, chat }, probe.model, check, deps.now);
          return modelsProbe(
            context,
            config,
            {
              url: `${config.baseUrl}/v1/models`,
              headers: { "anthropic-version": ANTHROPIC_VERSION, ...config.headers },
              credential: (key) => ({ "x-api-key": key }),
            },
            check,
          );
        },
      );
    },
  };
}

/**
 * A Messages caller's own body, copied only if a field must change: `model` is the target's, `stream`
 * says how the call is made, and a continuation ({@link withPrefill}) ends with the answer so far.
 * Every other field is the caller's, as sent.
 */
function ownBody(body: Readonly<Obj>, model: string, streaming: boolean, prefill: string | undefined): Obj {
  const streamRight = streaming ? body.stream === true : body.stream !== true;
  const out: Obj = { ...body, model };
  if (!streamRight) out.stream = streaming;
  return prefill === undefined ? out : withPrefill(out, prefill);
}

function unreadable(providerId: string, what: string): UpstreamError {
  return invalidResponse(providerId, what);
}

/**
 * Upstream SSE as upstream events: each data event's payload as `raw` (dialect `anthropic-messages`)
 * beside the canonical events one decoder for the stream reads from it; `ping` and `message_stop`
 * are handed on with none. An `error` event is thrown by the decoder as the provider's error. The
 * iterator ends after `message_stop`; a body that ends before it is a cut answer
 * (`upstream_stream_cut`, failed over or continued), never ended as if whole. A malformed event is
 * skipped and logged. `finish` is told whether the body was read to a clean end.
 */
async function* streamEvents(
  providerId: string,
  body: AsyncIterable<Uint8Array>,
  toolNames: ToolNames | undefined,
  deps: Deps,
  finish: (clean: boolean) => void,
): AsyncGenerator<UpstreamEvent> {
  const decoder = createEventDecoder({ toolName: toolNames?.fromWire, providerId });
  let malformed = 0;
  let done = false;
  try {
    for await (const event of parseSse(body)) {
      if (event.kind !== "data") continue;
      let json: unknown;
      try {
        json = JSON.parse(event.data);
      } catch {
        json = undefined;
      }
      if (!isObject(json)) {
        malformed++;
        deps.logger.warn({ msg: "skipped malformed upstream SSE event", provider: providerId, malformed });
        continue;
      }
      const events = decoder.push(
        event.event === "error" && json.type !== "error" ? { type: "error", error: json } : json,
      );
      yield { raw: event.data, dialect: "anthropic-messages", events };
      if (json.type === "message_stop") {
        done = true;
        return;
      }
    }
    throw new UpstreamError(`${providerId}: Anthropic stream ended without message_stop (cut)`, {
      status: 502,
      code: "upstream_stream_cut",
      action: "failover",
      providerId,
    });
  } catch (error) {
    throw toUpstreamError(providerId, error);
  } finally {
    finish(done);
  }
}
