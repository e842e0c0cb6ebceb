/**
 * `ds.load(...)`: a lazy, immutable data plan. Each call returns a new plan with one more step; nothing is
 * read until the plan is materialised (by fit(), preview(), toArray() or a notebook display).
 */
import * as path from "node:path";
import type { AugmentOptions } from "../data/augment";
import { Dataset, type RowContent, type SplitOptions } from "../data/dataset";
import type { LoadOptions } from "../data/load";
import { isSplit, runDataSteps, type DataStep, type Materialized } from "../data/steps";
import { tokenLengths, tokenLengthStats } from "../data/lengths";
import type { TextTokenizer } from "../data/tokenize";
import type { Row } from "../data/types";
import { recipeDataOf, type RecipeData } from "../train/recipe-data";
import { htmlEscape, JUPYTER_DISPLAY, plotlyHtml, type Displayable, type DisplayOptions, type MimeBundle } from "../viz/display";
import { barChart, histogram } from "../viz/figures";
import { dataPreview } from "../viz/table";
import { LoraPlan, type LoraOptions } from "./lora";

export type { DataStep, Materialized } from "../data/steps";

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

  /** After split(): loads the validation part from its own file(s), e.g. `.val("data", { dataset: "my_val" })` (LF's eval_dataset). */
  val(file: string | readonly string[], options: LoadOptions = {}): DataPlan {
    if (!this.steps.some((s) => s.op === "split")) throw new Error("val: split first (.split({ test: 0.1 }) or .split({}))");
    return this.then_({ op: "val", path: file, options });
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
    const current = await runDataSteps(this.steps);
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
  toRecipeData(): RecipeData {
    return recipeDataOf(this.steps);
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
        case "val":
          return `val ${typeof s.path === "string" ? s.path : s.path.join(", ")}`;
        case "augment":
          return `augment ${Object.keys(s.options)
            .filter((k) => k !== "onProgress")
            .join(", ")}`;
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
    return d instanceof Dataset
      ? [{ name: "all", ds: d }]
      : [
          { name: "train", ds: d.train },
          { name: "val", ds: d.val },
          { name: "test", ds: d.test },
        ].filter((p) => p.ds.length > 0);
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
      html += plotlyHtml(histogram(lengths, { title: `token lengths (p50 ${stats.p50}, p90 ${stats.p90}, max ${stats.max})` }), {
        inlinePlotly: inline,
        height: "260px",
      });
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
