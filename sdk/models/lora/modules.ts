/**
 * The LoRA modules of a model under a LoraConfig and their trainable tensors (A [r, in], B [out, r]) with PEFT's
 * initialisation: A kaiming-uniform (bound 1/sqrt(in)), B zero, so training starts from the base model.
 */
import { LINEAR_MODULES, linearFeatures, linearModulePath, ModelConfig } from "../../io/config";
import { Rng } from "../../util/random";
import type { InitializedTrainable } from "../forward";
import { isTargeted, LoraConfig, loraRank, loraScaling } from "./config";

/** One LoRA pair on one linear module. */
export interface LoraModule {
  /** HF module path, e.g. "model.layers.0.self_attn.q_proj". */
  path: string;
  rank: number;
  scaling: number;
  inFeatures: number;
  outFeatures: number;
}

/** The two LoRA matrices of one linear layer, row-major: A is [rank, inFeatures], B is [outFeatures, rank]. */
export interface LoraWeights {
  A: Float32Array;
  B: Float32Array;
  rank: number;
  inFeatures: number;
  outFeatures: number;
}

/** Trainable-tensor names of a module's pair, as the step engine knows them. */
export const loraNames = (path: string) => ({ A: `${path}.lora_A`, B: `${path}.lora_B` });

/** The modules a LoRA config puts adapters on, in layer order. */
export function loraModules(config: ModelConfig, lora: LoraConfig): LoraModule[] {
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
export function loraTrainables(modules: readonly LoraModule[], seed: number, from?: { lora: Readonly<Record<string, LoraWeights>> }): InitializedTrainable[] {
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
