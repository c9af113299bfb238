import { afterEach, expect, it } from "vitest";
import { sseDataLines } from "../support/fake-upstream.ts";
import { chatBody, postChat, type TestGateway } from "../support/gateway.ts";
import { twoUpstreamGateway } from "../support/two-upstreams.ts";

let setup: Awaited<ReturnType<typeof twoUpstreamGateway>> | undefined;
afterEach(async () => {
  await setup?.gateway.close();
  await setup?.a.close();
  await setup?.b.close();
});

it("hands a finished stream's upstream connection back to the pool for the next request", async () => {
  setup = await twoUpstreamGateway();
  const gateway: TestGateway = setup.gateway;

  for (let i = 0; i < 5; i++) {
    const events = sseDataLines(await (await postChat(gateway.url, chatBody("m", { stream: true }))).text());
    expect(events.at(-1)).toBe("[DONE]");
  }

  expect(setup.a.requests).toHaveLength(5);
  expect(setup.a.connections()).toBe(1);
});
