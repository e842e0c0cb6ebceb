/**
 * The LoRA modules of a model under a LoraConfig and their trainable tensors (A [r, in], B [out, r]) with PEFT's
 * initialisation: A kaiming-uniform (bound 1/sqrt(in)), B zero, so training starts from the base model. A DoRA
 * module adds the magnitude m [out], which PEFT starts at the row norms ||W + scaling * B @ A|| (so, with B zero,
 * the base weight's row norms).
 */
import { LINEAR_MODULES, linearFeatures, linearModulePath, ModelConfig } from "../../io/config";
import { Rng } from "../../util/random";
import type { InitializedTrainable } from "../forward";
import { isTargeted, LoraConfig, loraRank, loraScaling } from "./config";
import { doraRowNorms } from "./merge";

/** One LoRA pair on one linear module. */
export interface LoraModule {
  /** HF module path, e.g. "model.layers.0.self_attn.q_proj". */
  path: string;
  rank: number;
  scaling: number;
  inFeatures: number;
  outFeatures: number;
  /** DoRA (PEFT `use_dora`): the module also trains a magnitude vector [outFeatures]. */
  dora?: boolean;
}

/** The two LoRA matrices of one linear layer, row-major: A is [rank, inFeatures], B is [outFeatures, rank]. */
export interface LoraWeights {
  A: Float32Array;
  B: Float32Array;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** DoRA's magnitude vector [outFeatures] (PEFT's `lora_magnitude_vector`); absent for plain LoRA. */
  magnitude?: Float32Array;
}

/** Trainable-tensor names of a module's tensors, as the step engine knows them (`magnitude` only for DoRA modules). */
export const loraNames = (path: string) => ({ A: `${path}.lora_A`, B: `${path}.lora_B`, magnitude: `${path}.lora_magnitude_vector` });

/** Host access to base weights (FrozenWeights has it), for DoRA's magnitude initialisation. */
export interface BaseWeightReader {
  get(name: string): { shape: number[]; data: Float32Array };
}

/** The modules a LoRA config puts adapters on, in layer order. */
export function loraModules(config: ModelConfig, lora: LoraConfig): LoraModule[] {
  const out: LoraModule[] = [];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    if (lora.layersToTransform && !lora.layersToTransform.includes(layer)) continue;
    for (const m of LINEAR_MODULES) {
      const path = linearModulePath(layer, m);
      if (!isTargeted(lora, path)) continue;
      const { inFeatures, outFeatures } = linearFeatures(config, m);
      const module: LoraModule = { path, rank: loraRank(lora, path), scaling: loraScaling(lora, path), inFeatures, outFeatures };
      out.push(lora.useDora ? { ...module, dora: true } : module);
    }
  }
  if (out.length === 0) {
    throw new Error(`lora target_modules ${JSON.stringify(lora.targetModules)} matches no linear layer; names are ${LINEAR_MODULES.join(", ")} or "all-linear"`);
  }
  return out;
}

/**
 * Trainable specs with PEFT's initialisation (or the values of an existing adapter to continue from). DoRA modules
 * whose magnitude is not given by `from` need `base`, the model's weights, to start it at PEFT's row norms.
 */
export function loraTrainables(
  modules: readonly LoraModule[],
  seed: number,
  from?: { lora: Readonly<Record<string, LoraWeights>> },
  base?: BaseWeightReader,
): InitializedTrainable[] {
  const rng = new Rng(seed);
  return modules.flatMap((m) => {
    const names = loraNames(m.path);
    const existing = from?.lora[m.path];
    if (from && !existing) throw new Error(`adapter has no LoRA weights for ${m.path}, which this LoRA config targets`);
    if (existing && (existing.rank !== m.rank || existing.inFeatures !== m.inFeatures || existing.outFeatures !== m.outFeatures)) {
      throw new Error(`adapter's ${m.path} is rank ${existing.rank} [${existing.outFeatures}x${existing.inFeatures}], expected rank ${m.rank} [${m.outFeatures}x${m.inFeatures}]`);
    }
    if (existing?.magnitude && !m.dora) {
      throw new Error(`adapter's ${m.path} is DoRA (it has a lora_magnitude_vector) but this LoRA config does not use DoRA; set use_dora: true to continue it`);
    }
    const bound = 1 / Math.sqrt(m.inFeatures);
    const a = existing?.A ?? Float32Array.from({ length: m.rank * m.inFeatures }, () => (rng.next() * 2 - 1) * bound);
    const bInit = existing?.B ?? new Float32Array(m.outFeatures * m.rank);
    const pair: InitializedTrainable[] = [
      { name: names.A, shape: [m.rank, m.inFeatures], init: a },
      { name: names.B, shape: [m.outFeatures, m.rank], init: bInit },
    ];
    if (!m.dora) return pair;
    return [...pair, { name: names.magnitude, shape: [m.outFeatures], init: doraMagnitude(m, a, bInit, existing, base) }];
  });
}

/** A DoRA module's starting magnitude: the adapter's own, else PEFT's init ||W + scaling * B @ A|| per output row. */
function doraMagnitude(m: LoraModule, a: Float32Array, bMat: Float32Array, existing: LoraWeights | undefined, base: BaseWeightReader | undefined): Float32Array {
  if (existing) {
    if (!existing.magnitude) throw new Error(`adapter has no DoRA magnitude (lora_magnitude_vector) for ${m.path}, which is a DoRA module`);
    if (existing.magnitude.length !== m.outFeatures) {
      throw new Error(`adapter's ${m.path}.lora_magnitude_vector has ${existing.magnitude.length} values, expected outFeatures = ${m.outFeatures}`);
    }
    return existing.magnitude;
  }
  if (!base) throw new Error(`${m.path}: a new DoRA magnitude starts at the base weight's row norms, so loraTrainables needs the model's weights`);
  const w = base.get(`${m.path}.weight`);
  if (w.shape.length !== 2 || w.shape[0] !== m.outFeatures || w.shape[1] !== m.inFeatures) {
    throw new Error(`${m.path}.weight is [${w.shape.join(", ")}], expected [${m.outFeatures}, ${m.inFeatures}]`);
  }
  return Float32Array.from(doraRowNorms(w.data, a, bMat, m.rank, m.inFeatures, m.outFeatures, m.scaling));
}
