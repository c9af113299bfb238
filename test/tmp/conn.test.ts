import { expect, it } from "vitest";
import { startFakeUpstream } from "../support/fake-upstream.ts";
import { chatBody, fakeProvider, postChat, startGateway } from "../support/gateway.ts";

it("reuses upstream connections across sequential streams", async () => {
  const a = await startFakeUpstream();
  const g = await startGateway({
    providers: [fakeProvider("a", a.url)],
    models: { m: { targets: [{ provider: "a", model: "x" }] } },
  });
  for (let i = 0; i < 5; i++) await (await postChat(g.url, chatBody("m", { stream: true }))).text();
  for (let i = 0; i < 5; i++) await (await postChat(g.url, chatBody("m"))).text();
  console.log("connections", a.connections(), "requests", a.requests.length);
  await g.close();
  await a.close();
  expect(true).toBe(true);
});
