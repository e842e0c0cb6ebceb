/**
 * The Llama / Qwen2 decoder as a graph, computed as transformers' LlamaModel and Qwen2Model do: token embedding,
 * per layer RMSNorm -> grouped-query attention with rotary embeddings -> residual -> RMSNorm -> SwiGLU MLP ->
 * residual, then a final RMSNorm. Qwen2 differs only by q/k/v biases, which the config reports.
 */
import { Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import { LinearModule, linearModulePath, ModelConfig } from "../io/config";
import { DropoutContext, LoraModule, loraDelta, loraNames } from "./lora";
import { applyRotary, rotaryTables } from "./rope";
import { FrozenWeights } from "./weights";

/** Graph inputs of a decoder pass: int64 [batch, seq] token ids and attention mask (1 = real token). */
export interface DecoderInputs {
  inputIds: Value;
  attentionMask: Value;
}

/** What LoRA adds to the decoder: the modules, their trainable tensors by name, and dropout. */
export interface LoraInGraph {
  modules: ReadonlyMap<string, LoraModule>;
  trainable: ReadonlyMap<string, Value>;
  dropout: DropoutContext | null;
}

/** The large negative added to masked attention scores (as transformers uses the dtype's minimum). */
const MASKED = -3.4e38;

/** Declares the standard decoder inputs on a graph. */
export function declareDecoderInputs(b: Builder): DecoderInputs {
  return {
    inputIds: b.graph.input("input_ids", "int64", ["batch", "seq"]),
    attentionMask: b.graph.input("attention_mask", "int64", ["batch", "seq"]),
  };
}

/** Builds the decoder and returns the final hidden states [batch, seq, hidden]. */
export function buildDecoder(b: Builder, config: ModelConfig, weights: FrozenWeights, inputs: DecoderInputs, lora: LoraInGraph | null): Value {
  const { inputIds, attentionMask } = inputs;
  const seqLen = b.gather(b.shapeOf(inputIds), b.scalar(1, "int64"), 0);
  const positions = b.unsqueeze(b.range(b.scalar(0, "int64"), seqLen, b.scalar(1, "int64"), "seq"), [0]); // [1, S]
  const { cos, sin } = rotaryTables(b, config, positions);
  const mask = attentionBias(b, positions, attentionMask);

  let x = b.gather(weights.constant(b, "model.embed_tokens.weight"), inputIds, 0);
  let salt = 0;
  const linear = (h: Value, layer: number, module: LinearModule, hasBias: boolean) => {
    const path = linearModulePath(layer, module);
    let y = b.matmul(h, weights.constant(b, `${path}.weight`, true));
    if (hasBias) y = b.add(y, weights.constant(b, `${path}.bias`));
    const m = lora?.modules.get(path);
    if (m && lora) {
      const n = loraNames(path);
      y = b.add(y, loraDelta(b, h, lora.trainable.get(n.A)!, lora.trainable.get(n.B)!, m, lora.dropout, ++salt));
    }
    return y;
  };

  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    const prefix = `model.layers.${layer}`;
    const h = b.rmsNorm(x, weights.constant(b, `${prefix}.input_layernorm.weight`), config.rmsNormEps);
    const attn = attention(b, config, {
      q: linear(h, layer, "q_proj", config.qkvBias),
      k: linear(h, layer, "k_proj", config.qkvBias),
      v: linear(h, layer, "v_proj", config.qkvBias),
      cos,
      sin,
      mask,
    });
    x = b.add(x, linear(attn, layer, "o_proj", config.oProjBias));
    const h2 = b.rmsNorm(x, weights.constant(b, `${prefix}.post_attention_layernorm.weight`), config.rmsNormEps);
    const gated = b.mul(b.silu(linear(h2, layer, "gate_proj", config.mlpBias)), linear(h2, layer, "up_proj", config.mlpBias));
    x = b.add(x, linear(gated, layer, "down_proj", config.mlpBias));
  }
  return b.rmsNorm(x, weights.constant(b, "model.norm.weight"), config.rmsNormEps);
}

/** Additive attention bias [batch, 1, 1, seq, seq]: causal, and padding keys masked out. */
function attentionBias(b: Builder, positions: Value, attentionMask: Value): Value {
  const query = b.unsqueeze(b.squeeze(positions, [0]), [1]); // [S, 1]
  const future = b.compare("Greater", positions, query); // [S, S]: key after query
  const padding = b.unsqueeze(b.compare("Equal", attentionMask, b.scalar(0, "int64")), [1, 2, 3]); // [B,1,1,1,S]
  const [blocked] = b.op("Or", [future, padding], [{ dtype: "bool", shape: ["batch", 1, 1, "seq", "seq"] }]);
  return b.where(blocked, b.scalar(MASKED), b.scalar(0));
}

interface AttentionInputs {
  q: Value;
  k: Value;
  v: Value;
  cos: Value;
  sin: Value;
  mask: Value;
}

/**
 * Grouped-query attention. Query heads are laid out [batch, kvHeads, groups, seq, dim] and keys/values
 * [batch, kvHeads, 1, seq, dim], so MatMul's broadcasting shares each key/value head with its group
 * without materialising repeated copies (transformers' repeat_kv gives the same numbers).
 */
function attention(b: Builder, config: ModelConfig, t: AttentionInputs): Value {
  const { numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim: dim } = config;
  const groups = heads / kvHeads;
  const q = b.transpose(b.reshape(t.q, [0, 0, kvHeads, groups, dim]), [0, 2, 3, 1, 4]);
  const k = b.unsqueeze(b.transpose(b.reshape(t.k, [0, 0, kvHeads, dim]), [0, 2, 1, 3]), [2]);
  const v = b.unsqueeze(b.transpose(b.reshape(t.v, [0, 0, kvHeads, dim]), [0, 2, 1, 3]), [2]);
  const qr = applyRotary(b, q, t.cos, t.sin, dim);
  const kr = applyRotary(b, k, t.cos, t.sin, dim);
  const scores = b.add(b.mul(b.matmul(qr, b.transpose(kr, [0, 1, 2, 4, 3])), b.scalar(1 / Math.sqrt(dim))), t.mask);
  const context = b.matmul(b.softmax(scores, -1), v); // [B, kv, groups, S, D]
  return b.reshape(b.transpose(context, [0, 3, 1, 2, 4]), [0, 0, heads * dim]);
}

/** Logits [batch, seq, vocab] from final hidden states (lm_head, or the embedding when tied). */
export function lmHead(b: Builder, config: ModelConfig, weights: FrozenWeights, hidden: Value): Value {
  const name = config.tieWordEmbeddings || !weights.has("lm_head.weight") ? "model.embed_tokens.weight" : "lm_head.weight";
  return b.matmul(hidden, weights.constant(b, name, true));
}
