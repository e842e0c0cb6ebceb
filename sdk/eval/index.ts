/** Evaluation: the one entry point (evaluateModel), classification and language-model metrics, and the displayable EvalReport. */
export {
  accuracy,
  argmaxRows,
  classificationMetrics,
  confusionMatrix,
  f1Score,
  perClassScores,
  perplexity,
  perplexityFromSum,
  precisionScore,
  recallScore,
  tokenAccuracy,
  uniqueLabels,
} from "./metrics";
export type { Average, AverageOptions, ClassificationMetrics, ClassScores, ConfusionMatrix, Label, TokenAccuracyOptions, TokenIds } from "./metrics";
export { evaluateExamples, evaluateModel, textExamples } from "./evaluate";
export type { EvalTarget, Evaluation } from "./evaluate";
export { EvalReport } from "./report";
export type { ClassificationReportOptions, EvalReportInit, EvalReportJson } from "./report";
export * from "./public-metrics";
