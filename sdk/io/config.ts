/**
 * Hugging Face `config.json` (LlamaForCausalLM, Qwen2ForCausalLM) and `generation_config.json`, read into
 * typed values with the defaults transformers applies, and clear errors naming the file and the key.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Architecture families tunelab builds graphs for. */
export type ModelArch = "llama" | "qwen2";

/** HF `architectures` names accepted, and the family each maps to. */
export const SUPPORTED_ARCHITECTURES: Readonly<Record<string, ModelArch>> = {
  LlamaForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
  LlamaForSequenceClassification: "llama",
  Qwen2ForSequenceClassification: "qwen2",
};

/** `rope_scaling` of config.json, keeping Hugging Face's field names. */
export type RopeScaling =
  | {
      rope_type: "llama3";
      factor: number;
      low_freq_factor: number;
      high_freq_factor: number;
      original_max_position_embeddings: number;
    }
  | { rope_type: "linear"; factor: number }
  | { rope_type: "dynamic"; factor: number; original_max_position_embeddings?: number }
  | {
      rope_type: "yarn";
      factor: number;
      original_max_position_embeddings?: number;
      beta_fast?: number;
      beta_slow?: number;
      mscale?: number;
      mscale_all_dim?: number;
      attention_factor?: number;
    };

/** A parsed model config.json (camelCase; HF key in each comment where the name differs). */
export interface ModelConfig {
  /** `architectures[0]`, e.g. "Qwen2ForCausalLM". */
  architecture: string;
  /** Family of `architecture`. */
  arch: ModelArch;
  /** `model_type` ("llama" or "qwen2"). */
  modelType: string;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** `num_key_value_heads`; defaults to the number of attention heads. */
  numKeyValueHeads: number;
  /** `head_dim`; defaults to hidden_size / num_attention_heads. */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** `rope_scaling`, or null when absent or `rope_type: "default"`. */
  ropeScaling: RopeScaling | null;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  /** Whether q_proj, k_proj, v_proj have a bias (always for Qwen2; `attention_bias` for Llama). */
  qkvBias: boolean;
  /** Whether o_proj has a bias (Llama's `attention_bias`; never for Qwen2). */
  oProjBias: boolean;
  /** `mlp_bias` (Llama only): gate/up/down projections have biases. */
  mlpBias: boolean;
  /** `hidden_act` of the MLP; only "silu" (SwiGLU) is supported. */
  hiddenAct: "silu";
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  /** `eos_token_id`, always as a list (it may be a number or a list in the file). */
  eosTokenIds: number[];
  padTokenId: number | null;
  /** `torch_dtype` (or `dtype`), e.g. "bfloat16"; null when absent. */
  torchDtype: string | null;
  /** Qwen2's sliding window size when `use_sliding_window` is true, else null. */
  slidingWindow: number | null;
  /** The whole JSON object as read, for fields not modelled here. */
  raw: Record<string, unknown>;
}

/** A parsed generation_config.json; absent keys are undefined. */
export interface GenerationConfig {
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
  doSample?: boolean;
  bosTokenId?: number;
  /** `eos_token_id` as a list. */
  eosTokenIds?: number[];
  padTokenId?: number;
  raw: Record<string, unknown>;
}

/** Deepest nesting of arrays and objects accepted in a model or adapter JSON file. */
const MAX_JSON_DEPTH = 1000;

/** The deepest nesting of arrays and objects in a JSON text (counted without recursion). */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* backslash */) i++;
    } else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** About where the first invalid UTF-8 byte of `bytes` is: the length of its longest decodable prefix. */
function firstBadUtf8(bytes: Uint8Array): number {
  let lo = 0;
  let hi = bytes.length;
  // The longest valid prefix, by bisection (a cut inside a valid sequence is only "incomplete" with stream: true).
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, mid), { stream: true });
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  return lo;
}

/** Reads a JSON object from `file`, with errors naming the file. */
export function readJsonObject(file: string): Record<string, unknown> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  let text: string;
  try {
    // Strict, as Python's json.load is: a damaged byte must not silently become U+FFFD. A BOM is dropped.
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${file}: not valid UTF-8 (at byte ${firstBadUtf8(bytes)}); re-save the file as UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  // Deeper values would overflow the stack of whatever walks or prints them later (JSON.stringify in messages).
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) throw new Error(`${file}: JSON nested ${depth} levels deep, more than the ${MAX_JSON_DEPTH} accepted; the file is damaged`);
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`${file}: expected a JSON object`);
  }
  return json as Record<string, unknown>;
}

/** Typed field access on one JSON object, every error naming the file and key. */
class Fields {
  constructor(
    readonly obj: Record<string, unknown>,
    readonly source: string,
  ) {}

  private fail(key: string, expected: string): never {
    const got = this.obj[key];
    throw new Error(`${this.source}: "${key}" must be ${expected}, got ${JSON.stringify(got) ?? String(got)}`);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  int(key: string, min = 1): number {
    if (!this.has(key)) throw new Error(`${this.source}: missing required key "${key}" (an integer >= ${min})`);
    return this.optInt(key, min)!;
  }

  optInt(key: string, min = 0): number | undefined {
    if (!this.has(key)) return undefined;
    const v = this.obj[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) this.fail(key, `an integer >= ${min}`);
    return v as number;
  }

  positive(key: string, fallback?: number): number {
    if (!this.has(key)) {
      if (fallback === undefined) throw new Error(`${this.source}: missing required key "${key}" (a positive number)`);
      return fallback;
    }
    const v = this.obj[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) this.fail(key, "a positive number");
    return v as number;
  }

  optNumber(key: string, min = -Infinity): number | undefined {
    if (!this.has(key)) return undefined;
    const v = this.obj[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) this.fail(key, `a number >= ${min}`);
    return v as number;
  }

  bool(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const v = this.obj[key];
    if (typeof v !== "boolean") this.fail(key, "true or false");
    return v as boolean;
  }

  optString(key: string): string | undefined {
    if (!this.has(key)) return undefined;
    const v = this.obj[key];
    if (typeof v !== "string") this.fail(key, "a string");
    return v as string;
  }

  /** A token id or a list of them (eos_token_id may be either). */
  idList(key: string): number[] | undefined {
    if (!this.has(key)) return undefined;
    const v = this.obj[key];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0)) {
      this.fail(key, "a token id or a list of token ids");
    }
    return list as number[];
  }
}

function parseRopeScaling(raw: unknown, source: string): RopeScaling | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${source}: "rope_scaling" must be an object or null, got ${JSON.stringify(raw)}`);
  }
  const f = new Fields(raw as Record<string, unknown>, `${source} rope_scaling`);
  // Older configs name the kind "type"; transformers accepts both.
  const kind = f.optString("rope_type") ?? f.optString("type");
  if (kind === undefined) throw new Error(`${source}: "rope_scaling" needs "rope_type" (llama3, linear, dynamic or yarn)`);
  switch (kind) {
    case "default":
      return null;
    case "llama3":
      return {
        rope_type: "llama3",
        factor: f.positive("factor"),
        low_freq_factor: f.positive("low_freq_factor"),
        high_freq_factor: f.positive("high_freq_factor"),
        original_max_position_embeddings: f.int("original_max_position_embeddings"),
      };
    case "linear":
      return { rope_type: "linear", factor: f.positive("factor") };
    case "dynamic": {
      const out: RopeScaling = { rope_type: "dynamic", factor: f.positive("factor") };
      const orig = f.optInt("original_max_position_embeddings", 1);
      if (orig !== undefined) out.original_max_position_embeddings = orig;
      return out;
    }
    case "yarn": {
      const out: RopeScaling = { rope_type: "yarn", factor: f.positive("factor") };
      const orig = f.optInt("original_max_position_embeddings", 1);
      if (orig !== undefined) out.original_max_position_embeddings = orig;
      for (const k of ["beta_fast", "beta_slow", "mscale", "mscale_all_dim", "attention_factor"] as const) {
        const v = f.optNumber(k);
        if (v !== undefined) out[k] = v;
      }
      return out;
    }
    default:
      throw new Error(`${source}: rope_scaling.rope_type "${kind}" is not supported; expected llama3, linear, dynamic or yarn`);
  }
}

/** Validates a config.json object; `source` names it in errors. */
export function parseModelConfig(obj: Record<string, unknown>, source = "config.json"): ModelConfig {
  const f = new Fields(obj, source);
  const archs = obj.architectures;
  if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== "string") {
    throw new Error(`${source}: "architectures" must be a non-empty list such as ["LlamaForCausalLM"], got ${JSON.stringify(archs)}`);
  }
  const architecture = archs[0] as string;
  const arch = SUPPORTED_ARCHITECTURES[architecture];
  if (!arch) {
    throw new Error(`${source}: architecture "${architecture}" is not supported; expected one of ${Object.keys(SUPPORTED_ARCHITECTURES).join(", ")}`);
  }
  const hiddenSize = f.int("hidden_size");
  const numAttentionHeads = f.int("num_attention_heads");
  const numKeyValueHeads = f.optInt("num_key_value_heads", 1) ?? numAttentionHeads;
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new Error(`${source}: "num_attention_heads" (${numAttentionHeads}) must be a multiple of "num_key_value_heads" (${numKeyValueHeads})`);
  }
  let headDim = f.optInt("head_dim", 1);
  if (headDim === undefined) {
    if (hiddenSize % numAttentionHeads !== 0) {
      throw new Error(`${source}: "hidden_size" (${hiddenSize}) is not divisible by "num_attention_heads" (${numAttentionHeads}) and there is no "head_dim"`);
    }
    headDim = hiddenSize / numAttentionHeads;
  }
  const hiddenAct = f.optString("hidden_act") ?? "silu";
  if (hiddenAct !== "silu") throw new Error(`${source}: "hidden_act" "${hiddenAct}" is not supported; expected "silu"`);
  const attentionBias = f.bool("attention_bias", false);
  const mlpBias = f.bool("mlp_bias", false);
  if (arch === "qwen2" && mlpBias) throw new Error(`${source}: "mlp_bias" is not a Qwen2 option`);
  const vocabSize = f.int("vocab_size");
  const useSliding = arch === "qwen2" && f.bool("use_sliding_window", false);
  const bos = f.idList("bos_token_id");
  const pad = f.idList("pad_token_id");
  return {
    architecture,
    arch,
    modelType: f.optString("model_type") ?? arch,
    hiddenSize,
    intermediateSize: f.int("intermediate_size"),
    numHiddenLayers: f.int("num_hidden_layers"),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    rmsNormEps: f.positive("rms_norm_eps", 1e-6),
    ropeTheta: f.positive("rope_theta", 10000),
    ropeScaling: parseRopeScaling(obj.rope_scaling, source),
    vocabSize,
    tieWordEmbeddings: f.bool("tie_word_embeddings", false),
    qkvBias: arch === "qwen2" ? true : attentionBias,
    oProjBias: arch === "qwen2" ? false : attentionBias,
    mlpBias,
    hiddenAct: "silu",
    maxPositionEmbeddings: f.optInt("max_position_embeddings", 1) ?? (arch === "qwen2" ? 32768 : 2048),
    bosTokenId: bos ? bos[0] : null,
    eosTokenIds: f.idList("eos_token_id") ?? [],
    padTokenId: pad ? pad[0] : null,
    torchDtype: f.optString("torch_dtype") ?? f.optString("dtype") ?? null,
    slidingWindow: useSliding ? (f.optInt("sliding_window", 1) ?? null) : null,
    raw: obj,
  };
}

/** Reads `config.json` from a model folder (or the given file path). */
export function readModelConfig(dirOrFile: string): ModelConfig {
  const file = dirOrFile.endsWith(".json") ? dirOrFile : path.join(dirOrFile, "config.json");
  return parseModelConfig(readJsonObject(file), file);
}

/** Validates a generation_config.json object; `source` names it in errors. */
export function parseGenerationConfig(obj: Record<string, unknown>, source = "generation_config.json"): GenerationConfig {
  const f = new Fields(obj, source);
  const out: GenerationConfig = { raw: obj };
  const temperature = f.optNumber("temperature", 0);
  if (temperature !== undefined) out.temperature = temperature;
  const topP = f.optNumber("top_p", 0);
  if (topP !== undefined) {
    if (topP > 1) throw new Error(`${source}: "top_p" must be in [0, 1], got ${topP}`);
    out.topP = topP;
  }
  const topK = f.optInt("top_k", 0);
  if (topK !== undefined) out.topK = topK;
  const rep = f.optNumber("repetition_penalty", 0);
  if (rep !== undefined) {
    if (rep === 0) throw new Error(`${source}: "repetition_penalty" must be > 0`);
    out.repetitionPenalty = rep;
  }
  const maxNew = f.optInt("max_new_tokens", 1);
  if (maxNew !== undefined) out.maxNewTokens = maxNew;
  if (f.has("do_sample")) out.doSample = f.bool("do_sample", false);
  const bos = f.idList("bos_token_id");
  if (bos) out.bosTokenId = bos[0];
  const eos = f.idList("eos_token_id");
  if (eos) out.eosTokenIds = eos;
  const pad = f.idList("pad_token_id");
  if (pad) out.padTokenId = pad[0];
  return out;
}

/** Reads `generation_config.json` from a model folder; null when the folder has none. */
export function readGenerationConfig(dir: string): GenerationConfig | null {
  const file = path.join(dir, "generation_config.json");
  if (!fs.existsSync(file)) return null;
  return parseGenerationConfig(readJsonObject(file), file);
}

/** The linear layers of one decoder layer, by their HF module names. */
export const LINEAR_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
/** One of LINEAR_MODULES. */
export type LinearModule = (typeof LINEAR_MODULES)[number];

/** In/out features of a decoder linear layer (`q_proj` ... `down_proj`) for this config. */
export function linearFeatures(config: ModelConfig, module: string): { inFeatures: number; outFeatures: number } {
  const h = config.hiddenSize;
  const q = config.numAttentionHeads * config.headDim;
  const kv = config.numKeyValueHeads * config.headDim;
  switch (module) {
    case "q_proj":
      return { inFeatures: h, outFeatures: q };
    case "k_proj":
    case "v_proj":
      return { inFeatures: h, outFeatures: kv };
    case "o_proj":
      return { inFeatures: q, outFeatures: h };
    case "gate_proj":
    case "up_proj":
      return { inFeatures: h, outFeatures: config.intermediateSize };
    case "down_proj":
      return { inFeatures: config.intermediateSize, outFeatures: h };
    default:
      throw new Error(`unknown linear module "${module}"; expected one of ${LINEAR_MODULES.join(", ")}`);
  }
}

/** Full HF module path of a decoder linear layer, e.g. "model.layers.0.self_attn.q_proj". */
export function linearModulePath(layer: number, module: LinearModule): string {
  const group = module === "gate_proj" || module === "up_proj" || module === "down_proj" ? "mlp" : "self_attn";
  return `model.layers.${layer}.${group}.${module}`;
}

/** Number of classes of a sequence-classification config (`id2label`, else `num_labels`, else 2 as in transformers). */
export function numLabels(config: ModelConfig): number {
  const id2label = config.raw.id2label;
  if (typeof id2label === "object" && id2label !== null) return Object.keys(id2label).length;
  const n = config.raw.num_labels;
  return typeof n === "number" && Number.isSafeInteger(n) && n > 0 ? n : 2;
}

/** The HF weight names and shapes a checkpoint for this config must contain (row-major [out, in] for linears). */
export function expectedWeights(config: ModelConfig): Map<string, number[]> {
  const out = new Map<string, number[]>();
  out.set("model.embed_tokens.weight", [config.vocabSize, config.hiddenSize]);
  for (let l = 0; l < config.numHiddenLayers; l++) {
    for (const m of LINEAR_MODULES) {
      const { inFeatures, outFeatures } = linearFeatures(config, m);
      const p = linearModulePath(l, m);
      out.set(`${p}.weight`, [outFeatures, inFeatures]);
      const isQkv = m === "q_proj" || m === "k_proj" || m === "v_proj";
      const isMlp = m === "gate_proj" || m === "up_proj" || m === "down_proj";
      if ((isQkv && config.qkvBias) || (m === "o_proj" && config.oProjBias) || (isMlp && config.mlpBias)) {
        out.set(`${p}.bias`, [outFeatures]);
      }
    }
    out.set(`model.layers.${l}.input_layernorm.weight`, [config.hiddenSize]);
    out.set(`model.layers.${l}.post_attention_layernorm.weight`, [config.hiddenSize]);
  }
  out.set("model.norm.weight", [config.hiddenSize]);
  if (config.architecture.endsWith("ForSequenceClassification")) out.set("score.weight", [numLabels(config), config.hiddenSize]);
  else if (!config.tieWordEmbeddings) out.set("lm_head.weight", [config.vocabSize, config.hiddenSize]);
  return out;
}
