/**
 * The Llama / Qwen2 decoder as a graph, computed as transformers' LlamaModel and Qwen2Model do: token embedding,
 * per layer RMSNorm -> grouped-query attention with rotary embeddings -> residual -> RMSNorm -> SwiGLU MLP ->
 * residual, then a final RMSNorm. Qwen2 differs only by q/k/v biases, which the config reports.
 *
 * Training builds it over a whole sequence (positions 0..S-1). Generation builds the same layers with a key/value
 * cache: the new tokens' keys and values are appended to the past ones, rotary embeddings use the tokens'
 * absolute positions, and the causal mask compares cache slots (query slot past+i sees key slots 0..past+i).
 */
import { Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import { LinearModule, linearModulePath, ModelConfig } from "../io/config";
import { adaptedLinear, type LoraInGraph } from "./lora/delta";
import { applyRotary, rotaryTables } from "./rope";
import { ComputeDtype, WeightSource } from "./weights";

/** Graph inputs of a decoder pass: int64 [batch, seq] token ids and attention mask (1 = real token). */
export interface DecoderInputs {
  inputIds: Value;
  attentionMask: Value;
}

export type { LoraInGraph };

/** Graph inputs of a cached (generation) pass, besides input_ids [batch, seq] and attention_mask [batch, past+seq]. */
export interface CacheInputs {
  /** int64 [batch, seq]: absolute position of each new token (rotary embeddings). */
  positionIds: Value;
  /** Per layer, float32 [batch, kvHeads, past, headDim]: keys after rotary embedding, as transformers caches them. */
  pastKeys: Value[];
  /** Per layer, float32 [batch, kvHeads, past, headDim]. */
  pastValues: Value[];
}

/** Input and output names of the generation graph. */
export const cacheNames = {
  positionIds: "position_ids",
  pastKey: (layer: number) => `past_key.${layer}`,
  pastValue: (layer: number) => `past_value.${layer}`,
  presentKey: (layer: number) => `present_key.${layer}`,
  presentValue: (layer: number) => `present_value.${layer}`,
};

/** A decoder pass with a cache: final hidden states of the new tokens and the grown cache per layer. */
export interface CachedDecoderOutputs {
  /** [batch, seq, hidden] for the new tokens only. */
  hidden: Value;
  /** Per layer [batch, kvHeads, past+seq, headDim]: past keys followed by the new ones. */
  presentKeys: Value[];
  presentValues: Value[];
}

/** The large negative added to masked attention scores (as transformers uses the dtype's minimum). */
const MASKED = { float32: -3.4e38, float16: -65504 } as const;

/** Declares the standard decoder inputs on a graph. */
export function declareDecoderInputs(b: Builder): DecoderInputs {
  return {
    inputIds: b.graph.input("input_ids", "int64", ["batch", "seq"]),
    attentionMask: b.graph.input("attention_mask", "int64", ["batch", "seq"]),
  };
}

/**
 * Declares the generation graph's inputs: input_ids and position_ids [batch, seq], attention_mask
 * [batch, past+seq] covering past and new tokens, and past_key.{l} / past_value.{l} [batch, kvHeads, past, headDim]
 * ("past" may be 0 for the first pass over a prompt).
 */
export function declareCacheInputs(b: Builder, config: ModelConfig): DecoderInputs & { cache: CacheInputs } {
  const kvShape = ["batch", config.numKeyValueHeads, "past", config.headDim];
  const layers = Array.from({ length: config.numHiddenLayers }, (_, l) => l);
  return {
    inputIds: b.graph.input("input_ids", "int64", ["batch", "seq"]),
    attentionMask: b.graph.input("attention_mask", "int64", ["batch", "past+seq"]),
    cache: {
      positionIds: b.graph.input(cacheNames.positionIds, "int64", ["batch", "seq"]),
      pastKeys: layers.map((l) => b.graph.input(cacheNames.pastKey(l), "float32", kvShape)),
      pastValues: layers.map((l) => b.graph.input(cacheNames.pastValue(l), "float32", kvShape)),
    },
  };
}

/**
 * Builds the decoder and returns the final hidden states [batch, seq, hidden]. With `recompute`, each layer is marked
 * for recomputation in the backward pass (gradient checkpointing): only its input is kept from the forward pass.
 */
export function buildDecoder(b: Builder, config: ModelConfig, weights: WeightSource, inputs: DecoderInputs, lora: LoraInGraph | null, recompute = false): Value {
  return decoderLayers(b, config, weights, inputs, lora, null, recompute).hidden;
}

/** Builds the decoder over new tokens after a key/value cache; returns their hidden states and the grown cache. */
export function buildCachedDecoder(
  b: Builder,
  config: ModelConfig,
  weights: WeightSource,
  inputs: DecoderInputs,
  cache: CacheInputs,
  lora: LoraInGraph | null,
): CachedDecoderOutputs {
  if (cache.pastKeys.length !== config.numHiddenLayers || cache.pastValues.length !== config.numHiddenLayers) {
    throw new Error(`buildCachedDecoder: need past keys and values for ${config.numHiddenLayers} layers, got ${cache.pastKeys.length} and ${cache.pastValues.length}`);
  }
  return decoderLayers(b, config, weights, inputs, lora, cache);
}

/** The shared body of both passes; `cache` null is the training pass (no past, positions 0..S-1). */
function decoderLayers(
  b: Builder,
  config: ModelConfig,
  weights: WeightSource,
  inputs: DecoderInputs,
  lora: LoraInGraph | null,
  cache: CacheInputs | null,
  recompute = false,
): CachedDecoderOutputs {
  const { inputIds, attentionMask } = inputs;
  const i64 = (v: number) => b.scalar(v, "int64");
  const seqLen = b.gather(b.shapeOf(inputIds), i64(1), 0);
  let positions: Value;
  let querySlots: Value;
  let keySlots: Value;
  if (cache) {
    // Slots index the cache (past tokens first); positions are the tokens' own places in their sequence, which
    // differ from slots in a left-padded batch.
    const past = b.gather(b.shapeOf(cache.pastKeys[0]), i64(2), 0);
    const total = b.gather(b.shapeOf(attentionMask), i64(1), 0);
    positions = cache.positionIds;
    querySlots = b.range(past, b.add(past, seqLen), i64(1), "seq");
    keySlots = b.range(i64(0), total, i64(1), "past+seq");
  } else {
    const slots = b.range(i64(0), seqLen, i64(1), "seq");
    positions = b.unsqueeze(slots, [0]); // [1, S]
    querySlots = slots;
    keySlots = slots;
  }
  const dtype = weights.dtype;
  const tables = rotaryTables(b, config, positions);
  const cos = b.cast(tables.cos, dtype);
  const sin = b.cast(tables.sin, dtype);
  const mask = attentionBias(b, querySlots, keySlots, attentionMask, dtype);

  // Activations stay [tokens, features] (batch and sequence folded) from the embedding to the last norm, so every
  // linear is one Gemm on the weight as stored; only attention views them as [batch, seq, heads, dim].
  const rows = b.shapeOf(inputIds); // [batch, seq]
  let x = weights.rows(b, "model.embed_tokens.weight", b.reshape(inputIds, [-1]));
  let salt = 0;
  const linear = (h: Value, layer: number, module: LinearModule, hasBias: boolean) => {
    const path = linearModulePath(layer, module);
    const bias = hasBias ? weights.constant(b, `${path}.bias`) : null;
    const y = weights.linear(b, h, `${path}.weight`, bias);
    const m = lora?.modules.get(path);
    // LoRA adds its term to y; DoRA also takes the weight's products and row squares (for its norm) and the bias
    // (PEFT's base output is y - bias).
    const multiply = (v: Value) => weights.linear(b, b.cast(v, dtype), `${path}.weight`, null);
    const rowSquares = () => weights.rowSquares(b, `${path}.weight`, h);
    return m && lora ? adaptedLinear(b, { x: h, y, bias, multiply, rowSquares }, m, lora, ++salt) : y;
  };

  const presentKeys: Value[] = [];
  const presentValues: Value[] = [];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    const prefix = `model.layers.${layer}`;
    const region = { from: b.graph.nodes.length, input: x };
    const h = b.rmsNorm(x, weights.constant(b, `${prefix}.input_layernorm.weight`), config.rmsNormEps);
    const attn = attention(b, config, rows, {
      q: linear(h, layer, "q_proj", config.qkvBias),
      k: linear(h, layer, "k_proj", config.qkvBias),
      v: linear(h, layer, "v_proj", config.qkvBias),
      cos,
      sin,
      mask,
      past: cache ? { k: cache.pastKeys[layer], v: cache.pastValues[layer] } : null,
    });
    if (attn.present) {
      presentKeys.push(attn.present.k);
      presentValues.push(attn.present.v);
    }
    x = b.add(x, linear(attn.context, layer, "o_proj", config.oProjBias));
    const h2 = b.rmsNorm(x, weights.constant(b, `${prefix}.post_attention_layernorm.weight`), config.rmsNormEps);
    const gated = b.mul(b.silu(linear(h2, layer, "gate_proj", config.mlpBias)), linear(h2, layer, "up_proj", config.mlpBias));
    x = b.add(x, linear(gated, layer, "down_proj", config.mlpBias));
    if (recompute) b.graph.recompute.push({ ...region, to: b.graph.nodes.length });
  }
  const hidden = b.rmsNorm(x, weights.constant(b, "model.norm.weight"), config.rmsNormEps);
  return { hidden: unfold(b, hidden, rows, config.hiddenSize), presentKeys, presentValues };
}

/**
 * Additive attention bias [batch, 1, 1, seq, keys]: a query may not see a key in a later cache slot, nor a
 * padding key. `querySlots` [S] and `keySlots` [T] are int64 slot indices; `attentionMask` is [batch, T].
 */
function attentionBias(b: Builder, querySlots: Value, keySlots: Value, attentionMask: Value, dtype: ComputeDtype): Value {
  const query = b.unsqueeze(querySlots, [1]); // [S, 1]
  const future = b.compare("Greater", b.unsqueeze(keySlots, [0]), query); // [S, T]: key after query
  const padding = b.unsqueeze(b.compare("Equal", attentionMask, b.scalar(0, "int64")), [1, 2, 3]); // [B,1,1,1,T]
  const [blocked] = b.op("Or", [future, padding], [{ dtype: "bool", shape: ["batch", 1, 1, querySlots.shape[0], keySlots.shape[0]] }]);
  return b.where(blocked, b.scalar(MASKED[dtype], dtype), b.scalar(0, dtype));
}

interface AttentionInputs {
  q: Value;
  k: Value;
  v: Value;
  cos: Value;
  sin: Value;
  mask: Value;
  /** Cached keys (after rotary) and values [batch, kvHeads, past, headDim]; null without a cache. */
  past: { k: Value; v: Value } | null;
}

/** Attention's result [tokens, heads*dim], and with a cache the grown keys/values [batch, kv, past+seq, dim]. */
interface AttentionOutputs {
  context: Value;
  present: { k: Value; v: Value } | null;
}

/**
 * Grouped-query attention. Query heads are laid out [batch, kvHeads, groups, seq, dim] and keys/values
 * [batch, kvHeads, 1, seq, dim], so MatMul's broadcasting shares each key/value head with its group
 * without materialising repeated copies (transformers' repeat_kv gives the same numbers).
 */
function attention(b: Builder, config: ModelConfig, rows: Value, t: AttentionInputs): AttentionOutputs {
  const { numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim: dim } = config;
  const groups = heads / kvHeads;
  const q = b.transpose(unfold(b, t.q, rows, kvHeads, groups, dim), [0, 2, 3, 1, 4]);
  const k = b.unsqueeze(b.transpose(unfold(b, t.k, rows, kvHeads, dim), [0, 2, 1, 3]), [2]);
  const v = b.unsqueeze(b.transpose(unfold(b, t.v, rows, kvHeads, dim), [0, 2, 1, 3]), [2]);
  const qr = applyRotary(b, q, t.cos, t.sin, dim);
  let keys = applyRotary(b, k, t.cos, t.sin, dim);
  let values = v;
  let present: AttentionOutputs["present"] = null;
  if (t.past) {
    keys = b.concat([b.unsqueeze(t.past.k, [2]), keys], 3); // [B, kv, 1, past+S, D]
    values = b.concat([b.unsqueeze(t.past.v, [2]), values], 3);
    present = { k: b.squeeze(keys, [2]), v: b.squeeze(values, [2]) };
  }
  // 1/sqrt(d) applied to q ([.., S, D]) instead of the scores ([.., S, S]): the same product, fewer multiplies.
  const scores = b.add(b.matmul(b.mul(qr, b.scalarLike(1 / Math.sqrt(dim), qr)), b.transpose(keys, [0, 1, 2, 4, 3])), t.mask);
  // Softmax in float32 whatever the compute dtype, as transformers does.
  const probs = b.cast(b.softmax(b.cast(scores, "float32"), -1), scores.dtype);
  const context = b.matmul(probs, values); // [B, kv, groups, S, D]
  return { context: b.reshape(b.transpose(context, [0, 3, 1, 2, 4]), [-1, heads * dim]), present };
}

/** [tokens, ...] activations viewed as [batch, seq, ...dims], with `rows` the int64 [batch, seq] shape. */
function unfold(b: Builder, x: Value, rows: Value, ...dims: number[]): Value {
  return b.reshapeTo(x, b.concat([rows, b.int64s(dims)], 0), ["batch", "seq", ...dims]);
}

/** Logits [batch, seq, vocab] from final hidden states (lm_head, or the embedding when tied). */
export function lmHead(b: Builder, config: ModelConfig, weights: WeightSource, hidden: Value): Value {
  const name = config.tieWordEmbeddings || !weights.has("lm_head.weight") ? "model.embed_tokens.weight" : "lm_head.weight";
  return weights.linear(b, hidden, name, null);
}
