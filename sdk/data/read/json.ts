/** JSON-array and JSONL reading with line numbers for every record and for every syntax error. */
import type { DataIssue } from "../report";

/** One record read from a file, with the line (or Parquet row) it starts on. */
export interface RawRecord {
  readonly value: unknown;
  readonly line: number;
}

/** Records and the per-record problems (malformed lines) found while reading. */
export interface ReadResult {
  readonly records: RawRecord[];
  readonly issues: DataIssue[];
}

/** 1-based line of a character offset. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Reads JSON Lines: one object per non-blank line; a malformed line is an issue naming its line. */
export function readJsonl(text: string, source: string): ReadResult {
  const records: RawRecord[] = [];
  const issues: DataIssue[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, "");
    if (raw.trim() === "") continue;
    const err = jsonSyntaxError(raw);
    if (err) {
      issues.push({ source, line: i + 1, reason: "malformed-json", message: `malformed JSON at column ${err.offset + 1}: ${err.message}` });
      continue;
    }
    records.push({ value: JSON.parse(raw), line: i + 1 });
  }
  return { records, issues };
}

/** Reads a JSON file holding an array of records; a syntax error anywhere is thrown with its line and column. */
export function readJsonArray(text: string, source: string): ReadResult {
  const body = text.replace(/^\uFEFF/, "");
  const scan = scanJson(body);
  if (scan.error) {
    const line = lineAt(body, scan.error.offset);
    const col = scan.error.offset - body.lastIndexOf("\n", scan.error.offset - 1);
    throw new Error(`${source}:${line}: malformed JSON at column ${col}: ${scan.error.message}`);
  }
  const value: unknown = JSON.parse(body);
  if (!Array.isArray(value)) {
    throw new Error(`${source}:1: expected a JSON array of records ([{...}, ...]), got ${describe(value)}`);
  }
  // Element start lines, counted in one pass over the offsets the scanner recorded.
  const records: RawRecord[] = [];
  let line = 1;
  let pos = 0;
  for (let k = 0; k < value.length; k++) {
    const start = scan.elementStarts[k];
    for (; pos < start; pos++) if (body.charCodeAt(pos) === 10) line++;
    records.push({ value: value[k], line });
  }
  return { records, issues: [] };
}

/** `s` cut to `max` characters (with "…") so that a huge field name or value cannot flood a message. */
export function clip(s: string, max = 40): string {
  return s.length > max ? s.slice(0, max) + "…" : s;
}

/** A short description of a JSON value's type for messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return `a string (${JSON.stringify(value.length > 30 ? value.slice(0, 30) + "…" : value)})`;
  return `a ${typeof value} (${String(value)})`;
}

interface JsonSyntaxError {
  offset: number;
  message: string;
}

/** The first syntax error in `text` as JSON, or undefined when it is valid. */
export function jsonSyntaxError(text: string): JsonSyntaxError | undefined {
  return scanJson(text).error;
}

/**
 * Walks JSON text without building values: reports the first syntax error's offset (JSON.parse's messages do
 * not always carry one) and records where each element of a top-level array starts.
 */
function scanJson(text: string): { error?: JsonSyntaxError; elementStarts: number[] } {
  const elementStarts: number[] = [];
  let i = 0;
  const n = text.length;
  const fail = (message: string): never => {
    throw { offset: Math.min(i, n), message } satisfies JsonSyntaxError;
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const str = () => {
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return;
      }
      if (c < 0x20) fail("control character inside a string (unescaped newline or tab?)");
      if (c === 92) {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail("bad \\u escape");
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else fail(`bad escape \\${e ?? ""}`);
      } else i++;
    }
    fail("unterminated string");
  };
  const num = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === "" || m[0] === "-") fail("bad number");
    i += m![0].length;
  };
  const value = (depth: number, top: boolean) => {
    ws();
    if (depth > 5000) fail("nesting too deep");
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a double-quoted property name");
        str();
        ws();
        if (text[i] !== ":") fail("expected ':' after property name");
        i++;
        value(depth + 1, false);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return;
        }
        fail("expected ',' or '}' after property value");
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (top) elementStarts.push(i);
        value(depth + 1, false);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return;
        }
        fail("expected ',' or ']' after array element");
      }
    } else if (c === '"') str();
    else if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) num();
    else if (text.startsWith("true", i)) i += 4;
    else if (text.startsWith("false", i)) i += 5;
    else if (text.startsWith("null", i)) i += 4;
    else if (c === undefined) fail("unexpected end of input");
    else fail(`unexpected character ${JSON.stringify(c)}`);
  };
  try {
    value(0, true);
    ws();
    if (i < n) fail("unexpected text after the JSON value");
    return { elementStarts };
  } catch (e) {
    if (e && typeof e === "object" && "offset" in e) return { error: e as JsonSyntaxError, elementStarts };
    throw e;
  }
}
