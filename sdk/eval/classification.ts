/**
 * `metrics.classification(yTrue, yPred)`: every classification figure in one plain object, with scikit-learn's
 * definitions (precision_recall_fscore_support, zero_division=0, labels = the sorted union of both lists).
 */
import {
  accuracy,
  confusionMatrix,
  f1Score,
  perClassScores,
  precisionScore,
  recallScore,
  uniqueLabels,
  type Average,
  type ConfusionMatrix,
  type Label,
} from "./metrics";

/** Precision, recall and F1 of one averaging scheme. */
export interface PRF {
  precision: number;
  recall: number;
  f1: number;
}

/** One class's scores plus its support (number of true samples). */
export interface ClassPRF extends PRF {
  support: number;
}

/** What `classification` returns. */
export interface ClassificationResult {
  accuracy: number;
  /** Unweighted mean of the per-class scores (sklearn average="macro"). */
  macro: PRF;
  /** Scores of the pooled counts (sklearn average="micro"); equals accuracy when every label is scored. */
  micro: PRF;
  /** Per-class scores weighted by support (sklearn average="weighted"). */
  weighted: PRF;
  /** Per-class scores keyed by the label as a string. */
  perClass: Record<string, ClassPRF>;
  /** Rows are true labels, columns predicted labels, both in `labels` order. */
  confusion: ConfusionMatrix;
}

/** Accuracy, macro/micro/weighted precision, recall and F1, per-class scores and the confusion matrix (sklearn semantics). */
export function classification(yTrue: readonly Label[], yPred: readonly Label[], opts: { labels?: readonly Label[] } = {}): ClassificationResult {
  const labels = opts.labels ?? uniqueLabels(yTrue, yPred);
  const prf = (average: Average): PRF => ({
    precision: precisionScore(yTrue, yPred, { average, labels }),
    recall: recallScore(yTrue, yPred, { average, labels }),
    f1: f1Score(yTrue, yPred, { average, labels }),
  });
  const perClass: Record<string, ClassPRF> = {};
  for (const r of perClassScores(yTrue, yPred, labels)) perClass[String(r.label)] = { precision: r.precision, recall: r.recall, f1: r.f1, support: r.support };
  return {
    accuracy: accuracy(yTrue, yPred),
    macro: prf("macro"),
    micro: prf("micro"),
    weighted: prf("weighted"),
    perClass,
    confusion: confusionMatrix(yTrue, yPred, labels),
  };
}
