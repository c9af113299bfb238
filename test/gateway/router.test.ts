import { describe, expect, it } from "vitest";
import { createRouter } from "../../lib/gateway/router.ts";

const router = createRouter([
  { method: "POST", path: "/v1/chat/completions", handler: "chat" },
  { method: "GET", path: "/v1/models", handler: "models" },
  { method: "GET", path: "/v1/models/*id", handler: "model" },
  { method: "GET", path: "/v1/responses/:id", handler: "get-response" },
  { method: "DELETE", path: "/v1/responses/:id", handler: "delete-response" },
  { method: "GET", path: "/v1/responses/:id/input_items", handler: "input-items" },
]);

describe("the route table", () => {
  it("finds exact paths, and HEAD finds GET", () => {
    expect(router.match("POST", "/v1/chat/completions")).toEqual({
      kind: "found",
      match: { handler: "chat", params: {} },
    });
    expect(router.match("HEAD", "/v1/models")).toEqual({
      kind: "found",
      match: { handler: "models", params: {} },
    });
  });

  it("hands over a segment, and a rest of the path with its slashes", () => {
    expect(router.match("GET", "/v1/models/openai/gpt-4o%20mini")).toEqual({
      kind: "found",
      match: { handler: "model", params: { id: "openai/gpt-4o%20mini" } },
    });
    expect(router.match("GET", "/v1/responses/resp_1/input_items")).toEqual({
      kind: "found",
      match: { handler: "input-items", params: { id: "resp_1" } },
    });
    expect(router.match("DELETE", "/v1/responses/resp_1")).toEqual({
      kind: "found",
      match: { handler: "delete-response", params: { id: "resp_1" } },
    });
  });

  it("answers 405 material from the table: the methods a path takes, HEAD and OPTIONS included", () => {
    expect(router.match("GET", "/v1/chat/completions")).toEqual({
      kind: "method-not-allowed",
      allow: ["POST", "OPTIONS"],
    });
    expect(router.match("POST", "/v1/responses/resp_1")).toEqual({
      kind: "method-not-allowed",
      allow: ["GET", "DELETE", "HEAD", "OPTIONS"],
    });
    expect(router.allowed("/v1/models/x")).toEqual(["GET", "HEAD", "OPTIONS"]);
  });

  it("knows no other path: an empty segment, an extra segment, a prefix", () => {
    for (const path of [
      "/v1/models/",
      "/v1/responses//input_items",
      "/v1/responses/a/b",
      "/v1",
      "/v1/chat",
    ]) {
      expect(router.match("GET", path), path).toEqual({ kind: "not-found" });
      expect(router.allowed(path), path).toBeUndefined();
    }
  });

  it("refuses a route declared twice", () => {
    expect(() =>
      createRouter([
        { method: "GET", path: "/a/:x", handler: 1 },
        { method: "GET", path: "/a/:x", handler: 2 },
      ]),
    ).toThrow("declared twice");
  });
});
