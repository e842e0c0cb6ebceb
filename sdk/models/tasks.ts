/** Forward builders for the training tasks: causal language modelling and sequence classification. */
import { Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import { ModelConfig } from "../io/config";
import { ForwardBuilder, ForwardOutputs } from "./forward";
import { buildDecoder, declareDecoderInputs, LoraInGraph, lmHead } from "./decoder";
import type { LoraModule } from "./lora/modules";
import { TrainableWeights, WeightSource } from "./weights";

/**
 * What every task builder needs: the model and its LoRA plan. A trainable tensor named like a model weight
 * (full or freeze tuning) replaces that weight in the graph.
 */
export interface TaskContext {
  config: ModelConfig;
  weights: WeightSource;
  lora: readonly LoraModule[];
  /** LoRA dropout probability; > 0 adds an int64 "dropout_seed" input. */
  loraDropout: number;
  /** Recompute each decoder layer's activations in the backward pass instead of keeping them (gradient_checkpointing). */
  gradientCheckpointing?: boolean;
}

function loraInGraph(b: Builder, ctx: TaskContext, trainable: ReadonlyMap<string, Value>): LoraInGraph | null {
  if (ctx.lora.length === 0) return null;
  const dropout = ctx.loraDropout > 0 ? { p: ctx.loraDropout, seed: b.graph.input("dropout_seed", "int64", []) } : null;
  return { modules: new Map(ctx.lora.map((m) => [m.path, m])), trainable, dropout };
}

/**
 * Causal LM: inputs input_ids, attention_mask, labels [batch, seq] (labels -100 where not trained). Token t's
 * logits predict label t+1, as transformers shifts them; the loss is summed over counted tokens.
 */
export function causalLMForward(ctx: TaskContext, options: { logits?: boolean } = {}): ForwardBuilder {
  return (b, trainable): ForwardOutputs => {
    const inputs = declareDecoderInputs(b);
    const labels = b.graph.input("labels", "int64", ["batch", "seq"]);
    const weights = new TrainableWeights(ctx.weights, trainable);
    const hidden = buildDecoder(b, ctx.config, weights, inputs, loraInGraph(b, ctx, trainable), ctx.gradientCheckpointing);
    const tokens = b.reshape(hidden, [-1, ctx.config.hiddenSize]);
    const logits = b.cast(lmHead(b, ctx.config, weights, tokens), "float32"); // the loss in float32, as transformers upcasts
    // Shift the labels, not the [tokens, vocab] logits: each row's last position gets -100 (no next token), so the
    // largest tensor of the step is never copied.
    const noNext = b.add(b.mul(b.slice(labels, [0], [1], [1]), b.scalar(0, "int64")), b.scalar(-100, "int64")); // [batch, 1]
    const targets = b.reshapeTo(b.concat([b.slice(labels, [1], [2 ** 62], [1]), noNext], 1), b.int64s([-1]), [logits.shape[0]]);
    const lossSum = b.crossEntropy(logits, targets, -100, "sum");
    const count = b.countNotIgnored(targets, -100, "float32");
    const vocab = ctx.config.vocabSize;
    return { lossSum, count, outputs: options.logits ? { logits: b.reshapeTo(logits, b.concat([b.shapeOf(labels), b.int64s([vocab])], 0), ["batch", "seq", vocab]) } : {} };
  };
}

/** Name of the classification head's weight, as transformers' *ForSequenceClassification calls it. */
export const SCORE_WEIGHT = "score.weight";

/**
 * Sequence classification: the hidden state of each row's last real token goes through a linear `score`
 * layer (no bias, trained fully); inputs input_ids, attention_mask [batch, seq] and labels [batch].
 */
export function classificationForward(ctx: TaskContext): ForwardBuilder {
  return (b, trainable): ForwardOutputs => {
    const inputs = declareDecoderInputs(b);
    const labels = b.graph.input("labels", "int64", ["batch"]);
    const hidden = buildDecoder(b, ctx.config, new TrainableWeights(ctx.weights, trainable), inputs, loraInGraph(b, ctx, trainable), ctx.gradientCheckpointing);
    const pooled = b.cast(lastTokenStates(b, hidden, inputs.attentionMask, ctx.config.hiddenSize), "float32");
    const score = trainable.get(SCORE_WEIGHT);
    if (!score) throw new Error(`classification needs a trainable "${SCORE_WEIGHT}"`);
    const logits = b.matmul(pooled, b.transpose(score, [1, 0]));
    const lossSum = b.crossEntropy(logits, labels, -100, "sum");
    return { lossSum, count: b.countNotIgnored(labels, -100, "float32"), outputs: { logits } };
  };
}

/** Hidden state [batch, hidden] of each row's last non-padding token (right padding). */
function lastTokenStates(b: Builder, hidden: Value, attentionMask: Value, size: number): Value {
  const shape = b.shapeOf(attentionMask);
  const seq = b.gather(shape, b.scalar(1, "int64"), 0);
  const batch = b.gather(shape, b.scalar(0, "int64"), 0);
  const last = b.sub(b.reduceSum(attentionMask, [1], false), b.scalar(1, "int64")); // [B]
  const rowStart = b.mul(b.range(b.scalar(0, "int64"), batch, b.scalar(1, "int64"), "batch"), seq);
  const flat = b.reshape(hidden, [-1, size]);
  return b.gather(flat, b.add(rowStart, last), 0);
}
