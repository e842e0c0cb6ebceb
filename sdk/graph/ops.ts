/**
 * Typed op builders with shape inference. Every method appends standard ONNX (opset 18) nodes to the graph;
 * composite ops (silu, rmsNorm, layerNorm, ...) are written as primitives so autodiff needs no rule for them.
 */
import { DType, Dim, Graph, int, ints, Shape, str, TensorArray, Value } from "./ir";
import { broadcastShapes, normAxis, reshapeShape } from "./shape";
import { float32ToF16Bits } from "../util/float16";

type Elementwise = "Add" | "Sub" | "Mul" | "Div" | "Pow";
type Compare = "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual";
type Unary = "Neg" | "Exp" | "Log" | "Sqrt" | "Reciprocal" | "Tanh" | "Sigmoid" | "Relu" | "Abs" | "Erf" | "Sin" | "Cos" | "Sign" | "Identity";

/** Emits ops into a Graph. One Builder per graph; gradient rules use the same builder. */
export class Builder {
  private readonly constCache = new Map<string, Value>();

  constructor(readonly graph: Graph = new Graph()) {}

  // ---- constants --------------------------------------------------------------------------------------

  /** A constant tensor from numbers (converted to `dtype`). */
  constant(values: readonly number[] | TensorArray, shape: readonly number[], dtype: DType = "float32", name = "const"): Value {
    return this.graph.initializer(name, { dtype, shape, data: toArray(values, dtype) });
  }

  /** A cached scalar constant (rank 0). */
  scalar(value: number, dtype: DType = "float32"): Value {
    return this.cached(`s:${dtype}:${value}`, () => this.constant([value], [], dtype, "scalar"));
  }

  /** A cached 1-D int64 constant, the form ONNX wants for axes, shapes and slice bounds. */
  int64s(values: readonly number[]): Value {
    return this.cached(`i:${values.join(",")}`, () => this.constant(values, [values.length], "int64", "ints"));
  }

  private cached(key: string, make: () => Value): Value {
    let v = this.constCache.get(key);
    if (!v) {
      v = make();
      this.constCache.set(key, v);
    }
    return v;
  }

  /** A scalar of the same dtype as `like`. */
  scalarLike(value: number, like: Value): Value {
    return this.scalar(value, like.dtype);
  }

  // ---- element-wise -----------------------------------------------------------------------------------

  private binary(op: Elementwise, a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new Error(`${op}: dtypes differ (${a} vs ${b})`);
    return this.graph.addNode(op, [a, b], [{ dtype: a.dtype, shape: broadcastShapes(a.shape, b.shape, op) }])[0];
  }

  add(a: Value, b: Value): Value {
    return this.binary("Add", a, b);
  }
  sub(a: Value, b: Value): Value {
    return this.binary("Sub", a, b);
  }
  mul(a: Value, b: Value): Value {
    return this.binary("Mul", a, b);
  }
  div(a: Value, b: Value): Value {
    return this.binary("Div", a, b);
  }
  pow(a: Value, b: Value): Value {
    return this.binary("Pow", a, b);
  }

  /** Comparison with broadcasting; the result is bool. */
  compare(op: Compare, a: Value, b: Value): Value {
    return this.graph.addNode(op, [a, b], [{ dtype: "bool", shape: broadcastShapes(a.shape, b.shape, op) }])[0];
  }

  /** `cond ? a : b` with broadcasting. */
  where(cond: Value, a: Value, b: Value): Value {
    const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, "Where"), b.shape, "Where");
    return this.graph.addNode("Where", [cond, a, b], [{ dtype: a.dtype, shape }])[0];
  }

  private unary(op: Unary, x: Value): Value {
    return this.graph.addNode(op, [x], [{ dtype: x.dtype, shape: x.shape }])[0];
  }

  neg(x: Value): Value {
    return this.unary("Neg", x);
  }
  exp(x: Value): Value {
    return this.unary("Exp", x);
  }
  log(x: Value): Value {
    return this.unary("Log", x);
  }
  sqrt(x: Value): Value {
    return this.unary("Sqrt", x);
  }
  reciprocal(x: Value): Value {
    return this.unary("Reciprocal", x);
  }
  tanh(x: Value): Value {
    return this.unary("Tanh", x);
  }
  sigmoid(x: Value): Value {
    return this.unary("Sigmoid", x);
  }
  relu(x: Value): Value {
    return this.unary("Relu", x);
  }
  abs(x: Value): Value {
    return this.unary("Abs", x);
  }
  /** Error function (computed in float32 for float64 inputs: the CPU provider has no float64 Erf kernel). */
  erf(x: Value): Value {
    if (x.dtype === "float64") return this.cast(this.unary("Erf", this.cast(x, "float32")), "float64");
    return this.unary("Erf", x);
  }
  sin(x: Value): Value {
    return this.unary("Sin", x);
  }
  cos(x: Value): Value {
    return this.unary("Cos", x);
  }
  sign(x: Value): Value {
    return this.unary("Sign", x);
  }
  identity(x: Value): Value {
    return this.unary("Identity", x);
  }
  /** `x` unchanged, but a constant to autodiff: no gradient flows back through it (PyTorch's `detach`). */
  stopGradient(x: Value): Value {
    const y = this.unary("Identity", x);
    this.graph.detached.add(y);
    return y;
  }

  /** Element type conversion. */
  cast(x: Value, to: DType): Value {
    if (x.dtype === to) return x;
    return this.graph.addNode("Cast", [x], [{ dtype: to, shape: x.shape }], { to: int(onnxTypeCode(to)) })[0];
  }

  /** Logical not of a bool tensor. */
  not(x: Value): Value {
    return this.graph.addNode("Not", [x], [{ dtype: "bool", shape: x.shape }])[0];
  }

  // ---- composites written as primitives -----------------------------------------------------------------

  /** x * sigmoid(x) (SiLU / swish), as in Llama's MLP. */
  silu(x: Value): Value {
    return this.mul(x, this.sigmoid(x));
  }

  /** GELU; `approximate: "tanh"` is the GPT-2 form, otherwise the exact erf form. */
  gelu(x: Value, approximate: "none" | "tanh" = "none"): Value {
    const half = this.mul(x, this.scalarLike(0.5, x));
    if (approximate === "tanh") {
      const cube = this.mul(this.mul(x, x), x);
      const inner = this.mul(this.add(x, this.mul(cube, this.scalarLike(0.044715, x))), this.scalarLike(Math.sqrt(2 / Math.PI), x));
      return this.mul(half, this.add(this.scalarLike(1, x), this.tanh(inner)));
    }
    return this.mul(half, this.add(this.scalarLike(1, x), this.erf(this.mul(x, this.scalarLike(Math.SQRT1_2, x)))));
  }

  /** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight (Llama, Qwen2). */
  rmsNorm(x: Value, weight: Value | null, eps: number): Value {
    if (x.dtype === "float16") {
      // As transformers does: normalise in float32 (squares overflow float16), scale in the input's dtype.
      const normed = this.cast(this.rmsNorm(this.cast(x, "float32"), null, eps), "float16");
      return weight ? this.mul(normed, weight) : normed;
    }
    const meanSq = this.reduceMean(this.mul(x, x), [-1], true);
    const inv = this.reciprocal(this.sqrt(this.add(meanSq, this.scalarLike(eps, x))));
    const normed = this.mul(x, inv);
    return weight ? this.mul(normed, weight) : normed;
  }

  /** LayerNorm over the last axis with optional affine weight and bias. */
  layerNorm(x: Value, weight: Value | null, bias: Value | null, eps: number): Value {
    const centered = this.sub(x, this.reduceMean(x, [-1], true));
    const variance = this.reduceMean(this.mul(centered, centered), [-1], true);
    let y = this.div(centered, this.sqrt(this.add(variance, this.scalarLike(eps, x))));
    if (weight) y = this.mul(y, weight);
    if (bias) y = this.add(y, bias);
    return y;
  }

  /** Dropout with a given keep-mask (1 = keep): x * mask / (1 - p). The mask's source is the caller's choice. */
  dropout(x: Value, keepMask: Value, p: number): Value {
    if (p <= 0) return x;
    return this.mul(x, this.mul(this.cast(keepMask, x.dtype), this.scalarLike(1 / (1 - p), x)));
  }

  // ---- reductions ------------------------------------------------------------------------------------------

  private reduce(op: "ReduceSum" | "ReduceSumSquare" | "ReduceMean" | "ReduceMax", x: Value, axes: readonly number[], keepdims: boolean): Value {
    const norm = axes.map((a) => normAxis(a, x.rank, op));
    const shape: Dim[] = [];
    x.shape.forEach((d, i) => {
      if (!norm.includes(i)) shape.push(d);
      else if (keepdims) shape.push(1);
    });
    return this.graph.addNode(op, [x, this.int64s(norm)], [{ dtype: x.dtype, shape }], { keepdims: int(keepdims ? 1 : 0) })[0];
  }

  reduceSum(x: Value, axes: readonly number[], keepdims = false): Value {
    return this.reduce("ReduceSum", x, axes, keepdims);
  }
  /** Σ x² over `axes` (no gradient rule: for detached values such as DoRA's weight norm). */
  reduceSumSquare(x: Value, axes: readonly number[], keepdims = false): Value {
    return this.reduce("ReduceSumSquare", x, axes, keepdims);
  }
  reduceMean(x: Value, axes: readonly number[], keepdims = false): Value {
    return this.reduce("ReduceMean", x, axes, keepdims);
  }
  reduceMax(x: Value, axes: readonly number[], keepdims = false): Value {
    return this.reduce("ReduceMax", x, axes, keepdims);
  }

  /** Sum of every element, as a scalar. */
  sumAll(x: Value): Value {
    return this.reduceSum(
      x,
      x.shape.map((_, i) => i),
      false,
    );
  }

  // ---- linear algebra -------------------------------------------------------------------------------------

  /** Batched matrix product with numpy broadcasting of the leading axes (both inputs rank >= 2). */
  matmul(a: Value, b: Value): Value {
    if (a.rank < 2 || b.rank < 2) throw new Error(`MatMul: inputs must have rank >= 2 (${a} , ${b})`);
    const k1 = a.shape[a.rank - 1];
    const k2 = b.shape[b.rank - 2];
    if (k1 !== k2 && typeof k1 === "number" && typeof k2 === "number") {
      throw new Error(`MatMul: inner dims differ (${a} , ${b})`);
    }
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), "MatMul");
    const shape = [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]];
    return this.graph.addNode("MatMul", [a, b], [{ dtype: a.dtype, shape }])[0];
  }

  /** ONNX Gemm on matrices: op(a) @ op(b), where op transposes when asked (no transposed copy is made). */
  gemm(a: Value, b: Value, opts: { transA?: boolean; transB?: boolean } = {}): Value {
    if (a.rank !== 2 || b.rank !== 2) throw new Error(`Gemm: inputs must be matrices (${a} , ${b})`);
    const [m, k1] = opts.transA ? [a.shape[1], a.shape[0]] : a.shape;
    const [k2, n] = opts.transB ? [b.shape[1], b.shape[0]] : b.shape;
    if (k1 !== k2 && typeof k1 === "number" && typeof k2 === "number") throw new Error(`Gemm: inner dims differ (${a} , ${b})`);
    const attrs = { transA: int(opts.transA ? 1 : 0), transB: int(opts.transB ? 1 : 0) };
    return this.graph.addNode("Gemm", [a, b], [{ dtype: a.dtype, shape: [m, n] }], attrs)[0];
  }

  /**
   * x @ w^T (+ bias) for a weight stored as [out, in], the Hugging Face / PyTorch Linear layout, as one Gemm with
   * transB over the flattened leading axes: the weight is used in place, forward and backward.
   */
  linear(x: Value, weight: Value, bias: Value | null = null): Value {
    const [out, inFeatures] = weight.shape;
    if (weight.rank !== 2 || typeof out !== "number" || typeof inFeatures !== "number")
      throw new Error(`linear: weight must be a static matrix, got ${weight}`);
    let y: Value;
    if (x.rank === 2) y = this.gemm(x, weight, { transB: true });
    else {
      const flat = this.gemm(this.reshape(x, [-1, inFeatures]), weight, { transB: true });
      const shape = this.concat([this.slice(this.shapeOf(x), [0], [-1], [0]), this.int64s([out])], 0);
      y = this.reshapeTo(flat, shape, [...x.shape.slice(0, -1), out]);
    }
    return bias ? this.add(y, bias) : y;
  }

  softmax(x: Value, axis = -1): Value {
    return this.graph.addNode("Softmax", [x], [{ dtype: x.dtype, shape: x.shape }], { axis: int(axis) })[0];
  }

  logSoftmax(x: Value, axis = -1): Value {
    return this.graph.addNode("LogSoftmax", [x], [{ dtype: x.dtype, shape: x.shape }], { axis: int(axis) })[0];
  }

  /**
   * Cross-entropy over the rows whose label is not `ignoreIndex` (PyTorch's F.cross_entropy semantics):
   * "mean" divides by the number of counted rows, "sum" does not. logits [N, C], labels int64 [N].
   */
  crossEntropy(logits: Value, labels: Value, ignoreIndex = -100, reduction: "mean" | "sum" = "mean"): Value {
    if (logits.rank !== 2 || labels.rank !== 1) throw new Error(`crossEntropy: expected logits [N, C] and labels [N], got ${logits} and ${labels}`);
    const [loss] = this.graph.addNode("SoftmaxCrossEntropyLoss", [logits, labels], [{ dtype: logits.dtype, shape: [] }], {
      reduction: str(reduction),
      ignore_index: int(ignoreIndex),
    });
    return loss;
  }

  /** Number of labels that are not `ignoreIndex`, as a scalar of `dtype`. */
  countNotIgnored(labels: Value, ignoreIndex: number, dtype: DType): Value {
    const ignored = this.compare("Equal", labels, this.scalar(ignoreIndex, "int64"));
    return this.sumAll(this.cast(this.not(ignored), dtype));
  }

  // ---- shape manipulation -------------------------------------------------------------------------------

  /** Shape of `x` as an int64 1-D tensor (for reshapes whose sizes are only known at run time). */
  shapeOf(x: Value): Value {
    return this.graph.addNode("Shape", [x], [{ dtype: "int64", shape: [x.rank] }])[0];
  }

  /** ONNX Reshape with a static target (0 copies the input dim, -1 infers). */
  reshape(x: Value, target: readonly number[]): Value {
    return this.graph.addNode("Reshape", [x, this.int64s(target)], [{ dtype: x.dtype, shape: reshapeShape(x.shape, target) }])[0];
  }

  /** Reshape to a run-time shape tensor whose result shape the caller knows. */
  reshapeTo(x: Value, shape: Value, resultShape: Shape): Value {
    return this.graph.addNode("Reshape", [x, shape], [{ dtype: x.dtype, shape: resultShape }])[0];
  }

  transpose(x: Value, perm: readonly number[]): Value {
    if (perm.length !== x.rank) throw new Error(`Transpose: perm [${perm}] does not match ${x}`);
    return this.graph.addNode("Transpose", [x], [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }], { perm: ints(perm) })[0];
  }

  squeeze(x: Value, axes: readonly number[]): Value {
    const norm = axes.map((a) => normAxis(a, x.rank, "Squeeze"));
    for (const a of norm) if (x.shape[a] !== 1 && typeof x.shape[a] === "number") throw new Error(`Squeeze: axis ${a} of ${x} is not 1`);
    return this.graph.addNode("Squeeze", [x, this.int64s(norm)], [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !norm.includes(i)) }])[0];
  }

  unsqueeze(x: Value, axes: readonly number[]): Value {
    const rank = x.rank + axes.length;
    const norm = axes.map((a) => normAxis(a, rank, "Unsqueeze")).sort((a, b) => a - b);
    const shape: Dim[] = [];
    let j = 0;
    for (let i = 0; i < rank; i++) shape.push(norm.includes(i) ? 1 : x.shape[j++]);
    return this.graph.addNode("Unsqueeze", [x, this.int64s(norm)], [{ dtype: x.dtype, shape }])[0];
  }

  /** Static slice along `axes` (steps default to 1; ends are clamped as ONNX does). */
  slice(x: Value, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps?: readonly number[]): Value {
    const shape: Dim[] = [...x.shape];
    axes.forEach((axis, i) => {
      const a = normAxis(axis, x.rank, "Slice");
      const step = steps?.[i] ?? 1;
      const d = x.shape[a];
      if (typeof d === "number") {
        const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
        const s = step > 0 ? clamp(starts[i], 0, d) : clamp(starts[i], -1, d - 1);
        const e = step > 0 ? clamp(ends[i], 0, d) : clamp(ends[i], -1, d - 1);
        shape[a] = Math.max(0, Math.ceil((e - s) / step));
      } else if (step === 1 && starts[i] >= 0 && ends[i] >= 0 && ends[i] < 2 ** 31) {
        shape[a] = ends[i] - starts[i];
      } else if (step === 1 && starts[i] >= 0 && (ends[i] < 0 || ends[i] >= 2 ** 31)) {
        // Same symbol for x[1:] and x[:-1] ("seq-1"), so shifted logits and labels broadcast.
        const dropped = starts[i] + (ends[i] < 0 ? -ends[i] : 0);
        shape[a] = dropped === 0 ? d : `${d}-${dropped}`;
      } else {
        shape[a] = `${d}[${starts[i]}:${ends[i]}]`;
      }
    });
    const inputs = [x, this.int64s(starts), this.int64s(ends), this.int64s(axes.map((a) => normAxis(a, x.rank, "Slice")))];
    if (steps) inputs.push(this.int64s(steps));
    return this.graph.addNode("Slice", inputs, [{ dtype: x.dtype, shape }])[0];
  }

  /** Slice with run-time bounds (int64 1-D tensors); the caller states the result shape. */
  sliceDynamic(x: Value, starts: Value, ends: Value, axes: readonly number[], resultShape: Shape): Value {
    return this.graph.addNode("Slice", [x, starts, ends, this.int64s(axes)], [{ dtype: x.dtype, shape: resultShape }])[0];
  }

  concat(xs: readonly Value[], axis: number): Value {
    const a = normAxis(axis, xs[0].rank, "Concat");
    const shape: Dim[] = [...xs[0].shape];
    shape[a] = dimSum(xs.map((x) => x.shape[a]));
    return this.graph.addNode("Concat", xs, [{ dtype: xs[0].dtype, shape }], { axis: int(a) })[0];
  }

  /** Splits along `axis` into pieces of the given static sizes. */
  split(x: Value, axis: number, sizes: readonly number[]): Value[] {
    const a = normAxis(axis, x.rank, "Split");
    const outs = sizes.map((s) => {
      const shape: Dim[] = [...x.shape];
      shape[a] = s;
      return { dtype: x.dtype, shape };
    });
    return this.graph.addNode("Split", [x, this.int64s(sizes)], outs, { axis: int(a) });
  }

  /** Broadcasts `x` to a run-time shape; the caller states the result shape. */
  expand(x: Value, shape: Value, resultShape: Shape): Value {
    return this.graph.addNode("Expand", [x, shape], [{ dtype: x.dtype, shape: broadcastShapes(x.shape, resultShape, "Expand") }])[0];
  }

  /** Gathers slices of `data` along `axis` by int64 `indices` (embedding lookup when axis is 0). */
  gather(data: Value, indices: Value, axis = 0): Value {
    const a = normAxis(axis, data.rank, "Gather");
    const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
    return this.graph.addNode("Gather", [data, indices], [{ dtype: data.dtype, shape }], { axis: int(a) })[0];
  }

  /** ScatterElements with add reduction: adds `updates` into `data` at `indices` along `axis`. */
  scatterAdd(data: Value, indices: Value, updates: Value, axis: number): Value {
    return this.graph.addNode("ScatterElements", [data, indices, updates], [{ dtype: data.dtype, shape: data.shape }], {
      axis: int(axis),
      reduction: str("add"),
    })[0];
  }

  /** ScatterND with add reduction (embedding gradients: rows of `updates` added at `indices`). */
  scatterNDAdd(data: Value, indices: Value, updates: Value): Value {
    return this.graph.addNode("ScatterND", [data, indices, updates], [{ dtype: data.dtype, shape: data.shape }], { reduction: str("add") })[0];
  }

  /** GatherElements along `axis`. */
  gatherElements(data: Value, indices: Value, axis: number): Value {
    return this.graph.addNode("GatherElements", [data, indices], [{ dtype: data.dtype, shape: indices.shape }], { axis: int(axis) })[0];
  }

  /** A tensor of `value` with the run-time shape of `like`. */
  fillLike(like: Value, value: number, dtype: DType = like.dtype): Value {
    return this.expand(this.scalar(value, dtype), this.shapeOf(like), like.shape);
  }

  /** Trilu (upper when `upper`), e.g. for causal masks. */
  trilu(x: Value, upper: boolean, k: Value | null = null): Value {
    return this.graph.addNode("Trilu", k ? [x, k] : [x], [{ dtype: x.dtype, shape: x.shape }], { upper: int(upper ? 1 : 0) })[0];
  }

  /** Range(start, limit, delta) of scalars; the caller states the (usually symbolic) length. */
  range(start: Value, limit: Value, delta: Value, length: Dim): Value {
    return this.graph.addNode("Range", [start, limit, delta], [{ dtype: start.dtype, shape: [length] }])[0];
  }

  /** Raw escape hatch for an op without a typed builder. */
  op(
    op: string,
    inputs: readonly (Value | null)[],
    outputs: { dtype: DType; shape: Shape }[],
    attrs: Parameters<Graph["addNode"]>[3] = {},
    domain = "",
  ): Value[] {
    return this.graph.addNode(op, inputs, outputs, attrs, domain);
  }
}

/** Sum of dims, numeric when possible. */
function dimSum(dims: readonly Dim[]): Dim {
  if (dims.every((d) => typeof d === "number")) return (dims as number[]).reduce((a, b) => a + b, 0);
  return dims.join("+");
}

/** ONNX TensorProto.DataType code for `Cast`'s `to`. */
function onnxTypeCode(dtype: DType): number {
  return { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 }[dtype];
}

/** Converts numbers to the typed array of `dtype` (float16 via a correct round-to-nearest-even encoder). */
export function toArray(values: readonly number[] | TensorArray, dtype: DType): TensorArray {
  const list = Array.from(values as ArrayLike<number | bigint>, Number);
  switch (dtype) {
    case "float32":
      return Float32Array.from(list);
    case "float64":
      return Float64Array.from(list);
    case "float16":
      return float32ToF16Bits(list);
    case "int64":
      return BigInt64Array.from(list, (v) => BigInt(Math.trunc(v)));
    case "int32":
      return Int32Array.from(list);
    case "bool":
    case "uint8":
      return Uint8Array.from(list);
    case "int8":
      return Int8Array.from(list);
  }
}

/** float -> IEEE half bits, round to nearest even (through float32, as onnxruntime's double->half Cast). */
export function toHalf(x: number): number {
  return float32ToF16Bits([x])[0];
}
