/** The in-graph LoRA term dropout(x) A^T B^T * scaling, with a hashed dropout mask that repeats exactly per seed. */
import { Value } from "../../graph/ir";
import { Builder } from "../../graph/ops";
import type { LoraModule } from "./modules";

/** Per-step dropout randomness: an int64 seed input plus a per-module salt make every mask reproducible. */
export interface DropoutContext {
  p: number;
  seed: Value;
}

/** The LoRA term dropout(x) A^T B^T * scaling for one module. */
export function loraDelta(b: Builder, x: Value, a: Value, bMat: Value, m: LoraModule, dropout: DropoutContext | null, salt: number): Value {
  const xin = dropout && dropout.p > 0 ? b.dropout(x, hashKeepMask(b, x, dropout.seed, salt, dropout.p), dropout.p) : x;
  // Trainable tensors are float32 master copies; in a float16 graph they are cast where they are used.
  if (x.rank === 2) {
    // Decoder activations are [tokens, features]: two Gemms on A [r, in] and B [out, r] as stored, no transposes.
    const down = b.gemm(xin, b.cast(a, x.dtype), { transB: true });
    // Scale the small [out, r] matrix rather than the [tokens, out] product: same numbers, far fewer multiplies.
    return b.gemm(down, b.cast(b.mul(bMat, b.scalarLike(m.scaling, bMat)), x.dtype), { transB: true });
  }
  const down = b.matmul(xin, b.cast(b.transpose(a, [1, 0]), x.dtype));
  return b.matmul(down, b.cast(b.mul(b.transpose(bMat, [1, 0]), b.scalarLike(m.scaling, bMat)), x.dtype));
}

/**
 * A keep-mask with P(keep) = 1 - p from an integer hash of (element index, seed, salt): the same seed gives the
 * same mask on every run and provider, so seeded runs repeat exactly and resumed runs continue exactly.
 */
export function hashKeepMask(b: Builder, like: Value, seed: Value, salt: number, p: number): Value {
  const i64 = (v: number) => b.scalar(v, "int64");
  const mod = (x: Value, m: number) => b.op("Mod", [x, i64(m)], [{ dtype: "int64", shape: x.shape }])[0];
  const xor = (x: Value, y: Value) => b.op("BitwiseXor", [x, y], [{ dtype: "int64", shape: x.shape }])[0];
  const shape = b.shapeOf(like);
  const [numel] = b.op("ReduceProd", [shape], [{ dtype: "int64", shape: [] }], { keepdims: { kind: "int", value: 0 } });
  const index = b.range(i64(0), numel, i64(1), "numel");
  let h = mod(b.add(b.mul(index, i64(2654435761)), b.add(b.mul(seed, i64(97)), i64((salt * 1013904223) % 2 ** 31))), 2 ** 32);
  for (let round = 0; round < 3; round++) {
    h = mod(b.add(b.mul(h, i64(1103515245)), i64(12345 + round)), 2 ** 31);
    h = xor(h, b.div(h, i64(65536)));
  }
  const u = b.div(b.cast(mod(h, 2 ** 24), "float32"), b.scalar(2 ** 24));
  const keep = b.compare("GreaterOrEqual", u, b.scalar(p));
  return b.reshapeTo(keep, shape, like.shape);
}
