/**
 * `ds.load(...)`: a lazy, immutable data plan. Each call returns a new plan with one more step; nothing is
 * read until the plan is materialised (by fit(), preview(), toArray() or a notebook display).
 */
import * as path from "node:path";
import { augment, type AugmentOptions } from "../data/augment";
import { Dataset, type RowContent, type SplitDatasets, type SplitOptions } from "../data/dataset";
import { loadDataset, type LoadOptions } from "../data/load";
import { tokenLengths, tokenLengthStats } from "../data/lengths";
import type { TextTokenizer } from "../data/tokenize";
import type { Row } from "../data/types";
import type { RecipeAugment, RecipeInput } from "../train/recipe";
import { htmlEscape, JUPYTER_DISPLAY, plotlyHtml, type Displayable, type DisplayOptions, type MimeBundle } from "../viz/display";
import { barChart, histogram } from "../viz/figures";
import { dataPreview } from "../viz/table";
import { LoraPlan, type LoraOptions } from "./lora";

/** One recorded step of a data plan. */
export type DataStep =
  | { op: "load"; path: string | readonly string[]; options: LoadOptions }
  | { op: "rows"; rows: readonly RowContent[] }
  | { op: "split"; options: SplitOptions }
  | { op: "augment"; options: AugmentOptions }
  | { op: "shuffle"; seed: number }
  | { op: "sample"; n: number; seed: number }
  | { op: "filter"; keep: (row: Row) => boolean; why: string }
  | { op: "map"; fn: (row: Row) => Row };

/** A materialised plan: one dataset, or train/val/test after a split. */
export type Materialized = Dataset<Row> | SplitDatasets<Row>;

/** The lazy data pipeline of a notebook cell (its notebook display is async: it reads the data). */
export class DataPlan {
  constructor(readonly steps: readonly DataStep[]) {}

  private then_(step: DataStep): DataPlan {
    return new DataPlan([...this.steps, step]);
  }

  /** Splits into train/val/test ({ val: 0.1, seed: 42 }); stratified by label for classification data. */
  split(options: SplitOptions): DataPlan {
    if (this.steps.some((s) => s.op === "split")) throw new Error("split: this plan is already split");
    return this.then_({ op: "split", options });
  }

  /** Adds augmented copies of train rows (synonyms, swap, delete, insert, templates, back-translation). */
  augment(options: AugmentOptions): DataPlan {
    return this.then_({ op: "augment", options });
  }

  /** Shuffles rows with a seed. */
  shuffle(seed = 42): DataPlan {
    return this.then_({ op: "shuffle", seed });
  }

  /** Keeps `n` rows (or a fraction when n < 1), chosen with a seed. */
  sample(n: number, seed = 42): DataPlan {
    return this.then_({ op: "sample", n, seed });
  }

  /** Keeps rows for which `keep` is true; dropped rows are counted under `why`. */
  filter(keep: (row: Row) => boolean, why = "removed by filter"): DataPlan {
    return this.then_({ op: "filter", keep, why });
  }

  /** Rewrites each row. */
  map(fn: (row: Row) => Row): DataPlan {
    return this.then_({ op: "map", fn });
  }

  /** Adds LoRA (rank, alpha, dropout, target modules): the next step is fit(). */
  lora(options: LoraOptions = {}): LoraPlan {
    return new LoraPlan(this, options);
  }

  /** Runs the plan: reads, splits, augments. */
  async materialize(): Promise<Materialized> {
    let current: Materialized | null = null;
    for (const step of this.steps) current = await apply(current, step);
    if (!current) throw new Error("this data plan has no load step (start with ds.load(path))");
    return current;
  }

  /** All rows of the plan (every split, train first). */
  async toArray(): Promise<Row[]> {
    const m = await this.materialize();
    return isSplit(m) ? [...m.train.rows, ...m.val.rows, ...m.test.rows] : [...m.rows];
  }

  /** A displayable preview: first rows, label distribution and, given a tokenizer, token lengths. */
  async preview(options: { rows?: number; tokenizer?: TextTokenizer } = {}): Promise<DataPreview> {
    return new DataPreview(await this.materialize(), this.describe(), options.rows ?? 10, options.tokenizer);
  }

  /** The data keys of a recipe for this plan; throws naming a step a recipe cannot express. */
  toRecipeData(): Pick<RecipeInput, "dataset_path" | "dataset" | "formatting" | "val_size" | "test_size" | "augment"> & { seed?: number } {
    const out: ReturnType<DataPlan["toRecipeData"]> = { dataset_path: "" };
    this.steps.forEach((step, i) => {
      const fail = (why: string): never => {
        throw new Error(`step ${i + 1} (${step.op}) cannot be written to a recipe: ${why}`);
      };
      switch (step.op) {
        case "load":
          if (i !== 0) fail("load must come first");
          out.dataset_path = typeof step.path === "string" ? step.path : [...step.path];
          if (step.options.dataset) out.dataset = step.options.dataset;
          if (step.options.format) out.formatting = step.options.format;
          if (step.options.columns || step.options.tags || step.options.fileType || step.options.onInvalid) {
            fail("columns, tags, fileType and onInvalid are not recipe options; describe the file in a dataset_info.json");
          }
          break;
        case "split":
          out.val_size = step.options.val ?? 0;
          out.test_size = step.options.test ?? 0;
          if (step.options.seed !== undefined) out.seed = step.options.seed;
          break;
        case "augment":
          if (!this.steps.slice(0, i).some((s) => s.op === "split")) fail("augment after split, so the recipe's order matches");
          out.augment = recipeAugment(step.options, fail);
          break;
        default:
          fail("it runs code (or reorders rows) that a YAML recipe cannot hold; use fit() from the notebook instead");
      }
    });
    if (!out.dataset_path) throw new Error("this data plan has no load step");
    return out;
  }

  /** One line per step, for displays and errors. */
  describe(): string[] {
    return this.steps.map((s) => {
      switch (s.op) {
        case "load":
          return `load ${typeof s.path === "string" ? s.path : s.path.join(", ")}`;
        case "rows":
          return `${s.rows.length} rows from memory`;
        case "split":
          return `split ${JSON.stringify(s.options)}`;
        case "augment":
          return `augment ${Object.keys(s.options).filter((k) => k !== "onProgress").join(", ")}`;
        case "shuffle":
          return `shuffle (seed ${s.seed})`;
        case "sample":
          return `sample ${s.n} (seed ${s.seed})`;
        case "filter":
          return `filter (${s.why})`;
        case "map":
          return "map";
      }
    });
  }

  /** A notebook shows the data itself: this reads the file (async display). */
  async [JUPYTER_DISPLAY](opts: DisplayOptions = {}): Promise<MimeBundle> {
    return (await this.preview())[JUPYTER_DISPLAY](opts);
  }
}

/** `ds`: where data plans start. */
export const ds = {
  /** Starts a plan from JSON, JSONL, CSV, Parquet or TXT file(s), or a dataset_info.json entry. */
  load(file: string | readonly string[], options: LoadOptions = {}): DataPlan {
    return new DataPlan([{ op: "load", path: file, options }]);
  },
  /** Starts a plan from rows in memory, e.g. { kind: "classification", text, label } (see RowContent). */
  fromRows(rows: readonly RowContent[]): DataPlan {
    return new DataPlan([{ op: "rows", rows }]);
  },
};

function isSplit(m: Materialized | null): m is SplitDatasets<Row> {
  return !!m && !(m instanceof Dataset);
}

async function apply(current: Materialized | null, step: DataStep): Promise<Materialized> {
  if (step.op === "load") return loadDataset(step.path, step.options);
  if (step.op === "rows") return Dataset.fromRows(step.rows);
  if (!current) throw new Error(`${step.op}: the plan must start with ds.load(...) or ds.fromRows(...)`);
  if (step.op === "split") {
    if (isSplit(current)) throw new Error("split: already split");
    return current.split(step.options);
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

function recipeAugment(a: AugmentOptions, fail: (why: string) => never): RecipeAugment {
  if (a.lexicon || a.backTranslation) fail("a custom lexicon or translator is code, not a recipe value");
  return {
    synonyms: a.synonyms,
    swap: a.swap,
    delete: a.delete,
    insert: a.insert,
    per_row: a.perRow,
    fraction: a.fraction,
    templates: a.templates ? { templates: a.templates.templates as string[], slots: a.templates.slots as Record<string, string[]> } : undefined,
  };
}

/** A materialised dataset shown as a danfo preview, label distribution and token-length histogram. */
export class DataPreview implements Displayable {
  constructor(
    readonly data: Materialized,
    readonly plan: readonly string[],
    readonly maxRows: number,
    readonly tokenizer?: TextTokenizer,
  ) {}

  private parts(): { name: string; ds: Dataset<Row> }[] {
    const d = this.data;
    return d instanceof Dataset ? [{ name: "all", ds: d }] : [{ name: "train", ds: d.train }, { name: "val", ds: d.val }, { name: "test", ds: d.test }].filter((p) => p.ds.length > 0);
  }

  [JUPYTER_DISPLAY](opts: DisplayOptions = {}): MimeBundle {
    const parts = this.parts();
    const first = parts[0].ds;
    const rows = first.rows.slice(0, this.maxRows).map(flatRow);
    const title = `${this.plan[0] ? path.basename(this.plan[0].replace(/^load /, "")) : "data"}: ${parts.map((p) => `${p.name} ${p.ds.length}`).join(", ")} rows`;
    const preview = dataPreview(rows, { title, totalRows: first.length, maxRows: this.maxRows });
    const inline = opts.inlinePlotly ?? true;
    let html = String(preview["text/html"] ?? "");
    if (first.report.dropped.length > 0) html += `<div>${htmlEscape(first.report.summary())}</div>`;
    if (first.kinds.includes("classification")) {
      html += plotlyHtml(barChart(first.labelCounts(), { title: `labels (${parts[0].name})` }), { inlinePlotly: inline, height: "260px" });
    }
    if (this.tokenizer) {
      const lengths = tokenLengths(first, this.tokenizer);
      const stats = tokenLengthStats(lengths);
      html += plotlyHtml(histogram(lengths, { title: `token lengths (p50 ${stats.p50}, p90 ${stats.p90}, max ${stats.max})` }), { inlinePlotly: inline, height: "260px" });
    }
    return { "text/plain": `${title}\n${String(preview["text/plain"])}`, "text/html": html };
  }
}

function flatRow(row: Row): Record<string, unknown> {
  const base = { id: row.provenance.id, augmented: row.provenance.augmented?.method ?? "" };
  switch (row.kind) {
    case "classification":
      return { text: row.text, label: row.label, ...base };
    case "pretrain":
      return { text: row.text, ...base };
    case "chat":
      return { messages: row.messages.map((m) => `${m.role}: ${m.content}`).join("\n"), ...base };
  }
}
