/**
 * The Bedrock provider's embeddings capability (issue 20): each family's `InvokeModel` body planned
 * and run by `bedrock-embeddings.ts`, sent through the SDK's `InvokeModelCommand`, failures read by
 * the same table as Converse's (`bedrock-errors.ts`).
 *
 * The SDK is imported on first use, as for Converse, with one client per region (`maxAttempts: 1`:
 * retries are the engine's). Cohere reports its usage only in the `x-amzn-bedrock-input-token-count`
 * response header, which `InvokeModelCommand`'s output leaves out: a deserialize-step middleware on
 * each command reads it from the raw response.
 */
import { childAbort } from "../abort.ts";
import type { ProviderConfig } from "../config/types.ts";
import type { Deps } from "../deps.ts";
import { UpstreamTimeoutError } from "../errors.ts";
import {
  type BedrockInvokeOutput,
  bedrockEmbeddingFamily,
  inputTokenCountOf,
  planBedrockEmbeddings,
  runBedrockEmbeddings,
} from "./bedrock-embeddings.ts";
import { bedrockError } from "./bedrock-errors.ts";
import type { EmbeddingsCapability } from "./generation.ts";

/** One `InvokeModel` call: a model, a JSON body; its answer's body and token count header. */
export type BedrockInvokeModel = (
  modelId: string,
  body: string,
  signal: AbortSignal,
) => Promise<BedrockInvokeOutput>;

/** Makes the `InvokeModel` sender for a region (loaded on first use). */
export type BedrockInvokeFactory = (region: string) => Promise<BedrockInvokeModel>;

const clients = new Map<string, Promise<BedrockInvokeModel>>();

/** `InvokeModel` through the AWS SDK, one client per region, the token count header read from the raw response. */
export const sdkInvokeModel: BedrockInvokeFactory = (region) => {
  let client = clients.get(region);
  if (client === undefined) {
    client = (async () => {
      const sdk = await import("@aws-sdk/client-bedrock-runtime");
      const bedrock = new sdk.BedrockRuntimeClient({ region, maxAttempts: 1 });
      return async (modelId, body, signal) => {
        const command = new sdk.InvokeModelCommand({
          modelId,
          body,
          contentType: "application/json",
          accept: "application/json",
        });
        let headers: Record<string, string | undefined> | undefined;
        command.middlewareStack.add(
          (next) => async (args) => {
            const out = await next(args);
            headers = (out.response as { headers?: Record<string, string> } | undefined)?.headers;
            return out;
          },
          { step: "deserialize", name: "embeddingInputTokenCount" },
        );
        const output = await bedrock.send(command, { abortSignal: signal });
        return { body: output.body, inputTokenCount: inputTokenCountOf(headers) };
      };
    })();
    // A failed import is not cached: the next call tries again.
    client.catch(() => clients.delete(region));
    clients.set(region, client);
  }
  return client;
};

export interface BedrockEmbedContext {
  deps: Deps;
  /** Defaults to the AWS SDK's client. */
  invoke?: BedrockInvokeFactory | undefined;
}

/**
 * Embeddings on the Bedrock models of a known family (Titan Text Embeddings v2, Cohere Embed v3 and
 * v4; see `bedrock-embeddings.ts` for the bodies and bounds). One request is one engine attempt:
 * its calls (one per text for Titan, 96 texts each for Cohere, 8 at once) run under the provider's
 * `responseMs` together, and the first failure stops the others and is the attempt's.
 */
export function createBedrockEmbeddings(
  config: ProviderConfig,
  region: string,
  context: BedrockEmbedContext,
): EmbeddingsCapability {
  const { deps } = context;
  const invokeFor = context.invoke ?? sdkInvokeModel;
  const classify = (error: unknown, modelId: string) =>
    bedrockError(error, {
      providerId: config.id,
      region,
      modelId,
      warn: (fields) => deps.logger.warn(fields),
    });
  return {
    serves: (model) => bedrockEmbeddingFamily(model) !== undefined,
    async embed(request, options) {
      // A field the family cannot take is the caller's 400, before any call.
      const plan = planBedrockEmbeddings(request, options.model);
      let invoke: BedrockInvokeModel;
      try {
        invoke = await invokeFor(region);
      } catch (error) {
        throw classify(error, options.model);
      }
      const ms = options.timeouts.responseMs;
      const limit = childAbort(options.signal);
      const timeout = new UpstreamTimeoutError(config.id, "response", ms);
      const timer = deps.setTimer(() => limit.controller.abort(timeout), ms);
      try {
        return await runBedrockEmbeddings(
          plan,
          (call, signal) => invoke(plan.modelId, JSON.stringify(call.body), signal),
          { signal: limit.signal, providerId: config.id },
        );
      } catch (error) {
        if (limit.signal.reason === timeout) throw timeout;
        throw classify(error, options.model);
      } finally {
        timer.clear();
        limit.dispose();
      }
    },
  };
}
