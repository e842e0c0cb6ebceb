/** Token-length statistics and length filtering. */
import { Dataset } from "./dataset";
import type { Row } from "./types";
import type { DataIssue } from "./report";
import { encodeChat, type ChatTemplateOptions, type TextTokenizer } from "./tokenize";

/** The seed tutorial's advice: 512–2048 tokens per example, 1024 typical (LLaMA-Factory's cutoff_len). */
export const RECOMMENDED_TOKEN_RANGE = Object.freeze({ min: 512, max: 2048, typical: 1024 });

/** Summary of token lengths with a histogram of equal-width bins. */
export interface TokenLengthStats {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Bin edges (bins + 1 of them) and counts; the last bin includes its right edge. */
  histogram: { edges: number[]; counts: number[] };
}

/** Tokens of one row as it would be trained: pretrain text + EOS, classification text, chat rendered through the template. */
export function rowTokenLength(row: Row, tok: TextTokenizer, templateOptions?: ChatTemplateOptions): number {
  if (row.kind === "chat") return encodeChat(row, tok, { templateOptions }).inputIds.length;
  return tok.encode(row.text, { addSpecialTokens: true }).length + (row.kind === "pretrain" ? 1 : 0);
}

/** Token length of every row, in row order. */
export function tokenLengths(ds: Dataset<Row>, tok: TextTokenizer, templateOptions?: ChatTemplateOptions): number[] {
  return ds.rows.map((r) => rowTokenLength(r, tok, templateOptions));
}

/** min/mean/percentiles (nearest-rank)/max and a histogram of `bins` equal-width bins (default 20). */
export function tokenLengthStats(lengths: readonly number[], bins = 20): TokenLengthStats {
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`tokenLengthStats bins: expected a positive integer, got ${bins}`);
  if (lengths.length === 0) {
    return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0, histogram: { edges: [0, 0], counts: [0] } };
  }
  const sorted = lengths.slice().sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
  const min = sorted[0];
  const max = sorted[sorted.length - 1];
  const width = Math.max(1, Math.ceil((max - min + 1) / bins));
  const edges = Array.from({ length: bins + 1 }, (_, k) => min + k * width);
  const counts = new Array<number>(bins).fill(0);
  for (const x of sorted) counts[Math.min(bins - 1, Math.floor((x - min) / width))]++;
  return {
    count: sorted.length,
    min,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max,
    histogram: { edges, counts },
  };
}

/** Options of `filterByLength`. */
export interface LengthFilterOptions {
  /** Drop rows with fewer tokens. */
  min?: number;
  /** Drop rows with more tokens. */
  max?: number;
  templateOptions?: ChatTemplateOptions;
}

/** Keeps rows whose token length is within [min, max]; the others are counted as "too-short"/"too-long". */
export function filterByLength<R extends Row>(ds: Dataset<R>, tok: TextTokenizer, opts: LengthFilterOptions): Dataset<R> {
  const min = opts.min ?? 0;
  const max = opts.max ?? Infinity;
  if (min > max) throw new Error(`filterByLength: min (${min}) is above max (${max})`);
  const dropped: DataIssue[] = [];
  const keep: R[] = [];
  for (const r of ds.rows) {
    const n = rowTokenLength(r, tok, opts.templateOptions);
    if (n < min || n > max) {
      dropped.push({
        source: r.provenance.source,
        line: r.provenance.line,
        reason: n < min ? "too-short" : "too-long",
        message: `${n} tokens, outside the allowed ${min}–${max}`,
      });
    } else keep.push(r);
  }
  return new Dataset(keep, ds.report.withDropped(dropped), ds.role);
}
