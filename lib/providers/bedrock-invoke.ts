/**
 * Claude on Amazon Bedrock through InvokeModel and InvokeModelWithResponseStream, for callers of the
 * Anthropic Messages API (issue 18). Their body is Claude's own on Bedrock
 * (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html),
 * so it goes as the caller sent it, in Bedrock's form (`toBedrockInvokeBody`:
 * `anthropic_version: "bedrock-2023-05-31"`, the betas the target takes as `anthropic_beta`, no
 * `model` or `stream` key, which Bedrock refuses as extraneous), and thinking blocks with their
 * signatures, `cache_control`, tool blocks and fields Converse has no place for all survive. The
 * stream's `chunk` frames hold Messages events, handed on as they are beside their canonical events.
 * Converse stays for every other caller (and every other model): it carries the `bedrock` extension
 * (guardrails, performance, ...) and is what OpenAI-format callers have been served with; Claude
 * via ConverseStream is also reported to fail where InvokeModel works (pi #3335).
 *
 * This file never loads the SDK: {@link sdkInvokeCalls} is handed the module `bedrock.ts` loaded.
 */
import type { BedrockRuntimeClient, ResponseStream } from "@aws-sdk/client-bedrock-runtime";
import { isObject } from "../config/fields.ts";
import type { GenerationResult } from "../core/events.ts";
import { createEventDecoder, fromMessage } from "../dialects/anthropic-messages/decode.ts";
import {
  DEFAULT_MAX_TOKENS,
  toBedrockInvokeBody,
  toMessagesRequest,
} from "../dialects/anthropic-messages/request.ts";
import { usageFromAnthropic } from "../dialects/anthropic-messages/usage.ts";
import {
  type ClientAbortError,
  countTokensUnsupported,
  type GatewayError,
  UpstreamError,
} from "../errors.ts";
import type {
  GenerationInput,
  GenerationOptions,
  GenerationStream,
  UpstreamEvent,
  WholeGeneration,
} from "./generation.ts";
import { COUNT_TOKENS_REFUSES, readMessage, resultOutputChars, withPrefill } from "./messages-upstream.ts";

type Obj = Record<string, unknown>;

/** The three InvokeModel-family calls, so tests and other runtimes can hand in their own. */
export interface InvokeCalls {
  /** The answer's body (a Messages `message`, as JSON bytes). */
  invokeModel(modelId: string, body: string, signal: AbortSignal): Promise<Uint8Array | undefined>;
  /** Resolves once the stream's HTTP status is known; the `chunk` events follow. */
  invokeModelStream(
    modelId: string,
    body: string,
    signal: AbortSignal,
  ): Promise<AsyncIterable<ResponseStream> | undefined>;
  /** Bedrock's `CountTokens` of an InvokeModel body. */
  countTokens(modelId: string, body: string, signal: AbortSignal): Promise<number | undefined>;
}

/** The calls over the SDK's client (`sdk` is the module, loaded on first use by `bedrock.ts`). */
export function sdkInvokeCalls(
  sdk: typeof import("@aws-sdk/client-bedrock-runtime"),
  client: BedrockRuntimeClient,
): InvokeCalls {
  const bytes = (body: string) => new TextEncoder().encode(body);
  const json = { contentType: "application/json", accept: "application/json" };
  return {
    async invokeModel(modelId, body, signal) {
      const response = await client.send(
        new sdk.InvokeModelCommand({ modelId, body: bytes(body), ...json }),
        {
          abortSignal: signal,
        },
      );
      return response.body;
    },
    async invokeModelStream(modelId, body, signal) {
      const response = await client.send(
        new sdk.InvokeModelWithResponseStreamCommand({ modelId, body: bytes(body), ...json }),
        { abortSignal: signal },
      );
      return response.body;
    },
    async countTokens(modelId, body, signal) {
      const response = await client.send(
        new sdk.CountTokensCommand({ modelId, input: { invokeModel: { body: bytes(body) } } }),
        { abortSignal: signal },
      );
      return response.inputTokens;
    },
  };
}

/**
 * Whether a target's model is Anthropic's Claude: a model id `anthropic.…`, a cross-region profile
 * `us.anthropic.…` (any geography), or an ARN naming one. An application inference profile's ARN
 * names no model, and is called through Converse.
 */
export function isClaudeModel(modelId: string): boolean {
  return /(?:^|[./])anthropic\./.test(modelId);
}

/**
 * Whether a target's model id names a vendor other than Anthropic (`amazon.nova-…`,
 * `us.meta.llama…`): Claude's signed thinking means nothing to it and is not sent (issue 18:
 * thinking signed by one family is never sent to another). An ARN or a bare name says nothing.
 */
export function namesOtherVendor(modelId: string): boolean {
  const vendor = /^(?:[a-z]{2,6}(?:-[a-z]+)?\.)?([a-z0-9]+)\.[a-z0-9]/.exec(modelId)?.[1];
  return vendor !== undefined && vendor !== "anthropic";
}

/**
 * The model `CountTokens` is asked for a target's model, or undefined when it has no count here (a
 * model other than Claude). A cross-region profile id names its foundation model
 * (`us.anthropic.claude-…` → `anthropic.claude-…`): `CountTokens` counts for a model, not a profile,
 * and the count is the same. The stack grants `bedrock:CountTokens` on exactly this model
 * (`infra/bedrock-grants.ts`).
 */
export function countTokensModel(modelId: string): string | undefined {
  if (!isClaudeModel(modelId)) return undefined;
  return modelId.replace(/^(?:[a-z]{2,6}(?:-[a-z]+)?)\.(?=anthropic\.)/, "");
}

/** What the Bedrock provider lends the InvokeModel path: its runtime, timers and error mapping. */
export interface InvokeContext {
  providerId: string;
  region: string;
  /** The caller's `anthropic-beta` header → the flags the target takes (`anthropicBetas`). */
  betas(header: string | undefined): string[];
  runtime(modelId: string): Promise<InvokeCalls>;
  /** Runs a call under a timer of `phase`, errors classified (Bedrock's table, `bedrock-errors.ts`). */
  timed<T>(
    modelId: string,
    signal: AbortSignal,
    phase: "headers" | "response",
    ms: number,
    call: (signal: AbortSignal) => Promise<T>,
  ): Promise<{ value: T; abort: () => void; dispose: () => void }>;
  /** What the SDK's event iterator threw, classified. */
  streamError(error: unknown, modelId: string): GatewayError | ClientAbortError;
  /** A 200 that is not a readable answer (the provider's fault, failed over). */
  unreadable(detail: string, cause?: unknown): UpstreamError;
}

/** The InvokeModel path of a Bedrock provider's chat: used for Messages callers of a Claude target. */
export interface InvokeChat {
  serves(input: GenerationInput, modelId: string): boolean;
  complete(input: GenerationInput, options: GenerationOptions): Promise<WholeGeneration>;
  stream(input: GenerationInput, options: GenerationOptions): Promise<GenerationStream>;
  countTokens(input: GenerationInput, options: GenerationOptions): Promise<number>;
}

export function createInvokeChat(context: InvokeContext): InvokeChat {
  /** The caller's body in Bedrock's form, a continuation's answer so far at its end. */
  const invokeBody = (input: GenerationInput): Obj => {
    const body = input.prefill === undefined ? input.body : withPrefill(input.body, input.prefill);
    return toBedrockInvokeBody(body, context.betas(input.headers?.["anthropic-beta"]));
  };

  /** The InvokeModel body of any caller, for counting (another dialect's through the canonical form). */
  const countedBody = (input: GenerationInput): Obj =>
    input.dialect === "anthropic-messages"
      ? invokeBody(input)
      : toMessagesRequest(input.canonical(), { bedrock: {} });

  return {
    serves: (input, modelId) => input.dialect === "anthropic-messages" && isClaudeModel(modelId),

    async complete(input, options) {
      const body = JSON.stringify(invokeBody(input));
      const runtime = await context.runtime(options.model);
      const { value, dispose } = await context.timed(
        options.model,
        options.signal,
        "response",
        options.timeouts.responseMs,
        (signal) => runtime.invokeModel(options.model, body, signal),
      );
      dispose();
      const text = value === undefined ? "" : new TextDecoder().decode(value);
      const read = readMessage(text);
      if (typeof read === "string") throw context.unreadable(read);
      const json = read;
      let result: GenerationResult | undefined;
      const answer = () => {
        result ??= fromMessage(json);
        return result;
      };
      return {
        raw: text,
        dialect: "anthropic-messages",
        result: answer,
        usage: isObject(json.usage) ? usageFromAnthropic(json.usage) : undefined,
        outputChars: resultOutputChars(answer()),
      };
    },

    async stream(input, options) {
      const body = JSON.stringify(invokeBody(input));
      const runtime = await context.runtime(options.model);
      const opened = await context.timed(
        options.model,
        options.signal,
        "headers",
        options.timeouts.headersMs,
        async (signal) => {
          const events = await runtime.invokeModelStream(options.model, body, signal);
          if (events === undefined)
            throw context.unreadable("no stream (InvokeModelWithResponseStream answered without one)");
          return events;
        },
      );
      return {
        events: chunkEvents(opened.value, options.model, context, opened),
        cancel: opened.abort,
      };
    },

    async countTokens(input, options) {
      const model = countTokensModel(options.model);
      if (model === undefined) {
        throw countTokensUnsupported(
          context.providerId,
          `Bedrock counts tokens here only for Claude models, not ${options.model}`,
        );
      }
      const own = countedBody(input);
      for (const key of COUNT_TOKENS_REFUSES) if (key !== "max_tokens") delete own[key];
      // The InvokeModel body requires `max_tokens`; a count_tokens caller sends none (and it does
      // not change the count). With thinking, it must exceed the budget.
      if (typeof own.max_tokens !== "number") {
        const budget = isObject(own.thinking) ? own.thinking.budget_tokens : undefined;
        own.max_tokens =
          typeof budget === "number" ? Math.max(DEFAULT_MAX_TOKENS, budget + 1) : DEFAULT_MAX_TOKENS;
      }
      const body = JSON.stringify(own);
      const runtime = await context.runtime(model);
      const { value, dispose } = await context.timed(
        model,
        options.signal,
        "response",
        options.timeouts.responseMs,
        (signal) => runtime.countTokens(model, body, signal),
      );
      dispose();
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0)
        throw context.unreadable("a token count that is not one (no inputTokens)");
      return value;
    },
  };
}

/**
 * The stream's `chunk` frames as upstream events: each frame's bytes (one Messages event's JSON)
 * as `raw`, dialect `anthropic-messages`, beside the canonical events one decoder reads from it.
 * The iterator ends after `message_stop`. The SDK ends its iterator without an error when the server
 * resets the stream (HTTP/2 RST_STREAM, PLATFORM-NOTES): an answer without `message_stop` is cut
 * (`upstream_stream_cut`), never ended as if whole. An exception frame is thrown by the SDK, and
 * classified by Bedrock's table; an `error` event inside a chunk by the decoder.
 */
async function* chunkEvents(
  events: AsyncIterable<ResponseStream>,
  modelId: string,
  context: InvokeContext,
  call: { abort: () => void; dispose: () => void },
): AsyncGenerator<UpstreamEvent> {
  const decoder = createEventDecoder({ providerId: context.providerId });
  const text = new TextDecoder();
  try {
    try {
      for await (const frame of events) {
        const bytes = frame.chunk?.bytes;
        if (bytes === undefined) continue;
        const raw = text.decode(bytes);
        let json: unknown;
        try {
          json = JSON.parse(raw);
        } catch {
          json = undefined;
        }
        if (!isObject(json)) throw context.unreadable("a stream chunk that is not a Messages event");
        yield { raw, dialect: "anthropic-messages", events: decoder.push(json) };
        if (json.type === "message_stop") return;
      }
    } catch (error) {
      if (error instanceof UpstreamError) throw error;
      throw context.streamError(error, modelId);
    }
    throw new UpstreamError(`${context.providerId}: Bedrock stream ended without message_stop (cut)`, {
      status: 502,
      code: "upstream_stream_cut",
      action: "failover",
      providerId: context.providerId,
    });
  } finally {
    call.abort();
    call.dispose();
  }
}
