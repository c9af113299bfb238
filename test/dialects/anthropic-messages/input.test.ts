import { describe, expect, it } from "vitest";
import { messagesInput } from "../../../lib/dialects/anthropic-messages/input.ts";

describe("messagesInput", () => {
  it("hands a native provider the body and only the caller's anthropic-beta and anthropic-version", () => {
    // Prepare
    const body = { model: "m", max_tokens: 5, messages: [{ role: "user", content: "hi" }] };
    const headers = {
      "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
      "anthropic-version": "2023-06-01",
      "x-api-key": "sk-caller-secret",
      authorization: "Bearer sk-caller-secret",
      "user-agent": "claude-cli/2.1.332",
    };
    // Act
    const input = messagesInput(body, headers);
    // Assess
    expect(input.dialect).toBe("anthropic-messages");
    expect(input.body).toBe(body);
    expect(input.headers).toEqual({
      "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
      "anthropic-version": "2023-06-01",
    });
  });

  it("parses the canonical form once, or reuses the one given", () => {
    // Prepare
    const body = { model: "m", max_tokens: 5, messages: [{ role: "user", content: "hi" }] };
    const lazy = messagesInput(body, {});
    const given = messagesInput(body, {}, lazy.canonical());
    // Act
    const first = lazy.canonical();
    // Assess
    expect(first.maxOutputTokens).toBe(5);
    expect(lazy.canonical()).toBe(first);
    expect(given.canonical()).toBe(first);
    expect(messagesInput(body, {}).headers).toEqual({});
  });
});
