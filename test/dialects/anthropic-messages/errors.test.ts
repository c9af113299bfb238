import { describe, expect, it } from "vitest";
import { filterBetas } from "../../../lib/dialects/anthropic-messages/beta.ts";
import { anthropicErrorType, toAnthropicError } from "../../../lib/dialects/anthropic-messages/errors.ts";
import { toGeneration } from "../../../lib/dialects/anthropic-messages/parse.ts";
import { toChatRequest } from "../../../lib/dialects/openai-chat/request.ts";
import {
  InternalError,
  invalidApiKey,
  missingParameter,
  rateLimitExceeded,
  UpstreamTimeoutError,
  upstreamReported,
} from "../../../lib/errors.ts";

/** An error an upstream reported with `status`, handed back to the caller. */
const reported = (message: string, status: number) =>
  upstreamReported("p", message, { status, action: "return" });

describe("toAnthropicError", () => {
  it.each([
    [missingParameter("messages", "messages: Field required"), 400, "invalid_request_error"],
    // The caller gate's bad key is OpenAI's invalid_request_error; Anthropic calls it authentication.
    [invalidApiKey("Invalid API key"), 401, "authentication_error"],
    [reported("Budget spent", 402), 402, "billing_error"],
    [reported("model not allowed", 403), 403, "permission_error"],
    [reported("no such route", 404), 404, "not_found_error"],
    [reported("body too large", 413), 413, "request_too_large"],
    [rateLimitExceeded("slow down"), 429, "rate_limit_error"],
    [reported("bad gateway", 502), 502, "api_error"],
    [reported("no target available", 503), 503, "overloaded_error"],
    [reported("overloaded", 529), 529, "overloaded_error"],
    [new UpstreamTimeoutError("claude", "first_token", 5000), 504, "timeout_error"],
    [reported("unprocessable", 422), 422, "invalid_request_error"],
  ])("%s is %i %s", (error, status, type) => {
    const { status: got, body } = toAnthropicError(error);
    expect(got).toBe(status);
    expect(body).toEqual({ type: "error", error: { type, message: error.message } });
  });

  it("says nothing of an unknown error, echoes the request id, and redacts a key in the message", () => {
    expect(toAnthropicError(new TypeError("x is undefined at /var/task/secret.js"), "req_1")).toEqual({
      status: 500,
      body: {
        type: "error",
        error: { type: "api_error", message: "Internal server error" },
        request_id: "req_1",
      },
    });
    expect(toAnthropicError(new InternalError(new Error("bug"))).body.error).toEqual({
      type: "api_error",
      message: "Internal server error",
    });
    const key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789";
    const { body } = toAnthropicError(reported(`upstream said: bad key ${key}`, 502));
    expect(body.error.message).not.toContain(key);
  });

  it("keeps a timeout's type on a 5xx other than 504, api_error otherwise", () => {
    expect(anthropicErrorType(500, "timeout")).toBe("timeout_error");
    expect(anthropicErrorType(500, "upstream")).toBe("api_error");
    expect(anthropicErrorType(418)).toBe("invalid_request_error");
  });
});

describe("filterBetas", () => {
  const claudeCode =
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,per-turn-control-2026-07-01,mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24";

  it("keeps the flags a target takes and names the others, in the header's order", () => {
    expect(
      filterBetas(claudeCode, [
        "interleaved-thinking-2025-05-14",
        "context-management-2025-06-27",
        "effort-2025-11-24",
      ]),
    ).toEqual({
      kept: ["interleaved-thinking-2025-05-14", "context-management-2025-06-27", "effort-2025-11-24"],
      dropped: [
        "claude-code-20250219",
        "per-turn-control-2026-07-01",
        "mid-conversation-tool-changes-2026-07-01",
        "thinking-token-count-2026-05-13",
        "advanced-tool-use-2025-11-20",
      ],
    });
  });

  it("keeps every flag for `all`, ignores white space, empty items and repeats; nothing for no header", () => {
    expect(filterBetas(" a , ,b,a,", "all")).toEqual({ kept: ["a", "b"], dropped: [] });
    expect(filterBetas(undefined, "all")).toEqual({ kept: [], dropped: [] });
    expect(filterBetas("a,b", [])).toEqual({ kept: [], dropped: ["a", "b"] });
  });
});

describe("Messages caller to an OpenAI-compatible target", () => {
  it("reports adaptive thinking as dropped, with the other fields chat cannot say", () => {
    const drops: string[] = [];
    const body = toChatRequest(
      toGeneration({
        model: "m",
        max_tokens: 100,
        messages: [{ role: "user", content: "hi" }],
        thinking: { type: "adaptive" },
        context_management: { edits: [] },
        top_k: 3,
      }),
      { onDrop: (what) => drops.push(what) },
    );
    expect(body).toEqual({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 100 });
    expect(drops).toEqual(["topK", "reasoning.mode", "context_management"]);
  });
});
