/** Where decoder graphs take model weights from: the checkpoint's frozen weights, or trainable inputs replacing some. */
import { Graph, Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import { halfStoredLinear } from "../graph/half-linear";
import { quantizedLinear, quantizedRowSquares, QUANT_BITS, type QuantizedMatrix, type ScaleSource } from "../graph/quant";
import { expectedWeights, type ModelConfig } from "../io/config";
import { DOUBLE_QUANT_BLOCK, DYNAMIC_CODE, QUANTIZED_WEIGHT, type QuantConfig } from "../io/quantize";
import { toFloat32, TensorSource } from "../io/safetensors";
import { dequantizedWeight, weightFile, type QuantizedSlices, type WeightFile, type WeightSlice } from "../io/weight-cache";

/** The element type a graph computes in: float32, or float16 (GPU providers; trainable tensors stay float32). */
export type ComputeDtype = "float32" | "float16";

/** A float32 tensor on the host. */
export interface HostWeight {
  shape: number[];
  data: Float32Array;
}

/** Where a decoder graph gets a model weight from: a frozen constant, or (full/freeze tuning) a trainable input. */
export interface WeightSource {
  readonly dtype: ComputeDtype;
  has(name: string): boolean;
  /** The weight `name` as a graph value in `dtype`, in the checkpoint's layout (linears [out, in]). */
  constant(b: Builder, name: string): Value;
  /** x @ Wᵀ (+ bias) for the [out, in] linear weight `name`: a dense Gemm, or a quantised kernel for a quantised base. */
  linear(b: Builder, x: Value, name: string, bias: Value | null): Value;
  /** Rows `ids` (int64, any shape) of the matrix `name` in the compute dtype: an embedding lookup. */
  rows(b: Builder, name: string, ids: Value): Value;
  /** Σ W² of each row of the [out, in] weight `name`, float32 [out]; a quantised one is dequantised once `after` exists. */
  rowSquares(b: Builder, name: string, after: Value): Value;
}

/** A linear through a quantised base's kernel when `name` is quantised there, else the dense Gemm. */
function linearOf(source: WeightSource, b: Builder, x: Value, name: string, bias: Value | null, quantized?: QuantizedMatrix): Value {
  if (!quantized) return b.linear(x, source.constant(b, name), bias);
  const flat = x.rank === 2 ? x : b.reshape(x, [-1, quantized.k]);
  let y = quantizedLinear(b, flat, quantized);
  if (x.rank !== 2) y = b.reshapeTo(y, b.concat([b.slice(b.shapeOf(x), [0], [-1], [0]), b.int64s([quantized.n])], 0), [...x.shape.slice(0, -1), quantized.n]);
  return bias ? b.add(y, bias) : y;
}

/** A weight's row squares: from its quantised parts, gated on `after`, when `name` is quantised, else from the dense weight. */
function rowSquaresOf(source: WeightSource, b: Builder, name: string, after: Value, quantized?: QuantizedMatrix): Value {
  return quantized ? quantizedRowSquares(b, quantized, after) : b.reduceSumSquare(b.cast(source.constant(b, name), "float32"), [1]);
}

/** Base weights with some of them replaced by trainable graph inputs (float32 master copies, cast where used). */
export class TrainableWeights implements WeightSource {
  constructor(
    private readonly frozen: WeightSource,
    private readonly trainable: ReadonlyMap<string, Value>,
  ) {}

  get dtype(): ComputeDtype {
    return this.frozen.dtype;
  }

  has(name: string): boolean {
    return this.trainable.has(name) || this.frozen.has(name);
  }

  constant(b: Builder, name: string): Value {
    const t = this.trainable.get(name);
    return t ? b.cast(t, this.dtype) : this.frozen.constant(b, name);
  }

  linear(b: Builder, x: Value, name: string, bias: Value | null): Value {
    return this.trainable.has(name) ? b.linear(x, this.constant(b, name), bias) : this.frozen.linear(b, x, name, bias);
  }

  rows(b: Builder, name: string, ids: Value): Value {
    return this.trainable.has(name) ? b.gather(this.constant(b, name), ids, 0) : this.frozen.rows(b, name, ids);
  }

  rowSquares(b: Builder, name: string, after: Value): Value {
    return this.trainable.has(name) ? rowSquaresOf(this, b, name, after) : this.frozen.rowSquares(b, name, after);
  }
}

/**
 * The checkpoint's frozen weights. Graphs reference them in a weight file (io/weight-cache.ts) that onnxruntime
 * memory-maps, so every session shares one copy and JavaScript holds none; `get` reads one tensor for host-side use.
 */
export class FrozenWeights implements WeightSource {
  private file?: WeightFile;
  private readonly added = new WeakMap<Graph, Map<string, Value | QuantizedMatrix>>();

  /** @param dtype what `constant()` emits; `as()` gives a view in another dtype; `quant` block-quantises the decoder linears. */
  constructor(
    private readonly source: TensorSource,
    readonly dtype: ComputeDtype = "float32",
    private readonly cacheDir?: string,
    readonly quant: QuantConfig | null = null,
  ) {}

  /** The same weights, emitted in another compute dtype. */
  as(dtype: ComputeDtype): FrozenWeights {
    return dtype === this.dtype ? this : new FrozenWeights(this.source, dtype, this.cacheDir, this.quant);
  }

  /** The same weights with the decoder layers' linear weights block-quantised (QLoRA), or dense again with null. */
  quantized(quant: QuantConfig | null): FrozenWeights {
    return new FrozenWeights(this.source, this.dtype, this.cacheDir, quant);
  }

  has(name: string): boolean {
    return this.source.has(name);
  }

  /** The weight file (made on first use: converted, and with a QuantConfig quantised, tensor by tensor). */
  weightFile(): WeightFile {
    this.file ??= weightFile(this.source, this.dtype, this.cacheDir, this.quant ?? undefined);
    return this.file;
  }

  linear(b: Builder, x: Value, name: string, bias: Value | null): Value {
    if (this.isHalfStored(name)) {
      const y = halfStoredLinear(b, x, this.initializer(b, name));
      return bias ? b.add(y, bias) : y;
    }
    return linearOf(this, b, x, name, bias, this.quantizedParts(b, name));
  }

  rowSquares(b: Builder, name: string, after: Value): Value {
    return rowSquaresOf(this, b, name, after, this.quantizedParts(b, name));
  }

  /** `name`'s quantised parts as initializers when this base quantises it. */
  private quantizedParts(b: Builder, name: string): QuantizedMatrix | undefined {
    const q = this.quant ? this.weightFile().quantized.get(name) : undefined;
    return q && this.once(b, `quantized:${name}`, () => quantizedMatrix(b, this.weightFile().file, name, q));
  }

  /**
   * What `make` adds to b's graph for `key`, made once per graph: onnxruntime maps each external initializer on its
   * own, so a weight added twice (DoRA's norm, a tied embedding) would be resident twice.
   */
  private once<T extends Value | QuantizedMatrix>(b: Builder, key: string, make: () => T): T {
    let added = this.added.get(b.graph);
    if (!added) this.added.set(b.graph, (added = new Map()));
    if (!added.has(key)) added.set(key, make());
    return added.get(key) as T;
  }

  rows(b: Builder, name: string, ids: Value): Value {
    if (!this.isHalfStored(name)) return b.gather(this.constant(b, name), ids, 0);
    return b.cast(b.gather(this.initializer(b, name), ids, 0), this.dtype);
  }

  /** True when `name` is kept in 16 bits in a weight file that computes in float32 (a quantised base's vocabulary matrices). */
  private isHalfStored(name: string): boolean {
    return this.dtype === "float32" && this.weightFile().tensors.get(name)?.dtype === "float16";
  }

  /**
   * One tensor as float32 in its file layout, read now (not kept): from the checkpoint, or for a weight a quantised
   * base keeps quantised or in 16 bits, the values its graphs compute with (DoRA's magnitude starts from these).
   */
  get(name: string): HostWeight {
    const stored = this.quant ? this.weightFile() : undefined;
    if (stored && (stored.quantized.has(name) || this.isHalfStored(name))) {
      return { shape: [...this.source.info(name).shape], data: dequantizedWeight(stored, name) };
    }
    const t = this.source.read(name);
    if (!["F32", "F16", "BF16", "F64"].includes(t.dtype)) {
      throw new Error(`${this.source.path}: "${name}" has dtype ${t.dtype}; model weights must be F32, F16, BF16 or F64`);
    }
    return { shape: t.shape, data: Float32Array.from(toFloat32(t)) };
  }

  /** Adds `name` to a graph as an initializer backed by the weight file (frozen: never an input, never differentiated). */
  constant(b: Builder, name: string): Value {
    if (this.isHalfStored(name)) throw new Error(`${this.source.path}: "${name}" is kept in 16 bits in this base; use linear() or rows()`);
    return this.initializer(b, name);
  }

  /** The weight file's slice `name` as an initializer, in the dtype it is stored in. */
  private initializer(b: Builder, name: string): Value {
    const file = this.weightFile();
    const slice = file.tensors.get(name);
    if (!slice && file.quantized.has(name)) throw new Error(`${this.source.path}: "${name}" is quantised in this base; use linear()`);
    if (!slice) throw new Error(`${this.source.path}: no tensor "${name}"`);
    const dtype = slice.dtype === "float16" ? "float16" : this.dtype;
    const external = { location: file.file, offset: slice.offset, length: slice.length };
    return this.once(b, name, () => b.graph.initializer(name, { dtype, shape: slice.shape, external }));
  }
}

/**
 * Weights known only by their shapes (from the config), for planning: graphs built on them have the real structure
 * and sizes, but their initializers point nowhere and are never run.
 */
export class ShapeOnlyWeights implements WeightSource {
  private readonly shapes: Map<string, number[]>;

  constructor(
    config: ModelConfig,
    readonly dtype: ComputeDtype = "float32",
    readonly quant: QuantConfig | null = null,
  ) {
    this.shapes = expectedWeights(config);
  }

  linear(b: Builder, x: Value, name: string, bias: Value | null): Value {
    return linearOf(this, b, x, name, bias, this.quantizedParts(b, name));
  }

  rowSquares(b: Builder, name: string, after: Value): Value {
    return rowSquaresOf(this, b, name, after, this.quantizedParts(b, name));
  }

  /** The quantised parts `name` would have (sizes only) when this plan quantises it. */
  private quantizedParts(b: Builder, name: string): QuantizedMatrix | undefined {
    const shape = this.shapes.get(name);
    if (!this.quant || !shape || !QUANTIZED_WEIGHT.test(name)) return undefined;
    return quantizedMatrix(b, "(planning only)", name, planningSlices(shape, this.quant));
  }

  has(name: string): boolean {
    return this.shapes.has(name);
  }

  rows(b: Builder, name: string, ids: Value): Value {
    return b.gather(this.constant(b, name), ids, 0);
  }

  constant(b: Builder, name: string): Value {
    const shape = this.shapes.get(name);
    if (!shape) throw new Error(`no weight "${name}" in this model's layout`);
    const length = shape.reduce((a, d) => a * d, 1) * (this.dtype === "float32" ? 4 : 2);
    return b.graph.initializer(name, { dtype: this.dtype, shape, external: { location: "(planning only)", offset: 0, length } });
  }
}

/** Adds a quantised weight's parts to a graph as initializers backed by the weight file. */
function quantizedMatrix(b: Builder, file: string, name: string, q: QuantizedSlices): QuantizedMatrix {
  const init = (part: string, s: WeightSlice, dtype: "uint8" | "float32") =>
    b.graph.initializer(`${name}.${part}`, { dtype, shape: s.shape, external: { location: file, offset: s.offset, length: s.length } });
  const s = q.scales;
  const scales: ScaleSource =
    "blocks" in s
      ? {
          kind: "double",
          codes: init("absmax_codes", s.codes, "uint8"),
          absmax: init("absmax_absmax", s.absmax, "float32"),
          offset: init("absmax_offset", s.offset, "float32"),
          code: b.constant(DYNAMIC_CODE, [256], "float32", "dynamic_code"),
          blocks: s.blocks,
          blockSize: DOUBLE_QUANT_BLOCK,
        }
      : { kind: "plain", values: init("absmax", s, "float32") };
  return { type: q.type, n: q.n, k: q.k, blockSize: q.blockSize, codes: init("codes", q.codes, "uint8"), scales };
}

/** The slices a quantised [n, k] weight would have (sizes only), for planning graphs. */
function planningSlices(shape: number[], quant: QuantConfig): QuantizedSlices {
  const [n, k] = shape;
  const blocks = (n * k) / quant.blockSize;
  const slice = (count: number, bytes: number): WeightSlice => ({ shape: [count], offset: 0, length: count * bytes });
  const padded = Math.ceil(blocks / DOUBLE_QUANT_BLOCK) * DOUBLE_QUANT_BLOCK;
  const double = quant.doubleQuant && (quant.type === "nf4" || quant.type === "fp4");
  return {
    type: quant.type,
    n,
    k,
    blockSize: quant.blockSize,
    codes: slice((n * k * QUANT_BITS[quant.type]) / 8, 1),
    scales: double ? { codes: slice(padded, 1), absmax: slice(padded / DOUBLE_QUANT_BLOCK, 4), offset: slice(1, 4), blocks } : slice(blocks, 4),
  };
}
