/**
 * GGUF export for llama.cpp and Ollama: the merged weights under llama.cpp's tensor names (with the Q/K row
 * permutation convert_hf_to_gguf.py applies to Llama), the architecture's hyperparameters, the tokenizer and chat
 * template as metadata, in F32, F16, Q8_0 or Q4_0; and an Ollama Modelfile beside the file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ModelConfig } from "../io/config";
import { float32ToF16Bits } from "../util/float16";
import { gv, writeGguf, type GgmlTypeName, type GgufTensor, type GgufValue } from "./gguf-file";
import { quantizeQ4_0, quantizeQ4_K, quantizeQ6_K, quantizeQ8_0 } from "./gguf-quant";
import { tokenizerMetadata } from "./gguf-tokenizer";
import type { MergedWeights } from "./merged-weights";
import { ollamaModelfile } from "./modelfile";

/** GGUF element types, named as convert_hf_to_gguf.py's --outtype (q4_k_m: llama-quantize's Q4_K_M mix). */
export type GgufOuttype = "f32" | "f16" | "q8_0" | "q4_0" | "q4_k_m";
export const GGUF_OUTTYPES: readonly GgufOuttype[] = ["f32", "f16", "q8_0", "q4_0", "q4_k_m"];

/** llama.cpp's general.file_type (`enum llama_ftype`) and the type of 2-D weights, per outtype. */
const OUTTYPE: Record<GgufOuttype, { fileType: number; matrix: GgmlTypeName }> = {
  f32: { fileType: 0, matrix: "F32" },
  f16: { fileType: 1, matrix: "F16" },
  q8_0: { fileType: 7, matrix: "Q8_0" },
  q4_0: { fileType: 2, matrix: "Q4_0" },
  q4_k_m: { fileType: 15, matrix: "Q4_K" },
};

/** llama-quant.cpp's use_more_bits: the layers whose attn_v / ffn_down Q4_K_M keeps in Q6_K. */
function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.floor(layers / 8);
  return layer < eighth || layer >= Math.floor((7 * layers) / 8) || (layer - eighth) % 3 === 2;
}

/**
 * The ggml type of one matrix: `matrix`, except in Q4_K_M (as llama-quantize chooses) output, and attn_v and
 * ffn_down of some layers, in Q6_K; a k-quant whose rows are not whole 256-value super-blocks falls back to Q8_0.
 */
function matrixType(hf: string, cols: number, outtype: GgufOuttype, layers: number, warnings: string[]): GgmlTypeName {
  const { matrix } = OUTTYPE[outtype];
  if (outtype !== "q4_k_m") return matrix;
  const layer = Number(/^model\.layers\.(\d+)\./.exec(hf)?.[1] ?? -1);
  const six = hf === "lm_head.weight" || ((/\.v_proj\.weight$/.test(hf) || /\.down_proj\.weight$/.test(hf)) && useMoreBits(layer, layers));
  const type: GgmlTypeName = six ? "Q6_K" : "Q4_K";
  if (cols % 256 === 0) return type;
  warnings.push(`${hf}: rows of ${cols} values are not whole 256-value super-blocks; stored as Q8_0 instead of ${type}`);
  return "Q8_0";
}

/** Options of exportGguf. */
export interface GgufExportOptions {
  /** Element type of the weight matrices (norms and biases stay F32); default "f16". */
  outtype?: GgufOuttype;
  /** general.name; default the model folder's name. */
  name?: string;
}

/** What exportGguf wrote. */
export interface GgufExportResult {
  file: string;
  modelfile: string;
  outtype: GgufOuttype;
  bytes: number;
  /** Things llama.cpp may read differently from tunelab (an unknown pre-tokenizer, ...). */
  warnings: string[];
}

/** llama.cpp's name for a Hugging Face Llama/Qwen2 tensor (gguf-py's tensor_mapping.py). */
export function ggufTensorName(hf: string): string {
  if (hf === "model.embed_tokens.weight") return "token_embd.weight";
  if (hf === "model.norm.weight") return "output_norm.weight";
  if (hf === "lm_head.weight") return "output.weight";
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hf);
  const names: Record<string, string> = {
    input_layernorm: "attn_norm",
    post_attention_layernorm: "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
  };
  if (!m || !names[m[2]]) throw new Error(`gguf: no llama.cpp name for tensor "${hf}"`);
  return `blk.${m[1]}.${names[m[2]]}.${m[3]}`;
}

/**
 * convert_hf_to_gguf.py's LlamaModel.permute: Hugging Face stores each head's q/k rows as two halves (rotate_half);
 * llama.cpp's Llama rope rotates adjacent pairs, so row h*d + j*(d/2) + i moves to h*d + 2i + j.
 */
export function permuteRotaryRows(data: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const dim = rows / heads;
  if (!Number.isInteger(dim) || dim % 2 !== 0) throw new Error(`gguf: ${rows} rows do not split into ${heads} heads of even size`);
  const out = new Float32Array(data.length);
  const half = dim / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const from = (h * dim + j * half + i) * cols;
        const to = (h * dim + 2 * i + j) * cols;
        out.set(data.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

/** The `<arch>.*` hyperparameters llama.cpp reads for this config. */
function architectureMetadata(config: ModelConfig): Map<string, GgufValue> {
  const a = config.arch;
  const meta = new Map<string, GgufValue>([
    [`${a}.context_length`, gv.u32(config.maxPositionEmbeddings)],
    [`${a}.embedding_length`, gv.u32(config.hiddenSize)],
    [`${a}.block_count`, gv.u32(config.numHiddenLayers)],
    [`${a}.feed_forward_length`, gv.u32(config.intermediateSize)],
    [`${a}.attention.head_count`, gv.u32(config.numAttentionHeads)],
    [`${a}.attention.head_count_kv`, gv.u32(config.numKeyValueHeads)],
    [`${a}.attention.key_length`, gv.u32(config.headDim)],
    [`${a}.attention.value_length`, gv.u32(config.headDim)],
    [`${a}.rope.dimension_count`, gv.u32(config.headDim)],
    [`${a}.rope.freq_base`, gv.f32(config.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, gv.f32(config.rmsNormEps)],
    [`${a}.vocab_size`, gv.u32(config.vocabSize)],
  ]);
  const s = config.ropeScaling;
  if (s?.rope_type === "linear") {
    meta.set(`${a}.rope.scaling.type`, gv.str("linear"));
    meta.set(`${a}.rope.scaling.factor`, gv.f32(s.factor));
  } else if (s?.rope_type === "yarn") {
    meta.set(`${a}.rope.scaling.type`, gv.str("yarn"));
    meta.set(`${a}.rope.scaling.factor`, gv.f32(s.factor));
    if (s.original_max_position_embeddings) meta.set(`${a}.rope.scaling.original_context_length`, gv.u32(s.original_max_position_embeddings));
  } else if (s && s.rope_type !== "llama3") {
    throw new Error(`gguf: rope_scaling type "${s.rope_type}" has no llama.cpp equivalent`);
  }
  return meta;
}

/** convert_hf_to_gguf.py's rope_freqs for Llama 3.x rope scaling: one divisor per rotary frequency. */
function llama3RopeFactors(config: ModelConfig): Float32Array | null {
  const s = config.ropeScaling;
  if (s?.rope_type !== "llama3") return null;
  const dim = config.headDim;
  const factors = new Float32Array(dim / 2);
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (let i = 0; i < dim / 2; i++) {
    const freq = 1 / Math.pow(config.ropeTheta, (2 * i) / dim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) factors[i] = 1;
    else if (wavelen > lowWavelen) factors[i] = s.factor;
    else {
      const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      factors[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return factors;
}

const bytesOf = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Encodes one tensor: 1-D tensors (norms, biases) as F32, matrices as `matrix`. */
function encode(data: Float32Array, type: GgmlTypeName): Uint8Array {
  switch (type) {
    case "F32":
      return bytesOf(data);
    case "F16":
      return bytesOf(float32ToF16Bits(data));
    case "Q8_0":
      return quantizeQ8_0(data);
    case "Q4_0":
      return quantizeQ4_0(data);
    case "Q4_K":
      return quantizeQ4_K(data);
    case "Q6_K":
      return quantizeQ6_K(data);
  }
}

/** Writes `out`/model-<outtype>.gguf and `out`/Modelfile. */
export function exportGguf(weights: MergedWeights, out: string, options: GgufExportOptions = {}): GgufExportResult {
  const outtype = options.outtype ?? "f16";
  if (!OUTTYPE[outtype]) throw new Error(`gguf: outtype must be one of ${GGUF_OUTTYPES.join(", ")}, got ${JSON.stringify(outtype)}`);
  const config = weights.config;
  const { fileType } = OUTTYPE[outtype];
  const warnings: string[] = [];
  const name = options.name ?? path.basename(weights.model.dir);
  const metadata = new Map<string, GgufValue>([
    ["general.architecture", gv.str(config.arch)],
    ["general.name", gv.str(name)],
    ["general.file_type", gv.u32(fileType)],
    ["general.quantization_version", gv.u32(2)],
    ...architectureMetadata(config),
    ...tokenizerMetadata(weights.model.dir, weights.model.tokenizer, config.vocabSize, warnings),
  ]);

  const tensors: GgufTensor[] = [];
  const factors = llama3RopeFactors(config);
  if (factors) tensors.push({ name: "rope_freqs.weight", shape: [factors.length], type: "F32", data: () => bytesOf(factors) });
  for (const hf of weights.names()) {
    const shape = weights.shape(hf);
    const type: GgmlTypeName = shape.length === 1 ? "F32" : matrixType(hf, shape[1], outtype, config.numHiddenLayers, warnings);
    if (type === "Q8_0" || type === "Q4_0") {
      if (shape[1] % 32 !== 0) throw new Error(`gguf ${outtype}: "${hf}" has rows of ${shape[1]} values; ${type} needs a multiple of 32 (use --outtype f16)`);
    }
    tensors.push({
      name: ggufTensorName(hf),
      shape,
      type,
      data: () => {
        let data = weights.get(hf).data;
        // Llama's q/k rows (and biases) go from rotate-half to interleaved pairs; Qwen2's rope is NeoX style as in HF.
        if (config.arch === "llama") {
          const rows = shape[0];
          const cols = shape.length === 2 ? shape[1] : 1;
          if (/\.q_proj\.(weight|bias)$/.test(hf)) data = permuteRotaryRows(data, rows, cols, config.numAttentionHeads);
          else if (/\.k_proj\.(weight|bias)$/.test(hf)) data = permuteRotaryRows(data, rows, cols, config.numKeyValueHeads);
        }
        return encode(data, type);
      },
    });
  }
  const file = path.join(out, `model-${outtype}.gguf`);
  writeGguf(file, metadata, tensors);
  const modelfile = path.join(out, "Modelfile");
  fs.writeFileSync(modelfile, ollamaModelfile(path.basename(file), weights.model));
  return { file, modelfile, outtype, bytes: fs.statSync(file).size, warnings };
}
