/** The frozen base weights: read once from safetensors as float32, linears pre-transposed to [in, out]. */
import { Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import { float32ToF16Bits } from "../util/float16";
import { toFloat32, TensorSource } from "../io/safetensors";

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
  /** The weight `name` as a graph value in `dtype` (linears transposed to [in, out] when asked). */
  constant(b: Builder, name: string, transposed?: boolean): Value;
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

  constant(b: Builder, name: string, transposed = false): Value {
    const t = this.trainable.get(name);
    if (!t) return this.frozen.constant(b, name, transposed);
    return b.cast(transposed ? b.transpose(t, [1, 0]) : t, this.dtype);
  }
}

/** Reads base-model tensors on demand and keeps the float32 copies every graph of this model shares. */
export class FrozenWeights implements WeightSource {
  private readonly cache: Map<string, HostWeight>;
  private readonly halves: Map<string, Uint16Array>;

  /** @param dtype what `constant()` emits; views of one model share the float32 copies. */
  constructor(
    private readonly source: TensorSource,
    readonly dtype: ComputeDtype = "float32",
    shared?: FrozenWeights,
  ) {
    this.cache = shared?.cache ?? new Map();
    this.halves = shared?.halves ?? new Map();
  }

  /** The same weights, emitted in another compute dtype. */
  as(dtype: ComputeDtype): FrozenWeights {
    return dtype === this.dtype ? this : new FrozenWeights(this.source, dtype, this);
  }

  has(name: string): boolean {
    return this.source.has(name);
  }

  /** The tensor as float32 in its file layout. */
  get(name: string): HostWeight {
    let w = this.cache.get(name);
    if (!w) {
      w = readFloat32(this.source, name);
      this.cache.set(name, w);
    }
    return w;
  }

  /** A linear layer's [out, in] weight transposed to [in, out], so graphs compute x @ W^T as a plain MatMul. */
  transposed(name: string): HostWeight {
    const key = `${name}^T`;
    let w = this.cache.get(key);
    if (!w) {
      const { shape, data } = this.get(name);
      if (shape.length !== 2) throw new Error(`${this.source.path}: "${name}" should be a 2-D linear weight, has shape [${shape}]`);
      const [rows, cols] = shape;
      const t = new Float32Array(data.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = data[r * cols + c];
      w = { shape: [cols, rows], data: t };
      this.cache.set(key, w);
    }
    return w;
  }

  /** Adds `name` to a graph as an initializer (frozen: never an input, never differentiated). */
  constant(b: Builder, name: string, transposed = false): Value {
    const key = transposed ? `${name}.T` : name;
    const w = transposed ? this.transposed(name) : this.get(name);
    if (this.dtype === "float32") return b.graph.initializer(key, { dtype: "float32", shape: w.shape, data: w.data });
    let half = this.halves.get(key);
    if (!half) this.halves.set(key, (half = float32ToF16Bits(w.data)));
    return b.graph.initializer(key, { dtype: "float16", shape: w.shape, data: half });
  }

  /** Drops the float32 copies (the runtime holds its own once sessions exist). */
  clear(): void {
    this.cache.clear();
    this.halves.clear();
  }
}

function readFloat32(source: TensorSource, name: string): HostWeight {
  const t = source.read(name);
  if (!["F32", "F16", "BF16", "F64"].includes(t.dtype)) {
    throw new Error(`${source.path}: "${name}" has dtype ${t.dtype}; model weights must be F32, F16, BF16 or F64`);
  }
  return { shape: t.shape, data: toFloat32(t) };
}
