/**
 * Scoring generated answers into a report: headline metrics with bootstrap 95% intervals and a per-sample table; and
 * `compare(base, tuned)`, the deltas on the same samples with paired-bootstrap intervals and p-values, side by side.
 * Every table goes through viz's escaping table helpers.
 */
import { JUPYTER_DISPLAY, htmlEscape, type Displayable, type MimeBundle } from "../viz/display";
import { htmlTable, textTable } from "../viz/table";
import { bootstrapInterval, pairedBootstrap, type BootstrapOptions, type Interval, type PairedTest } from "./bootstrap";
import { resolveMetrics, type GenerationMetric, type GenerationMetricOptions, type GenerationSample } from "./generation-metric";

/** Options of `scoreGeneration`. */
export interface ScoreGenerationOptions extends GenerationMetricOptions {
  /** Metric names (see BUILTIN_METRICS), aliases (rouge, distinct, ...) or custom metrics; default bleu, rouge, chrf. */
  metrics?: readonly (string | GenerationMetric)[];
  /** Report heading; default "Generation". */
  title?: string;
  /** Bootstrap settings of the intervals; false leaves them out. */
  bootstrap?: BootstrapOptions | false;
}

const DECIMALS = 4;

/** Scores of generated answers: corpus figures, their intervals and per-sample values. */
export class GenerationReport implements Displayable {
  /** Metric values by name. */
  readonly metrics: Readonly<Record<string, number>>;

  constructor(
    readonly title: string,
    readonly samples: readonly GenerationSample[],
    /** Metric definitions, kept for compare(). */
    readonly definitions: readonly GenerationMetric[],
    /** Per-sample values by metric (per-sample metrics; corpus metrics computed on the one sample). */
    readonly perSample: ReadonlyArray<Readonly<Record<string, number | null>>>,
    metrics: Record<string, number>,
    /** Bootstrap intervals by metric (absent when bootstrap is off). */
    readonly intervals: Readonly<Record<string, Interval>> = {},
    readonly bootstrapOptions: BootstrapOptions | false = {},
  ) {
    this.metrics = Object.freeze({ ...metrics });
  }

  /** One metric by name; throws naming those there are. */
  get(name: string): number {
    const v = this.metrics[name];
    if (v === undefined) throw new Error(`GenerationReport: no metric "${name}"; it has ${Object.keys(this.metrics).join(", ")}`);
    return v;
  }

  /** The statistic of metric `m` on the samples at `indices`. */
  statistic(m: GenerationMetric, indices: Int32Array): number {
    if (m.corpus) return m.corpus(Array.from(indices, (i) => this.samples[i]));
    let sum = 0;
    let n = 0;
    for (const i of indices) {
      const v = this.perSample[i][m.name];
      if (v !== null && v !== undefined) {
        sum += v;
        n++;
      }
    }
    return n === 0 ? NaN : sum / n;
  }

  /** Plain JSON: metrics, intervals and per-sample rows. */
  toJSON(): {
    title: string;
    metrics: Record<string, number | null>;
    intervals: Record<string, Interval>;
    samples: Array<GenerationSample & { metrics: Record<string, number | null> }>;
  } {
    const metrics: Record<string, number | null> = {};
    for (const [k, v] of Object.entries(this.metrics)) metrics[k] = Number.isFinite(v) ? v : null;
    return { title: this.title, metrics, intervals: { ...this.intervals }, samples: this.samples.map((s, i) => ({ ...s, metrics: { ...this.perSample[i] } })) };
  }

  private metricRows(): unknown[][] {
    return Object.entries(this.metrics).map(([k, v]) => {
      const ci = this.intervals[k];
      return [k, v, ci ? `[${ci.low.toFixed(DECIMALS)}, ${ci.high.toFixed(DECIMALS)}]` : ""];
    });
  }

  private sampleRows(): { columns: string[]; rows: unknown[][] } {
    const names = this.definitions.map((d) => d.name);
    return {
      columns: ["#", "prompt", "reference", "answer", ...names],
      rows: this.samples.map((s, i) => [i, s.prompt ?? "", refText(s), s.prediction, ...names.map((n) => this.perSample[i][n])]),
    };
  }

  toString(): string {
    const { columns, rows } = this.sampleRows();
    return [
      `${this.title} (${this.samples.length} samples)`,
      textTable(["metric", "value", "95% CI"], this.metricRows(), { digits: DECIMALS }),
      "",
      textTable(columns, rows, { maxRows: 20, digits: DECIMALS }),
    ].join("\n");
  }

  [JUPYTER_DISPLAY](): MimeBundle {
    const { columns, rows } = this.sampleRows();
    const html = [
      `<div class="tunelab-eval"><div style="font-weight:bold;font-size:14px;margin-bottom:4px;">${htmlEscape(this.title)} <span style="font-weight:normal;color:#666;">(${this.samples.length} samples)</span></div>`,
      htmlTable(["metric", "value", `${pct(this.intervals)} CI`], this.metricRows(), { digits: DECIMALS }),
      htmlTable(columns, rows, { caption: "Per sample", maxRows: 100, digits: DECIMALS }),
      "</div>",
    ].join("\n");
    return { "text/plain": this.toString(), "text/html": html, "application/json": this.toJSON() };
  }
}

const refText = (s: GenerationSample) => (s.reference === undefined ? "" : typeof s.reference === "string" ? s.reference : s.reference.join(" | "));
const pct = (intervals: Readonly<Record<string, Interval>>) => `${Math.round(100 * (Object.values(intervals)[0]?.level ?? 0.95))}%`;

function checkSamples(samples: readonly GenerationSample[], metrics: readonly GenerationMetric[]): void {
  if (!Array.isArray(samples) || samples.length === 0) throw new Error("scoreGeneration: no samples");
  samples.forEach((s, i) => {
    if (!s || typeof s.prediction !== "string") throw new Error(`scoreGeneration: samples[${i}].prediction must be a string`);
    for (const m of metrics) {
      if (m.needsReference && s.reference === undefined) throw new Error(`scoreGeneration: metric ${m.name} needs a reference, samples[${i}] has none`);
    }
  });
}

/** Scores generated answers with the given metrics; headline figures get seeded bootstrap intervals. */
export async function scoreGeneration(samples: readonly GenerationSample[], opts: ScoreGenerationOptions = {}): Promise<GenerationReport> {
  const defs = resolveMetrics(opts.metrics ?? ["bleu", "rouge", "chrf"], opts);
  checkSamples(samples, defs);
  const perSample: Record<string, number | null>[] = samples.map(() => ({}));
  for (const m of defs) {
    for (const [i, s] of samples.entries()) {
      const v = m.perSample ? await m.perSample(s) : m.corpus!([s]);
      if (v !== null && typeof v !== "number") throw new Error(`metric ${m.name} returned ${JSON.stringify(v)} for samples[${i}]; expected a number or null`);
      perSample[i][m.name] = v;
    }
  }
  const report = new GenerationReport(opts.title ?? "Generation", samples, defs, perSample, {}, {}, opts.bootstrap ?? {});
  const all = Int32Array.from(samples, (_, i) => i);
  const metrics: Record<string, number> = {};
  const intervals: Record<string, Interval> = {};
  for (const m of defs) {
    metrics[m.name] = report.statistic(m, all);
    if (opts.bootstrap !== false) intervals[m.name] = bootstrapInterval(samples.length, (idx) => report.statistic(m, idx), opts.bootstrap ?? {});
  }
  return new GenerationReport(report.title, samples, defs, perSample, metrics, intervals, opts.bootstrap ?? {});
}

/** One metric of a comparison. */
export interface MetricComparison extends PairedTest {
  metric: string;
  a: number;
  b: number;
  higherIsBetter: boolean;
}

/** Options of `compare`. */
export interface CompareOptions extends BootstrapOptions {
  /** Column names of the two systems; default ["base", "tuned"]. */
  labels?: readonly [string, string];
}

/** Two reports on the same samples, side by side: deltas (b - a) with paired-bootstrap intervals and p-values. */
export class Comparison implements Displayable {
  constructor(
    readonly a: GenerationReport,
    readonly b: GenerationReport,
    readonly rows: readonly MetricComparison[],
    readonly labels: readonly [string, string],
  ) {}

  /** The comparison of one metric. */
  get(metric: string): MetricComparison {
    const r = this.rows.find((x) => x.metric === metric);
    if (!r) throw new Error(`Comparison: no metric "${metric}"; it has ${this.rows.map((x) => x.metric).join(", ")}`);
    return r;
  }

  private summary(): { columns: string[]; rows: unknown[][] } {
    const [la, lb] = this.labels;
    return {
      columns: ["metric", la, lb, "delta", "95% CI of delta", "p (paired bootstrap)"],
      rows: this.rows.map((r) => [
        r.metric + (r.higherIsBetter ? "" : " (lower is better)"),
        r.a,
        r.b,
        r.delta,
        `[${r.interval.low.toFixed(DECIMALS)}, ${r.interval.high.toFixed(DECIMALS)}]`,
        r.pValue,
      ]),
    };
  }

  private sideBySide(): { columns: string[]; rows: unknown[][] } {
    const [la, lb] = this.labels;
    const names = this.rows.map((r) => r.metric);
    return {
      columns: ["#", "prompt", "reference", `${la} answer`, `${lb} answer`, ...names.flatMap((n) => [`${n} ${la}`, `${n} ${lb}`])],
      rows: this.a.samples.map((s, i) => [
        i,
        s.prompt ?? "",
        refText(s),
        s.prediction,
        this.b.samples[i].prediction,
        ...names.flatMap((n) => [this.a.perSample[i][n], this.b.perSample[i][n]]),
      ]),
    };
  }

  toJSON(): { labels: readonly [string, string]; metrics: MetricComparison[]; samples: unknown[] } {
    const { columns, rows } = this.sideBySide();
    return {
      labels: this.labels,
      metrics: this.rows.map((r) => ({ ...r })),
      samples: rows.map((row) => Object.fromEntries(columns.map((c, j) => [c, row[j]]))),
    };
  }

  toString(): string {
    const s = this.summary();
    const t = this.sideBySide();
    return [textTable(s.columns, s.rows, { digits: DECIMALS }), "", textTable(t.columns, t.rows, { maxRows: 20, digits: DECIMALS })].join("\n");
  }

  [JUPYTER_DISPLAY](): MimeBundle {
    const s = this.summary();
    const t = this.sideBySide();
    const html = [
      `<div class="tunelab-eval">`,
      htmlTable(s.columns, s.rows, { caption: `${this.labels[0]} vs ${this.labels[1]} (${this.a.samples.length} samples)`, digits: DECIMALS }),
      htmlTable(t.columns, t.rows, { caption: "Per sample", maxRows: 100, digits: DECIMALS }),
      "</div>",
    ].join("\n");
    return { "text/plain": this.toString(), "text/html": html, "application/json": this.toJSON() };
  }
}

/** Compares report b against report a on the same samples (same count and references), metric by metric. */
export function compare(a: GenerationReport, b: GenerationReport, opts: CompareOptions = {}): Comparison {
  if (a.samples.length !== b.samples.length)
    throw new Error(`compare: the reports have ${a.samples.length} and ${b.samples.length} samples; compare answers to the same samples`);
  a.samples.forEach((s, i) => {
    const t = b.samples[i];
    if (refText(s) !== refText(t) || (s.prompt !== undefined && t.prompt !== undefined && s.prompt !== t.prompt)) {
      throw new Error(`compare: sample ${i} differs between the reports (prompt or reference); compare answers to the same samples in the same order`);
    }
  });
  const names = new Set(b.definitions.map((d) => d.name));
  const common = a.definitions.filter((d) => names.has(d.name));
  if (common.length === 0) throw new Error("compare: the reports share no metric");
  const n = a.samples.length;
  const rows = common.map((m): MetricComparison => {
    const mb = b.definitions.find((d) => d.name === m.name)!;
    const t = pairedBootstrap(
      n,
      (idx) => a.statistic(m, idx),
      (idx) => b.statistic(mb, idx),
      opts,
    );
    return { metric: m.name, a: a.metrics[m.name], b: b.metrics[m.name], higherIsBetter: m.higherIsBetter ?? true, ...t };
  });
  return new Comparison(a, b, rows, opts.labels ?? ["base", "tuned"]);
}
