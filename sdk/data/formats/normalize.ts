/** Turns raw records of each format into typed rows, or into issues naming the file, line and field at fault. */
import type { ChatMessage, ChatRole, DataFormat, Provenance, Row } from "../types";
import type { DataIssue, DropReason } from "../report";
import type { RawRecord } from "../read";
import { describe } from "../read/json";
import { defaultColumns, OPENAI_TAGS, SHAREGPT_TAGS, type ColumnMap, type RoleTags } from "./columns";
import { isObject } from "./detect";

/** How to read records of one format. */
export interface NormalizeOptions {
  format: DataFormat;
  columns?: ColumnMap;
  /** Message tags for sharegpt/openai (defaults: the format's own). */
  tags?: Partial<RoleTags>;
  /** Accept only the role values in `tags`; otherwise the common aliases (human/user, gpt/assistant, ...) pass too. */
  exactTags?: boolean;
}

/** The row a record became, or the issue (the first problem found) that rejects it. */
export type Normalized = { row: Row; issue?: undefined } | { row?: undefined; issue: DataIssue };

class Reject {
  constructor(
    readonly field: string | undefined,
    readonly reason: DropReason,
    readonly message: string,
  ) {}
}

/** A reader of one format, built once per file so column/tag lookups are resolved once. */
export function makeNormalizer(source: string, options: NormalizeOptions): (rec: RawRecord) => Normalized {
  const cols = { ...defaultColumns(options.format), ...stripUndefined(options.columns ?? {}) };
  const base = options.format === "openai" ? OPENAI_TAGS : SHAREGPT_TAGS;
  const tags: RoleTags = { ...base, ...stripUndefined(options.tags ?? {}) };
  const roleOf = roleMapper(tags, !options.exactTags);
  const build = (o: Record<string, unknown>, prov: Provenance): Row => {
    switch (options.format) {
      case "classification":
        return { kind: "classification", text: text(o, cols.text), label: label(o, cols.label), provenance: prov };
      case "pretrain":
        return { kind: "pretrain", text: text(o, cols.text), provenance: prov };
      case "alpaca":
        return { kind: "chat", messages: alpaca(o, cols), provenance: prov };
      case "sharegpt":
      case "openai":
        return { kind: "chat", messages: chat(o, cols, tags, roleOf), provenance: prov };
    }
  };
  return (rec) => {
    const prov: Provenance = { id: `${source}:${rec.line}`, source, line: rec.line };
    try {
      if (!isObject(rec.value)) throw new Reject(undefined, "wrong-type", `expected a record (an object), got ${describe(rec.value)}`);
      return { row: build(rec.value, prov) };
    } catch (e) {
      if (!(e instanceof Reject)) throw e;
      return { issue: { source, line: rec.line, field: e.field, reason: e.reason, message: e.message } };
    }
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const absent = (v: unknown) => v === undefined || v === null;

/** A required non-empty string. */
function text(o: Record<string, unknown>, col: string, path = col): string {
  const v = o[col];
  if (absent(v)) throw new Reject(path, "missing-field", `missing field "${col}"`);
  return nonEmpty(v, path);
}

function nonEmpty(v: unknown, path: string): string {
  if (typeof v !== "string") throw new Reject(path, "wrong-type", `expected a string, got ${describe(v)}`);
  if (v.trim() === "") throw new Reject(path, "empty-text", "empty text");
  return v;
}

/** An optional string ("" and null count as absent). */
function optString(o: Record<string, unknown>, col: string): string | undefined {
  const v = o[col];
  if (absent(v) || v === "") return undefined;
  if (typeof v !== "string") throw new Reject(col, "wrong-type", `expected a string, got ${describe(v)}`);
  return v.trim() === "" ? undefined : v;
}

function label(o: Record<string, unknown>, col: string): string {
  const v = o[col];
  if (absent(v)) throw new Reject(col, "missing-field", `missing field "${col}"`);
  if (typeof v === "number" && Number.isInteger(v)) return String(v);
  if (typeof v !== "string") throw new Reject(col, "wrong-type", `expected a string or integer label, got ${describe(v)}`);
  if (v.trim() === "") throw new Reject(col, "empty-text", "empty label");
  return v.trim();
}

/** A list field that may arrive JSON-encoded in a string (CSV, some Parquet exports). */
function list(o: Record<string, unknown>, col: string, required: boolean): unknown[] | undefined {
  let v = o[col];
  if (absent(v) || v === "") {
    if (required) throw new Reject(col, "missing-field", `missing field "${col}"`);
    return undefined;
  }
  if (typeof v === "string" && v.trimStart().startsWith("[")) {
    try {
      v = JSON.parse(v);
    } catch {
      throw new Reject(col, "wrong-type", "expected a list; the text looks like JSON but does not parse");
    }
  }
  if (!Array.isArray(v)) throw new Reject(col, "wrong-type", `expected a list, got ${describe(v)}`);
  return v;
}

function alpaca(o: Record<string, unknown>, cols: Required<ColumnMap>): ChatMessage[] {
  const instruction = o[cols.prompt];
  if (absent(instruction)) throw new Reject(cols.prompt, "missing-field", `missing field "${cols.prompt}"`);
  if (typeof instruction !== "string") throw new Reject(cols.prompt, "wrong-type", `expected a string, got ${describe(instruction)}`);
  const input = optString(o, cols.query);
  const user = [instruction, input].filter((s): s is string => s !== undefined && s.trim() !== "").join("\n");
  if (user === "") throw new Reject(cols.prompt, "empty-text", "empty instruction (and no input)");
  const output = text(o, cols.response);
  const messages: ChatMessage[] = [];
  const system = optString(o, cols.system);
  if (system !== undefined) messages.push({ role: "system", content: system });
  const history = list(o, cols.history, false) ?? [];
  history.forEach((turn, k) => {
    const path = `${cols.history}[${k}]`;
    if (!Array.isArray(turn) || turn.length !== 2) {
      throw new Reject(path, "wrong-type", `expected a [instruction, response] pair, got ${describe(turn)}`);
    }
    messages.push({ role: "user", content: nonEmpty(turn[0], `${path}[0]`) });
    messages.push({ role: "assistant", content: nonEmpty(turn[1], `${path}[1]`) });
  });
  messages.push({ role: "user", content: user }, { role: "assistant", content: output });
  return messages;
}

/** Maps a role value to a chat role; with default tags the common aliases of each role are accepted too. */
function roleMapper(tags: RoleTags, lenient: boolean): (value: string) => ChatRole | undefined {
  const table = new Map<string, ChatRole>();
  const add = (names: string[], role: ChatRole) => names.forEach((n) => table.set(n, role));
  add([tags.userTag, tags.observationTag], "user");
  add([tags.assistantTag, tags.functionTag], "assistant");
  add([tags.systemTag], "system");
  if (lenient) {
    add(["human", "user", "observation", "tool"], "user");
    add(["gpt", "assistant", "function_call", "function"], "assistant");
    add(["system"], "system");
  }
  return (v) => table.get(v);
}

function chat(
  o: Record<string, unknown>,
  cols: Required<ColumnMap>,
  tags: RoleTags,
  roleOf: (v: string) => ChatRole | undefined,
): ChatMessage[] {
  const raw = list(o, cols.messages, true)!;
  if (raw.length === 0) throw new Reject(cols.messages, "empty-text", "empty message list");
  const messages: ChatMessage[] = [];
  const system = optString(o, cols.system);
  raw.forEach((m, k) => {
    const path = `${cols.messages}[${k}]`;
    if (!isObject(m)) throw new Reject(path, "wrong-type", `expected a message object, got ${describe(m)}`);
    const r = m[tags.roleTag];
    if (absent(r)) throw new Reject(`${path}.${tags.roleTag}`, "missing-field", `missing field "${tags.roleTag}"`);
    if (typeof r !== "string") throw new Reject(`${path}.${tags.roleTag}`, "wrong-type", `expected a string, got ${describe(r)}`);
    const role = roleOf(r);
    if (!role) {
      const known = [tags.userTag, tags.assistantTag, tags.systemTag, tags.observationTag, tags.functionTag];
      throw new Reject(`${path}.${tags.roleTag}`, "unknown-role", `unknown role "${r}"; expected one of ${known.join(", ")}`);
    }
    if (role === "system" && k !== 0) {
      throw new Reject(`${path}.${tags.roleTag}`, "unknown-role", "a system message may only come first");
    }
    const cpath = `${path}.${tags.contentTag}`;
    const c = m[tags.contentTag];
    if (absent(c)) throw new Reject(cpath, "missing-field", `missing field "${tags.contentTag}"`);
    messages.push({ role, content: nonEmpty(contentText(c, cpath), cpath) });
  });
  if (system !== undefined && messages[0].role !== "system") messages.unshift({ role: "system", content: system });
  if (!messages.some((m) => m.role === "assistant")) {
    throw new Reject(cols.messages, "missing-field", "no assistant message: nothing to learn from this conversation");
  }
  return messages;
}

/** OpenAI content may be a list of parts; the text parts are joined. */
function contentText(c: unknown, path: string): unknown {
  if (!Array.isArray(c)) return c;
  return c
    .map((p, k) => {
      if (isObject(p) && p.type === "text" && typeof p.text === "string") return p.text;
      throw new Reject(`${path}[${k}]`, "wrong-type", `expected a {type: "text", text} part, got ${describe(p)}`);
    })
    .join("");
}
