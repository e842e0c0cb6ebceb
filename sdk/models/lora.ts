/**
 * LoRA on a decoder's linear layers, as PEFT computes it: y = x W^T + b + dropout(x) A^T B^T * scaling,
 * A [r, in] initialised kaiming-uniform (bound 1/sqrt(in)), B [out, r] zero, scaling alpha/r (alpha/sqrt(r) for rsLoRA).
 */
import { Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import { LINEAR_MODULES, linearFeatures, linearModulePath, ModelConfig } from "../io/config";
import { Adapter, isTargeted, LoraAdapterConfig, loraRank, loraScaling } from "../io/peft";
import { TrainableSpec } from "../train/step";
import { Rng } from "../util/random";

/** One LoRA pair on one linear module. */
export interface LoraModule {
  /** HF module path, e.g. "model.layers.0.self_attn.q_proj". */
  path: string;
  rank: number;
  scaling: number;
  inFeatures: number;
  outFeatures: number;
}

/** Trainable-tensor names of a module's pair, as the step engine knows them. */
export const loraNames = (path: string) => ({ A: `${path}.lora_A`, B: `${path}.lora_B` });

/** The modules a LoRA config puts adapters on, in layer order. */
export function loraModules(config: ModelConfig, lora: LoraAdapterConfig): LoraModule[] {
  const out: LoraModule[] = [];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    if (lora.layersToTransform && !lora.layersToTransform.includes(layer)) continue;
    for (const m of LINEAR_MODULES) {
      const path = linearModulePath(layer, m);
      if (!isTargeted(lora, path)) continue;
      const { inFeatures, outFeatures } = linearFeatures(config, m);
      out.push({ path, rank: loraRank(lora, path), scaling: loraScaling(lora, path), inFeatures, outFeatures });
    }
  }
  if (out.length === 0) {
    throw new Error(`lora target_modules ${JSON.stringify(lora.targetModules)} matches no linear layer; names are ${LINEAR_MODULES.join(", ")} or "all-linear"`);
  }
  return out;
}

/** Trainable specs with PEFT's initialisation (or the values of an existing adapter to continue from). */
export function loraTrainables(modules: readonly LoraModule[], seed: number, from?: Adapter): (TrainableSpec & { init: Float32Array })[] {
  const rng = new Rng(seed);
  return modules.flatMap((m) => {
    const names = loraNames(m.path);
    const existing = from?.lora[m.path];
    if (from && !existing) throw new Error(`adapter has no LoRA weights for ${m.path}, which this LoRA config targets`);
    if (existing && (existing.rank !== m.rank || existing.inFeatures !== m.inFeatures || existing.outFeatures !== m.outFeatures)) {
      throw new Error(`adapter's ${m.path} is rank ${existing.rank} [${existing.outFeatures}x${existing.inFeatures}], expected rank ${m.rank} [${m.outFeatures}x${m.inFeatures}]`);
    }
    const bound = 1 / Math.sqrt(m.inFeatures);
    const a = existing?.A ?? Float32Array.from({ length: m.rank * m.inFeatures }, () => (rng.next() * 2 - 1) * bound);
    const bInit = existing?.B ?? new Float32Array(m.outFeatures * m.rank);
    return [
      { name: names.A, shape: [m.rank, m.inFeatures], init: a },
      { name: names.B, shape: [m.outFeatures, m.rank], init: bInit },
    ];
  });
}

/** Per-step dropout randomness: an int64 seed input plus a per-module salt make every mask reproducible. */
export interface DropoutContext {
  p: number;
  seed: Value;
}

/** The LoRA term dropout(x) A^T B^T * scaling for one module. */
export function loraDelta(b: Builder, x: Value, a: Value, bMat: Value, m: LoraModule, dropout: DropoutContext | null, salt: number): Value {
  const xin = dropout && dropout.p > 0 ? b.dropout(x, hashKeepMask(b, x, dropout.seed, salt, dropout.p), dropout.p) : x;
  // Trainable tensors are float32 master copies; in a float16 graph they are cast where they are used.
  const down = b.matmul(xin, b.cast(b.transpose(a, [1, 0]), x.dtype));
  // Scale the small [r, out] matrix rather than the [batch, seq, out] product: same numbers, far fewer multiplies.
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
