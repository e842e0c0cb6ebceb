/**
 * tunelab's own static renderer: a Plotly figure of the kinds tunelab draws (scatter lines and markers, bars,
 * heatmaps with cell text; a second y axis, a log y axis, vertical line shapes and their annotations) as a
 * standalone SVG document. Pure string building with every text escaped, so GitHub, nbviewer and any viewer that
 * runs no JavaScript still show the figure. Traces of other kinds are left out and listed in the figure's footer.
 */
import { categoryScale, extent, numericScale, padded, type Scale } from "./svg-axis";

/** The figure shape the renderer reads (a PlotlyFigure). */
export interface SvgFigure {
  data: Array<Record<string, unknown>>;
  layout: Record<string, unknown>;
}

/** Options of figureSvg(). */
export interface SvgOptions {
  /** Pixel width; default layout.width, else 700. */
  width?: number;
  /** Pixel height; default layout.height, else 420. */
  height?: number;
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

/** Escapes text for XML element content and attribute values. */
export function xmlEscape(text: unknown): string {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** A number as SVG writes it: at most two decimals. */
function n(x: number): string {
  return String(Math.round(x * 100) / 100);
}

function textOf(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as { text?: unknown }).text === "string") return (value as { text: string }).text;
  return undefined;
}

function obj(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The figure as a standalone SVG document (UTF-8 text, starting with `<svg`). */
export function figureSvg(figure: SvgFigure, opts: SvgOptions = {}): string {
  const layout = figure.layout;
  const W = Math.round(opts.width ?? (typeof layout.width === "number" ? layout.width : 700));
  const H = Math.round(opts.height ?? (typeof layout.height === "number" ? layout.height : 420));
  const title = textOf(layout.title);
  const xaxis = obj(layout.xaxis);
  const yaxis = obj(layout.yaxis);
  const y2axis = obj(layout.yaxis2);
  const traces = figure.data;
  const kinds = new Set(["scatter", "bar", "heatmap"]);
  const drawn = traces.filter((t) => kinds.has(String(t.type ?? "scatter")));
  const skipped = traces.filter((t) => !kinds.has(String(t.type ?? "scatter"))).map((t) => String(t.type));
  const onY2 = (t: Record<string, unknown>) => t.yaxis === "y2";
  const hasY2 = drawn.some(onY2);
  const heatmap = drawn.find((t) => t.type === "heatmap");
  const legendItems = heatmap ? [] : drawn.filter((t) => typeof t.name === "string" && layout.showlegend !== false && drawn.length > 1);

  const box = { l: 64, r: hasY2 ? 70 : heatmap ? 80 : 24, t: title ? 40 : 16, b: 48 + (legendItems.length ? 24 : 0) + (skipped.length ? 16 : 0) };
  const x0 = box.l;
  const x1 = W - box.r;
  const yTop = box.t;
  const yBottom = H - box.b;
  const out: string[] = [];

  // Axes.
  const isCategoryX = xaxis.type === "category" || drawn.some((t) => arr(t.x).some((v) => typeof v === "string"));
  const isCategoryY = yaxis.type === "category" || (heatmap !== undefined && arr(heatmap.y).some((v) => typeof v === "string"));
  let xs: Scale;
  if (isCategoryX) {
    const names = [...new Set(drawn.flatMap((t) => arr(t.x).map(String)))];
    xs = categoryScale(names, x0, x1);
  } else {
    const given = arr(xaxis.range);
    let range = given.length === 2 && typeof given[0] === "number" && typeof given[1] === "number" ? ([given[0], given[1]] as [number, number]) : null;
    if (!range) {
      const points: number[] = [];
      for (const t of drawn) {
        const widths = arr(t.width);
        arr(t.x).forEach((v, i) => {
          if (typeof v !== "number") return;
          const w = t.type === "bar" ? (typeof widths[i] === "number" ? (widths[i] as number) : 0.8) / 2 : 0;
          points.push(v - w, v + w);
        });
      }
      range = extent(points) ?? [0, 1];
      if (range[0] === range[1]) range = padded(range);
    }
    xs = numericScale(range, x0, x1);
  }
  const yScaleFor = (axis: Record<string, unknown>, ts: Array<Record<string, unknown>>): Scale => {
    const log = axis.type === "log";
    const values = ts.flatMap((t) => arr(t.y)).filter((v) => typeof v === "number" && (!log || v > 0)) as number[];
    if (ts.some((t) => t.type === "bar")) values.push(0);
    let range = extent(values) ?? [0, 1];
    range = log ? [range[0] / 1.2, range[1] * 1.2] : padded(range);
    return numericScale(range, yBottom, yTop, log);
  };
  let ys: Scale;
  if (isCategoryY && heatmap) {
    const names = arr(heatmap.y).map(String);
    ys = yaxis.autorange === "reversed" ? categoryScale(names, yTop, yBottom) : categoryScale(names, yBottom, yTop);
  } else {
    ys = yScaleFor(
      yaxis,
      drawn.filter((t) => !onY2(t)),
    );
  }
  const ys2 = hasY2 ? yScaleFor(y2axis, drawn.filter(onY2)) : null;

  // Grid and tick labels.
  for (const t of ys.ticks) {
    if (!heatmap) out.push(`<line x1="${n(x0)}" x2="${n(x1)}" y1="${n(t.at)}" y2="${n(t.at)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${n(x0 - 6)}" y="${n(t.at + 4)}" text-anchor="end" font-size="11" fill="#444">${xmlEscape(t.label)}</text>`);
  }
  for (const t of xs.ticks) {
    out.push(`<text x="${n(t.at)}" y="${n(yBottom + 16)}" text-anchor="middle" font-size="11" fill="#444">${xmlEscape(t.label)}</text>`);
  }
  if (ys2) {
    for (const t of ys2.ticks) out.push(`<text x="${n(x1 + 6)}" y="${n(t.at + 4)}" font-size="11" fill="#444">${xmlEscape(t.label)}</text>`);
  }
  out.push(`<rect x="${n(x0)}" y="${n(yTop)}" width="${n(x1 - x0)}" height="${n(yBottom - yTop)}" fill="none" stroke="#bbb"/>`);

  // Traces.
  let colorIndex = 0;
  const colors = new Map<Record<string, unknown>, string>();
  for (const t of drawn) {
    const color = (obj(t.line).color as string | undefined) ?? (obj(t.marker).color as string | undefined) ?? PALETTE[colorIndex % PALETTE.length];
    colorIndex++;
    const safeColor = typeof color === "string" && /^#[0-9a-f]{3,8}$|^[a-z]+$/i.test(color) ? color : PALETTE[0];
    colors.set(t, safeColor);
    if (t.type === "heatmap") out.push(...heatmapCells(t, xs, ys));
    else if (t.type === "bar") out.push(...bars(t, xs, ys, safeColor, yBottom));
    else out.push(...lines(t, xs, onY2(t) && ys2 ? ys2 : ys, safeColor));
  }

  // Vertical line shapes (e.g. a cutoff) and their annotations.
  for (const s of arr(layout.shapes).map(obj)) {
    if (s.type !== "line" || s.x0 !== s.x1 || s.yref !== "paper") continue;
    const x = xs.map(s.x0);
    if (x === null) continue;
    const c = obj(s.line).color;
    out.push(
      `<line x1="${n(x)}" x2="${n(x)}" y1="${n(yTop)}" y2="${n(yBottom)}" stroke="${typeof c === "string" && /^#[0-9a-f]{3,8}$/i.test(c) ? c : "#d62728"}" stroke-dasharray="5,4"/>`,
    );
  }
  for (const a of arr(layout.annotations).map(obj)) {
    const x = xs.map(a.x);
    if (x === null || typeof a.text !== "string") continue;
    out.push(`<text x="${n(x + 4)}" y="${n(yTop + 12)}" font-size="11" fill="#333">${xmlEscape(a.text)}</text>`);
  }

  // Titles, legend, footer.
  if (title) out.push(`<text x="${n(x0)}" y="24" font-size="15" fill="#222">${xmlEscape(title)}</text>`);
  const xTitle = textOf(xaxis.title);
  const yTitle = textOf(yaxis.title);
  const y2Title = textOf(y2axis.title);
  if (xTitle) out.push(`<text x="${n((x0 + x1) / 2)}" y="${n(yBottom + 34)}" text-anchor="middle" font-size="12" fill="#333">${xmlEscape(xTitle)}</text>`);
  if (yTitle)
    out.push(
      `<text transform="translate(14 ${n((yTop + yBottom) / 2)}) rotate(-90)" text-anchor="middle" font-size="12" fill="#333">${xmlEscape(yTitle)}</text>`,
    );
  if (y2Title && ys2)
    out.push(
      `<text transform="translate(${n(W - 10)} ${n((yTop + yBottom) / 2)}) rotate(90)" text-anchor="middle" font-size="12" fill="#333">${xmlEscape(y2Title)}</text>`,
    );
  let lx = x0;
  const ly = yBottom + 52;
  for (const t of legendItems) {
    const label = String(t.name);
    out.push(`<rect x="${n(lx)}" y="${n(ly - 9)}" width="14" height="4" fill="${colors.get(t)}"/>`);
    out.push(`<text x="${n(lx + 18)}" y="${n(ly - 3)}" font-size="11" fill="#333">${xmlEscape(label)}</text>`);
    lx += 30 + label.length * 6.5;
  }
  if (skipped.length) out.push(`<text x="${n(x0)}" y="${n(H - 6)}" font-size="10" fill="#888">not drawn here: ${xmlEscape(skipped.join(", "))} traces</text>`);

  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" ${FONT}>` +
    `<title>${xmlEscape(title ?? "figure")}</title>` +
    `<rect width="${W}" height="${H}" fill="#ffffff"/>` +
    out.join("") +
    `</svg>`
  );
}

function lines(t: Record<string, unknown>, xs: Scale, ys: Scale, color: string): string[] {
  const mode = typeof t.mode === "string" ? t.mode : "lines";
  const xv = arr(t.x);
  const yv = arr(t.y);
  const line = obj(t.line);
  const dash = line.dash === "dot" ? ' stroke-dasharray="2,3"' : line.dash === "dash" ? ' stroke-dasharray="6,4"' : "";
  const width = typeof line.width === "number" ? line.width : 2;
  const out: string[] = [];
  const points: Array<[number, number] | null> = xv.map((x, i) => {
    const px = xs.map(x);
    const py = ys.map(yv[i]);
    return px === null || py === null ? null : [px, py];
  });
  if (mode.includes("lines")) {
    // A missing point (null, NaN) breaks the line, as in Plotly.
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) out.push(`<polyline points="${run.join(" ")}" fill="none" stroke="${color}" stroke-width="${n(width)}"${dash}/>`);
      run = [];
    };
    for (const p of points) {
      if (p) run.push(`${n(p[0])},${n(p[1])}`);
      else flush();
    }
    flush();
  }
  if (mode.includes("markers")) for (const p of points) if (p) out.push(`<circle cx="${n(p[0])}" cy="${n(p[1])}" r="3" fill="${color}"/>`);
  return out;
}

function bars(t: Record<string, unknown>, xs: Scale, ys: Scale, color: string, yBottom: number): string[] {
  const xv = arr(t.x);
  const yv = arr(t.y);
  const widths = arr(t.width);
  const base = ys.map(0) ?? yBottom;
  const out: string[] = [];
  xv.forEach((x, i) => {
    const cx = xs.map(x);
    const top = ys.map(yv[i]);
    if (cx === null || top === null) return;
    let w: number;
    if (xs.kind === "category") w = xs.band * 0.8;
    else {
      const dw = typeof widths[i] === "number" ? (widths[i] as number) : 0.8;
      w = Math.abs((xs.map((x as number) + dw / 2) ?? cx) - (xs.map((x as number) - dw / 2) ?? cx));
    }
    out.push(
      `<rect x="${n(cx - w / 2)}" y="${n(Math.min(top, base))}" width="${n(Math.max(w, 0.5))}" height="${n(Math.abs(base - top))}" fill="${color}" stroke="#ffffff" stroke-width="0.5"/>`,
    );
    if (t.textposition === "auto" && Array.isArray(t.text) && w > 14) {
      out.push(`<text x="${n(cx)}" y="${n(Math.min(top, base) - 4)}" text-anchor="middle" font-size="11" fill="#333">${xmlEscape(t.text[i])}</text>`);
    }
  });
  return out;
}

function heatmapCells(t: Record<string, unknown>, xs: Scale, ys: Scale): string[] {
  const z = arr(t.z).map(arr);
  const xv = arr(t.x);
  const yv = arr(t.y);
  const text = arr(t.text).map(arr);
  const zr = extent(z.flat()) ?? [0, 1];
  const scale = colorscale(t.colorscale);
  const out: string[] = [];
  z.forEach((row, i) => {
    row.forEach((v, j) => {
      const cx = xs.map(xv[j] ?? j);
      const cy = ys.map(yv[i] ?? i);
      if (cx === null || cy === null || typeof v !== "number") return;
      const f = zr[1] > zr[0] ? (v - zr[0]) / (zr[1] - zr[0]) : 0;
      out.push(`<rect x="${n(cx - xs.band / 2)}" y="${n(cy - ys.band / 2)}" width="${n(xs.band)}" height="${n(ys.band)}" fill="${scale(f)}"/>`);
      const label = text[i]?.[j];
      if (label !== undefined) {
        out.push(
          `<text x="${n(cx)}" y="${n(cy + 4)}" text-anchor="middle" font-size="12" fill="${f > 0.5 ? "#ffffff" : "#222222"}">${xmlEscape(label)}</text>`,
        );
      }
    });
  });
  return out;
}

/** A Plotly colorscale ([[0, "#rrggbb"], ..., [1, "#rrggbb"]]) as a function of 0..1; grey-to-blue when absent. */
function colorscale(value: unknown): (f: number) => string {
  const stops = arr(value)
    .map(arr)
    .filter((s) => typeof s[0] === "number" && typeof s[1] === "string" && /^#[0-9a-f]{6}$/i.test(s[1] as string))
    .map((s) => [s[0] as number, hexRgb(s[1] as string)] as const);
  const use =
    stops.length >= 2
      ? stops
      : ([
          [0, hexRgb("#f7fbff")],
          [1, hexRgb("#08306b")],
        ] as const);
  return (f) => {
    const x = Math.min(1, Math.max(0, f));
    let k = 0;
    while (k < use.length - 2 && x > use[k + 1][0]) k++;
    const [a, ca] = use[k];
    const [b, cb] = use[k + 1];
    const u = b > a ? (x - a) / (b - a) : 0;
    return (
      "#" +
      ca
        .map((c, i) =>
          Math.round(c + (cb[i] - c) * u)
            .toString(16)
            .padStart(2, "0"),
        )
        .join("")
    );
  };
}

function hexRgb(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}
