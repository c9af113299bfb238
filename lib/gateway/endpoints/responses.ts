import { mayUseModel } from "../../callers/bearer.ts";
import type { Caller } from "../../callers/types.ts";
import type { ModelRoute } from "../../config/types.ts";
import type { GenerationRequest } from "../../core/request.ts";
import { estimateTokens } from "../../core/usage.ts";
import { customToolsAsFunctions } from "../../dialects/openai-responses/custom-tools.ts";
import {
  createResponseStreamEncoder,
  type ResponseHead,
  type ResponseStreamEncoder,
  toResponse,
} from "../../dialects/openai-responses/encode.ts";
import { parseResponsesRequest, type ResponseEcho } from "../../dialects/openai-responses/parse.ts";
import {
  expandHistory,
  RESPONSE_TTL_SECONDS,
  type StoredResponse,
} from "../../dialects/openai-responses/store.ts";
import type { StreamEncoder } from "../../engine/forward.ts";
import { relayAnswer } from "../../engine/relay.ts";
import { answeredBy, type Call } from "../../engine/run.ts";
import { serve, streamedAnswer, wholeAnswer } from "../../engine/serve.ts";
import {
  InvalidRequestError,
  modelNotFound,
  quoteCallerText,
  requestTooLarge,
  responseNotFound,
  storeUnavailable,
} from "../../errors.ts";
import type { GenerationInput } from "../../providers/generation.ts";
import { fitsStoredBound, isResponseId, OPEN_OWNER, type ResponseStore } from "../../responses/store.ts";
import type { Endpoint, GatewayContext, RequestContext } from "../endpoint.ts";
import { type GatewayResponse, jsonHeaders, jsonResponse } from "../response.ts";
import { admit, afterResponse, deadlineOf } from "../steps.ts";
import { parseJsonObject } from "../validate.ts";
import { eventStreamHeaders, failed } from "./chat-completions.ts";

/**
 * OpenAI's Responses API over the engine (issue 19): `POST /v1/responses`, streamed and not, and the
 * stored-response routes. The caller's body is parsed into the canonical request (custom tools as
 * functions of one string, so every target can call them; the encoder turns those calls back), served
 * with the engine's retries, failover and continuation as chat is, and written back in the Responses
 * shapes. A target that speaks Responses itself (`responsesApi`) is sent the caller's body, and its
 * whole answer's bytes come back unchanged when the request is stateless (`store: false` or no
 * table, no `previous_response_id`); otherwise with the gateway's id, `store` and
 * `previous_response_id` set on the upstream's object. A stream is always re-encoded (`storedStream`
 * says why). With `store` (OpenAI's default) the response and the input its model saw are kept on the
 * gateway's table, for `previous_response_id` from any instance and for `GET` / `DELETE`; Codex sends
 * `store: false` and its whole input every turn, and that path never touches the table.
 */
export function responses(context: GatewayContext): Endpoint[] {
  return [create(context), retrieve(context), inputItems(context), remove(context)];
}

/** Hosted-tool kinds logged as dropped at most once each per process; past this many, no more lines. */
const MAX_LOGGED_TOOL_KINDS = 32;

function create(context: GatewayContext): Endpoint {
  const { config, deps } = context;
  const routes = new Map<string, ModelRoute>(config.models.map((m) => [m.name, m]));
  const loggedTools = new Set<string>();
  /** One line per hosted-tool kind a request named: no translated target runs it, so it is left out. */
  const logDropped = (kinds: readonly string[], requestId: string) => {
    for (const kind of kinds) {
      if (loggedTools.has(kind) || loggedTools.size >= MAX_LOGGED_TOOL_KINDS) continue;
      loggedTools.add(kind);
      deps.logger.warn({
        msg: "hosted tool dropped: no target of the gateway runs it (logged once per kind)",
        requestId,
        tool: quoteCallerText(kind),
      });
    }
  };
  return {
    method: "POST",
    path: "/v1/responses",
    async handle({ request, requestId, caller }) {
      if (Buffer.byteLength(request.body) > config.maxBodyBytes) throw requestTooLarge(config.maxBodyBytes);
      const body = parseJsonObject(request.body, { maxNestingDepth: config.maxNestingDepth });
      let parsed = parseResponsesRequest(body);
      const model = parsed.generation.model;
      const route = routes.get(model);
      // A route the key may not use answers as no route does (issue 16): same status, code and text.
      if (route === undefined || (caller !== undefined && !mayUseModel(caller, model)))
        throw modelNotFound(model);
      const owner = ownerOf(caller);
      const store = context.responses;
      // The conversation so far, from the table: the input this request's model sees starts with it.
      let ownInputFrom = 0;
      let historyChars = 0;
      let sent: Record<string, unknown> = body;
      if (parsed.previousResponseId !== undefined) {
        const id = parsed.previousResponseId;
        const previous =
          store !== undefined && isResponseId(id) ? await fromTable(store.get(id, owner)) : undefined;
        if (previous === undefined) throw responseNotFound(id);
        const expanded = expandHistory(previous, parsed.input);
        ownInputFrom = expanded.ownInputFrom;
        historyChars = JSON.stringify(expanded.input.slice(0, ownInputFrom)).length;
        sent = { ...body, input: expanded.input };
        parsed = parseResponsesRequest(sent);
      }
      logDropped(parsed.droppedTools, requestId);
      const storing = parsed.store && store !== undefined;
      const echo = { ...parsed.echo, store: storing };
      const deadline = deadlineOf(context, request);
      const promptChars = request.body.length + historyChars;
      const admitting = admit(context, caller, () => ({
        model,
        promptTokens: estimateTokens(promptChars),
        maxOutputTokens: parsed.generation.maxOutputTokens,
        choices: 1,
      }));
      const meter = admitting === undefined ? undefined : await admitting;
      const call: Call = {
        input: responsesInput(sent, parsed.generation),
        streaming: parsed.generation.stream,
        choices: 1,
        promptChars,
        operation: "responses",
        route,
        requestId,
        signal: request.signal,
        deadline,
        meter,
      };
      const head = (served: { candidate: { target: { model: string } } }): ResponseHead => ({
        id: `resp_${deps.newId().replaceAll("-", "")}`,
        model: served.candidate.target.model,
        createdAt: Math.floor(deps.now() / 1000),
        echo,
      });
      const encoding = {
        customTools: parsed.customTools,
        reasoningSummary: parsed.reasoningSummary !== undefined,
      };
      const recordOf = (responseHead: ResponseHead, response: Record<string, unknown>): StoredResponse => ({
        id: responseHead.id,
        owner,
        createdAt: responseHead.createdAt,
        expiresAt: responseHead.createdAt + RESPONSE_TTL_SECONDS,
        response,
        input: parsed.input,
        ownInputFrom,
      });
      let response: GatewayResponse;
      if (call.streaming) {
        const served = await serve(context, call, streamedAnswer);
        if (served.ok) {
          const responseHead = head(served);
          const encoder = storedStream(
            createResponseStreamEncoder(responseHead, encoding),
            storing ? (object) => recordOf(responseHead, object) : undefined,
            echo,
          );
          const relayed = relayAnswer(served.run, served.value, served.others, encoder);
          response = {
            status: 200,
            headers: { ...eventStreamHeaders, ...answeredBy(served.run, served.candidate) },
            body: store === undefined ? relayed : thenStore(relayed, encoder, store, deps.logger, requestId),
          };
        } else response = failed(served);
      } else {
        const served = await serve(context, call, wholeAnswer);
        if (served.ok) {
          const responseHead = head(served);
          const answer = served.value;
          const native = answer.dialect === "openai-responses" ? answer.raw : undefined;
          let text: string;
          if (native !== undefined && !storing && parsed.previousResponseId === undefined) {
            // Stateless (Codex): the upstream's answer is the caller's, byte for byte, its id included.
            text = native;
          } else {
            const object =
              native === undefined
                ? toResponse(answer.result(), responseHead, encoding)
                : gatewayFieldsOn(native, responseHead.id, echo);
            if (storing && !(await put(store, recordOf(responseHead, object), deps.logger, requestId)))
              object.store = false;
            text = JSON.stringify(object);
          }
          response = {
            status: 200,
            headers: { ...jsonHeaders, ...answeredBy(served.run, served.candidate) },
            body: text,
          };
        } else response = failed(served);
      }
      return afterResponse(context, response, deadline);
    },
  };
}

/**
 * A Responses body as a generation input: a provider that speaks Responses (`responsesApi`) passes it
 * on as it came; every other target gets the canonical request, its custom tools as functions of one
 * string.
 */
function responsesInput(body: Record<string, unknown>, generation: GenerationRequest): GenerationInput {
  let canonical: GenerationRequest | undefined;
  return {
    dialect: "openai-responses",
    body,
    canonical() {
      canonical ??= customToolsAsFunctions(generation);
      return canonical;
    },
  };
}

/**
 * An upstream's own response object (a target that speaks Responses) with the fields that are the
 * gateway's: its id (the key of its stored record), `store` and `previous_response_id` as the caller
 * asked (the upstream was sent `store: false` and the expanded input instead). Everything else stays
 * as the upstream wrote it, output items and fields the gateway does not know included.
 */
function gatewayFieldsOn(raw: string, id: string, echo: ResponseEcho): Record<string, unknown> {
  // The provider parsed these bytes as an object already (`readResponse`).
  const object = JSON.parse(raw) as Record<string, unknown>;
  return { ...object, id, store: echo.store, previous_response_id: echo.previous_response_id };
}

/** The record a stream leaves to be written once its last event is out (none: nothing to store). */
interface StoredStream extends StreamEncoder {
  pending: StoredResponse | undefined;
}

/**
 * The relay's encoder over the Responses stream encoder. At its end it decides whether the answer
 * can be stored before the terminal event says `store`: past the size bound the event says false.
 * A whole answer (completed or incomplete) leaves its record in `pending`; a failed one none.
 *
 * A stream is always written from the canonical events, even from an upstream that speaks Responses
 * (whose bytes are in `upstream.raw`): after a failover or a continuation mid-answer the next
 * upstream opens its own response (`response.created` again, its own id and item ids) and numbers
 * its events from `sequence_number` 0, or speaks chat; its frames passed on would restart the answer
 * the caller is reading. One encoder for the whole answer keeps one id, one item per output, the
 * numbering continuous and the stored record equal to what was sent. A whole answer has no such
 * seam and is passed on as the upstream wrote it (see `gatewayFieldsOn`).
 */
function storedStream(
  encoder: ResponseStreamEncoder,
  recordOf: ((response: Record<string, unknown>) => StoredResponse) | undefined,
  echo: { store: boolean },
): StoredStream {
  let started = false;
  const adapter: StoredStream = {
    pending: undefined,
    event(upstream) {
      let out = "";
      if (!started) {
        started = true;
        out = encoder.start();
      }
      for (const event of upstream.events) out += encoder.encode(event);
      return out;
    },
    end() {
      if (recordOf !== undefined && !fitsStoredBound(recordOf(encoder.response()))) echo.store = false;
      const out = encoder.end();
      const final = encoder.response();
      if (recordOf !== undefined && echo.store && final.status !== "failed")
        adapter.pending = recordOf(final);
      return out;
    },
    fail: (error) => encoder.fail(error),
  };
  return adapter;
}

/**
 * The stream, then its record written: after the last event (never before the first byte), before
 * the body ends, so the caller's next `previous_response_id` finds it; on Lambda inside the same
 * after-response step as the ledger flush. A caller who leaves early leaves nothing to store.
 */
async function* thenStore(
  relayed: AsyncGenerator<string>,
  encoder: StoredStream,
  store: ResponseStore,
  logger: GatewayContext["deps"]["logger"],
  requestId: string,
): AsyncGenerator<string> {
  yield* relayed;
  const record = encoder.pending;
  if (record !== undefined) await put(store, record, logger, requestId);
}

/** Writes a record; false when it was not stored (past the bound, or the table failed: logged). */
async function put(
  store: ResponseStore | undefined,
  record: StoredResponse,
  logger: GatewayContext["deps"]["logger"],
  requestId: string,
): Promise<boolean> {
  if (store === undefined) return false;
  try {
    return await store.put(record);
  } catch (error) {
    logger.error({
      msg: "stored response not written",
      requestId,
      error: (error as Error)?.name ?? "error",
    });
    return false;
  }
}

/** A table that fails is a 503 the caller may retry, not a 500 (nor a 404: the record may be there). */
async function fromTable<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (error) {
    throw storeUnavailable(error);
  }
}

function ownerOf(caller: Caller | undefined): string {
  return caller?.id ?? OPEN_OWNER;
}

/** The stored response `:id` names, of this caller's key; else the 404 OpenAI gives. */
async function storedOf(
  context: GatewayContext,
  { params, caller }: RequestContext,
): Promise<StoredResponse> {
  const id = decoded(params.id ?? "");
  const record =
    context.responses !== undefined && isResponseId(id)
      ? await fromTable(context.responses.get(id, ownerOf(caller)))
      : undefined;
  if (record === undefined) throw responseNotFound(id);
  return record;
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** `GET /v1/responses/{id}`: the response object as it was answered. */
function retrieve(context: GatewayContext): Endpoint {
  return {
    method: "GET",
    path: "/v1/responses/:id",
    async handle(request) {
      const record = await storedOf(context, request);
      return jsonResponse(200, record.response, { "x-request-id": request.requestId });
    },
  };
}

/** `DELETE /v1/responses/{id}`: the record gone, for this key only. */
function remove(context: GatewayContext): Endpoint {
  return {
    method: "DELETE",
    path: "/v1/responses/:id",
    async handle({ params, caller, requestId }) {
      const id = decoded(params.id ?? "");
      const deleted =
        context.responses !== undefined && isResponseId(id)
          ? await fromTable(context.responses.delete(id, ownerOf(caller)))
          : false;
      if (!deleted) throw responseNotFound(id);
      return jsonResponse(200, { id, object: "response", deleted: true }, { "x-request-id": requestId });
    },
  };
}

/** OpenAI's bounds on `limit` for a list: 1 to 100, 20 unless given. */
const LIST_LIMIT = { default: 20, max: 100 };

/**
 * `GET /v1/responses/{id}/input_items`: the items of that request's own input (not the history it
 * continued), in OpenAI's list shape, newest first unless `order=asc`, `limit` at a time, `after` an
 * item id. An item the caller sent without an id is given one, stable across reads
 * (`item_<response>_<index>`); a string content is listed as the one text part it stands for.
 */
function inputItems(context: GatewayContext): Endpoint {
  return {
    method: "GET",
    path: "/v1/responses/:id/input_items",
    async handle(request) {
      const query = listQuery(request.request.path);
      const record = await storedOf(context, request);
      const base = record.id.startsWith("resp_") ? record.id.slice(5) : record.id;
      let items = record.input
        .slice(record.ownInputFrom)
        .map((item, i) => listedItem(item, `item_${base}_${i}`));
      if (query.order === "desc") items.reverse();
      if (query.after !== undefined) {
        const at = items.findIndex((item) => item.id === query.after);
        items = at === -1 ? [] : items.slice(at + 1);
      }
      const data = items.slice(0, query.limit);
      return jsonResponse(
        200,
        {
          object: "list",
          data,
          first_id: data[0]?.id ?? null,
          last_id: data[data.length - 1]?.id ?? null,
          has_more: items.length > data.length,
        },
        { "x-request-id": request.requestId },
      );
    },
  };
}

function listQuery(path: string): { limit: number; order: "asc" | "desc"; after: string | undefined } {
  const at = path.indexOf("?");
  const params = new URLSearchParams(at === -1 ? "" : path.slice(at + 1));
  const limitText = params.get("limit");
  const limit = limitText === null ? LIST_LIMIT.default : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT.max)
    throw new InvalidRequestError(
      `'limit' must be a whole number from 1 to ${LIST_LIMIT.max}; got '${quoteCallerText(limitText ?? "")}'.`,
      "limit",
      "invalid_value",
    );
  const order = params.get("order") ?? "desc";
  if (order !== "asc" && order !== "desc")
    throw new InvalidRequestError(
      `'order' must be 'asc' or 'desc'; got '${quoteCallerText(order)}'.`,
      "order",
      "invalid_value",
    );
  return { limit, order, after: params.get("after") ?? undefined };
}

type Item = Record<string, unknown> & { id: string };

function listedItem(item: unknown, id: string): Item {
  const object = typeof item === "object" && item !== null ? (item as Record<string, unknown>) : {};
  const listed: Item = { ...object, id: typeof object.id === "string" ? object.id : id };
  if (listed.type === undefined && typeof listed.role === "string") listed.type = "message";
  if (listed.type === "message" && typeof listed.content === "string") {
    const kind = listed.role === "assistant" ? "output_text" : "input_text";
    listed.content = [{ type: kind, text: listed.content }];
  }
  return listed;
}
