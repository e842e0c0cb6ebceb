/** What a run leaves behind: train.log, metrics.jsonl, TensorBoard event files; and the terminal progress bar. */
export { crc32c, maskCrc, maskedCrc32c } from "./crc32c";
export { FILE_VERSION, TensorBoardWriter, encodeEvent, tfRecord } from "./tensorboard";
export type { EventFields, ScalarValue, TensorBoardWriterOptions } from "./tensorboard";
export { TrainLog, formatDiagnosticLine, formatEvalLine, formatLogNumber, formatStepLine, readMetricsJsonl } from "./trainlog";
export type { DiagnosticRecord, EvalRecord, LogPosition, MetricsEvent, StepRecord, TrainLogOptions } from "./trainlog";
export { RunLogger } from "./runlogger";
export type { RunLoggerOptions } from "./runlogger";
export { estimateEta, formatDuration, renderProgress } from "./progress";
export type { ProgressOptions, ProgressState } from "./progress";
