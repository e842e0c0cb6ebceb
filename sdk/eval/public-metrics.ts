/**
 * The public `metrics` namespace: every metric usable without a model.
 *
 *   import { metrics } from "tunelab";
 *   metrics.classification(["pos", "neg"], ["pos", "pos"]).macro.f1;
 *   metrics.bleu({ hypotheses: ["净利润增长12%"], references: [["净利润同比增长12%"]] });
 */
export { classification } from "./classification";
export type { ClassificationResult, ClassPRF, PRF } from "./classification";
export { bleu, chrf, rouge, rougePerSample } from "./overlap";
export type { BleuOptions, ChrfOptions, OverlapInput, RougeScores } from "./overlap";
export { evalTokens } from "./text-units";
export type { TokenizeOptions } from "./text-units";
export { distinctN, exactMatch, normalizeAnswer, repetitionOne, repetitionRate, splitThink, stopRate, thinkClosedRate } from "./generation-stats";
export type { ExactMatchOptions, StopReason, ThinkSplit } from "./generation-stats";
export { DEFAULT_UNITS, extractFacts, factCorrectness, factsAgree, fr } from "./finance-facts";
export type { EntitySpec, Fact, FactDetail, FactKind, FactOptions, FrResult } from "./finance-facts";
export { DEFAULT_MEDICAL_RUBRIC, DEFAULT_NEGATIONS, diqa, diqaScore } from "./medical-rubric";
export type { DiqaDetail, DiqaOptions, DiqaResult, FieldDetail, RubricField } from "./medical-rubric";
export { BUILTIN_METRICS, builtinMetric, defineMetric, METRIC_ALIASES } from "./generation-metric";
export type { GenerationMetric, GenerationMetricOptions, GenerationSample } from "./generation-metric";
export { Comparison, compare, GenerationReport, scoreGeneration } from "./generation-report";
export type { CompareOptions, MetricComparison, ScoreGenerationOptions } from "./generation-report";
export { bootstrapInterval, pairedBootstrap } from "./bootstrap";
export type { BootstrapOptions, Interval, PairedTest } from "./bootstrap";
export { llmJudge, LlmJudge } from "./llm-judge";
export type { JudgeOptions, PairVerdict, Verdict } from "./llm-judge";
export { perplexity, perplexityFromSum } from "./metrics";
