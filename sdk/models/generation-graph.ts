/**
 * The generation graph: the decoder over new tokens after a key/value cache, so each new token costs one token's
 * work. Pure graph building; infer/generate.ts runs it.
 */
import { Graph, Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import type { ModelConfig } from "../io/config";
import { buildCachedDecoder, cacheNames, declareCacheInputs, lmHead, LoraInGraph } from "./decoder";
import { loraNames, type LoraState } from "./lora";
import type { WeightSource } from "./weights";

/**
 * The generation graph: inputs input_ids, position_ids [batch, seq], attention_mask [batch, past+seq] and
 * past_key.{l} / past_value.{l}; outputs the last position's logits [batch, vocab] and present_key.{l} /
 * present_value.{l}. LoRA tensors are constants (they do not change while generating).
 */
export function compileGenerationGraph(config: ModelConfig, weights: WeightSource, lora: LoraState | null): Graph {
  const b = new Builder();
  const inputs = declareCacheInputs(b, config);
  let loraIn: LoraInGraph | null = null;
  if (lora && lora.modules.length > 0) {
    const trainable = new Map<string, Value>();
    for (const m of lora.modules) {
      const n = loraNames(m.path);
      trainable.set(n.A, b.constant(lora.tensors.get(n.A)!, [m.rank, m.inFeatures], "float32", n.A));
      trainable.set(n.B, b.constant(lora.tensors.get(n.B)!, [m.outFeatures, m.rank], "float32", n.B));
      if (m.dora) trainable.set(n.magnitude, b.constant(lora.tensors.get(n.magnitude)!, [m.outFeatures], "float32", n.magnitude));
    }
    loraIn = { modules: new Map(lora.modules.map((m) => [m.path, m])), trainable, dropout: null };
  }
  const out = buildCachedDecoder(b, config, weights, inputs, inputs.cache, loraIn);
  // Only the last position's logits: the lm_head is the largest matmul, and the rest are never sampled from.
  const last = b.gather(out.hidden, b.scalar(-1, "int64"), 1); // [batch, hidden]
  b.graph.output(lmHead(b, config, weights, last), "logits");
  out.presentKeys.forEach((k, l) => b.graph.output(k, cacheNames.presentKey(l)));
  out.presentValues.forEach((v, l) => b.graph.output(v, cacheNames.presentValue(l)));
  return b.graph;
}
