/** Where decoder graphs take model weights from: the checkpoint's frozen weights, or trainable inputs replacing some. */
import { Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import { expectedWeights, type ModelConfig } from "../io/config";
import { toFloat32, TensorSource } from "../io/safetensors";
import { weightFile, type WeightFile } from "../io/weight-cache";

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
}

/**
 * The checkpoint's frozen weights. Graphs reference them in a weight file (io/weight-cache.ts) that onnxruntime
 * memory-maps, so every session shares one copy and JavaScript holds none; `get` reads one tensor for host-side use.
 */
export class FrozenWeights implements WeightSource {
  private file?: WeightFile;

  /** @param dtype what `constant()` emits; `as()` gives a view in another dtype. */
  constructor(
    private readonly source: TensorSource,
    readonly dtype: ComputeDtype = "float32",
    private readonly cacheDir?: string,
  ) {}

  /** The same weights, emitted in another compute dtype. */
  as(dtype: ComputeDtype): FrozenWeights {
    return dtype === this.dtype ? this : new FrozenWeights(this.source, dtype, this.cacheDir);
  }

  has(name: string): boolean {
    return this.source.has(name);
  }

  /** One tensor as float32 in its file layout, read from the checkpoint now (not kept). */
  get(name: string): HostWeight {
    const t = this.source.read(name);
    if (!["F32", "F16", "BF16", "F64"].includes(t.dtype)) {
      throw new Error(`${this.source.path}: "${name}" has dtype ${t.dtype}; model weights must be F32, F16, BF16 or F64`);
    }
    return { shape: t.shape, data: Float32Array.from(toFloat32(t)) };
  }

  /** Adds `name` to a graph as an initializer backed by the weight file (frozen: never an input, never differentiated). */
  constant(b: Builder, name: string): Value {
    this.file ??= weightFile(this.source, this.dtype, this.cacheDir);
    const slice = this.file.tensors.get(name);
    if (!slice) throw new Error(`${this.source.path}: no tensor "${name}"`);
    return b.graph.initializer(name, { dtype: this.dtype, shape: slice.shape, external: { location: this.file.file, offset: slice.offset, length: slice.length } });
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
  ) {
    this.shapes = expectedWeights(config);
  }

  has(name: string): boolean {
    return this.shapes.has(name);
  }

  constant(b: Builder, name: string): Value {
    const shape = this.shapes.get(name);
    if (!shape) throw new Error(`no weight "${name}" in this model's layout`);
    const length = shape.reduce((a, d) => a * d, 1) * (this.dtype === "float32" ? 4 : 2);
    return b.graph.initializer(name, { dtype: this.dtype, shape, external: { location: "(planning only)", offset: 0, length } });
  }
}
