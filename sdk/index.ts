/**
 * tunelab: fine-tune LLMs with LoRA from TypeScript.
 *
 *   const base = await model("models/tiny");
 *   const run = await ds.load("data/support_tickets.jsonl").split({ val: 0.1 }).lora({ rank: 16 }).fit(base, { stage: "cls" });
 *   await run.evaluate({ metrics: ["accuracy", "f1"] });
 */
export { ds, DataPlan, DataPreview, type DataStep, type Materialized } from "./plan/data";
export { LoraPlan, liveProgress, type FitOptions, type LoraOptions } from "./plan/lora";
export { Model, model, type ModelEvalOptions, type ModelOptions } from "./plan/model";
export { TrainedRun, type RunEvalOptions } from "./plan/run";
export { Run, type OpenRunOptions } from "./plan/open-run";
export { RunLogs, type LoggedStep, type RunLogData, type RunSource } from "./plan/run-logs";
export { exportLlamaFactory, type LlamaFactoryExport, type LlamaFactoryExportOptions } from "./export/llamafactory";
export { exportModel, EXPORT_FORMATS, type ExportFormat, type ExportOptions, type ExportResult } from "./export";

export { train, type TrainOptions, type TrainResult } from "./train/trainer";
export { estimateTrainingMemory, MemoryEstimateView, type EstimateOptions, type MemoryEstimate } from "./train/estimate";
export { PRESET_NAMES, presetConfig, type PresetName } from "./io/presets";
export { readRecipe, recipeToYaml, resolveRecipe, RECIPE_DEFAULTS, type Recipe, type RecipeInput } from "./train/recipe";
export { RECIPE_SCHEMA, type OptionSpec, type RecipeKey } from "./train/recipe-schema";
export type { Diagnostic, EvalEvent, SkippedStepEvent, StartInfo, StepEvent, StopReason, TrainerCallbacks, TrainerControl } from "./train/callbacks";
export { createTinyModel, type TinyModelOptions } from "./io/tiny";
export { EvalReport } from "./eval/report";
export { evaluate, DataEvaluation, type EvaluateOptions } from "./eval/evaluate-data";
export { serve, type ServeOptions, type ServerHandle } from "./infer/server";
export { JUPYTER_DISPLAY, type Displayable, type MimeBundle } from "./viz/display";
export type { Device } from "./runtime/device";
export { PROCESS_ENV } from "./runtime/process-env";
export { packageRoot, packageVersion } from "./util/package";

/** The layers underneath, for code that needs more than the fluent API. */
export * as data from "./data";
export * as io from "./io";
export * as lora from "./models/lora";
export * as evaluation from "./eval";
/** Every metric, usable without a model: metrics.classification, metrics.bleu, metrics.fr, metrics.compare, ... */
export * as metrics from "./eval/public-metrics";
export * as viz from "./viz";
export * as graph from "./graph";
