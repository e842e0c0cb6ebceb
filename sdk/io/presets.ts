/**
 * Model presets: the published config.json of real checkpoints (DeepSeek-R1 distills, Qwen2.5, Llama 3.2),
 * written with random bf16 weights in the published shard layout, so memory and speed at real sizes can be
 * measured without downloading weights. Weights are streamed tensor by tensor (a 14B preset needs no more
 * memory than the 0.5B one) and are a function of the seed and the tensor name only.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "./atomic";
import { expectedWeights, parseModelConfig, type ModelConfig } from "./config";
import { assertModelOutput, writeModelMarker } from "./model-marker";
import { presetTokenizer, type PresetTokenizerKind } from "./preset-tokenizers";
import { float32ToBf16Bits } from "../util/float16";
import { writeModelStream, type ShardLayout, type StreamFill, type StreamTensor } from "./safetensors-writer";

/** A preset: the published files' values and where they were checked. */
export interface ModelPreset {
  /** The Hugging Face repository the values come from. */
  repo: string;
  /** One line for `--help` and docs. */
  summary: string;
  /** config.json exactly as published (key order too). */
  config: Record<string, unknown>;
  /** generation_config.json as published. */
  generationConfig: Record<string, unknown>;
  /** The published weight files: one model.safetensors, or this many shards. */
  layout: ShardLayout;
  tokenizer: PresetTokenizerKind;
}

/** No shard limit: one model.safetensors. */
const SINGLE: ShardLayout = { maxShardBytes: Number.MAX_SAFE_INTEGER };
/** DeepSeek's distills: shards of up to 8.72 GB (reproduces the published 7B and 14B shard sizes), named model-0000k-of-00000n (six digits for the count). */
const DEEPSEEK_SHARDS: ShardLayout = { maxShardBytes: 8_720_000_000, countDigits: 6 };

const R1_GENERATION = { _from_model_config: true, do_sample: true, temperature: 0.6, top_p: 0.95, transformers_version: "4.39.3" };

/** A published Qwen2 config.json of the R1 distills (they share every key but sizes, sliding window and eps). */
function r1Qwen(o: {
  hidden: number;
  intermediate: number;
  windowLayers: number;
  heads: number;
  layers: number;
  kvHeads: number;
  eps: number;
  theta: number;
  window: number;
  version: string;
  mrope: boolean;
  vocab: number;
}): Record<string, unknown> {
  return {
    architectures: ["Qwen2ForCausalLM"],
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151643,
    hidden_act: "silu",
    hidden_size: o.hidden,
    initializer_range: 0.02,
    intermediate_size: o.intermediate,
    max_position_embeddings: 131072,
    max_window_layers: o.windowLayers,
    model_type: "qwen2",
    num_attention_heads: o.heads,
    num_hidden_layers: o.layers,
    num_key_value_heads: o.kvHeads,
    rms_norm_eps: o.eps,
    rope_theta: o.theta,
    sliding_window: o.window,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
    transformers_version: o.version,
    use_cache: true,
    ...(o.mrope ? { use_mrope: false } : {}),
    use_sliding_window: false,
    vocab_size: o.vocab,
  };
}

/**
 * The presets. Sources (checked with the search tool): each repository's file listing on huggingface.co
 * (config.json size, weight file names and sizes), configs re-saved from it by others (which keep every value
 * but re-serialise sliding_window as null), and Lightning-AI/litgpt litgpt/config.py for the Llama distill.
 * The Qwen configs below serialise (json.dumps, indent 2) to exactly the published byte sizes: 679, 680, 664
 * and 659 bytes.
 */
export const PRESETS = {
  // huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B/tree/main: config.json 679 B, model.safetensors 3.55 GB;
  // values as in huggingface.co/oumi-ai/MiniMath-R1-1.5B/blob/main/config.json (_name_or_path: this repo).
  "deepseek-r1-distill-qwen-1.5b": {
    repo: "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    summary: "DeepSeek-R1-Distill-Qwen-1.5B: Qwen2, 28 layers, hidden 1536, 1.78B parameters, one 3.55 GB file",
    config: r1Qwen({
      hidden: 1536,
      intermediate: 8960,
      windowLayers: 21,
      heads: 12,
      layers: 28,
      kvHeads: 2,
      eps: 1e-6,
      theta: 10000,
      window: 4096,
      version: "4.44.0",
      mrope: true,
      vocab: 151936,
    }),
    // huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B/blob/main/generation_config.json
    generationConfig: { ...R1_GENERATION, bos_token_id: 151646, eos_token_id: 151643 },
    layout: SINGLE,
    tokenizer: "r1-distill-qwen",
  },
  // huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B/tree/main: config.json 680 B,
  // model-00001-of-000002.safetensors 8.61 GB + model-00002-of-000002.safetensors 6.62 GB; config quoted in full
  // (transformers_version 4.44.0, sliding_window 4096) in a GitHub repository's notes on running this model.
  "deepseek-r1-distill-qwen-7b": {
    repo: "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    summary: "DeepSeek-R1-Distill-Qwen-7B: Qwen2, 28 layers, hidden 3584, 7.6B parameters, 2 shards",
    config: r1Qwen({
      hidden: 3584,
      intermediate: 18944,
      windowLayers: 28,
      heads: 28,
      layers: 28,
      kvHeads: 4,
      eps: 1e-6,
      theta: 10000,
      window: 4096,
      version: "4.44.0",
      mrope: true,
      vocab: 152064,
    }),
    generationConfig: { ...R1_GENERATION, bos_token_id: 151646, eos_token_id: 151643 },
    layout: DEEPSEEK_SHARDS,
    tokenizer: "r1-distill-qwen",
  },
  // huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-14B/tree/main: config.json 664 B, 4 shards
  // model-0000k-of-000004 (8.71, 8.67, 8.67, 3.49 GB); values as in huggingface.co/neody/r1-14b-awq config.json
  // (saved from the deepseek-ai snapshot): rms_norm_eps 1e-5, rope_theta 1e6.
  "deepseek-r1-distill-qwen-14b": {
    repo: "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
    summary: "DeepSeek-R1-Distill-Qwen-14B: Qwen2, 48 layers, hidden 5120, 14.8B parameters, 4 shards",
    config: r1Qwen({
      hidden: 5120,
      intermediate: 13824,
      windowLayers: 48,
      heads: 40,
      layers: 48,
      kvHeads: 8,
      eps: 1e-5,
      theta: 1000000.0,
      window: 131072,
      version: "4.43.1",
      mrope: false,
      vocab: 152064,
    }),
    generationConfig: { ...R1_GENERATION, bos_token_id: 151646, eos_token_id: 151643 },
    layout: DEEPSEEK_SHARDS,
    tokenizer: "r1-distill-qwen",
  },
  // Lightning-AI/litgpt litgpt/config.py ("R1-Distill-Llama-8B", citing this repo's config.json) and
  // huggingface.co/casperhansen/deepseek-r1-distill-llama-8b-awq config.json (saved from the deepseek-ai
  // snapshot); files: model-00001-of-000002 and model-00002-of-000002.safetensors.
  "deepseek-r1-distill-llama-8b": {
    repo: "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    summary: "DeepSeek-R1-Distill-Llama-8B: Llama 3.1, 32 layers, hidden 4096, 8.0B parameters, 2 shards",
    config: {
      architectures: ["LlamaForCausalLM"],
      attention_bias: false,
      attention_dropout: 0.0,
      bos_token_id: 128000,
      eos_token_id: 128001,
      hidden_act: "silu",
      hidden_size: 4096,
      initializer_range: 0.02,
      intermediate_size: 14336,
      max_position_embeddings: 131072,
      mlp_bias: false,
      model_type: "llama",
      num_attention_heads: 32,
      num_hidden_layers: 32,
      num_key_value_heads: 8,
      pretraining_tp: 1,
      rms_norm_eps: 1e-5,
      rope_scaling: { factor: 8.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
      rope_theta: 500000.0,
      tie_word_embeddings: false,
      torch_dtype: "bfloat16",
      use_cache: true,
      vocab_size: 128256,
    },
    generationConfig: { ...R1_GENERATION, bos_token_id: 128000, eos_token_id: 128001 },
    layout: DEEPSEEK_SHARDS,
    tokenizer: "r1-distill-llama-byte",
  },
  // huggingface.co/Qwen/Qwen2.5-0.5B-Instruct: config.json 659 B, model.safetensors 988 MB; values as quoted
  // in a Rust test fixture "exactly what Qwen2.5-0.5B-Instruct ships" (max_window_layers 21, sliding_window 32768).
  "qwen2.5-0.5b-instruct": {
    repo: "Qwen/Qwen2.5-0.5B-Instruct",
    summary: "Qwen2.5-0.5B-Instruct: Qwen2, 24 layers, hidden 896, tied embeddings, 494M parameters, one 988 MB file",
    config: {
      architectures: ["Qwen2ForCausalLM"],
      attention_dropout: 0.0,
      bos_token_id: 151643,
      eos_token_id: 151645,
      hidden_act: "silu",
      hidden_size: 896,
      initializer_range: 0.02,
      intermediate_size: 4864,
      max_position_embeddings: 32768,
      max_window_layers: 21,
      model_type: "qwen2",
      num_attention_heads: 14,
      num_hidden_layers: 24,
      num_key_value_heads: 2,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000.0,
      sliding_window: 32768,
      tie_word_embeddings: true,
      torch_dtype: "bfloat16",
      transformers_version: "4.43.1",
      use_cache: true,
      use_sliding_window: false,
      vocab_size: 151936,
    },
    generationConfig: {
      bos_token_id: 151643,
      pad_token_id: 151643,
      do_sample: true,
      eos_token_id: [151645, 151643],
      repetition_penalty: 1.1,
      temperature: 0.7,
      top_p: 0.8,
      top_k: 20,
      transformers_version: "4.37.0",
    },
    layout: SINGLE,
    tokenizer: "qwen2.5",
  },
  // meta-llama/Llama-3.2-1B-Instruct: values as in huggingface.co/EmbeddedLLM/Llama-3.2-1B-Instruct-int4-asym-ov
  // config.json (saved from the meta-llama snapshot) and task-aware/Llama_3.2_1B_Instruct; one model.safetensors.
  "llama-3.2-1b-instruct": {
    repo: "meta-llama/Llama-3.2-1B-Instruct",
    summary: "Llama-3.2-1B-Instruct: Llama 3, 16 layers, hidden 2048, tied embeddings, 1.24B parameters, one file",
    config: {
      architectures: ["LlamaForCausalLM"],
      attention_bias: false,
      attention_dropout: 0.0,
      bos_token_id: 128000,
      eos_token_id: [128001, 128008, 128009],
      head_dim: 64,
      hidden_act: "silu",
      hidden_size: 2048,
      initializer_range: 0.02,
      intermediate_size: 8192,
      max_position_embeddings: 131072,
      mlp_bias: false,
      model_type: "llama",
      num_attention_heads: 32,
      num_hidden_layers: 16,
      num_key_value_heads: 8,
      pretraining_tp: 1,
      rms_norm_eps: 1e-5,
      rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
      rope_theta: 500000.0,
      tie_word_embeddings: true,
      torch_dtype: "bfloat16",
      use_cache: true,
      vocab_size: 128256,
    },
    generationConfig: { bos_token_id: 128000, do_sample: true, eos_token_id: [128001, 128008, 128009], temperature: 0.6, top_p: 0.9 },
    layout: SINGLE,
    tokenizer: "llama3-byte",
  },
} as const satisfies Record<string, ModelPreset>;

/** A preset name. */
export type PresetName = keyof typeof PRESETS;

/** The preset names, in declaration order. */
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** Whether `name` is a preset. */
export function isPresetName(name: string): name is PresetName {
  return Object.prototype.hasOwnProperty.call(PRESETS, name);
}

/** The preset's config, parsed as tunelab reads it. */
export function presetConfig(name: PresetName): ModelConfig {
  return parseModelConfig({ ...PRESETS[name].config }, `preset ${name}`);
}

/** The tensors of a preset (names, bf16, shapes) in transformers' module order. */
export function presetTensors(name: PresetName): StreamTensor[] {
  return [...expectedWeights(presetConfig(name))].map(([tensor, shape]) => ({ name: tensor, dtype: "BF16", shape }));
}

/** Standard deviation of the random linear and embedding weights (transformers' initializer_range). */
export const PRESET_INIT_STD = 0.02;

/** FNV-1a of the seed and a tensor name: each tensor's stream depends on nothing else. */
function tensorSeed(seed: number, name: string): number {
  let h = Math.imul(0x811c9dc5 ^ seed, 0x01000193);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Random bf16 weights: norms 1, biases 0, everything else uniform with standard deviation 0.02 (uniform rather
 * than normal because it is several times cheaper and only the scale matters for finite activations).
 */
export function presetWeightFill(seed: number): StreamFill {
  let state = 0;
  // Each 16-bit uniform maps to the bf16 of the centre of its bin on [-a, a]: two table lookups per 32-bit draw.
  const a = PRESET_INIT_STD * Math.sqrt(3); // uniform on [-a, a] has standard deviation a / sqrt(3)
  const table = float32ToBf16Bits(Float32Array.from({ length: 65536 }, (_, k) => ((k + 0.5) / 65536) * 2 * a - a));
  return (t, offset, out) => {
    if (t.dtype !== "BF16") throw new Error(`preset weights are bf16; tensor "${t.name}" is ${t.dtype}`);
    const bits = new Uint16Array(out.buffer, out.byteOffset, out.byteLength / 2);
    if (t.name.endsWith("norm.weight") || t.name.endsWith(".bias")) {
      bits.fill(t.name.endsWith(".bias") ? 0 : 0x3f80); // 0x3f80 is bf16 1.0
      return;
    }
    if (offset === 0) state = tensorSeed(seed, t.name);
    const n = bits.length;
    for (let i = 0; i < n; i += 2) {
      // mulberry32, inlined: this loop produces every weight of a 14B model.
      let x = (state = (state + 0x6d2b79f5) | 0);
      x = Math.imul(x ^ (x >>> 15), x | 1);
      x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
      x = (x ^ (x >>> 14)) >>> 0;
      bits[i] = table[x & 0xffff];
      if (i + 1 < n) bits[i + 1] = table[x >>> 16];
    }
  };
}

/** Options of createPresetModel. */
export interface PresetModelOptions {
  preset: PresetName;
  /** Folder to write; refused when it holds files tunelab did not write, unless `overwrite`. */
  out: string;
  seed: number;
  overwrite?: boolean;
}

/** What createPresetModel wrote. */
export interface PresetModelInfo {
  dir: string;
  config: ModelConfig;
  /** Weight files (shards then index, or model.safetensors). */
  files: string[];
  /** Bytes of tensor data (the index's metadata.total_size). */
  totalSize: number;
  parameters: number;
}

/** Writes a preset's folder: config, generation config, tokenizer files and streamed random bf16 weights. */
export function createPresetModel(options: PresetModelOptions): PresetModelInfo {
  const { preset, out, seed } = options;
  if (!isPresetName(preset)) throw new Error(`unknown preset "${String(preset)}"; expected one of ${PRESET_NAMES.join(", ")}`);
  if (!Number.isSafeInteger(seed)) throw new Error(`createPresetModel: seed must be an integer, got ${seed}`);
  assertModelOutput(out, options.overwrite ?? false);
  // Marked first, so a write that is interrupted can be redone without --overwrite.
  writeModelMarker(out, { preset, seed });
  const p: ModelPreset = PRESETS[preset];
  const config = presetConfig(preset);
  const tok = presetTokenizer(p.tokenizer);
  // A separate chat template file would override the one written into tokenizer_config.json.
  for (const stale of ["chat_template.jinja", "chat_template.json"]) fs.rmSync(path.join(out, stale), { force: true });
  const tensors = presetTensors(preset);
  const written = writeModelStream(out, tensors, presetWeightFill(seed), p.layout);
  writeJsonAtomic(path.join(out, "config.json"), p.config);
  writeJsonAtomic(path.join(out, "generation_config.json"), p.generationConfig);
  writeFileAtomic(path.join(out, "tokenizer.json"), JSON.stringify(tok.tokenizerJson));
  writeJsonAtomic(path.join(out, "tokenizer_config.json"), tok.tokenizerConfig);
  const parameters = tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
  return { dir: out, config, files: written.files, totalSize: written.totalSize, parameters };
}
