/** Evaluation of the current tensors on tokenised examples: loss, perplexity and classification metrics. */
import { collate, type Batch } from "../data/batch";
import type { TokenizedExample } from "../data/tokenize";
import { argmaxRows, classificationMetrics } from "../eval/metrics";
import type { Feeds } from "./engine";

/** Runs the eval graph on one batch; resolves to summed loss, count and outputs (as StepEngine.evaluate does). */
export type EvalFn = (feeds: Feeds) => Promise<{ lossSum: number; count: number; outputs: Record<string, { data: ArrayLike<number | bigint> }> }>;

/** Figures of one evaluation. */
export interface Evaluation {
  /** Mean loss per counted token (LM) or example (classification). */
  loss: number;
  /** Metrics by name: perplexity for LM; accuracy, f1_macro, f1_micro for classification. */
  metrics: Record<string, number>;
  /** Predicted and true class indices (classification only), in example order. */
  predictions?: { predicted: number[]; actual: number[] };
}

/** Graph feeds of a collated batch. */
export function batchFeeds(batch: Batch): Feeds {
  const shape = batch.shape as readonly number[];
  const feeds: Feeds = {
    input_ids: { dtype: "int64", shape, data: batch.inputIds },
    attention_mask: { dtype: "int64", shape, data: batch.attentionMask },
  };
  if (batch.labels) feeds.labels = { dtype: "int64", shape, data: batch.labels };
  if (batch.classLabels) feeds.labels = { dtype: "int64", shape: [shape[0]], data: batch.classLabels };
  return feeds;
}

/** Evaluates examples in batches of `batchSize` (input order, no shuffling). */
export async function evaluateExamples(run: EvalFn, examples: readonly TokenizedExample[], batchSize: number, padTokenId: number): Promise<Evaluation> {
  if (examples.length === 0) throw new Error("evaluate: there are no examples to evaluate (is val_size 0?)");
  let lossSum = 0;
  let count = 0;
  const predicted: number[] = [];
  const actual: number[] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = collate(examples.slice(i, i + batchSize), padTokenId);
    const out = await run(batchFeeds(batch));
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
