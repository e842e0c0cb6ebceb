/** Evaluation: the one entry point (evaluateModel), every metric (see public-metrics), batched answers, label-word classification, sliding-window perplexity, reports. */
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
export { evalPrompts, generateAnswers } from "./generate-answers";
export type { EvalPrompt, GenerateAnswersOptions } from "./generate-answers";
export { labelWordPredict } from "./label-words";
export type { LabelWordOptions, LabelWordResult } from "./label-words";
export { slidingWindowPerplexity, slidingWindows } from "./sliding-perplexity";
export type { SlidingPerplexity, SlidingWindowOptions } from "./sliding-perplexity";
export { DataEvaluation, evaluate } from "./evaluate-data";
export type { EvaluateOptions, LmFigures } from "./evaluate-data";
export { predictWithGenerate, promptAndReference } from "./predict-with-generate";
export type { PredictWithGenerateOptions } from "./predict-with-generate";
