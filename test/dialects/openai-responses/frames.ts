/** Test helpers: a Responses SSE text split back into its events, and a canonical head. */
import type { ResponseHead } from "../../../lib/dialects/openai-responses/encode.ts";
import { parseResponsesRequest } from "../../../lib/dialects/openai-responses/parse.ts";

export type Frame = Record<string, unknown> & { type: string; sequence_number: number };

/** Each frame's JSON; throws when an `event:` line disagrees with its data's `type`. */
export function framesOf(sse: string): Frame[] {
  const frames: Frame[] = [];
  for (const block of sse.split("\n\n")) {
    if (block === "") continue;
    const [eventLine, dataLine, ...rest] = block.split("\n");
    if (rest.length > 0 || !eventLine?.startsWith("event: ") || !dataLine?.startsWith("data: "))
      throw new Error(`not a Responses SSE frame: ${block}`);
    const frame = JSON.parse(dataLine.slice(6)) as Frame;
    if (frame.type !== eventLine.slice(7)) throw new Error(`event line ${eventLine} for ${frame.type}`);
    frames.push(frame);
  }
  return frames;
}

export function headFor(body: Record<string, unknown> = { model: "route-a", input: "Hi" }): ResponseHead {
  return {
    id: "resp_gw1",
    model: "route-a",
    createdAt: 1_760_000_000,
    echo: parseResponsesRequest(body).echo,
  };
}
