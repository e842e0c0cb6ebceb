/**
 * Fixed LoRA weights in the engine's form (tensors named "<modulePath>.lora_A" / ".lora_B", and for DoRA
 * ".lora_magnitude_vector"), which generation, evaluation and merging take, and the conversion of a PEFT adapter
 * to that form.
 */
import { linearFeatures, type ModelConfig } from "../../io/config";
import type { InitializedTrainable } from "../forward";
import { SCORE_WEIGHT } from "../tasks";
import { Adapter, checkAdapterAgainstModel } from "./adapter";
import { loraScaling } from "./config";
import { mergeDoraInto, mergeLoraInto } from "./merge";
import { LoraModule, loraNames, loraTrainables } from "./modules";

/** Fixed LoRA weights: the modules and their tensors named as loraNames gives (as StepEngine holds them). */
export interface LoraState {
  modules: readonly LoraModule[];
  tensors: ReadonlyMap<string, Float32Array>;
}

/** LoRA weights as the trainer holds them, or a PEFT adapter read with loadAdapter. */
export type LoraSource = LoraState | Adapter;

function isAdapter(source: LoraSource): source is Adapter {
  return (source as Adapter).lora !== undefined && (source as Adapter).config !== undefined;
}

/** The modules of an adapter's own LoRA pairs (checked against the model), scaled as its config says. */
function adapterModules(config: ModelConfig, adapter: Adapter): LoraModule[] {
  checkAdapterAgainstModel(adapter, config);
  return Object.entries(adapter.lora).map(([path, w]) => {
    const m: LoraModule = { path, rank: w.rank, scaling: loraScaling(adapter.config, path), inFeatures: w.inFeatures, outFeatures: w.outFeatures };
    return adapter.config.useDora ? { ...m, dora: true } : m;
  });
}

/** Normalises LoRA weights to LoraState and checks every module and tensor against the model's config. */
export function resolveLora(config: ModelConfig, source: LoraSource): LoraState {
  if (isAdapter(source)) {
    const modules = adapterModules(config, source);
    const tensors = new Map<string, Float32Array>();
    for (const m of modules) {
      tensors.set(loraNames(m.path).A, source.lora[m.path].A);
      tensors.set(loraNames(m.path).B, source.lora[m.path].B);
      const magnitude = source.lora[m.path].magnitude;
      if (m.dora && !magnitude) throw new Error(`adapter: DoRA module "${m.path}" has no magnitude (lora_magnitude_vector)`);
      if (magnitude) tensors.set(loraNames(m.path).magnitude, magnitude);
    }
    return { modules, tensors };
  }
  for (const m of source.modules) {
    const match = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)$/.exec(m.path);
    if (!match || Number(match[1]) >= config.numHiddenLayers) {
      throw new Error(`LoRA module "${m.path}" is not a decoder linear layer of this ${config.numHiddenLayers}-layer ${config.architecture}`);
    }
    const want = linearFeatures(config, match[2]);
    if (want.inFeatures !== m.inFeatures || want.outFeatures !== m.outFeatures) {
      throw new Error(`LoRA module "${m.path}" is ${m.inFeatures} -> ${m.outFeatures}, the model's layer is ${want.inFeatures} -> ${want.outFeatures}`);
    }
    if (!Number.isSafeInteger(m.rank) || m.rank < 1 || !Number.isFinite(m.scaling)) {
      throw new Error(`LoRA module "${m.path}": rank must be a positive integer and scaling finite, got ${m.rank} and ${m.scaling}`);
    }
    const n = loraNames(m.path);
    const sizes: [string, number][] = [
      [n.A, m.rank * m.inFeatures],
      [n.B, m.outFeatures * m.rank],
    ];
    if (m.dora) sizes.push([n.magnitude, m.outFeatures]);
    for (const [name, size] of sizes) {
      const t = source.tensors.get(name);
      if (!(t instanceof Float32Array) || t.length !== size) {
        throw new Error(`LoRA tensor "${name}": expected a Float32Array of ${size} values, got ${t ? `${t.constructor.name}(${t.length})` : "nothing"}`);
      }
    }
  }
  return source;
}

/**
 * An adapter as the inputs of a forward graph: its LoRA modules and their tensors (through loraTrainables'
 * shape checks), plus the classifier head from modules_to_save when `withHead` is set.
 */
export function adapterTrainables(config: ModelConfig, adapter: Adapter, withHead: boolean): { modules: LoraModule[]; trainable: InitializedTrainable[] } {
  const modules = adapterModules(config, adapter);
  const trainable = loraTrainables(modules, 0, adapter);
  if (withHead) {
    const score = adapter.modulesToSave[SCORE_WEIGHT];
    if (!score) throw new Error(`a classification adapter needs ${SCORE_WEIGHT} in modules_to_save`);
    trainable.push({ name: SCORE_WEIGHT, shape: score.shape, init: score.data });
  }
  return { modules, trainable };
}

/** Merges one module of a LoRA state into its base weight W [out, in] in place: DoRA's rule for DoRA modules, else LoRA's. */
export function mergeModuleInto(w: Float32Array | Float64Array, m: LoraModule, state: LoraState): void {
  const n = loraNames(m.path);
  const [a, b] = [state.tensors.get(n.A), state.tensors.get(n.B)];
  if (!a || !b) throw new Error(`merge: the LoRA state has no ${!a ? n.A : n.B}`);
  if (!m.dora) return mergeLoraInto(w, a, b, m.rank, m.inFeatures, m.outFeatures, m.scaling);
  const magnitude = state.tensors.get(n.magnitude);
  if (!magnitude) throw new Error(`merge: the DoRA module ${m.path} has no ${n.magnitude}`);
  mergeDoraInto(w, a, b, magnitude, m.rank, m.inFeatures, m.outFeatures, m.scaling);
}
