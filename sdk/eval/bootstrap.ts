/**
 * Bootstrap statistics over evaluation samples: a percentile confidence interval of a metric (Efron), and the paired
 * bootstrap test of two systems on the same samples (Koehn 2004). Seeded, so a report is reproducible.
 */
import { Rng } from "../util/random";

/** Options of the bootstrap. */
export interface BootstrapOptions {
  /** Number of resamples (default 1000). */
  resamples?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
  /** Confidence level (default 0.95). */
  level?: number;
}

/** A confidence interval. */
export interface Interval {
  low: number;
  high: number;
  level: number;
}

function settings(opts: BootstrapOptions): Required<BootstrapOptions> {
  const s = { resamples: opts.resamples ?? 1000, seed: opts.seed ?? 0, level: opts.level ?? 0.95 };
  if (!Number.isInteger(s.resamples) || s.resamples < 1) throw new Error(`bootstrap: resamples must be a positive integer, got ${s.resamples}`);
  if (!(s.level > 0 && s.level < 1)) throw new Error(`bootstrap: level must be in (0, 1), got ${s.level}`);
  return s;
}

/** Index lists of `resamples` bootstrap resamples of n items (with replacement), from the seed. */
export function resampleIndices(n: number, opts: BootstrapOptions = {}): Int32Array[] {
  const s = settings(opts);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bootstrap: need at least one sample, got ${n}`);
  const rng = new Rng(s.seed);
  return Array.from({ length: s.resamples }, () => Int32Array.from({ length: n }, () => Math.floor(rng.next() * n)));
}

/** The q-quantile of sorted values with linear interpolation (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Percentile interval of a statistic over resamples of n samples: `stat(indices)` computes it on one resample. */
export function bootstrapInterval(n: number, stat: (indices: Int32Array) => number, opts: BootstrapOptions = {}): Interval {
  const s = settings(opts);
  const values = resampleIndices(n, s)
    .map(stat)
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b);
  const tail = (1 - s.level) / 2;
  return { low: quantile(values, tail), high: quantile(values, 1 - tail), level: s.level };
}

/** Result of the paired bootstrap test of b against a. */
export interface PairedTest {
  /** b - a on the full samples. */
  delta: number;
  /** Percentile interval of the delta. */
  interval: Interval;
  /** Two-sided p-value: 2 × the share of resamples whose delta falls on the other side of 0 (ties count half), at most 1. */
  pValue: number;
}

/** Paired bootstrap of `b - a`: both statistics are computed on the same resampled indices. */
export function pairedBootstrap(n: number, a: (indices: Int32Array) => number, b: (indices: Int32Array) => number, opts: BootstrapOptions = {}): PairedTest {
  const s = settings(opts);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const delta = b(all) - a(all);
  const deltas = resampleIndices(n, s).map((idx) => b(idx) - a(idx));
  let below = 0;
  let above = 0;
  for (const d of deltas) {
    if (d < 0) below++;
    else if (d > 0) above++;
    else {
      below += 0.5;
      above += 0.5;
    }
  }
  const other = delta >= 0 ? below : above;
  const sorted = deltas.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  const tail = (1 - s.level) / 2;
  return {
    delta,
    interval: { low: quantile(sorted, tail), high: quantile(sorted, 1 - tail), level: s.level },
    pValue: Math.min(1, (2 * other) / deltas.length),
  };
}
