/**
 * Tables: escaped HTML and aligned plain text, and a danfo-backed data preview bundle.
 * danfo's own print is text only, so danfo computes (frame, dtypes, describe) and we render.
 */
import type * as DanfoModule from "danfojs-node";
import { htmlEscape, type MimeBundle } from "./display";

/** Options for `htmlTable` and `textTable`. */
export interface TableOptions {
  /** Caption above the table (escaped). */
  caption?: string;
  /** Decimal places for non-integer numbers; default 4. */
  digits?: number;
  /** Show at most this many rows, then a "… n more rows" line. */
  maxRows?: number;
  /** Truncate longer cell text with "…"; default 200 for HTML, 40 for text. */
  maxCellChars?: number;
  /** Fixed decimals for every number in the named columns, integers included (1 -> "1.0000"). */
  decimals?: Readonly<Record<string, number>>;
}

function cellText(value: unknown, column: string, opts: TableOptions): string {
  const fixed = opts.decimals?.[column];
  if (fixed !== undefined && typeof value === "number" && Number.isFinite(value)) return value.toFixed(fixed);
  return formatCell(value, opts.digits ?? 4);
}

/** Formats one cell value as text: fixed decimals for floats, e-notation for tiny or huge ones. */
export function formatCell(value: unknown, digits = 4): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number") {
    if (Number.isNaN(value)) return "NaN";
    if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
    if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
    const a = Math.abs(value);
    if (a !== 0 && (a < 10 ** -digits || a >= 1e9)) return formatExp(value, 1);
    return value.toFixed(digits);
  }
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  if (value instanceof Date) return value.toISOString();
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Python-style e-notation with a two-digit exponent: 3e-5 -> "3.0e-05". */
export function formatExp(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
  const [mant, exp] = value.toExponential(digits).split("e");
  const sign = exp.startsWith("-") ? "-" : "+";
  const digitsOfExp = exp.replace(/^[+-]/, "").padStart(2, "0");
  return `${mant}e${sign}${digitsOfExp}`;
}

function truncate(text: string, max: number): string {
  return text.length > max ? text.slice(0, Math.max(0, max - 1)) + "…" : text;
}

const TABLE_STYLE = "border-collapse:collapse;font-size:13px;font-family:var(--jp-ui-font-family,system-ui,sans-serif);";
const CELL_STYLE = "padding:3px 8px;border-bottom:1px solid #ddd;vertical-align:top;";

/** An HTML table; every header and cell is escaped, numbers are right-aligned and formatted. */
export function htmlTable(columns: readonly string[], rows: readonly (readonly unknown[])[], opts: TableOptions = {}): string {
  const maxChars = opts.maxCellChars ?? 200;
  const shown = opts.maxRows === undefined ? rows : rows.slice(0, opts.maxRows);
  const parts: string[] = [`<table class="tunelab-table" style="${TABLE_STYLE}">`];
  if (opts.caption) parts.push(`<caption style="text-align:left;font-weight:bold;padding:4px 0;">${htmlEscape(opts.caption)}</caption>`);
  parts.push("<thead><tr>");
  for (const c of columns) parts.push(`<th style="${CELL_STYLE}text-align:left;border-bottom:2px solid #999;">${htmlEscape(c)}</th>`);
  parts.push("</tr></thead><tbody>");
  for (const [r, row] of shown.entries()) {
    if (row.length !== columns.length) {
      throw new Error(`htmlTable: row ${r} has ${row.length} cells but there are ${columns.length} columns`);
    }
    parts.push("<tr>");
    for (const [j, v] of row.entries()) {
      const numeric = typeof v === "number" || typeof v === "bigint";
      const isNull = v === null || v === undefined;
      const style =
        CELL_STYLE +
        (numeric ? "text-align:right;font-variant-numeric:tabular-nums;" : "text-align:left;white-space:pre-wrap;") +
        (isNull ? "color:#999;" : "");
      parts.push(`<td style="${style}">${htmlEscape(truncate(cellText(v, columns[j], opts), maxChars))}</td>`);
    }
    parts.push("</tr>");
  }
  parts.push("</tbody></table>");
  if (shown.length < rows.length) parts.push(`<div style="color:#666;font-size:12px;">… ${rows.length - shown.length} more rows</div>`);
  return parts.join("");
}

/** A plain-text table with aligned columns (for text/plain and terminals). */
export function textTable(columns: readonly string[], rows: readonly (readonly unknown[])[], opts: TableOptions = {}): string {
  const maxChars = opts.maxCellChars ?? 40;
  const shown = opts.maxRows === undefined ? rows : rows.slice(0, opts.maxRows);
  // One line per cell: newlines in text would break the grid.
  const cells = shown.map((row) => row.map((v, j) => truncate(cellText(v, columns[j], opts).replace(/\r?\n/g, "↵"), maxChars)));
  const heads = columns.map((c) => truncate(c, maxChars));
  const numeric = columns.map((_, j) => shown.length > 0 && shown.every((row) => typeof row[j] === "number" || typeof row[j] === "bigint"));
  const widths = heads.map((h, j) => Math.max(h.length, ...cells.map((row) => (row[j] ?? "").length)));
  const pad = (s: string, j: number) => (numeric[j] ? s.padStart(widths[j]) : s.padEnd(widths[j]));
  const lines: string[] = [];
  if (opts.caption) lines.push(opts.caption);
  lines.push(heads.map(pad).join("  ").trimEnd());
  lines.push(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of cells) lines.push(row.map(pad).join("  ").trimEnd());
  if (shown.length < rows.length) lines.push(`… ${rows.length - shown.length} more rows`);
  return lines.join("\n");
}

let danfo: typeof DanfoModule | undefined;

/** danfojs-node, loaded on first use: it takes seconds to load (it brings tfjs), so never at import. */
function loadDanfo(): typeof DanfoModule {
  if (!danfo) {
    try {
      danfo = require("danfojs-node") as typeof DanfoModule;
    } catch (err) {
      throw new Error(`dataPreview: cannot load danfojs-node (${(err as Error).message}); run \`npm install\` in the tunelab package`, { cause: err });
    }
  }
  return danfo;
}

/** Options for `dataPreview`. */
export interface DataPreviewOptions {
  /** Rows shown in the preview; default 10. */
  maxRows?: number;
  /** Title above the preview, e.g. the file name. */
  title?: string;
  /** Total rows in the dataset when `rows` is only a sample of it. */
  totalRows?: number;
  /** Add a per-column summary (dtype, non-null, unique, mean/std/min/max or top value); default true. */
  summary?: boolean;
  /** Rows used for the summary at most (the first ones); default 50,000. */
  maxSummaryRows?: number;
}

/** Per-column summary of a preview. */
export interface ColumnSummary {
  column: string;
  dtype: string;
  nonNull: number;
  unique: number;
  mean?: number;
  std?: number;
  min?: number;
  max?: number;
  top?: string;
}

type Cell = string | number | boolean | null;

/** Makes a cell danfo can hold: nested values become JSON text, bigint a number or text. */
function toCell(v: unknown): Cell {
  if (v === undefined || v === null) return null;
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number") return Number.isNaN(v) ? null : v;
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  return formatCell(v);
}

/** A data preview bundle: the first rows as an escaped HTML table and a column summary, via danfo. */
export function dataPreview(rows: readonly Readonly<Record<string, unknown>>[], opts: DataPreviewOptions = {}): MimeBundle {
  const maxRows = opts.maxRows ?? 10;
  if (!Number.isInteger(maxRows) || maxRows < 0) throw new Error(`dataPreview: maxRows must be a non-negative integer, got ${maxRows}`);
  for (const [i, r] of rows.entries()) {
    if (r === null || typeof r !== "object" || Array.isArray(r))
      throw new Error(`dataPreview: row ${i} must be an object of column -> value, got ${Array.isArray(r) ? "an array" : typeof r}`);
  }
  // Union of keys in first-seen order, and every row filled, so danfo gets a rectangular frame
  // (it silently builds ragged rows otherwise).
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    for (const k of Object.keys(r)) {
      if (!seen.has(k)) columns.push(k);
      seen.add(k);
    }
  }
  const total = opts.totalRows ?? rows.length;
  const shape = `${total.toLocaleString("en-US")} rows × ${columns.length} columns`;
  const title = opts.title ? `${opts.title}: ${shape}` : shape;

  if (rows.length === 0 || columns.length === 0) {
    return {
      "text/plain": title,
      "text/html": `<div class="tunelab-preview"><b>${htmlEscape(title)}</b></div>`,
      "application/json": { columns, rows: [], totalRows: total },
    };
  }

  const summaryRows = rows.slice(0, opts.maxSummaryRows ?? 50_000);
  const columnar: Record<string, Cell[]> = {};
  for (const c of columns) columnar[c] = summaryRows.map((r) => toCell(r[c]));
  const d = loadDanfo();
  const df = new d.DataFrame(columnar);
  const head = df.head(Math.min(maxRows, summaryRows.length));
  const headRows = head.values as unknown as Cell[][];
  const dtypes = df.dtypes as string[];

  const parts = [`<div class="tunelab-preview"><div style="font-weight:bold;margin-bottom:4px;">${htmlEscape(title)}</div>`];
  parts.push(htmlTable(columns, headRows, { maxCellChars: 200 }));
  const text = [title, textTable(columns, headRows)];
  const summaries: ColumnSummary[] = [];
  if (opts.summary ?? true) {
    for (const [j, c] of columns.entries()) summaries.push(summarise(d, c, dtypes[j], columnar[c]));
    const sCols = ["column", "dtype", "non-null", "unique", "mean", "std", "min", "max", "top"];
    const sRows = summaries.map((s) => [s.column, s.dtype, s.nonNull, s.unique, s.mean ?? "", s.std ?? "", s.min ?? "", s.max ?? "", s.top ?? ""]);
    const note = summaryRows.length < rows.length ? ` (first ${summaryRows.length.toLocaleString("en-US")} rows)` : "";
    parts.push(`<details style="margin-top:6px;"><summary>Column summary${htmlEscape(note)}</summary>`, htmlTable(sCols, sRows, { digits: 2 }), "</details>");
    text.push("", textTable(sCols, sRows, { digits: 2 }));
  }
  parts.push("</div>");
  return {
    "text/plain": text.join("\n"),
    "text/html": parts.join(""),
    "application/json": { columns, rows: headRows, totalRows: total, summary: summaries },
  };
}

function summarise(d: typeof DanfoModule, column: string, dtype: string, values: Cell[]): ColumnSummary {
  const present = values.filter((v): v is Exclude<Cell, null> => v !== null);
  const out: ColumnSummary = { column, dtype, nonNull: present.length, unique: 0 };
  if (present.length === 0) return out;
  const series = new d.Series(present as never[]);
  out.unique = series.nUnique();
  if ((dtype === "int32" || dtype === "float32") && present.every((v) => typeof v === "number")) {
    // describe() over the non-null values only: danfo's describe throws on nulls.
    const desc = series.describe();
    const stat = (name: string) => Number((desc.values as number[])[(desc.index as string[]).indexOf(name)]);
    out.mean = stat("mean");
    out.std = present.length > 1 ? stat("std") : 0;
    out.min = stat("min");
    out.max = stat("max");
  } else {
    // valueCounts() is in first-seen order, not sorted: take the most frequent (first on ties).
    const vc = series.valueCounts();
    const counts = vc.values as number[];
    let best = 0;
    for (let i = 1; i < counts.length; i++) if (counts[i] > counts[best]) best = i;
    out.top = String((vc.index as unknown[])[best]);
  }
  return out;
}
