import type { ProviderConfig } from "../config/types.ts";
import { providerKeyUnavailable, providerNotConfigured } from "../errors.ts";
import type { HttpResponse } from "../http/client.ts";
import { errorFromStatus, toUpstreamError } from "../retry/classify.ts";
import type { HealthProbe } from "./base.ts";
import type { ProviderContext } from "./definition.ts";
import type { GenerationOptions } from "./generation.ts";
import type { HealthResult } from "./types.ts";

/**
 * The provider's key. A key store that fails (Secrets Manager throttled, timed out, access denied)
 * fails this target over like any other fault, instead of ending the request as an internal error;
 * blame counts it as the gateway's, so a slow Secrets Manager never benches the provider.
 */
export async function providerKey(
  context: ProviderContext,
  config: ProviderConfig,
): Promise<string | undefined> {
  try {
    return await context.keys.get(config);
  } catch (error) {
    throw providerKeyUnavailable(config.id, error);
  }
}

export interface KeyedPost {
  url: string;
  /** Headers beside the key's (content type and accept are set here). */
  headers: Record<string, string>;
  /** The headers that carry the key (`authorization: Bearer …`, `x-api-key: …`). */
  credential(key: string): Record<string, string>;
  /** The JSON text sent. */
  body: string;
  streaming: boolean;
  options: GenerationOptions;
}

/**
 * One POST to an HTTP provider that takes a key, as OpenAI-compatible servers and Anthropic's API
 * do: under the call's timeouts (for a stream only connect and headers; its content-level limits,
 * first token and idle, are the gateway's), with the key the store holds. A 401 is answered once
 * more if the key was rotated since it was cached (fetched again: one fetch, shared by every request
 * that saw the old key). Any status but 200 is thrown, classified.
 */
export async function postWithKey(
  context: ProviderContext,
  config: ProviderConfig,
  post: KeyedPost,
): Promise<HttpResponse> {
  const key = await providerKey(context, config);
  if (key === undefined) throw providerNotConfigured(config.id);
  const t = post.options.timeouts;
  const send = async (apiKey: string): Promise<HttpResponse> => {
    try {
      return await context.http.request({
        url: post.url,
        method: "POST",
        headers: {
          ...post.headers,
          "content-type": "application/json",
          accept: post.streaming ? "text/event-stream" : "application/json",
          ...post.credential(apiKey),
        },
        body: post.body,
        signal: post.options.signal,
        connectTimeoutMs: t.connectMs,
        headersTimeoutMs: post.streaming ? t.headersMs : t.responseMs,
        // Content-level limits (first token, idle) are the gateway's; this only catches a dead socket.
        bodyIdleTimeoutMs: post.streaming ? Math.max(t.idleMs, t.firstTokenMs) : t.responseMs,
        ...(post.streaming ? {} : { totalTimeoutMs: t.responseMs }),
      });
    } catch (error) {
      throw toUpstreamError(config.id, error);
    }
  };
  let response = await send(key);
  if (response.status === 401) {
    const refused = await response.text().catch(() => "");
    context.keys.invalidate(config, key);
    const fresh = await providerKey(context, config);
    if (fresh === undefined || fresh === key)
      throw errorFromStatus(config.id, 401, response.headers, refused, context.deps.now());
    response = await send(fresh);
  }
  if (response.status !== 200) {
    const text = await response.text().catch(() => "");
    throw errorFromStatus(config.id, response.status, response.headers, text, context.deps.now());
  }
  return response;
}

/**
 * The cheap health probe of a keyed HTTP provider: `GET url` (its model list) under the check's
 * timeout, with the key in `credential(key)` headers; a 200 is healthy.
 */
export async function modelsProbe(
  context: ProviderContext,
  config: ProviderConfig,
  probe: { url: string; headers: Record<string, string>; credential(key: string): Record<string, string> },
  { signal, started, timeoutMs }: HealthProbe,
): Promise<HealthResult> {
  const key = await providerKey(context, config);
  const response = await context.http.request({
    url: probe.url,
    method: "GET",
    headers: { ...probe.headers, ...(key ? probe.credential(key) : {}) },
    signal,
    connectTimeoutMs: Math.min(timeoutMs, config.timeouts.connectMs),
    headersTimeoutMs: timeoutMs,
    bodyIdleTimeoutMs: timeoutMs,
  });
  await response.text();
  const ok = response.status === 200;
  return {
    ok,
    status: response.status,
    latencyMs: context.deps.now() - started,
    ttftMs: undefined,
    error: ok ? undefined : `HTTP ${response.status}`,
  };
}
