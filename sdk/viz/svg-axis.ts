/** Axes for the static SVG renderer: nice tick values, tick labels, and value-to-pixel scales (linear, log, category). */

/** Maps a data value to a pixel coordinate; `ticks` are the values to label. */
export interface Scale {
  kind: "linear" | "log" | "category";
  map(value: unknown): number | null;
  ticks: Array<{ at: number; label: string }>;
  /** Band width in pixels for a category axis (0 otherwise). */
  band: number;
}

/** About `count` round tick values (1, 2, 5 times a power of ten) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  // The round step whose tick count comes closest to `count`.
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).reduce((best, s) => (Math.abs((hi - lo) / s - count) < Math.abs((hi - lo) / best - count) ? s : best));
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return out;
}

/** A short tick label: plain for ordinary magnitudes, exponent form (2e-3) for very small or large ones. */
export function tickLabel(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e6) {
    const [m, e] = v.toExponential(2).split("e");
    return `${Number(m)}e${Number(e)}`;
  }
  return String(Number(v.toPrecision(4)));
}

/** A numeric axis from `range` (data units) onto pixels [p0, p1]; log when `log` (range in data units, > 0). */
export function numericScale(range: [number, number], p0: number, p1: number, log = false): Scale {
  const [lo, hi] = range;
  if (log) {
    const l0 = Math.log10(lo);
    const l1 = Math.log10(hi);
    const span = l1 - l0 || 1;
    const map = (v: unknown) => (typeof v === "number" && v > 0 && Number.isFinite(v) ? p0 + ((Math.log10(v) - l0) / span) * (p1 - p0) : null);
    const decades = niceTicks(Math.ceil(l0), Math.floor(l1), 5).filter((d) => Number.isInteger(d));
    const ticks = (decades.length >= 2 ? decades.map((d) => 10 ** d) : niceTicks(lo, hi, 4).filter((v) => v > 0)).map((v) => ({
      at: map(v)!,
      label: tickLabel(v),
    }));
    return { kind: "log", map, ticks, band: 0 };
  }
  const span = hi - lo || 1;
  const map = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? p0 + ((v - lo) / span) * (p1 - p0) : null);
  return { kind: "linear", map, ticks: niceTicks(lo, hi).map((v) => ({ at: map(v)!, label: tickLabel(v) })), band: 0 };
}

/** A category axis: `names` in order, each a band of equal width from p0 to p1 (p1 < p0 runs the other way). */
export function categoryScale(names: readonly string[], p0: number, p1: number): Scale {
  const band = (p1 - p0) / Math.max(1, names.length);
  const index = new Map(names.map((n, i) => [n, i]));
  const map = (v: unknown) => {
    const i = index.get(String(v));
    return i === undefined ? null : p0 + (i + 0.5) * band;
  };
  return { kind: "category", map, ticks: names.map((n) => ({ at: map(n)!, label: n })), band: Math.abs(band) };
}

/** [min, max] of the finite numbers in `values`, or null when there are none. */
export function extent(values: Iterable<unknown>): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (typeof v !== "number" || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

/** `range` widened by `share` of its span on each side (a flat range by ±0.5, or ±10% of its value). */
export function padded([lo, hi]: [number, number], share = 0.05): [number, number] {
  if (hi === lo) {
    const d = lo === 0 ? 0.5 : Math.abs(lo) * 0.1;
    return [lo - d, hi + d];
  }
  const d = (hi - lo) * share;
  return [lo - d, hi + d];
}
