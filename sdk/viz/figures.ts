/**
 * Figure builders: pure functions from numbers to Plotly figures ({data, layout}). Wrap a result
 * with `displayFigure` (display.ts) to show it in a notebook.
 */
import type { PlotlyFigure } from "./display";

/** One loss measurement: training loss at a logging step, or validation loss at an eval step. */
export interface LossPoint {
  step: number;
  loss: number;
  split: "train" | "val";
}

/** The learning rate at a step. */
export interface LrPoint {
  step: number;
  lr: number;
}

/** Options for `lossCurve`. */
export interface LossCurveOptions {
  /** Figure title; default "Loss". */
  title?: string;
  /** Learning-rate schedule, drawn on a second y axis at the right. */
  lr?: readonly LrPoint[];
  /** Log-scale loss axis. */
  logY?: boolean;
  /** Fix the x axis to [0, maxSteps] so a live curve does not rescale as it grows. */
  maxSteps?: number;
}

const BASE_LAYOUT = {
  margin: { l: 60, r: 60, t: 50, b: 50 },
  legend: { orientation: "h", y: -0.2 },
  hovermode: "x unified",
};

/** Train and validation loss against step, optionally with the learning rate on a second axis. */
export function lossCurve(points: readonly LossPoint[], opts: LossCurveOptions = {}): PlotlyFigure {
  for (const [i, p] of points.entries()) {
    if (p.split !== "train" && p.split !== "val") throw new Error(`lossCurve: points[${i}].split must be "train" or "val", got ${JSON.stringify(p.split)}`);
    if (!Number.isFinite(p.step)) throw new Error(`lossCurve: points[${i}].step must be a finite number, got ${p.step}`);
  }
  const series = (split: "train" | "val") => {
    const ps = points.filter((p) => p.split === split).sort((a, b) => a.step - b.step);
    // A NaN/inf loss becomes a gap rather than wrecking the axis range.
    return { x: ps.map((p) => p.step), y: ps.map((p) => (Number.isFinite(p.loss) ? p.loss : null)) };
  };
  const train = series("train");
  const val = series("val");
  const data: Array<Record<string, unknown>> = [];
  if (train.x.length) data.push({ type: "scatter", mode: "lines", name: "train loss", ...train, line: { color: "#1f77b4" } });
  if (val.x.length) data.push({ type: "scatter", mode: "lines+markers", name: "val loss", ...val, line: { color: "#ff7f0e" } });
  const lr = (opts.lr ?? []).slice().sort((a, b) => a.step - b.step);
  if (lr.length) {
    data.push({
      type: "scatter",
      mode: "lines",
      name: "learning rate",
      x: lr.map((p) => p.step),
      y: lr.map((p) => p.lr),
      yaxis: "y2",
      line: { color: "#2ca02c", dash: "dot", width: 1.5 },
    });
  }
  const layout: Record<string, unknown> = {
    ...BASE_LAYOUT,
    title: { text: opts.title ?? "Loss" },
    xaxis: { title: { text: "step" }, ...(opts.maxSteps ? { range: [0, opts.maxSteps] } : {}) },
    yaxis: { title: { text: "loss" }, ...(opts.logY ? { type: "log" } : {}) },
  };
  if (lr.length) {
    layout.yaxis2 = { title: { text: "learning rate" }, overlaying: "y", side: "right", showgrid: false, exponentformat: "e" };
  }
  return { data, layout };
}

/** Histogram bins: `edges` has one more entry than `counts`; the last bin includes its right edge. */
export interface Bins {
  edges: number[];
  counts: number[];
}

/** Splits values into `bins` equal-width bins from min to max (numpy.histogram semantics). */
export function binValues(values: readonly number[], bins: number): Bins {
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`binValues: bins must be a positive integer, got ${bins}`);
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { edges: [0, 1], counts: [0] };
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of finite) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const width = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + i * width));
  const counts = new Array<number>(bins).fill(0);
  for (const v of finite) {
    let i = Math.min(bins - 1, Math.floor((v - lo) / width));
    // Rounding can put a value that sits on an edge one bin off; the edges decide, as in numpy.
    if (i > 0 && v < edges[i]) i--;
    else if (i < bins - 1 && v >= edges[i + 1]) i++;
    counts[i]++;
  }
  return { edges, counts };
}

/** Options for `histogram`. */
export interface HistogramOptions {
  /** Number of bins; default min(50, ceil(sqrt(n))). */
  bins?: number;
  title?: string;
  /** X axis title; default "tokens". */
  xTitle?: string;
  /** Draw a dashed vertical line here and say how many values lie above it (e.g. cutoff_len). */
  cutoff?: number;
  /** Label of the cutoff line; default "cutoff_len". */
  cutoffLabel?: string;
}

/** A histogram of values (token lengths by default), binned here so the figure is exact and small. */
export function histogram(values: readonly number[], opts: HistogramOptions = {}): PlotlyFigure {
  const n = values.filter((v) => Number.isFinite(v)).length;
  const bins = opts.bins ?? Math.max(1, Math.min(50, Math.ceil(Math.sqrt(n))));
  const { edges, counts } = binValues(values, bins);
  const centers = counts.map((_, i) => (edges[i] + edges[i + 1]) / 2);
  const text = counts.map((_, i) => `${fmt(edges[i])}–${fmt(edges[i + 1])}`);
  const layout: Record<string, unknown> = {
    ...BASE_LAYOUT,
    hovermode: "closest",
    title: { text: opts.title ?? `Distribution (n = ${n})` },
    xaxis: { title: { text: opts.xTitle ?? "tokens" } },
    yaxis: { title: { text: "count" } },
    bargap: 0.02,
    showlegend: false,
  };
  if (opts.cutoff !== undefined) {
    const above = values.filter((v) => v > opts.cutoff!).length;
    layout.shapes = [{ type: "line", x0: opts.cutoff, x1: opts.cutoff, yref: "paper", y0: 0, y1: 1, line: { color: "#d62728", dash: "dash" } }];
    layout.annotations = [
      {
        x: opts.cutoff,
        yref: "paper",
        y: 1,
        text: `${opts.cutoffLabel ?? "cutoff_len"} ${fmt(opts.cutoff)}: ${above} above`,
        showarrow: false,
        xanchor: "left",
        yanchor: "bottom",
      },
    ];
  }
  return {
    data: [
      {
        type: "bar",
        name: "count",
        x: centers,
        y: counts,
        width: counts.map((_, i) => edges[i + 1] - edges[i]),
        text,
        hovertemplate: "%{text}: %{y}<extra></extra>",
        textposition: "none",
        // Explicit widths leave no gap between bars: an outline keeps adjacent bins apart.
        marker: { color: "#1f77b4", line: { color: "#ffffff", width: 1 } },
      },
    ],
    layout,
  };
}

/** Options for `barChart`. */
export interface BarChartOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Bar order: by count descending (default), by label, or as given. */
  sort?: "count" | "label" | "none";
}

/** A bar chart of counts per label (e.g. a label distribution). */
export function barChart(
  counts: Readonly<Record<string, number>> | ReadonlyMap<string, number> | ReadonlyArray<readonly [string, number]>,
  opts: BarChartOptions = {},
): PlotlyFigure {
  let entries: Array<[string, number]> =
    counts instanceof Map
      ? [...counts.entries()]
      : Array.isArray(counts)
        ? counts.map(([k, v]) => [k, v] as [string, number])
        : Object.entries(counts as Record<string, number>);
  for (const [k, v] of entries) {
    if (!Number.isFinite(v)) throw new Error(`barChart: count for label "${k}" must be a finite number, got ${v}`);
  }
  const sort = opts.sort ?? "count";
  if (sort === "count") entries = entries.slice().sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  else if (sort === "label") entries = entries.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return {
    data: [
      {
        type: "bar",
        name: "count",
        x: entries.map(([k]) => k),
        y: entries.map(([, v]) => v),
        text: entries.map(([, v]) => String(v)),
        textposition: "auto",
        marker: { color: "#1f77b4" },
      },
    ],
    layout: {
      ...BASE_LAYOUT,
      hovermode: "closest",
      title: { text: opts.title ?? "Counts" },
      // Labels such as "0" and "1" must stay categories, not become a numeric axis.
      xaxis: { title: { text: opts.xTitle ?? "label" }, type: "category" },
      yaxis: { title: { text: opts.yTitle ?? "count" } },
      showlegend: false,
    },
  };
}

/** Options for `confusionHeatmap`. */
export interface ConfusionHeatmapOptions {
  title?: string;
  /** Colour by row share ("true"), column share ("pred") or share of all; cells still show counts. */
  normalize?: "true" | "pred" | "all";
}

/** A confusion-matrix heatmap: rows are true labels (top to bottom), columns predicted labels. */
export function confusionHeatmap(
  matrix: readonly (readonly number[])[],
  labels: readonly (string | number)[],
  opts: ConfusionHeatmapOptions = {},
): PlotlyFigure {
  const k = labels.length;
  if (matrix.length !== k || matrix.some((row) => row.length !== k)) {
    throw new Error(`confusionHeatmap: matrix must be ${k}x${k} to match ${k} labels`);
  }
  const names = labels.map(String);
  const total = matrix.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  const colSums = names.map((_, j) => matrix.reduce((s, row) => s + row[j], 0));
  const z = matrix.map((row) => {
    const rowSum = row.reduce((a, b) => a + b, 0);
    return row.map((v, j) => {
      const d = opts.normalize === "true" ? rowSum : opts.normalize === "pred" ? colSums[j] : opts.normalize === "all" ? total : 1;
      return d === 0 ? 0 : v / d;
    });
  });
  return {
    data: [
      {
        type: "heatmap",
        name: "confusion",
        x: names,
        y: names,
        z,
        text: matrix.map((row) => row.map(String)),
        texttemplate: "%{text}",
        hovertemplate: "true %{y}, predicted %{x}: %{text}<extra></extra>",
        // Light for few, dark for many (plotly's named "Blues" runs the other way).
        colorscale: [
          [0, "#f7fbff"],
          [0.25, "#c6dbef"],
          [0.5, "#6baed6"],
          [0.75, "#2171b5"],
          [1, "#08306b"],
        ],
        showscale: true,
      },
    ],
    layout: {
      ...BASE_LAYOUT,
      hovermode: "closest",
      title: { text: opts.title ?? "Confusion matrix" },
      xaxis: { title: { text: "predicted" }, type: "category", side: "bottom" },
      yaxis: { title: { text: "true" }, type: "category", autorange: "reversed" },
    },
  };
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(Math.abs(x) >= 100 ? 0 : 2);
}
