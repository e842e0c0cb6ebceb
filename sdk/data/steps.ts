/**
 * Data steps and the one function that runs them: load, split, augment (and the notebook-only shuffle, sample,
 * filter, map). A notebook plan records steps; a recipe's data options become the same steps, so both read, split
 * and augment through this code.
 */
import { augment, type AugmentOptions } from "./augment";
import { Dataset, type RowContent, type SplitDatasets, type SplitOptions } from "./dataset";
import { loadDataset, type LoadOptions } from "./load";
import type { Row } from "./types";

/** One recorded step of a data plan. */
export type DataStep =
  | { op: "load"; path: string | readonly string[]; options: LoadOptions }
  | { op: "rows"; rows: readonly RowContent[] }
  | { op: "split"; options: SplitOptions }
  /** After a split: the validation part is loaded from its own file(s) instead (LF's eval_dataset). */
  | { op: "val"; path: string | readonly string[]; options: LoadOptions }
  | { op: "augment"; options: AugmentOptions }
  | { op: "shuffle"; seed: number }
  | { op: "sample"; n: number; seed: number }
  | { op: "filter"; keep: (row: Row) => boolean; why: string }
  | { op: "map"; fn: (row: Row) => Row };

/** A materialised plan: one dataset, or train/val/test after a split. */
export type Materialized = Dataset<Row> | SplitDatasets<Row>;

/** Whether data is split into train/val/test. */
export function isSplit(m: Materialized | null | undefined): m is SplitDatasets<Row> {
  return !!m && !(m instanceof Dataset);
}

/** Runs steps in order, from `start` (or from nothing: the first step must then load rows). */
export async function runDataSteps(steps: readonly DataStep[], start: Materialized | null = null): Promise<Materialized | null> {
  let current = start;
  for (const step of steps) current = await apply(current, step);
  return current;
}

async function apply(current: Materialized | null, step: DataStep): Promise<Materialized> {
  if (step.op === "load") return loadDataset(step.path, step.options);
  if (step.op === "rows") return Dataset.fromRows(step.rows);
  if (!current) throw new Error(`${step.op}: the plan must start with ds.load(...) or ds.fromRows(...)`);
  if (step.op === "split") {
    if (isSplit(current)) throw new Error("split: already split");
    return current.split(step.options);
  }
  if (step.op === "val") {
    if (!isSplit(current)) throw new Error("val: split the data first (.split({ test }) before .val(path))");
    if (current.val.length > 0) throw new Error(`val: the split already made a validation part of ${current.val.length} rows; split with val: 0 to load one instead`);
    return { ...current, val: (await loadDataset(step.path, step.options)).withRole("val") };
  }
  if (step.op === "augment") return isSplit(current) ? augment(current, step.options) : augment(current, step.options);
  const each = (f: (d: Dataset<Row>) => Dataset<Row>): Materialized =>
    isSplit(current) ? { train: f(current.train), val: step.op === "filter" || step.op === "map" ? f(current.val) : current.val, test: step.op === "filter" || step.op === "map" ? f(current.test) : current.test } : f(current);
  switch (step.op) {
    case "shuffle":
      return each((d) => d.shuffle(step.seed));
    case "sample":
      return each((d) => d.sample(step.n, step.seed));
    case "filter":
      return each((d) => d.filter((r) => step.keep(r), step.why));
    case "map":
      return each((d) => d.map((r) => step.fn(r)));
  }
}
