/** A small RFC 4180 CSV reader: header row, quoted fields with "" escapes and embedded newlines, CRLF or LF. */
import type { DataIssue } from "../report";
import { clip, type ReadResult, type RawRecord } from "./json";

/** Options for CSV reading. */
export interface CsvOptions {
  /** Field separator; "," for .csv, "\t" for .tsv. */
  delimiter?: string;
}

/**
 * Parses CSV text into records keyed by the header row. Each record carries the line its first field starts on.
 * An unterminated quote or a stray quote is an error naming the line; a row with the wrong number of fields is an
 * issue (droppable) naming its line.
 */
export function readCsv(text: string, source: string, options: CsvOptions = {}): ReadResult {
  const delim = options.delimiter ?? ",";
  if (delim.length !== 1 || delim === '"' || delim === "\n" || delim === "\r") {
    throw new Error(`CSV option delimiter: expected one character other than a quote or newline, got ${JSON.stringify(delim)}`);
  }
  const rows = parseCsvRows(text.replace(/^\uFEFF/, ""), source, delim);
  const records: RawRecord[] = [];
  const issues: DataIssue[] = [];
  if (rows.length === 0) return { records, issues };
  const header = rows[0].fields;
  const seen = new Set<string>();
  for (const h of header) {
    if (h === "") throw new Error(`${source}:${rows[0].line}: empty column name in the CSV header`);
    if (seen.has(h)) throw new Error(`${source}:${rows[0].line}: duplicate column "${clip(h)}" in the CSV header`);
    seen.add(h);
  }
  for (const row of rows.slice(1)) {
    if (row.fields.length === 1 && row.fields[0] === "") continue; // blank line
    if (row.fields.length !== header.length) {
      issues.push({
        source,
        line: row.line,
        reason: "malformed-csv",
        message: `expected ${header.length} fields (${header.map((h) => clip(h)).join(", ")}), found ${row.fields.length}`,
      });
      continue;
    }
    const obj: Record<string, string> = {};
    header.forEach((h, k) => (obj[h] = row.fields[k]));
    records.push({ value: obj, line: row.line });
  }
  return { records, issues };
}

/** Splits CSV text into rows of raw string fields, each with its starting line. */
export function parseCsvRows(text: string, source: string, delim = ","): { fields: string[]; line: number }[] {
  const out: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = "";
  let line = 1;
  let rowLine = 1;
  let i = 0;
  const n = text.length;
  let atFieldStart = true;
  while (i < n) {
    const c = text[i];
    if (atFieldStart && c === '"') {
      // Quoted field: runs to the next lone quote; "" is a literal quote; newlines are kept.
      const quoteLine = line;
      i++;
      for (;;) {
        if (i >= n) throw new Error(`${source}:${quoteLine}: unterminated quoted CSV field`);
        const q = text[i];
        if (q === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (q === "\n") line++;
        field += q;
        i++;
      }
      const next = text[i];
      if (next !== undefined && next !== delim && next !== "\n" && next !== "\r") {
        throw new Error(`${source}:${line}: unexpected ${JSON.stringify(next)} after a closing quote in a CSV field`);
      }
      atFieldStart = false;
      continue;
    }
    if (c === delim) {
      fields.push(field);
      field = "";
      atFieldStart = true;
      i++;
    } else if (c === "\n" || c === "\r") {
      fields.push(field);
      out.push({ fields, line: rowLine });
      fields = [];
      field = "";
      atFieldStart = true;
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
      line++;
      rowLine = line;
    } else {
      if (c === '"') throw new Error(`${source}:${line}: a quote inside an unquoted CSV field (quote the whole field and double the quote)`);
      field += c;
      atFieldStart = false;
      i++;
    }
  }
  if (!atFieldStart || field !== "" || fields.length > 0) {
    fields.push(field);
    out.push({ fields, line: rowLine });
  }
  return out;
}
