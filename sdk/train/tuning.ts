/** What a recipe trains besides LoRA (whole weights, a classifier head), with which optimizer, and how it is saved. */
import { expectedWeights } from "../io/config";
import type { InitializedTrainable, TrainableSpec } from "../models/forward";
import type { Adapter, SavedParam } from "../models/lora";
import { writeMergedModel } from "../models/merge";
import { BaseModel } from "../models/model";
import { SCORE_WEIGHT } from "../models/tasks";
import { Rng } from "../util/random";
import { StepEngine } from "./engine";
import { OptimizerOptions } from "./optimizers";
import { Recipe } from "./recipe";

/** The optimizer options of a recipe. */
export function optimizerOf(r: Recipe): OptimizerOptions {
  switch (r.optim) {
    case "sgd":
      return { name: "sgd", momentum: r.momentum, weightDecay: r.weight_decay };
    case "adamw":
      return { name: "adamw", beta1: r.adam_beta1, beta2: r.adam_beta2, eps: r.adam_epsilon, weightDecay: r.weight_decay };
    case "lion":
      return { name: "lion", beta1: r.adam_beta1, beta2: r.adam_beta2 === 0.999 ? 0.99 : r.adam_beta2, weightDecay: r.weight_decay };
  }
}

/** The classification head, trained fully: transformers initialises it normal(0, 0.02). */
export function scoreTrainable(model: BaseModel, numLabels: number, seed: number, from?: Adapter) {
  const shape = [numLabels, model.config.hiddenSize];
  const saved = from?.modulesToSave[SCORE_WEIGHT];
  if (saved && (saved.shape[0] !== numLabels || saved.shape[1] !== model.config.hiddenSize)) {
    throw new Error(`adapter's ${SCORE_WEIGHT} has shape [${saved.shape}], this data needs [${shape}] (${numLabels} labels)`);
  }
  const rng = new Rng(seed ^ 0x5c0de);
  return { name: SCORE_WEIGHT, shape, init: saved?.data ?? Float32Array.from({ length: numLabels * model.config.hiddenSize }, () => rng.normal() * 0.02) };
}

/** full: every weight of the checkpoint; freeze: the weights of the last freeze_trainable_layers layers. */
export function weightTrainables(model: BaseModel, recipe: Recipe): InitializedTrainable[] {
  const layers = model.config.numHiddenLayers;
  const n = recipe.freeze_trainable_layers;
  if (recipe.finetuning_type === "freeze" && (n < 1 || n > layers)) {
    throw new Error(`freeze_trainable_layers must be between 1 and ${layers} (the model's layers), got ${n}`);
  }
  const firstTrained = recipe.finetuning_type === "full" ? 0 : layers - n;
  const names = [...expectedWeights(model.config).keys()].filter((name) => {
    if (!model.weights.has(name)) return false;
    if (recipe.finetuning_type === "full") return true;
    const m = /^model\.layers\.(\d+)\./.exec(name);
    return !!m && Number(m[1]) >= firstTrained;
  });
  return names.map((name) => {
    const w = model.weights.get(name);
    return { name, shape: w.shape, init: Float32Array.from(w.data) };
  });
}

/** Writes a full/freeze run's weights as a HF model folder (the base's files, its trained tensors replaced). */
export function saveTrainedModel(model: BaseModel, engine: StepEngine, trainable: readonly TrainableSpec[], adapter: Adapter, dir: string): string {
  const params: Record<string, SavedParam> = { ...adapter.modulesToSave };
  for (const t of trainable) if (!(t.name in params)) params[t.name] = { shape: [...t.shape], data: Float32Array.from(engine.param(t.name)) };
  return writeMergedModel(model, { modules: [], tensors: new Map() }, dir, { overwrite: true, modulesToSave: params }).dir;
}
