/**
 * Amazon Bedrock embeddings through `InvokeModel`, in each model family's own body (issue 20): the
 * plan of calls for a canonical {@link EmbeddingRequest}, the reading of each answer, and the run of
 * the plan over any `invoke` function. Pure: no SDK import here (the provider hands in a function
 * that sends one `InvokeModelCommand`).
 *
 * Families, after the model parameter pages of the Bedrock user guide:
 * - Titan Text Embeddings v2, `amazon.titan-embed-text-v2:0`
 *   (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html):
 *   `{inputText, dimensions?, normalize?}`, one text per call; answers `{embedding, inputTextTokenCount}`.
 *   Dimensions 256, 512 or 1024 (the default).
 * - Cohere Embed v3, `cohere.embed-english-v3` and `cohere.embed-multilingual-v3`
 *   (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html):
 *   `{texts (at most 96), input_type, truncate?: NONE|START|END}`; answers `{embeddings, id, texts}`,
 *   `embeddings` a list of float vectors (or `{float: [...]}` when `embedding_types` was sent).
 *   1024 dimensions, not configurable.
 * - Cohere Embed v4, `cohere.embed-v4:0`
 *   (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v4.html): as v3
 *   with `output_dimension` (256, 512, 1024, 1536: the default), `max_tokens`, `truncate`
 *   NONE|LEFT|RIGHT, `embedding_types`; at most 96 texts per call; answers `embeddings: {float}`.
 *
 * Cohere's usage is not in its body: Bedrock sends it in the `x-amzn-bedrock-input-token-count`
 * response header ({@link INPUT_TOKEN_COUNT_HEADER}), which the SDK's `InvokeModelCommand` output
 * does not carry: the provider reads it from the raw response (a deserialize-step middleware) and
 * passes it in {@link BedrockInvokeOutput.inputTokenCount}.
 *
 * `input_type` defaults to `search_document` (what an index is built from; a query embedded for
 * search wants `bedrock.inputType: "search_query"`). The extension field `bedrock` of the request
 * takes `inputType` and `truncate` (Cohere), `maxTokens` (Cohere v4) and `normalize` (Titan); a key
 * the target's family does not take is a 400 naming it, as is every OpenAI field Bedrock has no
 * place for (`user` excepted: it only identifies the end user to OpenAI, and is not sent).
 */
import { childAbort } from "../abort.ts";
import { baseModelId } from "../core/embedding-space.ts";
import {
  type EmbeddingRequest,
  type EmbeddingResult,
  type EmbeddingVector,
  estimateEmbeddingTokens,
} from "../core/embeddings.ts";
import {
  InternalError,
  type InvalidRequestError,
  invalidAnswer,
  invalidType,
  invalidValue,
  quoteCallerText,
  type UpstreamError,
  unsupportedParameter,
} from "../errors.ts";

type Obj = Record<string, unknown>;

export type BedrockEmbeddingFamily = "titan-text-v2" | "cohere-v3" | "cohere-v4";

/** What a family takes: texts per call, output dimensions, extension keys, `truncate` values. */
export interface BedrockEmbeddingFamilySpec {
  /** Texts per `InvokeModel` call. */
  batchSize: number;
  /** Output dimensions the model can produce; the first is its default. */
  dimensions: readonly number[];
  /** Keys of the `bedrock` extension field the family reads. */
  extensionKeys: ReadonlySet<string>;
  /** `bedrock.truncate` values (Cohere), none for a family without it. */
  truncate: readonly string[];
}

export const BEDROCK_EMBEDDING_FAMILIES: Readonly<
  Record<BedrockEmbeddingFamily, BedrockEmbeddingFamilySpec>
> = {
  "titan-text-v2": {
    batchSize: 1,
    dimensions: [1024, 512, 256],
    extensionKeys: new Set(["normalize"]),
    truncate: [],
  },
  "cohere-v3": {
    batchSize: 96,
    dimensions: [1024],
    extensionKeys: new Set(["inputType", "truncate"]),
    truncate: ["NONE", "START", "END"],
  },
  "cohere-v4": {
    batchSize: 96,
    dimensions: [1536, 1024, 512, 256],
    extensionKeys: new Set(["inputType", "truncate", "maxTokens"]),
    truncate: ["NONE", "LEFT", "RIGHT"],
  },
};

/** Cohere's `input_type` when the caller sets none: documents, as an index is built from. */
export const DEFAULT_COHERE_INPUT_TYPE = "search_document";
const COHERE_INPUT_TYPES = ["search_document", "search_query", "classification", "clustering"];

/**
 * Calls run at once for one request (Titan takes one text per call, so a batch of 2048 inputs is
 * 2048 calls): bounded so that one request never holds more than this many of the account's
 * concurrent Bedrock invocations or HTTP/2 streams.
 */
export const BEDROCK_EMBEDDING_CONCURRENCY = 8;

/** The response header that carries an `InvokeModel` call's input token count. */
export const INPUT_TOKEN_COUNT_HEADER = "x-amzn-bedrock-input-token-count";

/**
 * The embedding family of a model id, an inference profile id (`us.cohere.embed-v4:0`) or a
 * foundation-model or inference-profile ARN; `undefined` for any other model (an application
 * inference profile names no model: its family has to be configured).
 */
export function bedrockEmbeddingFamily(modelId: string): BedrockEmbeddingFamily | undefined {
  const id = baseModelId(modelId);
  if (/^amazon\.titan-embed-text-v2(?::\d+)?$/.test(id)) return "titan-text-v2";
  if (/^cohere\.embed-(?:english|multilingual)-v3(?::\d+)?$/.test(id)) return "cohere-v3";
  if (/^cohere\.embed-v4(?::\d+)?$/.test(id)) return "cohere-v4";
  return undefined;
}

/** One `InvokeModel` call of a plan: its JSON body and the request's inputs it embeds, in order. */
export interface BedrockEmbeddingCall {
  body: Obj;
  /** Indexes into the request's inputs, in the order the call's vectors come back. */
  inputs: number[];
}

export interface BedrockEmbeddingPlan {
  family: BedrockEmbeddingFamily;
  /** The model id the calls go to, as the target names it. */
  modelId: string;
  calls: BedrockEmbeddingCall[];
  /** The request the plan serves (dimensions to check, inputs to estimate usage from, the model). */
  request: EmbeddingRequest;
}

/**
 * The calls that embed `request` on `modelId`: one per text for Titan, chunks of the family's batch
 * size for Cohere, in input order. Throws {@link InvalidRequestError} (400) naming the field for what
 * the family cannot do: token arrays (`input`), a `dimensions` it cannot produce, an extension key or
 * value it does not take (`bedrock.truncate`), a field Bedrock has no place for.
 */
export function planBedrockEmbeddings(
  request: EmbeddingRequest,
  modelId: string,
  family: BedrockEmbeddingFamily | undefined = bedrockEmbeddingFamily(modelId),
): BedrockEmbeddingPlan {
  if (family === undefined)
    // The configuration is checked at start-up for a family; reaching here is the gateway's bug.
    throw new InternalError(new Error(`no Bedrock embedding family for model ${modelId}`));
  const spec = BEDROCK_EMBEDDING_FAMILIES[family];
  const unmapped = Object.keys(request.unmapped)[0];
  if (unmapped !== undefined) throw cannotCarry(unmapped);
  const texts: string[] = new Array(request.inputs.length);
  for (let i = 0; i < request.inputs.length; i++) {
    const input = request.inputs[i];
    if (input === undefined || !("text" in input))
      throw cannotCarry("input", "as token arrays is not supported by Amazon Bedrock targets; send text");
    texts[i] = input.text;
  }
  if (request.dimensions !== undefined && !spec.dimensions.includes(request.dimensions))
    throw invalid(
      "dimensions",
      `${request.dimensions} is not supported by ${modelId}; supported: ${spec.dimensions.join(", ")}`,
    );
  const options = extensionOptions(request.extensions.bedrock, family, spec);

  const calls: BedrockEmbeddingCall[] = [];
  if (family === "titan-text-v2") {
    for (let i = 0; i < texts.length; i++) {
      const body: Obj = { inputText: texts[i] };
      if (request.dimensions !== undefined) body.dimensions = request.dimensions;
      if (options.normalize !== undefined) body.normalize = options.normalize;
      calls.push({ body, inputs: [i] });
    }
    return { family, modelId, calls, request };
  }
  for (let from = 0; from < texts.length; from += spec.batchSize) {
    const to = Math.min(from + spec.batchSize, texts.length);
    const inputs: number[] = [];
    for (let i = from; i < to; i++) inputs.push(i);
    const body: Obj = {
      texts: texts.slice(from, to),
      input_type: options.inputType ?? DEFAULT_COHERE_INPUT_TYPE,
    };
    if (options.truncate !== undefined) body.truncate = options.truncate;
    if (family === "cohere-v4") {
      // v4's default answer shape is not documented; asking for floats makes it `{float: [...]}`.
      body.embedding_types = ["float"];
      if (request.dimensions !== undefined) body.output_dimension = request.dimensions;
      if (options.maxTokens !== undefined) body.max_tokens = options.maxTokens;
    }
    calls.push({ body, inputs });
  }
  return { family, modelId, calls, request };
}

interface ExtensionOptions {
  inputType?: string;
  truncate?: string;
  normalize?: boolean;
  maxTokens?: number;
}

/** The `bedrock` extension field, checked against what `family` takes. */
function extensionOptions(
  extension: unknown,
  family: BedrockEmbeddingFamily,
  spec: BedrockEmbeddingFamilySpec,
): ExtensionOptions {
  const out: ExtensionOptions = {};
  if (extension === undefined || extension === null) return out;
  if (!isObject(extension))
    throw invalidType("bedrock", "an object", "Invalid type for 'bedrock': expected an object.");
  for (const key of Object.keys(extension)) {
    const value = extension[key];
    if (value === undefined || value === null) continue;
    const param = `bedrock.${key}`;
    if (!spec.extensionKeys.has(key))
      throw cannotCarry(param, `is not supported by ${familyName(family)} models`);
    if (key === "normalize") {
      if (typeof value !== "boolean") throw invalid(param, "expected a boolean");
      out.normalize = value;
    } else if (key === "maxTokens") {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 1)
        throw invalid(param, "expected a positive integer");
      out.maxTokens = value;
    } else {
      const allowed = key === "truncate" ? spec.truncate : COHERE_INPUT_TYPES;
      if (typeof value !== "string" || !allowed.includes(value))
        throw invalid(
          param,
          `${typeof value === "string" ? `'${quoteCallerText(value)}'` : "not a string"}; supported: ${allowed.join(", ")}`,
        );
      if (key === "truncate") out.truncate = value;
      else out.inputType = value;
    }
  }
  return out;
}

/** What one `InvokeModel` call gave back. */
export interface BedrockInvokeOutput {
  /** The response body (the SDK's `output.body`). */
  body: Uint8Array | string;
  /** The {@link INPUT_TOKEN_COUNT_HEADER} header, read with {@link inputTokenCountOf}. */
  inputTokenCount?: number | undefined;
}

/** Sends one call of a plan (`InvokeModel` of `plan.modelId` with `call.body` as JSON). */
export type BedrockEmbeddingInvoke = (
  call: BedrockEmbeddingCall,
  signal: AbortSignal,
) => Promise<BedrockInvokeOutput>;

/** The input token count of a raw response's headers; `undefined` when absent or not a count. */
export function inputTokenCountOf(
  headers: Readonly<Record<string, string | undefined>> | undefined,
): number | undefined {
  const value = headers?.[INPUT_TOKEN_COUNT_HEADER];
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** One call's vectors (in the call's input order) and its input tokens. */
export interface BedrockEmbeddingPart {
  vectors: number[][];
  inputTokens: number;
  estimated: boolean;
}

/**
 * One call's answer, checked: as many float vectors as the call sent texts, each of the requested
 * `dimensions` when the request gave some. Usage from Titan's `inputTextTokenCount`, else the token
 * count header, else estimated from the texts. A 200 that is not such an answer is an
 * {@link UpstreamError} 502 that fails over.
 */
export function readBedrockEmbeddings(
  plan: BedrockEmbeddingPlan,
  call: BedrockEmbeddingCall,
  output: BedrockInvokeOutput,
  providerId: string,
): BedrockEmbeddingPart {
  const bad = (why: string) =>
    invalidAnswer(
      providerId,
      `${providerId}: Bedrock ${plan.modelId} returned an answer that is not readable: ${why}`,
    );
  let json: unknown;
  try {
    json = JSON.parse(typeof output.body === "string" ? output.body : new TextDecoder().decode(output.body));
  } catch {
    throw bad("not JSON");
  }
  if (!isObject(json)) throw bad("not a JSON object");
  let vectors: unknown[];
  let bodyTokens: unknown;
  if (plan.family === "titan-text-v2") {
    vectors = [json.embedding];
    bodyTokens = json.inputTextTokenCount;
  } else {
    const embeddings = isObject(json.embeddings) ? json.embeddings.float : json.embeddings;
    if (!Array.isArray(embeddings)) throw bad("no float embeddings");
    vectors = embeddings;
  }
  if (vectors.length !== call.inputs.length)
    throw bad(`${vectors.length} embeddings for ${call.inputs.length} texts`);
  const want = plan.request.dimensions;
  for (let i = 0; i < vectors.length; i++) {
    const vector = vectors[i];
    if (!isVector(vector)) throw bad(`embedding ${i} is not a vector of numbers`);
    if (want !== undefined && vector.length !== want) throw bad(`${vector.length} dimensions, not ${want}`);
  }
  const reported =
    typeof bodyTokens === "number" && Number.isInteger(bodyTokens) && bodyTokens >= 0
      ? bodyTokens
      : output.inputTokenCount;
  if (reported !== undefined)
    return { vectors: vectors as number[][], inputTokens: reported, estimated: false };
  const inputs = call.inputs.map((i) => plan.request.inputs[i] ?? { text: "" });
  return { vectors: vectors as number[][], inputTokens: estimateEmbeddingTokens(inputs), estimated: true };
}

export interface BedrockEmbeddingRunOptions {
  signal: AbortSignal;
  providerId: string;
  /** Calls at once; {@link BEDROCK_EMBEDDING_CONCURRENCY} by default. */
  concurrency?: number | undefined;
}

/**
 * Runs a plan's calls, at most `concurrency` at once, and puts the vectors back in input order with
 * the usage summed (estimated if any call's was). The first failure aborts the calls still running
 * (through their signal) and is thrown once they have all settled: no call outlives the request.
 * What `invoke` throws is passed on as it is, to be classified by the provider.
 */
export async function runBedrockEmbeddings(
  plan: BedrockEmbeddingPlan,
  invoke: BedrockEmbeddingInvoke,
  options: BedrockEmbeddingRunOptions,
): Promise<EmbeddingResult> {
  const count = plan.request.inputs.length;
  const vectors: EmbeddingVector[] = new Array(count);
  let inputTokens = 0;
  let estimated = false;
  let length: number | undefined;
  // The first failure, in an object: workers set it, and TypeScript does not see closures assign.
  const run: { failure?: { error: unknown } } = {};
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal.reason);
  if (options.signal.aborted) onAbort();
  else options.signal.addEventListener("abort", onAbort, { once: true });

  let next = 0;
  const worker = async () => {
    while (run.failure === undefined && next < plan.calls.length) {
      const call = plan.calls[next++];
      if (call === undefined) return;
      // A signal per call: the SDK leaves a listener on the signal it is given, and one signal shared
      // by 2048 Titan calls would gather 2048 of them.
      const own = childAbort(stop.signal);
      try {
        const part = readBedrockEmbeddings(plan, call, await invoke(call, own.signal), options.providerId);
        for (let j = 0; j < call.inputs.length; j++) {
          const vector = part.vectors[j] ?? [];
          // Vectors of one answer must be of one space: a target answering two lengths is broken.
          if (length === undefined) length = vector.length;
          else if (vector.length !== length)
            throw mixedLengths(plan, options.providerId, length, vector.length);
          vectors[call.inputs[j] ?? 0] = vector;
        }
        inputTokens += part.inputTokens;
        estimated ||= part.estimated;
      } catch (error) {
        if (run.failure === undefined) {
          run.failure = { error };
          stop.abort(error);
        }
        return;
      } finally {
        own.dispose();
      }
    }
  };
  const workers: Array<Promise<void>> = [];
  const bound = Math.max(
    1,
    Math.min(options.concurrency ?? BEDROCK_EMBEDDING_CONCURRENCY, plan.calls.length),
  );
  try {
    for (let w = 0; w < bound; w++) workers.push(worker());
    await Promise.all(workers);
  } finally {
    options.signal.removeEventListener("abort", onAbort);
  }
  if (run.failure !== undefined) throw run.failure.error;
  return { vectors, usage: { inputTokens, estimated }, model: plan.modelId };
}

function mixedLengths(plan: BedrockEmbeddingPlan, providerId: string, a: number, b: number): UpstreamError {
  return invalidAnswer(
    providerId,
    `${providerId}: Bedrock ${plan.modelId} answered vectors of ${a} and ${b} dimensions`,
  );
}

function familyName(family: BedrockEmbeddingFamily): string {
  return family === "titan-text-v2"
    ? "Titan Text Embeddings v2"
    : family === "cohere-v3"
      ? "Cohere Embed v3"
      : "Cohere Embed v4";
}

function isVector(value: unknown): value is number[] {
  if (!Array.isArray(value) || value.length === 0) return false;
  for (const n of value) if (typeof n !== "number" || !Number.isFinite(n)) return false;
  return true;
}

function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function cannotCarry(param: string, why = "is not supported by Amazon Bedrock targets"): InvalidRequestError {
  return unsupportedParameter(param, `'${param}' ${why}.`);
}

function invalid(param: string, why: string): InvalidRequestError {
  return invalidValue(param, `Invalid '${param}': ${why}.`);
}
