/**
 * LoRA adapters in PEFT's on-disk format, so PEFT, transformers and LLaMA-Factory load what tunelab saves
 * and the other way round: `adapter_config.json` (LoraConfig's fields, snake_case) and
 * `adapter_model.safetensors` with PEFT's tensor names. PEFT strips the adapter name when saving, so
 * a LoRA pair is `base_model.model.<module>.lora_A.weight` [r, in] and `...lora_B.weight` [out, r],
 * and a `modules_to_save` parameter (e.g. the classification head) is `base_model.model.score.weight`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeJsonAtomic } from "./atomic";
import { linearFeatures, readJsonObject, type ModelConfig } from "./config";
import { SafetensorsFile, toFloat32, writeSafetensors, type TensorInput } from "./safetensors";

/** PEFT task types tunelab produces. */
export type PeftTaskType = "CAUSAL_LM" | "SEQ_CLS";

/** PEFT's LoraConfig as stored in adapter_config.json (camelCase here, snake_case on disk). */
export interface LoraAdapterConfig {
  peftType: "LORA";
  /** Rank (`r`). */
  r: number;
  loraAlpha: number;
  loraDropout: number;
  /** Module names (e.g. ["q_proj", "v_proj"]), "all-linear", or a regular expression string matched against full module paths. */
  targetModules: string[] | string;
  /** rsLoRA: scale by alpha / sqrt(r) instead of alpha / r. */
  useRslora: boolean;
  /** Only "none" is supported (no bias training). */
  bias: "none";
  taskType: PeftTaskType | null;
  baseModelNameOrPath: string | null;
  /** Modules trained fully and saved whole, e.g. ["score"] for sequence classification. */
  modulesToSave: string[] | null;
  /** Must be false for Llama/Qwen2 (their linears store [out, in]). */
  fanInFanOut: false;
  inferenceMode: boolean;
  /** true (A random, B zero, as PEFT's default), false, or a PEFT init name such as "gaussian". */
  initLoraWeights: boolean | string;
  /** Per-module rank overrides (PEFT `rank_pattern`). */
  rankPattern: Record<string, number>;
  /** Per-module alpha overrides (PEFT `alpha_pattern`). */
  alphaPattern: Record<string, number>;
  layersToTransform: number[] | null;
  revision: string | null;
  /** adapter_config.json keys not modelled here, written back unchanged. */
  extra: Record<string, unknown>;
}

/** The two LoRA matrices of one linear layer, row-major: A is [rank, inFeatures], B is [outFeatures, rank]. */
export interface LoraWeights {
  A: Float32Array;
  B: Float32Array;
  rank: number;
  inFeatures: number;
  outFeatures: number;
}

/** One fully trained parameter saved through `modules_to_save`. */
export interface SavedParam {
  shape: number[];
  data: Float32Array;
}

/** An adapter in memory: its config, LoRA pairs keyed by module path (e.g. "model.layers.0.self_attn.q_proj"),
 * and modules_to_save parameters keyed by parameter path (e.g. "score.weight"). */
export interface Adapter {
  config: LoraAdapterConfig;
  lora: Record<string, LoraWeights>;
  modulesToSave: Record<string, SavedParam>;
}

/** File names of a PEFT adapter folder. */
export const ADAPTER_CONFIG_NAME = "adapter_config.json";
export const ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors";
/** Prefix PEFT puts before every module path (PeftModel -> LoraModel -> the transformers model). */
export const PEFT_PREFIX = "base_model.model.";

/** A LoraConfig with PEFT's defaults for whatever is not given. */
export function makeLoraConfig(options: Partial<LoraAdapterConfig> & { targetModules: string[] | string }): LoraAdapterConfig {
  const config: LoraAdapterConfig = {
    peftType: "LORA",
    r: 8,
    loraAlpha: 8,
    loraDropout: 0,
    useRslora: false,
    bias: "none",
    taskType: "CAUSAL_LM",
    baseModelNameOrPath: null,
    modulesToSave: null,
    fanInFanOut: false,
    inferenceMode: true,
    initLoraWeights: true,
    rankPattern: {},
    alphaPattern: {},
    layersToTransform: null,
    revision: null,
    extra: {},
    ...options,
  };
  validateConfig(config, "LoRA config");
  return config;
}

function validateConfig(c: LoraAdapterConfig, source: string): void {
  const bad = (key: string, expected: string, got: unknown): never => {
    throw new Error(`${source}: "${key}" must be ${expected}, got ${JSON.stringify(got)}`);
  };
  if (c.peftType !== "LORA") bad("peft_type", '"LORA"', c.peftType);
  if (!Number.isSafeInteger(c.r) || c.r < 1) bad("r", "a positive integer", c.r);
  if (typeof c.loraAlpha !== "number" || !(c.loraAlpha > 0)) bad("lora_alpha", "a positive number", c.loraAlpha);
  if (typeof c.loraDropout !== "number" || !(c.loraDropout >= 0 && c.loraDropout < 1)) bad("lora_dropout", "a number in [0, 1)", c.loraDropout);
  const t = c.targetModules;
  if (!(typeof t === "string" ? t.length > 0 : Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === "string" && x))) {
    bad("target_modules", 'a non-empty list of module names, "all-linear", or a regex string', t);
  }
  if (typeof t === "string" && t !== "all-linear") {
    try {
      new RegExp(t);
    } catch {
      bad("target_modules", "a valid regular expression", t);
    }
  }
  if (c.bias !== "none") bad("bias", '"none" (bias training is not supported)', c.bias);
  if (c.fanInFanOut !== false) bad("fan_in_fan_out", "false (Llama/Qwen2 linears are [out, in])", c.fanInFanOut);
  if (c.taskType !== null && c.taskType !== "CAUSAL_LM" && c.taskType !== "SEQ_CLS") bad("task_type", '"CAUSAL_LM", "SEQ_CLS" or null', c.taskType);
  if (c.modulesToSave !== null && !(Array.isArray(c.modulesToSave) && c.modulesToSave.every((x) => typeof x === "string" && x))) {
    bad("modules_to_save", "a list of module names or null", c.modulesToSave);
  }
  if (typeof c.useRslora !== "boolean") bad("use_rslora", "true or false", c.useRslora);
  for (const [k, v] of Object.entries(c.rankPattern)) if (!Number.isSafeInteger(v) || v < 1) bad(`rank_pattern.${k}`, "a positive integer", v);
  for (const [k, v] of Object.entries(c.alphaPattern)) if (typeof v !== "number" || !(v > 0)) bad(`alpha_pattern.${k}`, "a positive number", v);
}

/** The first pattern key matching `modulePath` the way PEFT matches rank_pattern/alpha_pattern keys. */
function patternValue(pattern: Record<string, number>, modulePath: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) {
    if (new RegExp(`^(?:.*\\.)?(?:${key})$`).test(modulePath)) return value;
  }
  return undefined;
}

/** The LoRA rank used for one module (rank_pattern, else r). */
export function loraRank(config: LoraAdapterConfig, modulePath: string): number {
  return patternValue(config.rankPattern, modulePath) ?? config.r;
}

/** The factor the LoRA product B·A is scaled by for one module: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(config: LoraAdapterConfig, modulePath: string): number {
  const r = loraRank(config, modulePath);
  const alpha = patternValue(config.alphaPattern, modulePath) ?? config.loraAlpha;
  return config.useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** Whether PEFT would put a LoRA layer on `modulePath` given `target_modules` (name suffix match, regex fullmatch, or all-linear). */
export function isTargeted(config: LoraAdapterConfig, modulePath: string): boolean {
  const t = config.targetModules;
  if (t === "all-linear") return true;
  if (typeof t === "string") return new RegExp(`^(?:${t})$`).test(modulePath);
  return t.some((name) => modulePath === name || modulePath.endsWith("." + name));
}

/** Whether a module path is one of config.modulesToSave (PEFT matches by suffix). */
function isSavedModule(config: LoraAdapterConfig, modulePath: string): boolean {
  return (config.modulesToSave ?? []).some((name) => modulePath === name || modulePath.endsWith("." + name));
}

/** adapter_config.json's JSON object for a config (snake_case; unknown keys from `extra` kept). */
export function loraConfigToJson(c: LoraAdapterConfig): Record<string, unknown> {
  return {
    ...c.extra,
    alpha_pattern: c.alphaPattern,
    base_model_name_or_path: c.baseModelNameOrPath,
    bias: c.bias,
    fan_in_fan_out: c.fanInFanOut,
    inference_mode: c.inferenceMode,
    init_lora_weights: c.initLoraWeights,
    layers_to_transform: c.layersToTransform,
    lora_alpha: c.loraAlpha,
    lora_dropout: c.loraDropout,
    modules_to_save: c.modulesToSave,
    peft_type: c.peftType,
    r: c.r,
    rank_pattern: c.rankPattern,
    revision: c.revision,
    target_modules: c.targetModules,
    task_type: c.taskType,
    use_dora: false,
    use_rslora: c.useRslora,
  };
}

const MODELLED_KEYS = new Set(Object.keys(loraConfigToJson(makeLoraConfig({ targetModules: ["q_proj"] }))));

/** Parses an adapter_config.json object; `source` names it in errors. */
export function parseLoraConfig(obj: Record<string, unknown>, source = ADAPTER_CONFIG_NAME): LoraAdapterConfig {
  const peftType = obj.peft_type;
  if (peftType !== "LORA") {
    throw new Error(`${source}: "peft_type" must be "LORA" (tunelab reads LoRA adapters only), got ${JSON.stringify(peftType)}`);
  }
  if (obj.use_dora === true) throw new Error(`${source}: "use_dora" is true; DoRA adapters are not supported`);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!MODELLED_KEYS.has(k)) extra[k] = v;
  const orNull = <T>(v: unknown): T | null => (v === undefined ? null : (v as T | null));
  const config: LoraAdapterConfig = {
    peftType: "LORA",
    r: (obj.r ?? 8) as number,
    loraAlpha: (obj.lora_alpha ?? 8) as number,
    loraDropout: (obj.lora_dropout ?? 0) as number,
    targetModules: obj.target_modules as string[] | string,
    useRslora: (obj.use_rslora ?? false) as boolean,
    bias: (obj.bias ?? "none") as "none",
    taskType: orNull<PeftTaskType>(obj.task_type),
    baseModelNameOrPath: orNull<string>(obj.base_model_name_or_path),
    modulesToSave: orNull<string[]>(obj.modules_to_save),
    fanInFanOut: (obj.fan_in_fan_out ?? false) as false,
    inferenceMode: (obj.inference_mode ?? true) as boolean,
    initLoraWeights: (obj.init_lora_weights ?? true) as boolean | string,
    rankPattern: (obj.rank_pattern ?? {}) as Record<string, number>,
    alphaPattern: (obj.alpha_pattern ?? {}) as Record<string, number>,
    layersToTransform: orNull<number[]>(obj.layers_to_transform),
    revision: orNull<string>(obj.revision),
    extra,
  };
  if (typeof config.rankPattern !== "object" || config.rankPattern === null) {
    throw new Error(`${source}: "rank_pattern" must be an object`);
  }
  if (typeof config.alphaPattern !== "object" || config.alphaPattern === null) {
    throw new Error(`${source}: "alpha_pattern" must be an object`);
  }
  validateConfig(config, source);
  return config;
}

/** Options of saveAdapter. */
export interface SaveAdapterOptions {
  /** Element type of the saved tensors (default F32). */
  dtype?: "F32" | "F16" | "BF16";
}

/** The PEFT tensor dict of an adapter, checking every shape against the config. */
function adapterTensors(adapter: Adapter, dtype: "F32" | "F16" | "BF16", file: string): Record<string, TensorInput> {
  const { config } = adapter;
  const tensors: Record<string, TensorInput> = {};
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
    tensors[`${PEFT_PREFIX}${modulePath}.lora_A.weight`] = { dtype, shape: [rank, w.inFeatures], data: w.A };
    tensors[`${PEFT_PREFIX}${modulePath}.lora_B.weight`] = { dtype, shape: [w.outFeatures, rank], data: w.B };
  }
  for (const [paramPath, p] of Object.entries(adapter.modulesToSave)) {
    const modulePath = paramPath.slice(0, paramPath.lastIndexOf("."));
    if (!modulePath || !isSavedModule(config, modulePath)) {
      throw new Error(
        `${file}: parameter "${paramPath}" is not in a module listed in modules_to_save ${JSON.stringify(config.modulesToSave)}`,
      );
    }
    tensors[`${PEFT_PREFIX}${paramPath}`] = { dtype, shape: p.shape, data: p.data };
  }
  return tensors;
}

/**
 * Writes `adapter` as a PEFT adapter folder (created if missing): adapter_model.safetensors, then
 * adapter_config.json, each written atomically.
 */
export function saveAdapter(dir: string, adapter: Adapter, options: SaveAdapterOptions = {}): void {
  validateConfig(adapter.config, `${path.join(dir, ADAPTER_CONFIG_NAME)}`);
  fs.mkdirSync(dir, { recursive: true });
  const weightsPath = path.join(dir, ADAPTER_WEIGHTS_NAME);
  const tensors = adapterTensors(adapter, options.dtype ?? "F32", weightsPath);
  if (Object.keys(tensors).length === 0) throw new Error(`${weightsPath}: the adapter has no tensors to save`);
  // transformers refuses safetensors files without format metadata in some load paths; PEFT writes "pt".
  writeSafetensors(weightsPath, tensors, { format: "pt" });
  writeJsonAtomic(path.join(dir, ADAPTER_CONFIG_NAME), loraConfigToJson(adapter.config));
}

/** Reads a PEFT LoRA adapter folder; every tensor is returned as float32. */
export function loadAdapter(dir: string): Adapter {
  const configPath = path.join(dir, ADAPTER_CONFIG_NAME);
  if (!fs.existsSync(configPath)) throw new Error(`${dir}: not a PEFT adapter folder (no ${ADAPTER_CONFIG_NAME})`);
  const config = parseLoraConfig(readJsonObject(configPath), configPath);
  const weightsPath = path.join(dir, ADAPTER_WEIGHTS_NAME);
  if (!fs.existsSync(weightsPath)) {
    const bin = fs.existsSync(path.join(dir, "adapter_model.bin"));
    throw new Error(
      `${dir}: no ${ADAPTER_WEIGHTS_NAME}` +
        (bin ? " (only adapter_model.bin, a pickle file tunelab does not read; re-save it with safe_serialization=True)" : ""),
    );
  }
  const file = SafetensorsFile.open(weightsPath);
  try {
    const halves = new Map<string, { A?: { shape: number[]; data: Float32Array }; B?: { shape: number[]; data: Float32Array } }>();
    const modulesToSave: Record<string, SavedParam> = {};
    for (const name of file.names()) {
      const where = `${weightsPath}: tensor "${name}"`;
      if (!name.startsWith(PEFT_PREFIX)) throw new Error(`${where}: PEFT tensor names start with "${PEFT_PREFIX}"`);
      const rest = name.slice(PEFT_PREFIX.length);
      const t = file.read(name);
      if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "F64") {
        throw new Error(`${where}: dtype ${t.dtype}; adapter tensors must be floating point`);
      }
      const m = /^(.+)\.lora_([AB])\.weight$/.exec(rest);
      if (m) {
        if (t.shape.length !== 2) throw new Error(`${where}: LoRA weights must be 2-D, got shape [${t.shape.join(", ")}]`);
        const entry = halves.get(m[1]) ?? {};
        entry[m[2] as "A" | "B"] = { shape: t.shape, data: toFloat32(t) };
        halves.set(m[1], entry);
        continue;
      }
      if (/\.lora_(embedding_[AB]|magnitude_vector)\b/.test(rest)) {
        throw new Error(`${where}: embedding LoRA and DoRA tensors are not supported`);
      }
      const modulePath = rest.slice(0, rest.lastIndexOf("."));
      if (!isSavedModule(config, modulePath)) {
        throw new Error(
          `${where}: neither a lora_A/lora_B weight nor in modules_to_save ${JSON.stringify(config.modulesToSave)}`,
        );
      }
      modulesToSave[rest] = { shape: t.shape, data: toFloat32(t) };
    }
    const lora: Record<string, LoraWeights> = {};
    for (const [modulePath, { A, B }] of halves) {
      const where = `${weightsPath}: LoRA module "${modulePath}"`;
      if (!A || !B) throw new Error(`${where}: has lora_${A ? "A" : "B"} but no lora_${A ? "B" : "A"}`);
      const rank = A.shape[0];
      if (B.shape[1] !== rank) {
        throw new Error(`${where}: lora_A is [${A.shape.join(", ")}] and lora_B is [${B.shape.join(", ")}]; B's columns must equal A's rows`);
      }
      const expected = loraRank(config, modulePath);
      if (rank !== expected) throw new Error(`${where}: rank ${rank} in the weights but ${configPath} gives r = ${expected}`);
      lora[modulePath] = { A: A.data, B: B.data, rank, inFeatures: A.shape[1], outFeatures: B.shape[0] };
    }
    return { config, lora, modulesToSave };
  } finally {
    file.close();
  }
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
    if (paramPath === "score.weight" && (p.shape.length !== 2 || p.shape[1] !== model.hiddenSize)) {
      throw new Error(`${source}: "score.weight" is [${p.shape.join(", ")}] but must be [numLabels, ${model.hiddenSize}]`);
    }
  }
}
