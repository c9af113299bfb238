import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type { Template } from "aws-cdk-lib/assertions";

/**
 * Just enough of IAM's evaluation to check the synthesized DynamoDB grants against requests (the
 * ones the code really sends, and hostile ones): the condition operators the stack uses, with IAM's
 * semantics (`ForAllValues` over an absent key holds; `IfExists` over an absent key holds). Any
 * other operator throws, so a grant written differently is never judged by guesswork.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
 */

export interface Statement {
  Effect: "Allow" | "Deny";
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}

/** One DynamoDB request as IAM sees it: its action and the values of the condition keys. */
export interface TableRequest {
  action: string;
  /** `dynamodb:LeadingKeys`: the partition keys it touches. */
  leadingKeys: string[];
  /** `dynamodb:Attributes`: the attributes it touches; `all` for a read without a projection. */
  attributes: string[] | "all";
  /** `dynamodb:ReturnValues` (writes only). */
  returnValues?: string;
  /** The items it names, as `[pk, sk]`. */
  items: Array<[string, string]>;
  /** What to call it in a failure message. */
  label: string;
}

/** The statements of every policy attached to the role of the function whose description matches. */
export function roleStatements(template: Template, description: RegExp): Statement[] {
  const functions = Object.values(template.findResources("AWS::Lambda::Function")).filter((f) =>
    description.test(String(f.Properties.Description)),
  );
  if (functions.length !== 1) throw new Error(`${functions.length} functions match ${description}`);
  const role = (functions[0]?.Properties.Role as { "Fn::GetAtt": [string, string] } | undefined)?.[
    "Fn::GetAtt"
  ][0];
  return Object.values(template.findResources("AWS::IAM::Policy"))
    .filter((p) => (p.Properties.Roles as Array<{ Ref?: string }>).some((r) => r.Ref === role))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

export const tableStatements = (statements: Statement[]) =>
  statements.filter((s) => [s.Action].flat().some((a) => a.startsWith("dynamodb:")));

const glob = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );

function holds(operator: string, wanted: string[], actual: string[] | undefined): boolean {
  const equals = (v: string) => wanted.includes(v);
  const like = (v: string) => wanted.some((p) => glob(p).test(v));
  switch (operator) {
    case "ForAllValues:StringEquals":
      return (actual ?? []).every(equals);
    case "ForAllValues:StringLike":
      return (actual ?? []).every(like);
    case "StringEquals":
      return actual !== undefined && actual.length === 1 && equals(actual[0] as string);
    case "StringEqualsIfExists":
      return actual === undefined || (actual.length === 1 && equals(actual[0] as string));
    default:
      throw new Error(`the test's IAM evaluator does not know the operator ${operator}`);
  }
}

function contextValue(request: TableRequest, key: string): string[] | undefined {
  switch (key) {
    case "dynamodb:LeadingKeys":
      return request.leadingKeys;
    case "dynamodb:Attributes":
      // A whole-item read names no attributes: no attribute list can allow it.
      return request.attributes === "all" ? ["<every attribute>"] : request.attributes;
    case "dynamodb:ReturnValues":
      return request.returnValues === undefined ? undefined : [request.returnValues];
    default:
      throw new Error(`the test's IAM evaluator does not know the condition key ${key}`);
  }
}

/** Whether the statements allow the request (no Deny statement is expected: one throws). */
export function allows(statements: Statement[], request: TableRequest): boolean {
  if (statements.some((s) => s.Effect !== "Allow")) throw new Error("a Deny statement: not modelled");
  return statements.some(
    (s) =>
      [s.Action].flat().some((a) => a === request.action || glob(a).test(request.action)) &&
      Object.entries(s.Condition ?? {}).every(([operator, keys]) =>
        Object.entries(keys).every(([key, wanted]) =>
          holds(operator, [wanted].flat(), contextValue(request, key)),
        ),
      ),
  );
}

const KEYWORDS = new Set(["SET", "ADD", "REMOVE", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN"]);

/** The top-level attributes an update or condition expression names (functions and values skipped). */
export function attributesIn(expression: string | undefined, names: Record<string, string> = {}): string[] {
  if (expression === undefined) return [];
  // A document path (`#leases.#token`, `list[2]`) names its top-level attribute, which is what
  // `dynamodb:Attributes` judges: the nested steps are dropped before the scan.
  const topLevel = expression.replace(/(?:\.#?[A-Za-z0-9_]+|\[\d+\])+/g, "");
  const found: string[] = [];
  for (const [token, sigil, word, call] of topLevel.matchAll(/([#:]?)([A-Za-z_][A-Za-z0-9_]*)(\s*\()?/g)) {
    // A function (`attribute_exists(`, `if_not_exists(`) and a value (`:one`) are no attribute.
    if (call !== undefined || sigil === ":" || word === undefined) continue;
    if (sigil === "#") {
      const name = names[token];
      if (name === undefined) throw new Error(`${token} is not in ExpressionAttributeNames`);
      found.push(name);
    } else if (!KEYWORDS.has(word.toUpperCase())) found.push(word);
  }
  return found;
}

type Item = Record<string, AttributeValue>;
interface Input {
  Key?: Item;
  Item?: Item;
  RequestItems?: Record<string, { Keys?: Item[]; ProjectionExpression?: string }>;
  UpdateExpression?: string;
  ConditionExpression?: string;
  KeyConditionExpression?: string;
  ProjectionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Item;
  ReturnValues?: string;
}

/** A DynamoDB SDK command (its name and input) as IAM sees it. */
export function tableRequest(commandName: string, input: Input): TableRequest {
  const action = `dynamodb:${commandName.replace(/Command$/, "")}`;
  const names = input.ExpressionAttributeNames ?? {};
  const pk = (item: Item | undefined) => item?.pk?.S ?? "<no pk>";
  const named = (item: Item | undefined): [string, string] => [pk(item), item?.sk?.S ?? ""];
  const projected = (expression: string | undefined) =>
    expression === undefined ? ("all" as const) : ["pk", "sk", ...attributesIn(expression, names)];
  const one = named(input.Key ?? input.Item);
  const items = [one];
  const label = `${action} ${one.join(" ")} ${input.UpdateExpression ?? ""}`.trim();
  switch (action) {
    case "dynamodb:UpdateItem":
    case "dynamodb:DeleteItem":
      return {
        action,
        label,
        items,
        leadingKeys: [pk(input.Key)],
        attributes: [
          ...Object.keys(input.Key ?? {}),
          ...attributesIn(input.UpdateExpression, names),
          ...attributesIn(input.ConditionExpression, names),
        ],
        returnValues: input.ReturnValues ?? "NONE",
      };
    case "dynamodb:PutItem":
      return {
        action,
        label,
        items,
        leadingKeys: [pk(input.Item)],
        attributes: [...Object.keys(input.Item ?? {}), ...attributesIn(input.ConditionExpression, names)],
        returnValues: input.ReturnValues ?? "NONE",
      };
    case "dynamodb:GetItem":
      return {
        action,
        label,
        items,
        leadingKeys: [pk(input.Key)],
        attributes: projected(input.ProjectionExpression),
      };
    case "dynamodb:BatchGetItem": {
      const tables = Object.values(input.RequestItems ?? {});
      const all = tables.flatMap((t) => (t.Keys ?? []).map(named));
      return {
        action,
        label: `${action} ${all.map((i) => i.join(" ")).join(", ")}`,
        items: all,
        leadingKeys: all.map(([key]) => key),
        attributes: tables.some((t) => t.ProjectionExpression === undefined)
          ? "all"
          : tables.flatMap((t) => projected(t.ProjectionExpression) as string[]),
      };
    }
    case "dynamodb:Query": {
      const ref = /\bpk\s*=\s*(:[A-Za-z0-9_]+)/.exec(input.KeyConditionExpression ?? "")?.[1];
      const value = ref === undefined ? "<no pk>" : (input.ExpressionAttributeValues?.[ref]?.S ?? "<no pk>");
      return {
        action,
        label: `${action} ${value}`,
        items: [[value, ""]],
        leadingKeys: [value],
        attributes: projected(input.ProjectionExpression),
      };
    }
    default:
      // A Scan, for one, names no partition key.
      return { action, label: action, items: [], leadingKeys: [], attributes: "all" };
  }
}
