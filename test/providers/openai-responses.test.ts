import { describe, expect, it } from "vitest";
import { sealReasoning } from "../../lib/dialects/openai-responses/reasoning.ts";
import { responsesBody } from "../../lib/providers/openai-responses.ts";

describe("responsesBody", () => {
  it("changes only model, store and stream for a stateless caller, and never the caller's object", () => {
    const caller = { model: "route", input: "hi", store: false, stream: true, text: { verbosity: "low" } };
    const copy = structuredClone(caller);
    expect(responsesBody(caller, "gpt-x", true)).toEqual({ ...caller, model: "gpt-x" });
    expect(responsesBody(caller, "gpt-x", false)).toEqual({ ...caller, model: "gpt-x", stream: false });
    expect(caller).toEqual(copy);
  });

  it("drops the gateway's previous_response_id and asks for reasoning content when state is the gateway's", () => {
    const body = responsesBody(
      { model: "route", input: [], previous_response_id: "resp_1", include: ["file_search_call.results"] },
      "gpt-x",
      false,
    );
    expect(body).toEqual({
      model: "gpt-x",
      input: [],
      store: false,
      include: ["file_search_call.results", "reasoning.encrypted_content"],
    });
  });

  it("leaves out reasoning items the upstream cannot read: none of its own, or without content", () => {
    const openai = { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "gAAAAopaque" };
    const claude = {
      type: "reasoning",
      id: "rs_2",
      summary: [],
      encrypted_content: sealReasoning({ family: "anthropic", signature: "sig" }),
    };
    const bare = { type: "reasoning", id: "rs_3", summary: [] };
    const message = { type: "message", role: "user", content: "next" };
    const body = responsesBody(
      { model: "route", store: false, input: [openai, claude, bare, message] },
      "gpt-x",
      false,
    );
    expect(body.input).toEqual([openai, message]);
  });
});
