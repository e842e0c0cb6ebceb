/** Evaluation of the current tensors on tokenised examples: loss, perplexity and classification metrics. */
import { collate, type Batch } from "../data/batch";
import type { TokenizedExample } from "../data/tokenize";
import type { Row } from "../data/types";
import { argmaxRows, classificationMetrics } from "../eval/metrics";
import type { Adapter } from "../io/peft";
import { loraNames, type LoraModule } from "../models/lora";
import type { BaseModel } from "../models/model";
import { causalLMForward, classificationForward, SCORE_WEIGHT } from "../models/tasks";
import type { Device } from "../runtime/device";
import { StepEngine, type Feeds } from "./engine";
import type { TrainableSpec } from "./step";

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

/** What evaluateAdapter needs to rebuild the eval graph of a trained adapter. */
export interface AdapterEvalInput {
  model: BaseModel;
  stage: "pt" | "sft" | "cls";
  modules: readonly LoraModule[];
  adapter: Adapter;
  device?: Device;
}

/** Evaluates a base model + adapter on tokenised examples (a fresh eval session, released afterwards). */
export async function evaluateAdapter(input: AdapterEvalInput, examples: readonly TokenizedExample[], batchSize: number): Promise<Evaluation> {
  const { model, stage, modules, adapter } = input;
  const trainable: (TrainableSpec & { init: Float32Array })[] = modules.flatMap((m) => {
    const w = adapter.lora[m.path];
    const n = loraNames(m.path);
    return [
      { name: n.A, shape: [m.rank, m.inFeatures], init: w.A },
      { name: n.B, shape: [m.outFeatures, m.rank], init: w.B },
    ];
  });
  const score = adapter.modulesToSave[SCORE_WEIGHT];
  if (stage === "cls") {
    if (!score) throw new Error(`a classification adapter needs ${SCORE_WEIGHT} in modules_to_save`);
    trainable.push({ name: SCORE_WEIGHT, shape: score.shape, init: score.data });
  }
  const ctx = { config: model.config, weights: model.weights, lora: modules, loraDropout: 0 };
  const engine = StepEngine.create({
    forward: stage === "cls" ? classificationForward(ctx) : causalLMForward(ctx),
    trainable,
    optimizer: { name: "sgd" },
    maxGradNorm: 0,
    device: input.device,
  });
  try {
    return await evaluateExamples((f) => engine.evaluate(f), examples, batchSize, model.tokenizer.padTokenId);
  } finally {
    await engine.release();
  }
}
