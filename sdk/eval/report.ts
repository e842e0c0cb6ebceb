/**
 * EvalReport: the value `evaluate()` returns. A notebook shows it as tables plus a confusion heatmap;
 * a script or the CLI gets plain numbers through `metrics`, `toJSON()` and `toString()`.
 */
import { JUPYTER_DISPLAY, htmlEscape, plotlyHtml, type Displayable, type DisplayOptions, type MimeBundle } from "../viz/display";
import { confusionHeatmap } from "../viz/figures";
import { htmlTable, textTable } from "../viz/table";
import { classificationMetrics, perplexity, type ClassScores, type ConfusionMatrix, type Label } from "./metrics";

// Scores always show 4 decimals (1 -> "1.0000") so a column reads evenly; support stays an integer.
const FIXED = { value: 4, precision: 4, recall: 4, f1: 4 };

/** What an EvalReport holds. Metric names are snake_case, scikit-learn scorer names where one exists (accuracy, f1_macro, ...). */
export interface EvalReportInit {
  /** Heading; default "Evaluation" plus the split. */
  title?: string;
  /** The split evaluated: "val", "test", ... */
  split?: string;
  /** Training step the adapter was at. */
  step?: number;
  /** Number of examples scored. */
  numExamples?: number;
  metrics: Record<string, number>;
  perClass?: ClassScores[];
  confusion?: ConfusionMatrix;
}

/** The JSON form of a report. */
export interface EvalReportJson {
  title: string;
  split?: string;
  step?: number;
  numExamples?: number;
  metrics: Record<string, number | null>;
  perClass?: ClassScores[];
  confusion?: ConfusionMatrix;
}

/** Options for `EvalReport.classification`. */
export interface ClassificationReportOptions {
  labels?: readonly Label[];
  split?: string;
  step?: number;
  title?: string;
  /** Mean eval loss (NLL per token, nats); adds `loss` and `perplexity`. */
  loss?: number;
  /** More metrics to list (e.g. token_accuracy). */
  extra?: Record<string, number>;
}

/** Evaluation results: a metrics map, an optional per-class table and confusion matrix. */
export class EvalReport implements Displayable {
  readonly title: string;
  readonly split?: string;
  readonly step?: number;
  readonly numExamples?: number;
  readonly metrics: Readonly<Record<string, number>>;
  readonly perClass?: readonly ClassScores[];
  readonly confusion?: ConfusionMatrix;

  constructor(init: EvalReportInit) {
    for (const [k, v] of Object.entries(init.metrics)) {
      if (typeof v !== "number") throw new Error(`EvalReport: metric "${k}" must be a number, got ${typeof v}`);
    }
    if (init.confusion) {
      const k = init.confusion.labels.length;
      if (init.confusion.matrix.length !== k || init.confusion.matrix.some((r) => r.length !== k)) {
        throw new Error(`EvalReport: confusion matrix must be ${k}x${k} for ${k} labels`);
      }
    }
    this.title = init.title ?? (init.split ? `Evaluation (${init.split})` : "Evaluation");
    this.split = init.split;
    this.step = init.step;
    this.numExamples = init.numExamples;
    this.metrics = Object.freeze({ ...init.metrics });
    this.perClass = init.perClass?.map((r) => ({ ...r }));
    this.confusion = init.confusion && { labels: [...init.confusion.labels], matrix: init.confusion.matrix.map((r) => [...r]) };
  }

  /** A report of classification predictions: accuracy, F1s, per-class scores, confusion; loss/perplexity if given. */
  static classification(yTrue: readonly Label[], yPred: readonly Label[], opts: ClassificationReportOptions = {}): EvalReport {
    const m = classificationMetrics(yTrue, yPred, opts.labels);
    const metrics: Record<string, number> = {};
    if (opts.loss !== undefined) {
      metrics.loss = opts.loss;
      metrics.perplexity = perplexity(opts.loss);
    }
    Object.assign(metrics, {
      // scikit-learn's scorer names (scoring="f1_macro", ...).
      accuracy: m.accuracy,
      f1_macro: m.macroF1,
      f1_micro: m.microF1,
      f1_weighted: m.weightedF1,
      precision_macro: m.macroPrecision,
      recall_macro: m.macroRecall,
      ...opts.extra,
    });
    return new EvalReport({
      title: opts.title,
      split: opts.split,
      step: opts.step,
      numExamples: m.numExamples,
      metrics,
      perClass: m.perClass,
      confusion: m.confusion,
    });
  }

  /** One metric by name; throws naming the metrics there are when it is absent. */
  get(name: string): number {
    const v = this.metrics[name];
    if (v === undefined) throw new Error(`EvalReport: no metric "${name}"; it has ${Object.keys(this.metrics).join(", ") || "none"}`);
    return v;
  }

  /** Plain JSON (non-finite metrics become null, as JSON has no NaN). */
  toJSON(): EvalReportJson {
    const metrics: Record<string, number | null> = {};
    for (const [k, v] of Object.entries(this.metrics)) metrics[k] = Number.isFinite(v) ? v : null;
    return {
      title: this.title,
      ...(this.split !== undefined ? { split: this.split } : {}),
      ...(this.step !== undefined ? { step: this.step } : {}),
      ...(this.numExamples !== undefined ? { numExamples: this.numExamples } : {}),
      metrics,
      ...(this.perClass ? { perClass: this.perClass.map((r) => ({ ...r })) } : {}),
      ...(this.confusion ? { confusion: { labels: [...this.confusion.labels], matrix: this.confusion.matrix.map((r) => [...r]) } } : {}),
    };
  }

  private subtitle(): string {
    const bits: string[] = [];
    if (this.step !== undefined) bits.push(`step ${this.step}`);
    if (this.numExamples !== undefined) bits.push(`${this.numExamples} examples`);
    return bits.join(", ");
  }

  private metricRows(): Array<[string, number]> {
    return Object.entries(this.metrics);
  }

  private classRows(): unknown[][] {
    return (this.perClass ?? []).map((r) => [String(r.label), r.precision, r.recall, r.f1, r.support]);
  }

  /** Text tables for terminals and text/plain. */
  toString(): string {
    const sub = this.subtitle();
    const parts = [this.title + (sub ? ` (${sub})` : ""), textTable(["metric", "value"], this.metricRows(), { decimals: FIXED })];
    if (this.perClass?.length) parts.push("", textTable(["label", "precision", "recall", "f1", "support"], this.classRows(), { decimals: FIXED }));
    if (this.confusion) {
      const names = this.confusion.labels.map(String);
      parts.push(
        "",
        textTable(
          ["true \\ pred", ...names],
          this.confusion.matrix.map((r, i) => [names[i], ...r]),
          { caption: "Confusion matrix" },
        ),
      );
    }
    return parts.join("\n");
  }

  /** Rich display: metric and per-class tables, and the confusion matrix as a Plotly heatmap. */
  [JUPYTER_DISPLAY](opts: DisplayOptions = {}): MimeBundle {
    const sub = this.subtitle();
    const html: string[] = [
      `<div class="tunelab-eval"><div style="font-weight:bold;font-size:14px;margin-bottom:4px;">${htmlEscape(this.title)}` +
        (sub ? ` <span style="font-weight:normal;color:#666;">(${htmlEscape(sub)})</span>` : "") +
        "</div>",
      '<div style="display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start;">',
      htmlTable(["metric", "value"], this.metricRows(), { decimals: FIXED }),
    ];
    if (this.perClass?.length) html.push(htmlTable(["label", "precision", "recall", "f1", "support"], this.classRows(), { decimals: FIXED }));
    html.push("</div>");
    if (this.confusion) {
      const k = this.confusion.labels.length;
      const fig = confusionHeatmap(this.confusion.matrix, this.confusion.labels, { title: `Confusion matrix${this.split ? ` (${this.split})` : ""}` });
      const size = Math.min(900, 220 + 45 * k);
      fig.layout.width = size + 80;
      html.push(plotlyHtml(fig, { inlinePlotly: opts.inlinePlotly ?? true, height: `${size}px` }));
    }
    html.push("</div>");
    // No application/vnd.plotly.v1+json here on purpose: JupyterLab would prefer it over text/html
    // and show the heatmap alone, hiding the tables.
    return { "text/plain": this.toString(), "text/html": html.join("\n"), "application/json": this.toJSON() };
  }
}
