/** An immutable, eager collection of normalised rows with the report of what was dropped on the way. */
import { Rng } from "../util/random";
import { DataError, DataReport, type DataIssue, type OnInvalid } from "./report";
import type { ChatMessage, Provenance, Row, RowKind, SplitRole } from "./types";

/** A row without provenance, for building datasets in memory. */
export type RowContent =
  | { kind: "classification"; text: string; label: string }
  | { kind: "pretrain"; text: string }
  | { kind: "chat"; messages: readonly ChatMessage[] };

/** Options of `Dataset.split`. */
export interface SplitOptions {
  /** Validation share: a fraction in (0, 1) or a row count (integer >= 1). Default 0. */
  val?: number;
  /** Test share: a fraction in (0, 1) or a row count. Default 0. */
  test?: number;
  /** Seed of the shuffle that decides the split. Default 42. */
  seed?: number;
  /** Keep label proportions in every part (classification only). Default: true when every row is classification. */
  stratify?: boolean;
  /** A val/test label that train never saw: stop with an error (default) or drop the row and count it. */
  onInvalid?: OnInvalid;
}

/** The parts of a split; `test` is empty when no test share was asked for. */
export interface SplitDatasets<R extends Row = Row> {
  train: Dataset<R>;
  val: Dataset<R>;
  test: Dataset<R>;
}

/** Freezes a row and everything inside it, so no caller can change a dataset after the fact. */
function freezeRow<R extends Row>(row: R): R {
  if (Object.isFrozen(row)) return row;
  Object.freeze(row.provenance);
  if (row.provenance.augmented) Object.freeze(row.provenance.augmented);
  if (row.kind === "chat") {
    row.messages.forEach((m) => Object.freeze(m));
    Object.freeze(row.messages);
  }
  return Object.freeze(row);
}

/** The root original id of a row (augmented rows point at the train row they were made from). */
export function originId(row: Row): string {
  return row.provenance.augmented?.from ?? row.provenance.id;
}

/**
 * An immutable list of rows. Every shaping method returns a new Dataset and is deterministic under its seed.
 * `report` counts the rows read and every row dropped (with file, line, field and reason).
 */
export class Dataset<R extends Row = Row> implements Iterable<R> {
  readonly rows: readonly R[];
  readonly report: DataReport;
  /** Which split part this is; augmentation refuses "val" and "test". */
  readonly role: SplitRole;

  constructor(rows: readonly R[], report?: DataReport, role: SplitRole = "all") {
    this.rows = Object.freeze(rows.map(freezeRow));
    this.report = report ?? new DataReport(rows.length);
    this.role = role;
  }

  /** Builds a dataset from in-memory rows; provenance is `<source>:<index+1>`. */
  static fromRows(rows: readonly RowContent[], source = "<memory>"): Dataset {
    return new Dataset(
      rows.map((r, k) => ({ ...r, provenance: { id: `${source}:${k + 1}`, source, line: k + 1 } }) as Row),
    );
  }

  /** Number of rows. */
  get length(): number {
    return this.rows.length;
  }

  /** The distinct row kinds present, in first-seen order. */
  get kinds(): RowKind[] {
    return [...new Set(this.rows.map((r) => r.kind))];
  }

  /** Iterates the rows. */
  [Symbol.iterator](): Iterator<R> {
    return this.rows[Symbol.iterator]();
  }

  /** A copy of the rows as a plain array. */
  toArray(): R[] {
    return this.rows.slice();
  }

  /** Distinct classification labels, sorted (a stable order independent of row order). */
  labels(): string[] {
    const set = new Set<string>();
    for (const r of this.rows) if (r.kind === "classification") set.add(r.label);
    return [...set].sort(compareStrings);
  }

  /** Rows per classification label, keys in sorted order. */
  labelCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const l of this.labels()) counts[l] = 0;
    for (const r of this.rows) if (r.kind === "classification") counts[r.label]++;
    return counts;
  }

  /** Same rows in a seeded random order. */
  shuffle(seed: number): Dataset<R> {
    return this.derive(new Rng(seed).shuffle(this.rows));
  }

  /** A seeded random subset of `n` rows (an integer >= 1) or of a fraction in (0, 1), kept in their current order. */
  sample(nOrFraction: number, seed: number): Dataset<R> {
    const n = resolveCount(nOrFraction, this.rows.length, "sample");
    const picked = new Set(new Rng(seed).shuffle(this.rows.map((_, k) => k)).slice(0, n));
    return this.derive(this.rows.filter((_, k) => picked.has(k)));
  }

  /** Rows for which `keep` is true; the others are counted in the report as "filtered" with `why`. */
  filter(keep: (row: R, index: number) => boolean, why = "removed by filter"): Dataset<R> {
    const kept: R[] = [];
    const dropped: DataIssue[] = [];
    this.rows.forEach((r, k) => {
      if (keep(r, k)) kept.push(r);
      else dropped.push({ source: r.provenance.source, line: r.provenance.line, reason: "filtered", message: why });
    });
    return new Dataset(kept, this.report.withDropped(dropped), this.role);
  }

  /** Rows transformed by `fn`; a result without provenance keeps the input row's. */
  map<S extends Row>(fn: (row: R, index: number) => S | (Omit<S, "provenance"> & { provenance?: Provenance })): Dataset<S> {
    const out = this.rows.map((r, k) => {
      const s = fn(r, k);
      return (s.provenance ? s : { ...s, provenance: r.provenance }) as S;
    });
    return new Dataset(out, this.report, this.role);
  }

  /** The first `n` rows. */
  take(n: number): Dataset<R> {
    return this.derive(this.rows.slice(0, checkCount(n, "take")));
  }

  /** All but the first `n` rows. */
  skip(n: number): Dataset<R> {
    return this.derive(this.rows.slice(checkCount(n, "skip")));
  }

  /** This dataset followed by `other` (reports are added). */
  concat<S extends Row>(other: Dataset<S>): Dataset<R | S> {
    return new Dataset<R | S>([...this.rows, ...other.rows], this.report.merge(other.report), this.role);
  }

  /** The same rows marked as a split part ("train", "val", "test" or "all"). */
  withRole(role: SplitRole): Dataset<R> {
    return new Dataset(this.rows, this.report, role);
  }

  /** The same rows with more dropped rows recorded in the report. */
  withDropped(issues: readonly DataIssue[]): Dataset<R> {
    return new Dataset(this.rows, this.report.withDropped(issues), this.role);
  }

  /**
   * Splits into train/val/test, deterministic under `seed`, stratified by label for classification. The split is
   * decided on original rows; an augmented row follows its original into train, or is dropped ("leak") if the
   * original went to val/test, so augmented rows never reach val or test.
   */
  split(options: SplitOptions = {}): SplitDatasets<R> {
    const seed = options.seed ?? 42;
    const originals = this.rows.filter((r) => !r.provenance.augmented);
    const n = originals.length;
    const nTest = resolveCount(options.test ?? 0, n, "split test");
    const nVal = resolveCount(options.val ?? 0, n, "split val");
    if (nTest + nVal > n) throw new Error(`split: val (${nVal}) + test (${nTest}) rows exceed the ${n} rows available`);
    const allClassification = originals.length > 0 && originals.every((r) => r.kind === "classification");
    const stratify = options.stratify ?? allClassification;
    if (stratify && !allClassification) throw new Error("split option stratify: only classification rows have labels to stratify by");

    const rng = new Rng(seed);
    const part = new Map<R, SplitRole>();
    if (stratify) {
      const groups = new Map<string, R[]>();
      for (const r of originals) {
        const l = (r as Row & { kind: "classification" }).label;
        if (!groups.has(l)) groups.set(l, []);
        groups.get(l)!.push(r);
      }
      const labels = [...groups.keys()].sort(compareStrings);
      const shuffled = labels.map((l) => rng.shuffle(groups.get(l)!));
      const sizes = shuffled.map((g) => g.length);
      const testAlloc = allocate(nTest, sizes, n);
      // Each label keeps at least one train row, so val/test never hold a label train has not seen.
      const testCapped = testAlloc.map((t, g) => Math.min(t, Math.max(0, sizes[g] - 1)));
      const left = sizes.map((s, g) => s - testCapped[g]);
      const valAlloc = allocate(nVal, sizes, n).map((v, g) => Math.min(v, Math.max(0, left[g] - 1)));
      shuffled.forEach((g, gi) =>
        g.forEach((r, k) => part.set(r, k < testCapped[gi] ? "test" : k < testCapped[gi] + valAlloc[gi] ? "val" : "train")),
      );
    } else {
      rng.shuffle(originals).forEach((r, k) => part.set(r, k < nTest ? "test" : k < nTest + nVal ? "val" : "train"));
    }

    const byId = new Map<string, SplitRole>();
    for (const [r, p] of part) byId.set(r.provenance.id, p);
    const train: R[] = [];
    const val: R[] = [];
    const test: R[] = [];
    const leaks: DataIssue[] = [];
    // Original order is kept inside each part; batching shuffles later.
    for (const r of this.rows) {
      const p = r.provenance.augmented ? byId.get(originId(r)) ?? "train" : part.get(r)!;
      if (r.provenance.augmented && p !== "train") {
        leaks.push({
          source: r.provenance.source,
          line: r.provenance.line,
          reason: "leak",
          message: `augmented copy of ${originId(r)}, which went to ${p}; augmented rows stay out of val/test`,
        });
        continue;
      }
      (p === "train" ? train : p === "val" ? val : test).push(r);
    }
    const trainDs = new Dataset(train, this.report.withDropped(leaks), "train");
    const onInvalid = options.onInvalid ?? "error";
    return {
      train: trainDs,
      val: checkLabels(trainDs, new Dataset(val, this.report, "val"), { onInvalid }),
      test: checkLabels(trainDs, new Dataset(test, this.report, "test"), { onInvalid }),
    };
  }

  private derive(rows: readonly R[]): Dataset<R> {
    return new Dataset(rows, this.report, this.role);
  }
}

/**
 * Checks that every label of an evaluation set was seen in train; unseen ones are an error naming file, line and
 * field "label", or (onInvalid "drop") dropped and counted as "unseen-label".
 */
export function checkLabels<R extends Row>(
  train: Dataset<Row>,
  evalSet: Dataset<R>,
  options: { onInvalid?: OnInvalid } = {},
): Dataset<R> {
  const known = new Set(train.labels());
  const issues: DataIssue[] = [];
  const kept: R[] = [];
  for (const r of evalSet.rows) {
    if (r.kind === "classification" && !known.has(r.label)) {
      issues.push({
        source: r.provenance.source,
        line: r.provenance.line,
        field: "label",
        reason: "unseen-label",
        message: `label "${r.label}" never appears in train (train labels: ${[...known].join(", ") || "none"})`,
      });
    } else kept.push(r);
  }
  if (issues.length === 0) return evalSet;
  if ((options.onInvalid ?? "error") === "error") throw new DataError(issues);
  return new Dataset(kept, evalSet.report.withDropped(issues), evalSet.role);
}

/** Plain code-unit string order, the same on every machine and locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A fraction in (0, 1) of `total`, rounded, or an integer count; anything else is an error naming `what`. */
export function resolveCount(x: number, total: number, what: string): number {
  if (!Number.isFinite(x) || x < 0) throw new Error(`${what}: expected a fraction in (0, 1) or a row count, got ${x}`);
  if (x === 0) return 0;
  if (x < 1) return Math.round(x * total);
  if (!Number.isInteger(x)) throw new Error(`${what}: a count must be an integer (or use a fraction below 1), got ${x}`);
  if (x > total) throw new Error(`${what}: asked for ${x} rows but only ${total} are available`);
  return x;
}

function checkCount(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what}: expected a non-negative integer, got ${n}`);
  return n;
}

/** Splits `count` across groups in proportion to `sizes` (largest remainder; ties go to the earlier group). */
function allocate(count: number, sizes: number[], total: number): number[] {
  if (count === 0 || total === 0) return sizes.map(() => 0);
  const exact = sizes.map((s) => (count * s) / total);
  const out = exact.map(Math.floor);
  let rest = count - out.reduce((a, b) => a + b, 0);
  const order = exact.map((e, g) => ({ g, frac: e - Math.floor(e) })).sort((a, b) => b.frac - a.frac || a.g - b.g);
  for (const { g } of order) {
    if (rest <= 0) break;
    out[g]++;
    rest--;
  }
  return out;
}
