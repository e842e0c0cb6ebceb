/**
 * The one evaluation entry point: a model (plus an optional adapter) or a training run's current tensors, run
 * through the no-gradient forward graph on tokenised examples, turned into loss, perplexity and classification
 * metrics. `tunelab eval`, Model.evaluate, TrainedRun.evaluate and the trainer's periodic evaluation all use it.
 */
import { collate } from "../data/batch";
import type { TokenizedExample } from "../data/tokenize";
import type { Row } from "../data/types";
import { batchFeeds, ForwardPass, type TrainableValues } from "../infer/forward-pass";
import { adapterTrainables, type Adapter } from "../models/lora";
import type { BaseModel } from "../models/model";
import { causalLMForward, classificationForward } from "../models/tasks";
import type { Device } from "../runtime/device";
import { argmaxRows, classificationMetrics } from "./metrics";

/** Figures of one evaluation. */
export interface Evaluation {
  /** Mean loss per counted token (LM) or example (classification). */
  loss: number;
  /** Metrics by name: perplexity for LM; accuracy, f1_macro, f1_micro for classification. */
  metrics: Record<string, number>;
  /** Predicted and true class indices (classification only), in example order. */
  predictions?: { predicted: number[]; actual: number[] };
}

/**
 * Perplexity examples of {"text"} rows: exactly the tokenizer.json's ids (its post-processor included, nothing
 * appended), every token after the first predicted. The contract of `tunelab eval` and Model.evaluate.
 */
export function textExamples(rows: readonly Row[], tokenizer: { encode(text: string, o?: { addSpecialTokens?: boolean }): number[] }): TokenizedExample[] {
  return rows.map((row) => {
    if (row.kind !== "pretrain") throw new Error(`${row.provenance.source}:${row.provenance.line}: expected a {"text": ...} row, got a ${row.kind} row`);
    const ids = tokenizer.encode(row.text, { addSpecialTokens: true });
    return { id: row.provenance.id, inputIds: ids, labels: ids };
  });
}

/** Evaluates examples in batches of `batchSize` (input order, no shuffling) with the given trainable tensors. */
export async function evaluateExamples(
  pass: ForwardPass,
  values: TrainableValues,
  examples: readonly TokenizedExample[],
  batchSize: number,
  padTokenId: number,
): Promise<Evaluation> {
  if (examples.length === 0) throw new Error("evaluate: there are no examples to evaluate (is val_size 0?)");
  let lossSum = 0;
  let count = 0;
  const predicted: number[] = [];
  const actual: number[] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = collate(examples.slice(i, i + batchSize), padTokenId);
    const out = await pass.run(batchFeeds(batch), values);
    lossSum += out.lossSum;
    count += out.count;
    if (batch.classLabels) {
      const logits = out.outputs.logits.data as Float32Array;
      const width = logits.length / batch.shape[0];
      predicted.push(...argmaxRows(logits, width));
      actual.push(...Array.from(batch.classLabels, Number));
    }
  }
  const loss = lossSum / Math.max(count, 1);
  if (predicted.length === 0) return { loss, metrics: { loss, perplexity: Math.exp(loss) } };
  const m = classificationMetrics(actual, predicted);
  return {
    loss,
    metrics: { loss, accuracy: m.accuracy, f1_macro: m.macroF1, f1_micro: m.microF1 },
    predictions: { predicted, actual },
  };
}

/** What evaluateModel evaluates: a model, optionally with a PEFT adapter, under a training stage's loss. */
export interface EvalTarget {
  model: BaseModel;
  /** "pt" and "sft": causal LM loss and perplexity; "cls": classification, with the adapter's score head. */
  stage: "pt" | "sft" | "cls";
  /** LoRA pairs and modules_to_save parameters; none evaluates the model alone. */
  adapter?: Adapter | null;
  device?: Device;
}

/** Evaluates a model (plus adapter) on tokenised examples, in a forward session released afterwards. */
export async function evaluateModel(target: EvalTarget, examples: readonly TokenizedExample[], batchSize: number): Promise<Evaluation> {
  const { model, stage, adapter } = target;
  const cls = stage === "cls";
  if (cls && !adapter) throw new Error("evaluate: classification needs an adapter holding the score head");
  const { modules, trainable } = adapter ? adapterTrainables(model.config, adapter, cls) : { modules: [], trainable: [] };
  const ctx = { config: model.config, weights: model.weights, lora: modules, loraDropout: 0 };
  const pass = new ForwardPass(cls ? classificationForward(ctx) : causalLMForward(ctx), trainable, { device: target.device });
  try {
    return await evaluateExamples(pass, new Map(trainable.map((t) => [t.name, t.init])), examples, batchSize, model.tokenizer.padTokenId);
  } finally {
    await pass.release();
  }
}
