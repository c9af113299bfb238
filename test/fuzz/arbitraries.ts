import fc from "fast-check";

/**
 * Generators of what a hostile or careless caller sends: odd methods, paths and headers, and
 * bodies of every shape the chat endpoint must refuse politely (or serve). Shared by the fuzzing of
 * the local server and of the bundled Lambda handler.
 */

export const KNOWN_PATHS = ["/v1/chat/completions", "/v1/models", "/v1/models/m", "/health"] as const;

/** Standard methods, then proxies' and WebDAV's, which Node's parser knows. */
const knownMethod = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("GET", "POST", "HEAD", "OPTIONS") },
  { weight: 2, arbitrary: fc.constantFrom("PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", "PURGE") },
);

/** Tokens no server knows, lower case included: Node's parser refuses them. */
const oddMethod = fc.oneof(fc.constant("get"), fc.stringMatching(/^[A-Z]{1,12}$/));

/** Percent-encodings good and bad: truncated, non-hex, overlong, surrogates, NUL, slash. */
export const percent = fc.constantFrom(
  "%E0%A4%A",
  "%",
  "%Z",
  "%ZZ",
  "%00",
  "%2F",
  "%2e%2e",
  "%C3%A9",
  "%FF",
  "%C0%AF",
  "%ED%A0%80",
  "%F0%9F%98%80",
  "%25",
);

/** Path segments Node's parser accepts: ASCII, percent-encoded or not, well-formed or not. */
const segment = fc.oneof(
  fc.constantFrom("m", "gpt-4o", "..", ".", "", "chat", "completions", "models"),
  percent,
  fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{1,12}$/),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }).map(encodeURIComponent),
  fc.integer({ min: 1_000, max: 6_000 }).map((n) => "a".repeat(n)),
);

/** Segments the parser refuses: raw Unicode, spaces, controls, quotes. */
const oddSegment = fc.oneof(
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }),
  fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 6 }).map((s) => s.replace(/[\r\n]/g, "")),
);

function pathFrom(segments: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.constantFrom(...KNOWN_PATHS, "/", "/v1", "/v1/models/", "//v1/models", "/v1/embeddings"),
      fc.array(segments, { maxLength: 3 }),
      fc.option(
        fc
          .array(fc.tuple(segments, segments), { maxLength: 3 })
          .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join("&")),
      ),
    )
    .map(([base, extra, query]) => {
      const joined = extra.length === 0 ? base : `${base.replace(/\/$/, "")}/${extra.join("/")}`;
      return query === null ? joined : `${joined}?${query}`;
    });
}

/** A request target: a known path, perhaps extended or mangled, perhaps with a query string. */
const path = pathFrom(segment);
const oddPath = pathFrom(fc.oneof(segment, oddSegment));

const headerName = fc.oneof(
  { weight: 1, arbitrary: fc.constant("expect") },
  {
    weight: 15,
    arbitrary: fc.constantFrom(
      "content-type",
      "authorization",
      "accept",
      "accept-encoding",
      "x-request-id",
      "user-agent",
      "origin",
      "cookie",
    ),
  },
  { weight: 8, arbitrary: fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9-]{0,20}$/) },
);

const headerValue = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 40 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "application/json",
      "text/plain",
      "application/json; charset=latin1",
      "Bearer sk-not-a-key-0000000000",
      "Basic Zm9vOmJhcg==",
      "100-continue",
      "gzip, br",
      "",
    ),
  },
);

/** Bytes Node's parser refuses in a header value. */
const oddHeaderValue = fc.constantFrom("\u0000", "a\u0001b", "\u007f", "caf\u00e9", "\u00ff\u00fe");

const FRAMING = ["host", "connection", "content-length", "transfer-encoding"];

/** Extra headers; the framing ones (host, connection, content-length, transfer-encoding) are the caller's. */
function headersFrom(values: fc.Arbitrary<string>): fc.Arbitrary<Array<[string, string]>> {
  return fc
    .array(fc.tuple(headerName, values), { maxLength: 6 })
    .map((list) => list.filter(([name]) => !FRAMING.includes(name.toLowerCase())));
}

/** A value nested `depth` levels deep, alternating arrays and objects, as JSON text. */
export function nested(depth: number): string {
  let open = "";
  let close = "";
  for (let i = 0; i < depth; i++) {
    if (i % 2 === 0) {
      open += "[";
      close = `]${close}`;
    } else {
      open += '{"a":';
      close = `}${close}`;
    }
  }
  return `${open}1${close}`;
}

const hugeNumber = fc.constantFrom(
  "1e999",
  "-1e999",
  "1e-400",
  "123456789012345678901234567890",
  "-0",
  "9007199254740993",
  "0.30000000000000004",
);

const message = fc.oneof(
  fc.record({
    role: fc.constantFrom("user", "system", "assistant", "tool", "developer"),
    content: fc.oneof(fc.string({ maxLength: 40 }), fc.constant(null), fc.jsonValue({ maxDepth: 3 })),
  }),
  fc.jsonValue({ maxDepth: 3 }),
);

/** A chat request with each field right, wrong, missing or odd. */
const chatLike = fc
  .record(
    {
      model: fc.oneof(fc.constant("m"), fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 2 })),
      messages: fc.oneof(fc.array(message, { maxLength: 4 }), fc.jsonValue({ maxDepth: 3 })),
      stream: fc.oneof(fc.boolean(), fc.jsonValue({ maxDepth: 1 })),
      stream_options: fc.oneof(fc.record({ include_usage: fc.boolean() }), fc.jsonValue({ maxDepth: 2 })),
      temperature: fc.oneof(fc.double(), fc.jsonValue({ maxDepth: 1 })),
      max_tokens: fc.oneof(fc.integer(), fc.double()),
      n: fc.integer({ min: -5, max: 200 }),
      tools: fc.jsonValue({ maxDepth: 4 }),
    },
    { requiredKeys: [] },
  )
  .map((body) => JSON.stringify(body));

/** A body as bytes. */
export const body = fc.oneof(
  { weight: 4, arbitrary: chatLike.map((s) => Buffer.from(s)) },
  // A request the mock answers, so the happy path is in the mix too.
  {
    weight: 2,
    arbitrary: fc
      .record({ stream: fc.boolean(), content: fc.string({ maxLength: 30 }) })
      .map(({ stream, content }) =>
        Buffer.from(JSON.stringify({ model: "m", messages: [{ role: "user", content }], stream })),
      ),
  },
  { weight: 2, arbitrary: fc.json({ maxDepth: 4 }).map((s) => Buffer.from(s)) },
  {
    weight: 2,
    arbitrary: fc
      .integer({ min: 1, max: 20_000 })
      .map((n) => Buffer.from(`{"model":"m","messages":[{"role":"user","content":${nested(n)}}]}`)),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom("temperature", "max_tokens", "n", "top_p", "model"), hugeNumber)
      .map(([field, n]) =>
        Buffer.from(`{"model":"m","messages":[{"role":"user","content":"hi"}],"${field}":${n}}`),
      ),
  },
  // Invalid UTF-8: stray continuation bytes, overlong forms, surrogates, truncated sequences.
  {
    weight: 1,
    arbitrary: fc
      .constantFrom([0xff, 0xfe], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xc0, 0xaf])
      .map((bad) =>
        Buffer.concat([
          Buffer.from('{"model":"m","messages":[{"role":"user","content":"'),
          Buffer.from(bad),
          Buffer.from('"}]}'),
        ]),
      ),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 100 }).map((s) => Buffer.from(s)) },
);

/**
 * One generated request: mostly well-formed HTTP that reaches the gateway (half of it a chat
 * completion), the rest something Node's HTTP parser must refuse (odd method, raw Unicode or
 * control characters in the path, a control byte in a header).
 */
export const request = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      method: fc.constant("POST"),
      path: fc.constant("/v1/chat/completions"),
      headers: headersFrom(headerValue),
      body,
    }),
  },
  { weight: 3, arbitrary: fc.record({ method: knownMethod, path, headers: headersFrom(headerValue), body }) },
  {
    weight: 1,
    arbitrary: fc.record({
      method: fc.oneof(knownMethod, oddMethod),
      path: oddPath,
      headers: headersFrom(fc.oneof(headerValue, oddHeaderValue)),
      body,
    }),
  },
);
export type GeneratedRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

/** The seed to replay, from FUZZ_SEED; otherwise fast-check picks one and prints it on failure. */
export function fuzzSeed(): { seed: number } | Record<string, never> {
  const seed = Number(process.env.FUZZ_SEED);
  return Number.isInteger(seed) ? { seed } : {};
}

// Chat requests as values (already parsed), for the translators to other wire formats (issue 16):
// every field right, wrong, huge or deep. Sizes are drawn as numbers and built by `map`, so a failure
// shrinks to the smallest count or depth that still fails, not element by element.

/** A value nested `depth` levels deep (objects inside arrays inside objects...), built without recursion. */
export function nestedValue(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

/** A depth: mostly shallow, sometimes around the default limit of 64, sometimes absurd. */
const depth = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 8 }) },
  { weight: 3, arbitrary: fc.integer({ min: 60, max: 70 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 120_000 }) },
);

/** A count of items: mostly a few, sometimes past what a spread into a call survives. */
const count = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 4 }) },
  { weight: 1, arbitrary: fc.integer({ min: 100_000, max: 150_000 }) },
);

/** Values of the wrong type, and the property names of every object. */
const odd = fc.oneof(
  fc.constantFrom(null, undefined, true, 0, -1, 1.5, "", "constructor", "__proto__", "toString", [], {}),
  fc.jsonValue({ maxDepth: 2 }),
);

const longString = fc.integer({ min: 10_000, max: 300_000 }).map((n) => "x".repeat(n));
const text = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: longString },
);

const textPart = fc.record(
  { type: fc.constant("text"), text, cache_control: fc.constantFrom(undefined, { type: "ephemeral" }) },
  { requiredKeys: ["type", "text"] },
);
const imagePart = fc.record({
  type: fc.constant("image_url"),
  image_url: fc.record({
    url: fc.constantFrom(
      "data:image/png;base64,iVBORw0KGgo=",
      "data:image/jpg;base64,/9j/",
      "data:image/tiff;base64,AAAA",
      "https://x.test/a.png",
      `data:image/${"p".repeat(5_000)};base64,AA`,
    ),
  }),
});
const part = fc.oneof(
  { weight: 6, arbitrary: textPart },
  { weight: 1, arbitrary: imagePart },
  { weight: 1, arbitrary: fc.record({ type: fc.oneof(fc.constantFrom("input_audio", "file"), longString) }) },
  { weight: 1, arbitrary: odd },
);

/** Content: a string, a few parts, or as many copies of one part as `count` draws. */
const content = fc.oneof(
  { weight: 3, arbitrary: text },
  { weight: 3, arbitrary: fc.array(part, { maxLength: 4 }) },
  {
    weight: 1,
    arbitrary: fc.tuple(textPart, count).map(([p, n]) => Array.from({ length: n }, () => p)),
  },
  { weight: 1, arbitrary: odd },
);

/** Tool-call arguments: JSON, deep JSON text, text that is not JSON, or not a string at all. */
const toolArguments = fc.oneof(
  { weight: 3, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 2, arbitrary: depth.map(nested) },
  { weight: 1, arbitrary: depth.map((d) => `{"s":"${"[".repeat(d)}"}`) },
  { weight: 1, arbitrary: fc.constantFrom("{", "", "   ", "[1,", '"a"') },
  { weight: 1, arbitrary: odd },
);

const toolCall = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      id: fc.oneof(fc.constant("call_1"), odd),
      type: fc.constant("function"),
      function: fc.record({ name: fc.oneof(fc.constant("f"), odd), arguments: toolArguments }),
    }),
  },
  { weight: 1, arbitrary: odd },
);

const chatMessage = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record(
      {
        role: fc.oneof(
          { weight: 8, arbitrary: fc.constantFrom("system", "developer", "user", "assistant", "tool") },
          { weight: 1, arbitrary: fc.oneof(odd, longString, fc.constant("function")) },
        ),
        content,
        tool_calls: fc.oneof(fc.array(toolCall, { maxLength: 3 }), odd),
        tool_call_id: fc.oneof(fc.constant("call_1"), odd),
        refusal: fc.oneof(text, odd),
        prefix: fc.boolean(),
        name: fc.string({ maxLength: 5 }),
      },
      { requiredKeys: ["role"] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(longString, odd)
      .map(([field, value]) => ({ role: "user", content: "hi", [field]: value })),
  },
  { weight: 1, arbitrary: odd },
);

/** A JSON Schema, or something in its place: deep, huge or of the wrong type. */
const schema = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ type: "object", properties: { q: { type: "string" } } }) },
  { weight: 2, arbitrary: depth.map((d) => ({ type: "object", properties: nestedValue(d) })) },
  { weight: 1, arbitrary: odd },
);

const tool = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        type: fc.constant("function"),
        function: fc.record(
          {
            name: fc.oneof(fc.constant("f"), odd),
            description: fc.oneof(text, odd),
            parameters: schema,
            strict: odd,
          },
          { requiredKeys: ["name"] },
        ),
      },
      { requiredKeys: ["type", "function"] },
    ),
  },
  { weight: 1, arbitrary: odd },
);

const extension = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      {
        additionalModelRequestFields: fc.oneof(
          schema,
          depth.map((d) => ({ deep: nestedValue(d) })),
        ),
        additionalModelResponseFieldPaths: fc.oneof(
          fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
          odd,
        ),
        cachePoints: fc.oneof(
          fc.record(
            {
              system: fc.oneof(fc.boolean(), odd),
              tools: fc.boolean(),
              messages: fc.oneof(fc.array(fc.nat(5), { maxLength: 3 }), odd),
            },
            { requiredKeys: [] },
          ),
          odd,
        ),
        guardrailConfig: fc.oneof(
          depth.map((d) => ({ guardrailIdentifier: "g", trace: nestedValue(d) })),
          odd,
        ),
        performanceConfig: fc.oneof(fc.constant({ latency: "optimized" }), odd),
        requestMetadata: fc.oneof(
          fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 })),
          odd,
        ),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.tuple(longString, odd).map(([field, value]) => ({ [field]: value })) },
  { weight: 1, arbitrary: odd },
);

/**
 * A chat request as the translator receives it: `model` and `messages` as the validator leaves
 * them most of the time (a list of messages), everything else right, wrong, huge or deep.
 */
export const chatRequestValue = fc
  .record(
    {
      model: fc.constant("m"),
      messages: fc.oneof(
        { weight: 9, arbitrary: fc.array(chatMessage, { minLength: 1, maxLength: 5 }) },
        { weight: 1, arbitrary: odd },
      ),
      stream: fc.oneof(fc.boolean(), odd),
      temperature: fc.oneof(fc.double({ min: 0, max: 2, noNaN: true }), odd),
      top_p: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), odd),
      max_tokens: fc.oneof(fc.integer({ min: 1, max: 100_000 }), odd),
      max_completion_tokens: fc.oneof(fc.integer({ min: 1, max: 100_000 }), odd),
      stop: fc.oneof(fc.string({ maxLength: 5 }), fc.array(fc.oneof(fc.string({ maxLength: 5 }), odd)), odd),
      n: fc.oneof(fc.constantFrom(1, 2), odd),
      tools: fc.oneof(
        { weight: 4, arbitrary: fc.array(tool, { maxLength: 3 }) },
        { weight: 1, arbitrary: fc.tuple(tool, count).map(([t, n]) => Array.from({ length: n }, () => t)) },
        { weight: 1, arbitrary: odd },
      ),
      tool_choice: fc.oneof(
        fc.constantFrom("none", "auto", "required", { type: "function", function: { name: "f" } }),
        odd,
      ),
      parallel_tool_calls: fc.oneof(fc.boolean(), odd),
      response_format: fc.oneof(
        fc.constant({ type: "text" }),
        depth.map((d) => ({ type: "json_schema", json_schema: { name: "s", schema: nestedValue(d) } })),
        odd,
      ),
      bedrock: extension,
      seed: fc.oneof(fc.integer(), odd),
    },
    { requiredKeys: ["model", "messages"] },
  )
  .chain((request) =>
    // Sometimes a field no translator knows, named at length.
    fc.oneof(
      { weight: 6, arbitrary: fc.constant(request) },
      { weight: 1, arbitrary: longString.map((field) => ({ ...request, [field]: 1 })) },
    ),
  );
