/**
 * Products with a frozen matrix stored in 16 bits and computed in float32 (the vocabulary matrices of a quantised
 * base). The float32 matrix never exists whole: each chunk of rows is cast on its own, and each chunk is marked for
 * recomputation, so the backward pass casts it again instead of keeping the forward's copy.
 */
import { Value } from "./ir";
import { Builder } from "./ops";
import { runtimeTrue } from "./quant";

/** Weights cast to float32 at a time (16 MiB of float32); graphs built later use a new value. */
export const castChunk = { values: 1 << 22 };

/** x [..., k] @ Wᵀ for a float16 [n, k] initializer `w`, computed in x's dtype a chunk of W's rows at a time. */
export function halfStoredLinear(b: Builder, x: Value, w: Value): Value {
  const [n, k] = w.shape;
  if (w.rank !== 2 || w.dtype !== "float16" || typeof n !== "number" || typeof k !== "number")
    throw new Error(`halfStoredLinear: expected a float16 matrix, got ${w}`);
  const rows = Math.max(1, Math.floor(castChunk.values / k));
  const parts: Value[] = [];
  for (let r0 = 0; r0 < n; r0 += rows) {
    const r1 = Math.min(n, r0 + rows);
    const region = { from: b.graph.nodes.length, input: x };
    // Bounds that wait for x: a slice of a constant with constant bounds would be folded at session creation.
    const start = b.add(b.int64s([r0 - 1]), b.cast(runtimeTrue(b, x), "int64"));
    const [chunk] = b.op("Slice", [w, start, b.int64s([r1]), b.int64s([0])], [{ dtype: "float16", shape: [r1 - r0, k] }]);
    parts.push(b.linear(x, b.cast(chunk, x.dtype)));
    b.graph.recompute.push({ ...region, to: b.graph.nodes.length });
  }
  return parts.length === 1 ? parts[0] : b.concat(parts, x.rank - 1);
}
