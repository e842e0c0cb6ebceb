/** Merging one LoRA pair into its base weight, as PEFT's merge_and_unload: W += scaling * B @ A. */

/** W [out, in] + scaling * B [out, r] @ A [r, in], accumulated in float64 per row and added in place. */
export function mergeLoraInto(w: Float32Array | Float64Array, a: Float32Array, b: Float32Array, rank: number, inF: number, outF: number, scaling: number): void {
  const row = new Float64Array(inF);
  for (let o = 0; o < outF; o++) {
    row.fill(0);
    for (let r = 0; r < rank; r++) {
      const coef = b[o * rank + r];
      if (coef === 0) continue;
      const base = r * inF;
      for (let i = 0; i < inF; i++) row[i] += coef * a[base + i];
    }
    const base = o * inF;
    for (let i = 0; i < inF; i++) w[base + i] += scaling * row[i];
  }
}
