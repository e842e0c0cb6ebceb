/**
 * The in-graph adapter terms added to a linear layer's output: LoRA's dropout(x) A^T B^T * scaling, and DoRA's
 * term as PEFT computes it; dropout masks are hashed so they repeat exactly per seed.
 */
import { Value } from "../../graph/ir";
import { Builder } from "../../graph/ops";
import { loraNames, type LoraModule } from "./modules";

/** Per-step dropout randomness: an int64 seed input plus a per-module salt make every mask reproducible. */
export interface DropoutContext {
  p: number;
  seed: Value;
}

/** What LoRA adds to the decoder: the modules, their trainable tensors by name, and dropout. */
export interface LoraInGraph {
  modules: ReadonlyMap<string, LoraModule>;
  trainable: ReadonlyMap<string, Value>;
  dropout: DropoutContext | null;
}

/** A linear layer as its adapter sees it: input x, output y = x W^T + bias, the bias, and what DoRA needs of W [out, in]. */
export interface LinearParts {
  x: Value;
  y: Value;
  bias: Value | null;
  /** v W^T without the bias, v cast to the compute dtype (a dense Gemm, or a quantised base's kernel). */
  multiply: (v: Value) => Value;
  /** Σ W² of each row [out], in float32 (float64 in a float64 graph). */
  rowSquares: () => Value;
}

/** `layer`'s output with its module's LoRA or DoRA term added, as PEFT's lora.Linear.forward; `salt` picks its dropout mask. */
export function adaptedLinear(b: Builder, layer: LinearParts, m: LoraModule, lora: LoraInGraph, salt: number): Value {
  const n = loraNames(m.path);
  const tensor = (name: string): Value => {
    const t = lora.trainable.get(name);
    if (!t) throw new Error(`LoRA module ${m.path}: no tensor "${name}" among the graph's LoRA tensors`);
    return t;
  };
  if (!m.dora) return b.add(layer.y, loraDelta(b, layer.x, tensor(n.A), tensor(n.B), m, lora.dropout, salt));
  return b.add(layer.y, doraDelta(b, layer, tensor(n.A), tensor(n.B), tensor(n.magnitude), m, lora.dropout, salt));
}

/**
 * DoRA's term (PEFT's DoraLinearLayer.forward): with s = m / ||W + scaling * B @ A|| per output row, the norm
 * detached (DoRA paper section 4.3), it is (s - 1) * base + s * scaling * B(A(x')), where x' is dropout(x) and
 * base = x' W^T. Without dropout, base is the layer's own output less its bias, as PEFT reuses it; with dropout
 * PEFT recomputes it on the dropped-out input, and so does this. `norm` defaults to doraWeightNorm of the layer's
 * weight and this A and B.
 */
export function doraDelta(
  b: Builder,
  layer: LinearParts,
  a: Value,
  bMat: Value,
  magnitude: Value,
  m: LoraModule,
  dropout: DropoutContext | null,
  salt: number,
  norm: Value = doraWeightNorm(b, layer, a, bMat, m.scaling),
): Value {
  const { x } = layer;
  const scale = b.cast(b.div(b.cast(magnitude, norm.dtype), norm), x.dtype); // [out]
  const dropped = dropout !== null && dropout.p > 0;
  const xin = dropped ? b.dropout(x, hashKeepMask(b, x, dropout.seed, salt, dropout.p), dropout.p) : x;
  const base = dropped ? layer.multiply(xin) : layer.bias ? b.sub(layer.y, layer.bias) : layer.y;
  const loraOut = loraDelta(b, xin, a, bMat, m, null, salt);
  return b.add(b.mul(b.sub(scale, b.scalarLike(1, scale)), base), b.mul(scale, loraOut));
}

/**
 * ||W + scaling * B @ A|| of each output row (float32 [out]), detached from the gradient as PEFT does. Computed as
 * sqrt(||W||^2 + 2 scaling <W, B A> + scaling^2 ||B A||^2) from the rows' squares, A W^T [r, out] (the layer's own
 * product, so a quantised weight is never dequantised whole) and A A^T [r, r]; it never forms the [out, in] B @ A.
 */
export function doraWeightNorm(b: Builder, layer: Pick<LinearParts, "multiply" | "rowSquares">, a: Value, bMat: Value, scaling: number): Value {
  const squares = layer.rowSquares();
  const [af, bf] = [a, bMat].map((v) => b.cast(v, squares.dtype));
  const rowSum = (v: Value) => b.reduceSum(v, [1]);
  const aWt = b.cast(layer.multiply(a), squares.dtype); // [r, out]
  const cross = rowSum(b.mul(bf, b.transpose(aWt, [1, 0]))); // <W_o, (B A)_o> = sum_r B_or (A W^T)_ro
  const quad = rowSum(b.mul(b.matmul(bf, b.gemm(af, af, { transB: true })), bf)); // ||(B A)_o||^2 = B_o (A A^T) B_o^T
  const scaled = (v: Value, k: number) => b.mul(v, b.scalar(k, squares.dtype));
  return b.stopGradient(b.sqrt(b.add(squares, b.add(scaled(cross, 2 * scaling), scaled(quad, scaling * scaling)))));
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
