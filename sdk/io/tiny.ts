/**
 * Tiny random Llama / Qwen2 models as complete Hugging Face folders, for tests, notebooks and workshops:
 * config.json, model.safetensors with transformers' exact tensor names, tokenizer.json,
 * tokenizer_config.json (with a chat template) and generation_config.json. Same options and seed, same bytes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Rng } from "../util/random";
import { writeFileAtomic, writeJsonAtomic } from "./atomic";
import { expectedWeights, parseModelConfig, type ModelConfig, type RopeScaling } from "./config";
import { writeModelWeights, type Dtype, type TensorInput } from "./safetensors";
import { tinyTokenizer, type TinyTokenizerKind, type TokenizerFiles } from "./tiny-tokenizers";

/** Options of createTinyModel (HF config names in camelCase). */
export interface TinyModelOptions {
  arch: "llama" | "qwen2";
  /** Folder to write (created if missing; existing model files in it are replaced). */
  out: string;
  seed: number;
  /** Default 64. */
  hiddenSize?: number;
  /** Default 2 * hiddenSize (kept different from hiddenSize so transposition bugs show). */
  intermediateSize?: number;
  /** Default 2. */
  numLayers?: number;
  /** Default 4. */
  numHeads?: number;
  /** Default 2 (grouped-query attention). */
  numKvHeads?: number;
  /** Default hiddenSize / numHeads. */
  headDim?: number;
  /** Default false. */
  tieWordEmbeddings?: boolean;
  /** Default "byte"; or the files of a tokenizer built elsewhere (such as a trained byte-level BPE). */
  tokenizer?: TinyTokenizerKind | TokenizerFiles;
  /** Storage dtype of the weights; default "float32". */
  dtype?: "float32" | "float16" | "bfloat16";
  /** Default 10000 (llama) or 1000000 (qwen2). */
  ropeTheta?: number;
  ropeScaling?: RopeScaling | null;
  /** Default 1e-5 (llama) or 1e-6 (qwen2). */
  rmsNormEps?: number;
  /** Default 2048. */
  maxPositionEmbeddings?: number;
  /** Llama only: q/k/v/o biases (`attention_bias`). Default false. */
  attentionBias?: boolean;
  /** Llama only: MLP biases (`mlp_bias`). Default false. */
  mlpBias?: boolean;
  /** Standard deviation of the random weights; default 0.02 (transformers' initializer_range). */
  initStd?: number;
}

/** What createTinyModel wrote. */
export interface TinyModelInfo {
  dir: string;
  config: ModelConfig;
  /** Tensor names and shapes written to model.safetensors. */
  tensors: Map<string, number[]>;
}

const DTYPE_OF: Record<NonNullable<TinyModelOptions["dtype"]>, Dtype> = { float32: "F32", float16: "F16", bfloat16: "BF16" };

/** FNV-1a hash of a string, so each tensor's random stream depends only on the seed and its name. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`createTinyModel: ${name} must be a positive integer, got ${value}`);
  return v;
}

/** The config.json object for these options and vocabulary. */
function configJson(o: TinyModelOptions, vocab: { vocabSize: number; bosTokenId: number | null; eosTokenIds: number[] }): Record<string, unknown> {
  const hidden = positiveInt("hiddenSize", o.hiddenSize, 64);
  const heads = positiveInt("numHeads", o.numHeads, 4);
  const kvHeads = positiveInt("numKvHeads", o.numKvHeads, 2);
  if (heads % kvHeads !== 0) throw new Error(`createTinyModel: numHeads (${heads}) must be a multiple of numKvHeads (${kvHeads})`);
  if (o.headDim === undefined && hidden % heads !== 0) {
    throw new Error(`createTinyModel: hiddenSize (${hidden}) must be divisible by numHeads (${heads}), or give headDim`);
  }
  const headDim = positiveInt("headDim", o.headDim, hidden / heads);
  if (headDim % 2 !== 0) throw new Error(`createTinyModel: head dimension ${headDim} must be even for rotary embeddings`);
  const llama = o.arch === "llama";
  if (!llama && (o.attentionBias || o.mlpBias)) throw new Error("createTinyModel: attentionBias and mlpBias are Llama options");
  const base: Record<string, unknown> = {
    architectures: [llama ? "LlamaForCausalLM" : "Qwen2ForCausalLM"],
    model_type: llama ? "llama" : "qwen2",
    hidden_act: "silu",
    hidden_size: hidden,
    intermediate_size: positiveInt("intermediateSize", o.intermediateSize, 2 * hidden),
    num_hidden_layers: positiveInt("numLayers", o.numLayers, 2),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    initializer_range: o.initStd ?? 0.02,
    max_position_embeddings: positiveInt("maxPositionEmbeddings", o.maxPositionEmbeddings, 2048),
    rms_norm_eps: o.rmsNormEps ?? (llama ? 1e-5 : 1e-6),
    rope_theta: o.ropeTheta ?? (llama ? 10000 : 1000000),
    rope_scaling: o.ropeScaling ?? null,
    tie_word_embeddings: o.tieWordEmbeddings ?? false,
    torch_dtype: o.dtype ?? "float32",
    use_cache: true,
    vocab_size: vocab.vocabSize,
    bos_token_id: vocab.bosTokenId,
    eos_token_id: vocab.eosTokenIds[0],
  };
  if (llama) {
    base.attention_bias = o.attentionBias ?? false;
    base.attention_dropout = 0.0;
    base.mlp_bias = o.mlpBias ?? false;
    base.pretraining_tp = 1;
  } else {
    base.attention_dropout = 0.0;
    base.use_sliding_window = false;
    base.sliding_window = null;
    base.max_window_layers = base.num_hidden_layers;
  }
  return base;
}

/** Writes a complete random HF model folder and returns what it wrote. */
export function createTinyModel(options: TinyModelOptions): TinyModelInfo {
  if (options.arch !== "llama" && options.arch !== "qwen2") {
    throw new Error(`createTinyModel: arch must be "llama" or "qwen2", got ${JSON.stringify(options.arch)}`);
  }
  if (!options.out) throw new Error("createTinyModel: out (the folder to write) is required");
  if (!Number.isSafeInteger(options.seed)) throw new Error(`createTinyModel: seed must be an integer, got ${options.seed}`);
  const dtypeName = options.dtype ?? "float32";
  const dtype = DTYPE_OF[dtypeName];
  if (!dtype) throw new Error(`createTinyModel: dtype must be float32, float16 or bfloat16, got ${JSON.stringify(options.dtype)}`);
  const std = options.initStd ?? 0.02;

  const tok = typeof options.tokenizer === "object" ? options.tokenizer : tinyTokenizer(options.tokenizer ?? "byte", options.arch);
  const json = configJson(options, tok);
  const config = parseModelConfig(json, path.join(options.out, "config.json"));
  const shapes = expectedWeights(config);

  const tensors: Record<string, TensorInput> = {};
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith("layernorm.weight") || name === "model.norm.weight") data.fill(1);
    else {
      const rng = new Rng(Math.imul(options.seed, 0x9e3779b1) ^ hashName(name));
      for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    }
    tensors[name] = { dtype, shape, data };
  }

  fs.mkdirSync(options.out, { recursive: true });
  // A separate chat template file would override the one written into tokenizer_config.json.
  for (const stale of ["chat_template.jinja", "chat_template.json"]) {
    fs.rmSync(path.join(options.out, stale), { force: true });
  }
  writeModelWeights(options.out, tensors, { maxShardBytes: Number.MAX_SAFE_INTEGER });
  writeJsonAtomic(path.join(options.out, "config.json"), json);
  writeFileAtomic(path.join(options.out, "tokenizer.json"), tok.tokenizerJsonText ?? JSON.stringify(tok.tokenizerJson, null, 2));
  writeJsonAtomic(path.join(options.out, "tokenizer_config.json"), tok.tokenizerConfig);
  const generation: Record<string, unknown> = {
    ...(tok.bosTokenId !== null ? { bos_token_id: tok.bosTokenId } : {}),
    eos_token_id: tok.eosTokenIds.length === 1 ? tok.eosTokenIds[0] : tok.eosTokenIds,
    ...(tok.padTokenId !== null ? { pad_token_id: tok.padTokenId } : {}),
    do_sample: true,
    temperature: 0.6,
    top_p: 0.95,
    top_k: 20,
    repetition_penalty: 1.0,
    max_new_tokens: 128,
  };
  writeJsonAtomic(path.join(options.out, "generation_config.json"), generation);
  return { dir: options.out, config, tensors: shapes };
}
