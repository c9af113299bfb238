/**
 * Amazon Bedrock through Converse and ConverseStream, signed with the SDK's default credential
 * chain (the function's role on Lambda; the environment or a profile locally): no API key.
 *
 * The SDK is loaded with a dynamic `import()` the first time a Bedrock provider is called, so a
 * gateway with no Bedrock provider never pays its import time (issue 11: keep the chat function's
 * cold import within +25%). One client per region per execution environment, as the SDK advises.
 */
import type {
  ConverseRequest,
  ConverseResponse,
  ConverseStreamOutput,
  ConverseStreamRequest,
} from "@aws-sdk/client-bedrock-runtime";
import { childAbort } from "../abort.ts";
import { ConfigError, type ConfigObject, string } from "../config/fields.ts";
import type { ProviderConfig } from "../config/types.ts";
import type { GenerationResult } from "../core/events.ts";
import { canonicalPlaces } from "../core/places.ts";
import type { GenerationRequest } from "../core/request.ts";
import type { Deps } from "../deps.ts";
import { chatPlaces } from "../dialects/openai-chat/places.ts";
import type { ChatRequest } from "../dialects/openai-chat/wire.ts";
import {
  type ClientAbortError,
  type GatewayError,
  InternalError,
  invalidResponse,
  responseTooDeep,
  streamCut,
  type UpstreamError,
  UpstreamTimeoutError,
} from "../errors.ts";
import { DEFAULT_MAX_NESTING_DEPTH } from "../json-depth.ts";
import {
  BEDROCK_DEFAULT_BETAS,
  type BetaAllowList,
  betaAllowList,
  createBetaFilter,
} from "./anthropic-betas.ts";
import { boundedHealthCheck, chatProbe, embeddingsProbe } from "./base.ts";
import { createBedrockEmbeddings } from "./bedrock-embed.ts";
import { type BedrockCallContext, bedrockError } from "./bedrock-errors.ts";
import { countTokensModel, createInvokeChat, type InvokeCalls, sdkInvokeCalls } from "./bedrock-invoke.ts";
import {
  answerExceedsDepth,
  createStreamTranslator,
  fromConverseResponse,
  type TranslateLimits,
  toConverseRequest,
  toUsage,
  unreadableAnswer,
} from "./bedrock-translate.ts";
import { defineProvider } from "./definition.ts";
import type {
  GenerationInput,
  GenerationOptions,
  GenerationStream,
  UpstreamEvent,
  WholeGeneration,
} from "./generation.ts";
import type { Provider } from "./types.ts";

/**
 * The calls the provider makes, so tests and other runtimes can hand in their own: Converse, and
 * InvokeModel for Messages callers of Claude (`bedrock-invoke.ts`).
 */
export interface BedrockRuntime extends InvokeCalls {
  converse(input: ConverseRequest, signal: AbortSignal): Promise<ConverseResponse>;
  /** Resolves once the stream's HTTP status is known; the events follow. */
  converseStream(
    input: ConverseStreamRequest,
    signal: AbortSignal,
  ): Promise<AsyncIterable<ConverseStreamOutput>>;
}

/** Makes the runtime client for a region (loaded on first use). */
export type BedrockRuntimeFactory = (region: string) => Promise<BedrockRuntime>;

/** What a Bedrock provider's configuration has beyond the fields every provider has. */
export interface BedrockOptions {
  /** The AWS region called (`us-east-1`); a cross-region inference profile routes on from there. */
  region: string;
  /**
   * The caller's `anthropic-beta` flags forwarded to Claude through InvokeModel (as `anthropic_beta`):
   * a list (default: the flags Bedrock documents, `BEDROCK_DEFAULT_BETAS`) or `"all"`. Others are
   * dropped and logged once: Bedrock refuses a flag it does not know with a 400.
   */
  anthropicBetas: BetaAllowList;
}

const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;

/**
 * The `bedrock` provider type: `region`, no `apiKey` (the SDK's credential chain signs), each target's
 * `model` a model id, an inference profile id or an ARN. Its health probe is a one-token chat on a
 * model it names: Bedrock has no free "list models" on the runtime endpoint, so the operator picks
 * the model (and so the cost, see README) rather than the gateway guessing one.
 */
export const bedrock = defineProvider<BedrockOptions>({
  type: "bedrock",
  apiKey: "none",
  // Never dialled: the SDK resolves the endpoint from the region (or AWS_ENDPOINT_URL_BEDROCK_RUNTIME).
  baseUrl: { default: "bedrock://aws-sdk", configurable: false },
  prefillBaseUrl: undefined,
  // Claude on Bedrock continues a trailing assistant message; not every Bedrock model does.
  capabilities: { assistantPrefill: false },
  // Only used when the configuration names no probe, which `options` refuses.
  healthProbe: { default: { kind: "chat", model: "" }, kinds: ["chat", "embeddings"] },
  options: bedrockOptions,
  create: (config, context) =>
    createBedrockProvider(config, config.options, {
      deps: context.deps,
      ...(context.maxNestingDepth === undefined ? {} : { maxNestingDepth: context.maxNestingDepth }),
    }),
});

function bedrockOptions(provider: ConfigObject, field: string): BedrockOptions {
  const region = string(provider.region, `${field}.region`);
  if (!REGION.test(region))
    throw new ConfigError(
      `${field}.region`,
      `must be an AWS region such as us-east-1, got ${JSON.stringify(region)}`,
    );
  if (provider.healthCheck === undefined) {
    throw new ConfigError(
      `${field}.healthCheck`,
      'is required for a bedrock provider: {"kind": "chat", "model": "<a model it serves>"}, probed with one token, or {"kind": "embeddings", "model": "<an embedding model>"}, one short input',
    );
  }
  const anthropicBetas =
    provider.anthropicBetas === undefined
      ? BEDROCK_DEFAULT_BETAS
      : betaAllowList(provider.anthropicBetas, `${field}.anthropicBetas`);
  return { region, anthropicBetas };
}

const clients = new Map<string, Promise<BedrockRuntime>>();

/** The SDK read a 200 that held no answer it could hand on (a ConverseStream without its stream). */
class NoAnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoAnswerError";
  }
}

/**
 * Whether the SDK failed on a 2xx response: it could not deserialise the body (HTML, a truncated
 * JSON, an eventstream frame that is not one), and tagged the error with the response's status.
 * Service exceptions come from other statuses, and those inside a 200 stream carry none.
 */
function failedOnSuccess(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata
    ?.httpStatusCode;
  return typeof status === "number" && status >= 200 && status < 300;
}

/**
 * The SDK's client, imported on first use and kept per region. `maxAttempts: 1`: retries and
 * failover are the gateway's, which knows the route, the deadline and the cooldowns. The endpoint
 * comes from the SDK's own configuration (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME` for a local fake or a
 * VPC endpoint).
 */
export const sdkBedrockRuntime: BedrockRuntimeFactory = (region) => {
  let client = clients.get(region);
  if (client === undefined) {
    client = (async () => {
      const sdk = await import("@aws-sdk/client-bedrock-runtime");
      const bedrock = new sdk.BedrockRuntimeClient({ region, maxAttempts: 1 });
      return {
        ...sdkInvokeCalls(sdk, bedrock),
        converse: (input, signal) => bedrock.send(new sdk.ConverseCommand(input), { abortSignal: signal }),
        async converseStream(input, signal) {
          const response = await bedrock.send(new sdk.ConverseStreamCommand(input), { abortSignal: signal });
          if (response.stream === undefined)
            throw new NoAnswerError("Bedrock ConverseStream answered without a stream");
          return response.stream;
        },
      } satisfies BedrockRuntime;
    })();
    // A failed import is not cached: the next call tries again.
    client.catch(() => clients.delete(region));
    clients.set(region, client);
  }
  return client;
};

export interface BedrockContext {
  deps: Deps;
  /** Defaults to the AWS SDK's client. */
  runtime?: BedrockRuntimeFactory;
  /** The gateway's `maxNestingDepth` (64 by default): caller JSON and answers are held to it. */
  maxNestingDepth?: number;
}

export function createBedrockProvider(
  config: ProviderConfig,
  bedrock: BedrockOptions,
  context: BedrockContext,
): Provider {
  const { deps } = context;
  const runtimeFor = context.runtime ?? sdkBedrockRuntime;
  const limits: TranslateLimits = { maxNestingDepth: context.maxNestingDepth ?? DEFAULT_MAX_NESTING_DEPTH };
  const callContext = (modelId: string, extension?: unknown): BedrockCallContext => ({
    providerId: config.id,
    region: bedrock.region,
    modelId,
    extension,
    warn: (fields) => deps.logger.warn(fields),
  });

  /**
   * The Converse request for one call: the canonical request with the target's model, refusals named
   * as the caller's dialect names its fields, and a continuation's answer so far (`input.prefill`) as
   * a trailing assistant message, which Claude continues (trimmed of the trailing whitespace it
   * refuses). Also the caller's `bedrock` field, for the error mapper.
   */
  const converseInput = (input: GenerationInput, options: GenerationOptions) => {
    const canonical = input.canonical();
    const request: GenerationRequest =
      input.prefill === undefined
        ? canonical
        : {
            ...canonical,
            messages: [
              ...canonical.messages,
              { role: "assistant", content: [{ type: "text", text: input.prefill }] },
            ],
          };
    const places =
      input.dialect === "openai-chat"
        ? chatPlaces(input.body as ChatRequest, canonical)
        : canonicalPlaces(canonical);
    return {
      converse: toConverseRequest(request, options.model, limits, places),
      extension: canonical.extensions.bedrock,
    };
  };

  /**
   * Runs `call` under a timer that aborts it with an {@link UpstreamTimeoutError} of `phase`; the
   * caller's abort passes through. Errors come back classified.
   */
  async function timed<T>(
    modelId: string,
    extension: unknown,
    signal: AbortSignal,
    phase: "headers" | "response",
    ms: number,
    call: (signal: AbortSignal) => Promise<T>,
  ): Promise<{ value: T; abort: () => void; dispose: () => void }> {
    const limit = childAbort(signal);
    const timeout = new UpstreamTimeoutError(config.id, phase, ms);
    const timer = deps.setTimer(() => limit.controller.abort(timeout), ms);
    try {
      const value = await call(limit.signal);
      return { value, abort: () => limit.controller.abort(), dispose: () => limit.dispose() };
    } catch (error) {
      limit.dispose();
      if (limit.signal.reason === timeout) throw timeout;
      throw classify(error, modelId, extension);
    } finally {
      timer.clear();
    }
  }

  /**
   * Issue 16: a 200 that is not a readable answer is the provider's fault, failed over like a 5xx
   * and never handed to the caller as a 200 carrying an error (the SDK's deserialisation error
   * keeps the 200 as its status, which the error table would pass back as is).
   */
  const unreadable = (detail: string, cause?: unknown): UpstreamError =>
    invalidResponse(config.id, detail, {
      origin: `${config.id} (Bedrock ${bedrock.region})`,
      ...(cause === undefined ? {} : { cause }),
    });

  /**
   * An answer nested too deeply to relay (or for the SDK to read): the caller can ask the model for
   * one, and every target would write the same, so it goes back to the caller and benches nothing.
   */
  const tooDeep = (cause?: unknown): UpstreamError =>
    responseTooDeep(config.id, limits.maxNestingDepth, cause);

  const classify = (
    error: unknown,
    modelId: string,
    extension?: unknown,
  ): GatewayError | ClientAbortError => {
    if (error instanceof NoAnswerError) return unreadable("no answer the SDK could read", error);
    if (failedOnSuccess(error)) {
      const name = (error as Error).name;
      if (name === "RangeError" && /call stack/i.test((error as Error).message)) return tooDeep(error);
      // Only the error's name: its message quotes the body, which may be anything.
      return unreadable(`a body the SDK cannot read (${name})`, error);
    }
    return bedrockError(error, callContext(modelId, extension));
  };

  /** What the SDK's event iterator threw: an error no table knows is a stream it could not read. */
  const streamError = (
    error: unknown,
    modelId: string,
    extension?: unknown,
  ): GatewayError | ClientAbortError => {
    const classified = classify(error, modelId, extension);
    if (!(classified instanceof InternalError)) return classified;
    const name = (error as Error | undefined)?.name ?? "error";
    return unreadable(`an event stream the SDK cannot read (${name})`, error);
  };

  const invoke = createInvokeChat({
    providerId: config.id,
    region: bedrock.region,
    betas: createBetaFilter(config.id, bedrock.anthropicBetas, deps.logger),
    runtime: loadRuntime,
    timed: (modelId, signal, phase, ms, call) => timed(modelId, undefined, signal, phase, ms, call),
    streamError: (error, modelId) => streamError(error, modelId),
    unreadable,
  });

  const chat: Provider["chat"] = {
    // Claude on Bedrock continues a trailing assistant message; not every Bedrock model does.
    resume: config.assistantPrefill ? "prefill" : "restart",

    async complete(input, options): Promise<WholeGeneration> {
      if (invoke.serves(input, options.model)) return invoke.complete(input, options);
      const { converse, extension } = converseInput(input, options);
      const runtime = await loadRuntime(options.model);
      const { value, dispose } = await timed(
        options.model,
        extension,
        options.signal,
        "response",
        options.timeouts.responseMs,
        (s) => runtime.converse(converse, s),
      );
      dispose();
      const problem = unreadableAnswer(value);
      if (problem !== undefined) throw unreadable(problem);
      if (answerExceedsDepth(value, limits.maxNestingDepth)) throw tooDeep();
      const result = fromConverseResponse(value, options.model);
      return { result: () => result, usage: toUsage(value.usage), outputChars: outputChars(result) };
    },

    async stream(input, options): Promise<GenerationStream> {
      if (invoke.serves(input, options.model)) return invoke.stream(input, options);
      const { converse, extension } = converseInput(input, options);
      const runtime = await loadRuntime(options.model);
      const opened = await timed(
        options.model,
        extension,
        options.signal,
        "headers",
        options.timeouts.headersMs,
        (s) => runtime.converseStream(converse, s),
      );
      return {
        events: streamEvents(
          readEvents(opened.value, (error) => streamError(error, options.model, extension)),
          (error) => classify(error, options.model, extension),
          opened,
        ),
        cancel: opened.abort,
      };
    },

    // Bedrock's CountTokens, for Claude (bedrock-invoke.ts); another model rejects.
    countTokens: (input, options) => invoke.countTokens(input, options),
    countsTokensFor: (model) => countTokensModel(model) !== undefined,
  };

  const provider: Provider = {
    id: config.id,
    config,
    chat,
    embeddings: createBedrockEmbeddings(config, bedrock.region, { deps }),

    async healthCheck(options) {
      const probe = config.healthProbe;
      const model = probe.kind === "models" ? "" : probe.model;
      if (model === "") {
        return {
          ok: false,
          status: undefined,
          latencyMs: 0,
          ttftMs: undefined,
          error: `${config.id}: a Bedrock provider needs healthProbe {"kind": "chat", "model": ...}`,
        };
      }
      // The one-token chat also proves model access and the role's permissions.
      return boundedHealthCheck(
        config,
        deps,
        options,
        (error) => classify(error, model),
        (context) =>
          probe.kind === "embeddings"
            ? embeddingsProbe(provider, model, context, deps.now)
            : chatProbe(provider, model, context, deps.now),
      );
    },
  };

  async function loadRuntime(modelId: string): Promise<BedrockRuntime> {
    try {
      return await runtimeFor(bedrock.region);
    } catch (error) {
      throw classify(error, modelId);
    }
  }

  /** The SDK's events, its failures classified as they happen (apart from any of the translator's). */
  async function* readEvents(
    events: AsyncIterable<ConverseStreamOutput>,
    toError: (error: unknown) => GatewayError | ClientAbortError,
  ): AsyncGenerator<ConverseStreamOutput> {
    try {
      yield* events;
    } catch (error) {
      throw toError(error);
    }
  }

  /**
   * ConverseStream events as canonical events. The SDK ends its iterator without an error when the
   * server resets the stream (HTTP/2 RST_STREAM, PLATFORM-NOTES): an answer with no `messageStop`
   * is cut, and is reported so, never ended as if whole.
   */
  async function* streamEvents(
    events: AsyncIterable<ConverseStreamOutput>,
    toError: (error: unknown) => GatewayError | ClientAbortError,
    call: { abort: () => void; dispose: () => void },
  ): AsyncGenerator<UpstreamEvent> {
    const translator = createStreamTranslator();
    try {
      try {
        for await (const event of events) {
          const translated = translator.push(event);
          // A message start or a text block's stop says nothing to the engine.
          if (translated.length > 0) yield { events: translated };
        }
      } catch (error) {
        throw toError(error);
      }
      if (!translator.stopped) {
        throw streamCut(config.id, "Bedrock stream ended without messageStop (cut)");
      }
    } finally {
      call.abort();
      call.dispose();
    }
  }

  return provider;
}

/** Output characters of a whole answer (text, reasoning, tool names and inputs), for an estimate without usage. */
function outputChars(result: GenerationResult): number {
  let chars = 0;
  for (const choice of result.choices) {
    for (const part of choice.content) {
      if (part.type === "tool-call") chars += part.name.length + part.input.length;
      else chars += part.text.length;
    }
  }
  return chars;
}
