/**
 * The display protocol: an SDK value that a notebook should show rich implements
 * `[Symbol.for("Jupyter.display")]()` and returns a MIME bundle (the convention of Deno's Jupyter
 * kernel, so tunelab values render rich there too). Plotly figures become bundles whose text/html
 * also renders standalone in a plain browser page.
 *
 * No I/O here except reading plotly.min.js once, lazily, when a bundle inlines it.
 */
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { figureSvg } from "./svg";

/** The symbol a displayable value's display method is keyed by (shared across realms via Symbol.for). */
export const JUPYTER_DISPLAY = Symbol.for("Jupyter.display");

/** A Plotly figure as plain JSON: traces, layout and optional config. */
export interface PlotlyFigure {
  data: Array<Record<string, unknown>>;
  layout: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** A Jupyter MIME bundle: text/plain is always present; richer types are optional. */
export type MimeBundle = {
  "text/plain": string;
  "text/html"?: string;
  "application/vnd.plotly.v1+json"?: PlotlyFigure;
  "application/json"?: unknown;
  [mime: string]: unknown;
};

/** Options a kernel may pass to a display method; a caller that passes none gets standalone output. */
export interface DisplayOptions {
  /**
   * Whether text/html embeds a copy of plotly.js (~4.6 MB) for use when `window.Plotly` is absent.
   * Default true, so the HTML renders anywhere; a kernel that injected plotly once per notebook
   * (see `plotlyLibraryHtml`) passes false.
   */
  inlinePlotly?: boolean;
}

/** A value the notebook shows rich. */
export interface Displayable {
  [JUPYTER_DISPLAY](opts?: DisplayOptions): MimeBundle;
}

/** True when `x` has a callable `[Symbol.for("Jupyter.display")]` method. */
export function isDisplayable(x: unknown): x is Displayable {
  return x !== null && (typeof x === "object" || typeof x === "function") && typeof (x as Record<symbol, unknown>)[JUPYTER_DISPLAY] === "function";
}

/** Escapes text for HTML element content and attribute values. */
export function htmlEscape(text: unknown): string {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/** JSON that is safe inside a <script> element: no `<`, `>`, `&` or line separators appear literally. */
export function scriptSafeJson(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new Error("scriptSafeJson: value is not JSON-serialisable (got undefined)");
  return json
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

let plotlySource: string | undefined;

/** The plotly.js-dist-min bundle source, read from node_modules once and cached. */
export function plotlyJsSource(): string {
  if (plotlySource === undefined) {
    let file: string;
    try {
      file = require.resolve("plotly.js-dist-min/plotly.min.js");
    } catch {
      throw new Error("plotly.js-dist-min is not installed: run `npm install` in the tunelab package");
    }
    // Never let the library close the <script> element that will carry it, nor open an HTML comment.
    plotlySource = readFileSync(file, "utf8")
      .replace(/<\/(script)/gi, "<\\/$1")
      .replace(/<!--/g, "<\\!--");
  }
  return plotlySource;
}

/**
 * A <script> element that defines `window.Plotly` from an inline copy unless it is already defined.
 * `module`, `exports` and `define` are shadowed so that a page with RequireJS or CommonJS globals
 * (classic Jupyter) still gets a global Plotly.
 */
export function plotlyLibraryHtml(): string {
  return (
    '<script type="text/javascript">if (typeof window.Plotly === "undefined") {(function (module, exports, define) {\n' +
    plotlyJsSource() +
    "\n}).call(window);}</script>"
  );
}

/** CSS class of every plot <div> plotlyHtml writes; a kernel looks for it to know a bundle needs plotly.js. */
export const PLOT_CLASS = "tunelab-plot";

/** Options for `plotlyHtml`. */
export interface PlotlyHtmlOptions {
  /** Embed plotly.js for use when `window.Plotly` is absent (see DisplayOptions.inlinePlotly). */
  inlinePlotly: boolean;
  /** Element id of the plot <div>; a fresh random id by default (old outputs stay in the page). */
  divId?: string;
  /** CSS height of the plot; default "420px". */
  height?: string;
  /**
   * Put tunelab's static SVG of the figure (sdk/viz/svg.ts) inside the plot <div>, as an <img>, for pages that run
   * no JavaScript (GitHub, nbviewer, a notebook exported with scripts stripped); plotly.js replaces it when it draws.
   * Default true.
   */
  staticImage?: boolean;
}

/** CSS class of the static <img> inside a plot <div>. */
export const STATIC_CLASS = "tunelab-static";

/** The figure as a standalone SVG document, `height` pixels high (tunelab's renderer, see sdk/viz/svg.ts). */
export function figureStaticSvg(figure: PlotlyFigure, height = 420): string {
  return figureSvg(figure, { height });
}

/** An <img> showing the figure's static SVG (a data: URI), sized to fill the plot <div>. */
export function staticFigureHtml(figure: PlotlyFigure, height = 420): string {
  const svg = figureStaticSvg(figure, height);
  const alt = describeFigure(figure);
  return `<img class="${STATIC_CLASS}" alt="${htmlEscape(alt)}" src="data:image/svg+xml;base64,${Buffer.from(svg, "utf8").toString("base64")}" style="max-width:100%;max-height:100%;"/>`;
}

/** Standalone HTML for a figure: a <div> and a script that draws it with window.Plotly. */
export function plotlyHtml(figure: PlotlyFigure, opts: PlotlyHtmlOptions): string {
  const id = opts.divId ?? `tunelab-plot-${randomBytes(6).toString("hex")}`;
  if (!/^[A-Za-z][\w-]*$/.test(id)) throw new Error(`plotlyHtml: divId "${id}" must be letters, digits, '-' or '_'`);
  const height = opts.height ?? "420px";
  const config = { responsive: true, displaylogo: false, ...(figure.config ?? {}) };
  // Without the inline copy, plotly may still arrive later (a kernel's one-per-notebook script
  // earlier in the page that loads after us): poll for ~10 s, then say what is missing.
  const draw =
    `(function () {\n` +
    `  var fig = ${scriptSafeJson({ data: figure.data, layout: figure.layout, config })};\n` +
    `  var tries = 0;\n` +
    `  function draw() {\n` +
    `    var el = document.getElementById(${scriptSafeJson(id)});\n` +
    `    if (!el) return;\n` +
    `    if (window.Plotly) { el.textContent = ""; window.Plotly.newPlot(el, fig.data, fig.layout, fig.config); return; }\n` +
    `    if (++tries < 100) { setTimeout(draw, 100); return; }\n` +
    `    el.title = "plotly.js is not loaded in this page: a static image of this figure is shown.";\n` +
    `  }\n` +
    `  draw();\n` +
    `})();`;
  const px = /^(\d+(?:\.\d+)?)px$/.exec(height);
  const still = opts.staticImage === false ? "" : staticFigureHtml(figure, px ? Number(px[1]) : 420);
  return (
    `<div id="${id}" class="${PLOT_CLASS}" style="width:100%;height:${htmlEscape(height)};">${still}</div>\n` +
    (opts.inlinePlotly ? plotlyLibraryHtml() + "\n" : "") +
    `<script type="text/javascript">\n${draw}\n</script>`
  );
}

/** A one-line text/plain description of a figure: its title and traces. */
export function describeFigure(figure: PlotlyFigure): string {
  const title = figureTitle(figure);
  const traces = figure.data.map((t) => {
    const name = typeof t.name === "string" ? t.name : String(t.type ?? "trace");
    const n = Array.isArray(t.x) ? t.x.length : Array.isArray(t.z) ? t.z.length : Array.isArray(t.y) ? t.y.length : 0;
    return `${name} (${n} points)`;
  });
  return `<Plotly figure${title ? ` "${title}"` : ""}: ${traces.length ? traces.join(", ") : "no traces"}>`;
}

function figureTitle(figure: PlotlyFigure): string | undefined {
  const t = figure.layout.title;
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && typeof (t as { text?: unknown }).text === "string") return (t as { text: string }).text;
  return undefined;
}

/** The MIME bundle of a figure: Plotly JSON, standalone HTML (with a static image inside), a static SVG and a text description. */
export function plotlyBundle(figure: PlotlyFigure, opts: DisplayOptions = {}): MimeBundle {
  return {
    "text/plain": describeFigure(figure),
    "text/html": plotlyHtml(figure, { inlinePlotly: opts.inlinePlotly ?? true }),
    "image/svg+xml": figureStaticSvg(figure),
    "application/vnd.plotly.v1+json": figure,
  };
}

/** Wraps a figure so that a notebook shows it as a plot (the figure's own fields stay readable). */
export function displayFigure(figure: PlotlyFigure): PlotlyFigure & Displayable {
  return {
    ...figure,
    [JUPYTER_DISPLAY](opts?: DisplayOptions): MimeBundle {
      return plotlyBundle({ data: figure.data, layout: figure.layout, config: figure.config }, opts);
    },
  };
}
