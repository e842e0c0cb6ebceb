/**
 * A LoRA adapter in memory (config, LoRA pairs, modules_to_save parameters) and its conversions: to and from the
 * PEFT files (io/peft reads and writes them; the checks that need the config's meaning are made here) and from
 * the tensors a training run holds.
 */
import { linearFeatures, type ModelConfig } from "../../io/config";
import { adapterPaths, PEFT_PREFIX, readAdapterConfigJson, readAdapterTensors, writeAdapterFiles, type PeftTensors, type SavedParam, type WriteAdapterOptions } from "../../io/peft";
import { SCORE_WEIGHT } from "../tasks";
import { isSavedModule, isTargeted, LoraConfig, loraConfigToJson, loraRank, parseLoraConfig, validateLoraConfig } from "./config";
import { LoraModule, loraNames, type LoraWeights } from "./modules";

export type { SavedParam };

/** An adapter in memory: its config, LoRA pairs keyed by module path (e.g. "model.layers.0.self_attn.q_proj"),
 * and modules_to_save parameters keyed by parameter path (e.g. "score.weight"). */
export interface Adapter {
  config: LoraConfig;
  lora: Record<string, LoraWeights>;
  modulesToSave: Record<string, SavedParam>;
}

/** Options of saveAdapter. */
export type SaveAdapterOptions = WriteAdapterOptions;

/** The PEFT tensors of an adapter, checking every module and shape against the config. */
function peftTensors(adapter: Adapter, file: string): PeftTensors {
  const { config } = adapter;
  const out: PeftTensors = { lora: {}, params: {} };
  for (const [modulePath, w] of Object.entries(adapter.lora)) {
    const where = `${file}: LoRA module "${modulePath}"`;
    if (!modulePath || modulePath.startsWith(PEFT_PREFIX) || /\.lora_[AB]\b/.test(modulePath)) {
      throw new Error(`${where}: key must be a plain module path such as "model.layers.0.self_attn.q_proj"`);
    }
    if (!isTargeted(config, modulePath)) {
      throw new Error(`${where}: not covered by target_modules ${JSON.stringify(config.targetModules)}; PEFT would not load it`);
    }
    const rank = loraRank(config, modulePath);
    if (w.rank !== rank) throw new Error(`${where}: rank ${w.rank} but the config gives r = ${rank}`);
    for (const [k, v] of Object.entries({ inFeatures: w.inFeatures, outFeatures: w.outFeatures })) {
      if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${where}: ${k} must be a positive integer, got ${v}`);
    }
    if (!(w.A instanceof Float32Array) || w.A.length !== rank * w.inFeatures) {
      throw new Error(`${where}: A must be a Float32Array of rank*inFeatures = ${rank}*${w.inFeatures} values, got ${w.A?.length}`);
    }
    if (!(w.B instanceof Float32Array) || w.B.length !== w.outFeatures * rank) {
      throw new Error(`${where}: B must be a Float32Array of outFeatures*rank = ${w.outFeatures}*${rank} values, got ${w.B?.length}`);
    }
    const pair = { A: { shape: [rank, w.inFeatures], data: w.A }, B: { shape: [w.outFeatures, rank], data: w.B } };
    if (config.useDora !== (w.magnitude !== undefined)) {
      throw new Error(`${where}: ${config.useDora ? "use_dora is true but the module has no magnitude" : "has a DoRA magnitude but use_dora is false"}`);
    }
    if (w.magnitude && !(w.magnitude instanceof Float32Array && w.magnitude.length === w.outFeatures)) {
      throw new Error(`${where}: magnitude must be a Float32Array of outFeatures = ${w.outFeatures} values, got ${w.magnitude?.length}`);
    }
    out.lora[modulePath] = w.magnitude ? { ...pair, magnitude: { shape: [w.outFeatures], data: w.magnitude } } : pair;
  }
  for (const [paramPath, p] of Object.entries(adapter.modulesToSave)) {
    const modulePath = paramPath.slice(0, paramPath.lastIndexOf("."));
    if (!modulePath || !isSavedModule(config, modulePath)) {
      throw new Error(`${file}: parameter "${paramPath}" is not in a module listed in modules_to_save ${JSON.stringify(config.modulesToSave)}`);
    }
    out.params[paramPath] = p;
  }
  return out;
}

/** Writes `adapter` as a PEFT adapter folder: adapter_model.safetensors, then adapter_config.json. */
export function saveAdapter(dir: string, adapter: Adapter, options: SaveAdapterOptions = {}): void {
  const paths = adapterPaths(dir);
  validateLoraConfig(adapter.config, paths.config);
  writeAdapterFiles(dir, loraConfigToJson(adapter.config), peftTensors(adapter, paths.weights), options);
}

/** Reads a PEFT LoRA adapter folder; every tensor is returned as float32. */
export function loadAdapter(dir: string): Adapter {
  const paths = adapterPaths(dir);
  const config = parseLoraConfig(readAdapterConfigJson(dir), paths.config);
  const tensors = readAdapterTensors(dir);
  const modulesToSave: Record<string, SavedParam> = {};
  for (const [paramPath, p] of Object.entries(tensors.params)) {
    if (!isSavedModule(config, paramPath.slice(0, paramPath.lastIndexOf(".")))) {
      throw new Error(
        `${paths.weights}: tensor "${PEFT_PREFIX}${paramPath}": neither a lora_A/lora_B weight nor in modules_to_save ${JSON.stringify(config.modulesToSave)}`,
      );
    }
    modulesToSave[paramPath] = p;
  }
  const lora: Record<string, LoraWeights> = {};
  for (const [modulePath, { A, B, magnitude }] of Object.entries(tensors.lora)) {
    const rank = A.shape[0];
    const expected = loraRank(config, modulePath);
    if (rank !== expected) throw new Error(`${paths.weights}: LoRA module "${modulePath}": rank ${rank} in the weights but ${paths.config} gives r = ${expected}`);
    if (config.useDora && !magnitude) throw new Error(`${paths.weights}: LoRA module "${modulePath}" has no lora_magnitude_vector but ${paths.config} sets use_dora`);
    if (!config.useDora && magnitude) {
      throw new Error(`${paths.weights}: LoRA module "${modulePath}" has a lora_magnitude_vector (DoRA) but ${paths.config} does not set use_dora: true`);
    }
    const w: LoraWeights = { A: A.data, B: B.data, rank, inFeatures: A.shape[1], outFeatures: B.shape[0] };
    lora[modulePath] = magnitude ? { ...w, magnitude: magnitude.data } : w;
  }
  return { config, lora, modulesToSave };
}

/**
 * Checks that every LoRA module of `adapter` is a decoder linear layer of the model described by
 * `model` (layer index in range, in/out features equal); throws naming the first mismatch.
 */
export function checkAdapterAgainstModel(adapter: Adapter, model: ModelConfig, source = "adapter"): void {
  for (const [modulePath, w] of Object.entries(adapter.lora)) {
    const m = /^model\.layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$/.exec(modulePath);
    if (!m) throw new Error(`${source}: LoRA module "${modulePath}" is not a decoder linear layer of a ${model.architecture}`);
    const layer = Number(m[1]);
    if (layer >= model.numHiddenLayers) {
      throw new Error(`${source}: LoRA module "${modulePath}" is in layer ${layer} but the model has ${model.numHiddenLayers} layers`);
    }
    const want = linearFeatures(model, m[3]);
    if (want.inFeatures !== w.inFeatures || want.outFeatures !== w.outFeatures) {
      throw new Error(
        `${source}: LoRA module "${modulePath}" is ${w.inFeatures} -> ${w.outFeatures} but the model's layer is ` +
          `${want.inFeatures} -> ${want.outFeatures}`,
      );
    }
  }
  for (const [paramPath, p] of Object.entries(adapter.modulesToSave)) {
    if (paramPath === SCORE_WEIGHT && (p.shape.length !== 2 || p.shape[1] !== model.hiddenSize)) {
      throw new Error(`${source}: "${SCORE_WEIGHT}" is [${p.shape.join(", ")}] but must be [numLabels, ${model.hiddenSize}]`);
    }
  }
}

/** Trainable tensors by name, as a training run holds them (StepEngine has this shape). */
export interface TrainableTensors {
  param(name: string): Float32Array;
}

/** A run's current tensors as an adapter: the LoRA pairs (and DoRA magnitudes) of `modules`, plus the classifier head when numLabels > 0. */
export function adapterFrom(tensors: TrainableTensors, modules: readonly LoraModule[], config: LoraConfig, numLabels: number, hidden: number): Adapter {
  const lora: Adapter["lora"] = {};
  for (const m of modules) {
    const n = loraNames(m.path);
    const w: LoraWeights = { A: Float32Array.from(tensors.param(n.A)), B: Float32Array.from(tensors.param(n.B)), rank: m.rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures };
    lora[m.path] = m.dora ? { ...w, magnitude: Float32Array.from(tensors.param(n.magnitude)) } : w;
  }
  const modulesToSave: Adapter["modulesToSave"] = {};
  if (numLabels > 0) modulesToSave[SCORE_WEIGHT] = { shape: [numLabels, hidden], data: Float32Array.from(tensors.param(SCORE_WEIGHT)) };
  return { config, lora, modulesToSave };
}
