/**
 * Merging one LoRA pair into its base weight, as PEFT's merge_and_unload: W += scaling * B @ A; for DoRA,
 * W' = m / ||W + scaling * B @ A|| * (W + scaling * B @ A), row by row (PEFT's DoraLinearVariant.merge_safe).
 */

/** Row `o` of scaling * B [out, r] @ A [r, in], in float64, written into `row`. */
function deltaRow(row: Float64Array, a: Float32Array, b: Float32Array, rank: number, inF: number, o: number, scaling: number): void {
  row.fill(0);
  for (let r = 0; r < rank; r++) {
    const coef = b[o * rank + r];
    if (coef === 0) continue;
    const base = r * inF;
    for (let i = 0; i < inF; i++) row[i] += coef * a[base + i];
  }
  for (let i = 0; i < inF; i++) row[i] *= scaling;
}

/** W [out, in] + scaling * B [out, r] @ A [r, in], accumulated in float64 per row and added in place. */
export function mergeLoraInto(w: Float32Array | Float64Array, a: Float32Array, b: Float32Array, rank: number, inF: number, outF: number, scaling: number): void {
  const row = new Float64Array(inF);
  for (let o = 0; o < outF; o++) {
    deltaRow(row, a, b, rank, inF, o, scaling);
    const base = o * inF;
    for (let i = 0; i < inF; i++) w[base + i] += row[i];
  }
}

/** DoRA's weight norm ||W + scaling * B @ A|| of every output row (the norm over in-features), in float64. */
export function doraRowNorms(
  w: Float32Array | Float64Array,
  a: Float32Array,
  b: Float32Array,
  rank: number,
  inF: number,
  outF: number,
  scaling: number,
): Float64Array {
  const row = new Float64Array(inF);
  const norms = new Float64Array(outF);
  for (let o = 0; o < outF; o++) {
    deltaRow(row, a, b, rank, inF, o, scaling);
    const base = o * inF;
    let sum = 0;
    for (let i = 0; i < inF; i++) {
      const v = w[base + i] + row[i];
      sum += v * v;
    }
    norms[o] = Math.sqrt(sum);
  }
  return norms;
}

/**
 * Merges a DoRA module in place: W' = (m / ||W + scaling * B @ A||) * (W + scaling * B @ A) per output row, with
 * `magnitude` m [out]; float64 arithmetic, one rounding to W's element type.
 */
export function mergeDoraInto(
  w: Float32Array | Float64Array,
  a: Float32Array,
  b: Float32Array,
  magnitude: Float32Array,
  rank: number,
  inF: number,
  outF: number,
  scaling: number,
): void {
  if (magnitude.length !== outF) throw new Error(`mergeDoraInto: magnitude has ${magnitude.length} values, expected outFeatures = ${outF}`);
  const row = new Float64Array(inF);
  for (let o = 0; o < outF; o++) {
    deltaRow(row, a, b, rank, inF, o, scaling);
    const base = o * inF;
    let sum = 0;
    for (let i = 0; i < inF; i++) {
      row[i] += w[base + i];
      sum += row[i] * row[i];
    }
    const factor = magnitude[o] / Math.sqrt(sum);
    for (let i = 0; i < inF; i++) w[base + i] = factor * row[i];
  }
}

