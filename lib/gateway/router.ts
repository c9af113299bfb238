/**
 * The HTTP API as a table of routes (issue 17), in the shape of Powertools' event-handler router:
 * each endpoint is one entry (method, path, handler), and 404, 405 with `Allow`, and OPTIONS come
 * from the table, so a new endpoint is one file and one line. A path segment `:name` matches one segment,
 * a last segment `*name` the rest of the path (model names hold slashes: `/v1/models/*id`); the raw
 * (still percent-encoded) text is handed to the handler.
 */

export interface RouteMatch<Handler> {
  handler: Handler;
  /** The `:name` and `*name` segments of the path, as sent (percent-encoded). */
  params: Record<string, string>;
}

export interface RouteEntry<Handler> {
  /** `GET`, `POST`, ...: a `GET` route answers `HEAD` too. */
  method: string;
  path: string;
  handler: Handler;
}

export type Lookup<Handler> =
  | { kind: "found"; match: RouteMatch<Handler> }
  /** The path exists but not with this method: `allow` lists what it takes (OPTIONS included). */
  | { kind: "method-not-allowed"; allow: readonly string[] }
  | { kind: "not-found" };

export interface Router<Handler> {
  /** The route for `method` on `path`; `HEAD` finds the `GET` route. `path` has no query string. */
  match(method: string, path: string): Lookup<Handler>;
  /** The methods a path answers (with HEAD where GET is, and OPTIONS), or undefined for an unknown path. */
  allowed(path: string): readonly string[] | undefined;
}

type Segment = { literal: string } | { param: string; rest: boolean };

interface Pattern<Handler> {
  segments: Segment[];
  methods: Map<string, Handler>;
}

/** `/v1/responses/:id/input_items` as segments; `*name` (last only) takes the rest, slashes included. */
function segmentsOf(path: string): Segment[] {
  const parts = path.split("/").slice(1);
  return parts.map((part, i) => {
    if (part.startsWith(":")) return { param: part.slice(1), rest: false };
    if (part.startsWith("*")) {
      if (i !== parts.length - 1) throw new Error(`route ${path}: a '*' segment must be the last`);
      return { param: part.slice(1), rest: true };
    }
    return { literal: part };
  });
}

function matchSegments(segments: Segment[], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (const [i, segment] of segments.entries()) {
    const part = parts[i];
    if (part === undefined) return undefined;
    if ("literal" in segment) {
      if (part !== segment.literal) return undefined;
    } else if (segment.rest) {
      const rest = parts.slice(i).join("/");
      if (rest === "") return undefined;
      params[segment.param] = rest;
      return params;
    } else {
      if (part === "") return undefined;
      params[segment.param] = part;
    }
  }
  return parts.length === segments.length ? params : undefined;
}

/** Builds the router once: exact paths are a map lookup, patterned ones a short scan in order. */
export function createRouter<Handler>(routes: readonly RouteEntry<Handler>[]): Router<Handler> {
  const exact = new Map<string, Map<string, Handler>>();
  const patterns: Pattern<Handler>[] = [];
  for (const route of routes) {
    let methods: Map<string, Handler> | undefined;
    if (!/\/[:*]/.test(route.path)) {
      methods = exact.get(route.path) ?? new Map<string, Handler>();
      exact.set(route.path, methods);
    } else {
      const segments = segmentsOf(route.path);
      const same = patterns.find((p) => JSON.stringify(p.segments) === JSON.stringify(segments));
      methods = same?.methods;
      if (methods === undefined) {
        methods = new Map();
        patterns.push({ segments, methods });
      }
    }
    if (methods.has(route.method)) throw new Error(`route ${route.method} ${route.path} is declared twice`);
    methods.set(route.method, route.handler);
  }
  const allowCache = new Map<Map<string, Handler>, readonly string[]>();
  const allowOf = (methods: Map<string, Handler>): readonly string[] => {
    let allow = allowCache.get(methods);
    if (allow === undefined) {
      const names = [...methods.keys()];
      allow = [...names, ...(methods.has("GET") ? ["HEAD"] : []), "OPTIONS"];
      allowCache.set(methods, allow);
    }
    return allow;
  };
  const find = (
    path: string,
  ): { methods: Map<string, Handler>; params: Record<string, string> } | undefined => {
    const methods = exact.get(path);
    if (methods !== undefined) return { methods, params: {} };
    if (patterns.length === 0) return undefined;
    const parts = path.split("/").slice(1);
    for (const pattern of patterns) {
      const params = matchSegments(pattern.segments, parts);
      if (params !== undefined) return { methods: pattern.methods, params };
    }
    return undefined;
  };
  return {
    match(method, path) {
      const found = find(path);
      if (found === undefined) return { kind: "not-found" };
      const handler = found.methods.get(method === "HEAD" ? "GET" : method);
      if (handler === undefined) return { kind: "method-not-allowed", allow: allowOf(found.methods) };
      return { kind: "found", match: { handler, params: found.params } };
    },
    allowed(path) {
      const found = find(path);
      return found === undefined ? undefined : allowOf(found.methods);
    },
  };
}
