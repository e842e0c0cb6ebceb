/** Bad-data issues, the error that carries them, and the report that counts every dropped row. */

/** Why a row was rejected or dropped. */
export type DropReason =
  | "malformed-json"
  | "malformed-csv"
  | "missing-field"
  | "empty-text"
  | "wrong-type"
  | "unknown-role"
  | "unseen-label"
  | "too-short"
  | "too-long"
  | "filtered"
  | "leak";

/** One problem with one row, located precisely enough to open the file and fix it. */
export interface DataIssue {
  readonly source: string;
  /** 1-based line (Parquet: 1-based row number). */
  readonly line: number;
  /** Field path such as `label` or `conversations[2].from`, when one field is at fault. */
  readonly field?: string;
  readonly reason: DropReason;
  readonly message: string;
}

/** How a location is written in messages: `file:line`, or `file row N` for Parquet. */
export function where(source: string, line: number): string {
  return /\.parquet$/i.test(source) ? `${source} row ${line}` : `${source}:${line}`;
}

/** Formats an issue as one line: `file:line: field "x": message`. */
export function formatIssue(issue: DataIssue): string {
  const field = issue.field !== undefined ? ` field "${issue.field}":` : "";
  return `${where(issue.source, issue.line)}:${field} ${issue.message}`;
}

/** Bad data that the policy says must stop the load; `issues` lists every problem found. */
export class DataError extends Error {
  readonly issues: readonly DataIssue[];

  constructor(issues: readonly DataIssue[], headline?: string) {
    const shown = issues.slice(0, 10).map(formatIssue);
    const more = issues.length > 10 ? [`... and ${issues.length - 10} more`] : [];
    const head = headline ?? (issues.length === 1 ? "" : `${issues.length} invalid rows:`);
    super([head, ...shown, ...more].filter((s) => s !== "").join("\n"));
    this.name = "DataError";
    this.issues = issues;
  }
}

/** What happened to the rows of a dataset: how many were read and every row dropped, with its reason. */
export class DataReport {
  /** Rows read from the files before any drop. */
  readonly loaded: number;
  /** Every dropped row, in the order it was dropped. */
  readonly dropped: readonly DataIssue[];

  constructor(loaded = 0, dropped: readonly DataIssue[] = []) {
    this.loaded = loaded;
    this.dropped = Object.freeze(dropped.slice());
  }

  /** Count of dropped rows per reason. */
  get countsByReason(): Readonly<Partial<Record<DropReason, number>>> {
    const counts: Partial<Record<DropReason, number>> = {};
    for (const d of this.dropped) counts[d.reason] = (counts[d.reason] ?? 0) + 1;
    return counts;
  }

  /** A new report with more dropped rows recorded. */
  withDropped(issues: readonly DataIssue[]): DataReport {
    if (issues.length === 0) return this;
    return new DataReport(this.loaded, [...this.dropped, ...issues]);
  }

  /** The two reports added together (for concatenated datasets). */
  merge(other: DataReport): DataReport {
    return new DataReport(this.loaded + other.loaded, [...this.dropped, ...other.dropped]);
  }

  /** A short human summary, e.g. `loaded 1000, dropped 3 (empty-text: 2, unseen-label: 1)`. */
  summary(): string {
    const parts = Object.entries(this.countsByReason).map(([r, n]) => `${r}: ${n}`);
    return `loaded ${this.loaded}, dropped ${this.dropped.length}` + (parts.length ? ` (${parts.join(", ")})` : "");
  }

  /** JSON-friendly form. */
  toJSON(): { loaded: number; dropped: DataIssue[]; countsByReason: Partial<Record<DropReason, number>> } {
    return { loaded: this.loaded, dropped: this.dropped.slice(), countsByReason: { ...this.countsByReason } };
  }
}

/** What to do with an invalid row: stop with an error naming it, or drop it and count it. */
export type OnInvalid = "error" | "drop";
